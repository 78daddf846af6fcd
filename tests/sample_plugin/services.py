from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from core.errors import DomainError
from core.extensions import db
from tenants.licensing import limit
from tests.sample_plugin.models import SampleNote

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
        from core.jobs import TransientJobError

        raise TransientJobError(f"flaky on attempt {ctx.run.attempts}")
    db.session.commit()
    return {"notes": len(notes), "tenant": ctx.tenant.slug}


def note_about(title: str) -> None:
    db.session.add(SampleNote(title=title, body=""))
    db.session.commit()
