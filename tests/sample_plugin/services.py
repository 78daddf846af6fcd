import re

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from core.api import (
    BOOLEAN_FIELD,
    CHOICE_FIELD,
    LIST_FIELD,
    Client,
    ClientField,
    DomainError,
    ModelClientFields,
    SmtpSettings,
    TransientJobError,
    User,
    db,
    limit,
    plugin_settings,
    update_plugin_settings,
)
from tests.sample_plugin.models import SampleNote, SampleProfile

WELCOME = "Welcome note"


def note_count() -> int:
    return db.session.scalar(select(func.count()).select_from(SampleNote))


def add_note(tenant, title: str, body: str = "") -> SampleNote:
    maximum = limit(tenant, "sample", "notes")
    if maximum is not None and note_count() >= maximum:
        raise DomainError(_l("Your licence allows %(n)s notes.", n=maximum))
    note = SampleNote(title=title, body=body)
    db.session.add(note)
    db.session.commit()
    return note


def add_welcome_note(tenant) -> None:
    if db.session.scalar(select(SampleNote.id).where(SampleNote.title == WELCOME)) is None:
        db.session.add(SampleNote(title=WELCOME, body=f"Hello, {tenant.name}"))


DEMO = "Demo note"


def add_demo_note() -> bool:
    """The sample plugin's demo data: one note, once; whether it was added."""
    if db.session.scalar(select(SampleNote.id).where(SampleNote.title == DEMO)) is not None:
        return False
    db.session.add(SampleNote(title=DEMO, body="Made by flask demo load"))
    db.session.commit()
    return True


def search(query: str):
    return db.session.scalars(select(SampleNote).where(SampleNote.title.contains(query)).limit(10)).all()


def count_notes(ctx, fail_times: int = 0):
    """The sample cron job: counts the tenant's notes, reporting progress as it goes."""
    notes = db.session.scalars(select(SampleNote).order_by(SampleNote.id)).all()
    for index, _note in enumerate(notes, start=1):
        ctx.progress(index, len(notes), f"{index}/{len(notes)}")
    if ctx.run.attempts <= fail_times:
        raise TransientJobError(f"flaky on attempt {ctx.run.attempts}")
    db.session.commit()
    return {"notes": len(notes), "tenant": ctx.tenant.slug}


def note_about(title: str, commit: bool = True) -> None:
    db.session.add(SampleNote(title=title, body=""))
    if commit:
        db.session.commit()


def _names(client_ids) -> list[tuple[int, str]]:
    return db.session.execute(
        select(Client.id, Client.name).where(Client.id.in_(list(client_ids))).order_by(Client.id)
    ).all()


def note_new_clients(tenant, client_ids: list[int], held_for: str = "") -> None:
    """A note per new client, written for the whole batch in one commit (a plugin reacting
    set-based); it fails on purpose for a client called "Faulty": tests check it cannot undo or
    fail the clients' creation. Clients not to be told: the note says so (``held for <key>``)."""
    names = _names(client_ids)
    if any("Faulty" in name for _id, name in names):
        db.session.add(SampleNote(title="half-written", body=""))
        raise RuntimeError("the sample plugin fails on purpose")
    body = f"held for {held_for}" if held_for else ""
    db.session.add_all(SampleNote(title=f"Client {name} created", body=body) for _id, name in names)
    db.session.commit()


def held_notes(held_for: str) -> int:
    return db.session.scalar(select(func.count()).where(SampleNote.body == f"held for {held_for}"))


def release_notes(held_for: str) -> int:
    """The held notes "sent": once, a second call finds none."""
    released = db.session.execute(
        update(SampleNote).where(SampleNote.body == f"held for {held_for}").values(body="released")
    ).rowcount
    db.session.commit()
    return released


def note_changed_clients(tenant, changes: dict) -> None:
    names = dict(_names(changes))
    db.session.add_all(
        SampleNote(title=f"Client {names[client_id]} changed: {', '.join(sorted(fields))}", body="")
        for client_id, fields in sorted(changes.items())
    )
    db.session.commit()


# --- client fields, list column and filter ------------------------------------------------

_REFERENCE = re.compile(r"^[A-Z]{2}-[0-9]{3}$")
TIERS = (("gold", _l("Gold")), ("silver", _l("Silver")))


def _check_profile(values: dict, client_id: int | None) -> dict:
    if "reference" in values:
        reference = (values["reference"] or "").strip().upper()
        if reference and not _REFERENCE.match(reference):
            raise DomainError(_l("A reference is two letters, a hyphen and three digits (AB-123)."), field="reference")
        values["reference"] = reference
    if "tags" in values:
        tags = [tag.strip().lower() for tag in values["tags"] if tag.strip()]
        if any(len(tag) > 20 for tag in tags):
            raise DomainError(_l("A tag has at most 20 characters."), field="tags")
        values["tags"] = tags
    return values


def profile_fields() -> ModelClientFields:
    return ModelClientFields(
        SampleProfile,
        _l("Sample profile"),
        [
            ClientField("reference", _l("Reference"), help=_l("Two letters and three digits."), headers=("ref",)),
            ClientField("vip", _l("VIP"), kind=BOOLEAN_FIELD, headers=("vip",)),
            ClientField("tags", _l("Tags"), kind=LIST_FIELD),
            ClientField("tier", _l("Tier"), kind=CHOICE_FIELD, choices=TIERS),
        ],
        check=_check_profile,
    )


def reference_of_client():
    return select(SampleProfile.reference).where(SampleProfile.client_id == Client.id).scalar_subquery()


def vip_condition(value: str):
    vips = select(SampleProfile.client_id).where(SampleProfile.vip.is_(True))
    return Client.id.in_(vips) if value == "yes" else Client.id.not_in(vips)


# --- settings and mail ------------------------------------------------------------------------


def greeting() -> str:
    return plugin_settings("sample").get("greeting", "")


def save_settings(greeting_text: str, smtp_port: int | None) -> None:
    update_plugin_settings("sample", {"greeting": greeting_text.strip() or None, "smtp_port": smtp_port})
    db.session.commit()


def transport(key: str) -> SmtpSettings | None:
    """The sample's own SMTP server (on loopback, in tests), for messages sent with "sample:<key>"."""
    port = plugin_settings("sample").get("smtp_port")
    if not port:
        return None
    return SmtpSettings("127.0.0.1", int(port), "none", None, None, f"{key}@sample.test", "sample")


def user_of_badge(text: str):
    """The sample's login badge: "SAMPLE-<user id>" names that active user of the tenant."""
    if not text.upper().startswith("SAMPLE-") or not text[7:].isdigit():
        return None
    user = db.session.get(User, int(text[7:]))
    return user if user is not None and user.active else None
