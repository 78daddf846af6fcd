""" "Generar certificados": a request of a template for every active client of some centres (or of
the whole organisation) that lacks one, counted, confirmed and made by a bulk job."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from core.api import (
    Client,
    DomainError,
    analyse,
    assignable_groups,
    db,
    enqueue,
    group_choices,
    own_group_ids,
    sees_every_client,
    utcnow,
)
from plugins.center_certificates.models import (
    CertificateTemplate,
)
from plugins.center_certificates.services.lifecycle import clients_without_open, insert_requests
from plugins.center_certificates.services.notices import (
    held_count,
    hold_created,
    notify_soon,
    reachable,
    release_held,
)

ALL_CLIENTS = "all"
CENTRES = "centres"


@dataclass(frozen=True)
class GenerationChoice:
    """Whose certificates "Generar certificados" creates: the active clients of these centres, or
    every active client of the organisation (also those in no centre)."""

    group_ids: tuple[int, ...] = ()
    all_clients: bool = False

    @classmethod
    def of(cls, group_ids, scope: str | None = CENTRES) -> GenerationChoice:
        if scope == ALL_CLIENTS:
            return cls((), True)
        return cls(tuple(sorted({int(i) for i in group_ids or ()})))

    @property
    def made(self) -> bool:
        return self.all_clients or bool(self.group_ids)

    @property
    def scope(self) -> str:
        return ALL_CLIENTS if self.all_clients else CENTRES

    @property
    def groups_text(self) -> str:
        """The centres as the confirmation carries them (a hidden field): "3,7"."""
        return ",".join(map(str, self.group_ids))

    @classmethod
    def parse(cls, scope: str | None, groups_text: str | None) -> GenerationChoice | None:
        """The choice a confirmation was counted for; None when the texts are not one."""
        try:
            return cls.of((part for part in (groups_text or "").split(",") if part.strip()), scope)
        except ValueError:
            return None


def centres_for(user) -> list:
    """The centres offered to ``user`` (to filter by, to generate for): every one when they see
    every client, else their own."""
    return assignable_groups(user)


def centre_choices(user) -> list:
    """The centres of ``centres_for`` as a filter offers them (``id`` and ``name``), kept until the
    tenant's data next changes."""
    return group_choices(user)


def _check_generation_choice(choice: GenerationChoice, actor) -> None:
    """Every active client only for who sees every client; otherwise only one's own centres."""
    if not choice.made:
        raise DomainError(_l("Choose at least one centre."), field="groups")
    if actor is None or sees_every_client(actor):
        return
    if choice.all_clients:
        raise DomainError(_l("Only someone who sees every client can generate for every client."), field="groups")
    if set(choice.group_ids) - own_group_ids(actor):
        raise DomainError(_l("You can only generate certificates for the clients of your centres."), field="groups")


def generation_count(template: CertificateTemplate, choice: GenerationChoice, actor=None) -> int:
    """How many certificates "Generar certificados" would create now (for ``actor``, who may only
    count what they may generate)."""
    _check_generation_choice(choice, actor)
    group_ids = None if choice.all_clients else list(choice.group_ids)
    candidates = clients_without_open(template.tenant_id, template.id, group_ids)
    return db.session.scalar(select(func.count()).select_from(candidates.subquery()))


def generation_notice_count(template: CertificateTemplate, choice: GenerationChoice, actor=None) -> int:
    """How many notices would go if the clients were told: one for each certificate it would
    create for a client who can be told (an e-mail address or a portal account)."""
    _check_generation_choice(choice, actor)
    group_ids = None if choice.all_clients else list(choice.group_ids)
    candidates = clients_without_open(template.tenant_id, template.id, group_ids).where(reachable(Client.id))
    return db.session.scalar(select(func.count()).select_from(candidates.subquery()))


class GenerationChanged(DomainError):
    """The confirmation was for another choice or another number: it must be counted again."""


def start_generation(
    tenant,
    template: CertificateTemplate,
    choice: GenerationChoice,
    actor,
    *,
    counted_for: GenerationChoice | None,
    counted: int | None,
    notify: bool = False,
    counted_notices: int | None = None,
):
    """Start the bulk job, if what is confirmed is what was counted and shown.

    The page said "N certificates will be created" for ``counted_for``; the choice is counted
    again here, and a different choice (centres ticked after counting) or a different number
    (clients added, another run) refuses with :class:`GenerationChanged`, so that the person
    confirms the number that will really be created. ``notify`` (off unless chosen): the clients
    are told, and then the number of notices shown (``counted_notices``) must be the one that
    would go; otherwise their notices are recorded as held, never sent by themselves.
    """
    if not template.active:
        raise DomainError(_l("This template is not in use."))
    _check_generation_choice(choice, actor)
    if (
        counted_for != choice
        or counted != generation_count(template, choice, actor)
        or (notify and counted_notices != generation_notice_count(template, choice, actor))
    ):
        raise GenerationChanged(
            _l("The choice or the number has changed since it was counted: check the new number and confirm again.")
        )
    return enqueue(
        tenant,
        "center_certificates.generate",
        {
            "template_id": template.id,
            "group_ids": list(choice.group_ids),
            "all_clients": choice.all_clients,
            "notify": bool(notify),
        },
        started_by=actor,
    )


def held_generation_notices(template: CertificateTemplate, actor=None) -> int:
    """How many notices the generations of ``template`` held back would send now (to the clients
    ``actor`` sees)."""
    return held_count(None, template.id, actor)


def send_held_generation_notices(tenant, template: CertificateTemplate, actor, *, counted: int | None) -> int:
    """Tell the clients (those ``actor`` sees) after all of the requests that generations of
    ``template`` made without telling them, if ``counted`` (the number the page showed) is the
    number that would go; once."""
    if counted is None or counted != held_generation_notices(template, actor):
        raise GenerationChanged(
            _l("The number of messages has changed since it was shown: check it and confirm again.")
        )
    return release_held(tenant, None, template.id, actor)


GENERATION_BATCH = 5_000
# Certificates made from which a generation refreshes the planner's statistics itself.
ANALYSE_AFTER = 500


def generate(
    tenant,
    template_id: int,
    group_ids: list[int],
    all_clients: bool,
    *,
    issued_by_id: int | None,
    progress,
    batch: int = GENERATION_BATCH,
    notify: bool = False,
    held_for: str = "",
) -> dict:
    """What the bulk job does: INSERT … SELECT in keyset batches of ``batch`` client ids, each
    committed, telling ``progress(done, total, message)`` after each.

    ``notify`` False (the default: the person did not choose to tell the clients): each batch's
    notices are recorded as held for ``held_for`` in the batch's own transaction, so that neither
    this run nor the periodic one sends them; later notices (approval, expiry) go as usual.

    Set-based (100,000 clients take 20 statements, not 100,000) with real progress between
    batches. Idempotent: each batch takes only clients without an open certificate of the
    template (and the partial unique index makes it a fact), so a retried or repeated run goes on
    where the last one stopped and never gives a client a second open certificate.
    """
    template = db.session.get(CertificateTemplate, template_id)
    if template is None or not template.active:
        return {"created": 0}
    scope = None if all_clients else group_ids
    total = db.session.scalar(
        select(func.count()).select_from(clients_without_open(tenant.id, template.id, scope).subquery())
    )
    progress(0, total, message=template.name)
    now = utcnow()
    created, batches, after = 0, 0, 0
    while True:
        candidates = (
            clients_without_open(tenant.id, template.id, scope)
            .where(Client.id > after)
            .order_by(Client.id)
            .limit(batch)
            .subquery()
        )
        rows = insert_requests(tenant.id, template, candidates, issued_by_id, now)
        if not notify:
            hold_created(tenant.id, [row.id for row in rows], held_for)
        created, batches = created + len(rows), batches + 1
        # Published with the batch's commit: the job's page moves as the rows are written.
        progress(min(created, total), total, message=template.name)
        db.session.commit()
        if len(rows) < batch:
            break
        after = max(row.client_id for row in rows)
    if created >= ANALYSE_AFTER:
        # The planner learns of the new rows now, not when autovacuum next comes round.
        analyse("center_certificates_certificates", "center_certificates_notices")
    if notify:
        notify_soon(tenant)
    return {"created": created, "template": template.name, "batches": batches, "notified": notify}
