"""Notifications: the lists, the calendar, the office's own workflow, assignment, comparecencia,
documents, the export, the dashboard counts and the deadline alerts.

Everything is limited to the notifications of clients the user may see (core groups, seed 001:
"los Usuarios que pertenecen a ese grupo tengan acceso y puedan gestionar las notificaciones de ese
cliente"). Opening a notification at the sede (comparecencia) is a legal act that starts its
deadlines: ``open_notification`` runs only with the user's explicit confirmation, and is audited
with who and when.
"""

from __future__ import annotations

import calendar as _calendar
import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from flask_babel import force_locale, lazy_ngettext, lazy_pgettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import selectinload

from core.api import (
    MB,
    PDF,
    Client,
    DomainError,
    Page,
    Tenant,
    UploadKind,
    User,
    accept_upload,
    audit_rows,
    clients_matching,
    db,
    external_url,
    get_visible_client,
    has_permission,
    keyset_page,
    register_kind,
    send_email,
    tenant_today,
    update_by_id,
    user_language,
    users_with_permission,
    utcnow,
    visible_client_ids,
)
from plugins.sedes import deadlines, escalation, webhooks
from plugins.sedes.contract import (
    CertificateExpired,
    DocumentRef,
    Kind,
    Link,
    MailboxContext,
    NotificationRecord,
    SedeError,
    SedeState,
)
from plugins.sedes.models import (
    CLOSED,
    IN_PROGRESS,
    READ,
    UNREAD,
    WORKFLOW_STATES,
    SedeMailbox,
    SedeNotification,
    SedeNotificationDocument,
)

log = logging.getLogger(__name__)

VIEW = "sedes.notifications:view"
MANAGE = "sedes.notifications:manage"
OPEN = "sedes.notifications:open"
EXPORT = "sedes.notifications:export"
SUPERVISE = escalation.SUPERVISE

DOCUMENT_KIND = register_kind(UploadKind("sedes.document", frozenset({PDF}), 50 * MB, _l("a PDF")))

KINDS = {
    Kind.NOTIFICACION.value: _l("Notification"),
    Kind.COMUNICACION.value: _l("Communication"),
    Kind.TEU.value: _l("Edict (TEU)"),
}
SEDE_STATES = {
    SedeState.PENDIENTE.value: _l("Pending"),
    SedeState.ACEPTADA.value: _l("Accepted"),
    SedeState.RECHAZADA.value: _l("Rejected"),
    SedeState.EXPIRADA.value: lazy_pgettext("sede state", "Expired"),
    SedeState.LEIDA.value: _l("Read at the sede"),
    SedeState.PUBLICADA_TEU.value: _l("Published in the TEU"),
    SedeState.DESCONOCIDO.value: _l("Unknown"),
}
SEDE_STATE_STYLES = {
    SedeState.PENDIENTE.value: "warning",
    SedeState.ACEPTADA.value: "success",
    SedeState.RECHAZADA.value: "danger",
    SedeState.EXPIRADA.value: "danger",
    SedeState.LEIDA.value: "info",
    SedeState.PUBLICADA_TEU.value: "dark",
    SedeState.DESCONOCIDO.value: "secondary",
}
WORKFLOW_STYLES = {UNREAD: "primary", READ: "info", IN_PROGRESS: "warning", CLOSED: "secondary"}
# The deadline windows of the list's filter.
WINDOWS = {
    "today": _l("Deadline today"),
    "week": _l("Deadline within 7 days"),
    "month": _l("Deadline within 30 days"),
    "expired": _l("Deadline passed"),
    "none": _l("No deadline"),
    "risk": _l("At risk: not handled, 2 days or less left"),
}
PER_PAGE = 50


# --- reading -------------------------------------------------------------------------------------


def visible(user):
    """The notifications ``user`` may see: those of the clients of their groups (all with view_all)."""
    return select(SedeNotification).where(SedeNotification.client_id.in_(visible_client_ids(user)))


def get_visible(user, notification_id: int) -> SedeNotification | None:
    return db.session.scalar(visible(user).where(SedeNotification.id == notification_id))


@dataclass
class Filters:
    """What the list is narrowed to; every value optional (an empty string means "any")."""

    client_id: int | None = None
    sede: str = ""
    state: str = ""  # workflow state
    sede_state: str = ""
    kind: str = ""
    window: str = ""  # a key of WINDOWS
    assignee: str = ""  # "me", "none" or a user id
    query: str = ""

    @classmethod
    def from_args(cls, args) -> Filters:
        client = args.get("client", "")
        return cls(
            client_id=int(client) if str(client).isdigit() else None,
            sede=args.get("sede", "")[:32],
            state=args.get("state", "") if args.get("state", "") in WORKFLOW_STATES else "",
            sede_state=args.get("sede_state", "") if args.get("sede_state", "") in SEDE_STATES else "",
            kind=args.get("kind", "") if args.get("kind", "") in KINDS else "",
            window=args.get("window", "") if args.get("window", "") in WINDOWS else "",
            assignee=args.get("assignee", "")[:12],
            query=args.get("q", "").strip()[:100],
        )

    def args(self) -> dict:
        values = {
            "client": self.client_id or "",
            "sede": self.sede,
            "state": self.state,
            "sede_state": self.sede_state,
            "kind": self.kind,
            "window": self.window,
            "assignee": self.assignee,
            "q": self.query,
        }
        return {key: value for key, value in values.items() if value}


def filtered(user, filters: Filters, today: date):
    stmt = visible(user)
    if filters.client_id:
        stmt = stmt.where(SedeNotification.client_id == filters.client_id)
    if filters.sede:
        stmt = stmt.where(SedeNotification.sede_code == filters.sede)
    if filters.state:
        stmt = stmt.where(SedeNotification.workflow_state == filters.state)
    if filters.sede_state:
        stmt = stmt.where(SedeNotification.sede_state == filters.sede_state)
    if filters.kind:
        stmt = stmt.where(SedeNotification.kind == filters.kind)
    if filters.window == "today":
        stmt = stmt.where(SedeNotification.deadline_on == today)
    elif filters.window == "week":
        stmt = stmt.where(SedeNotification.deadline_on.between(today, today + timedelta(days=6)))
    elif filters.window == "month":
        stmt = stmt.where(SedeNotification.deadline_on.between(today, today + timedelta(days=29)))
    elif filters.window == "expired":
        stmt = stmt.where(SedeNotification.deadline_on < today)
    elif filters.window == "none":
        stmt = stmt.where(SedeNotification.deadline_on.is_(None))
    elif filters.window == "risk":
        stmt = stmt.where(at_risk_condition(today))
    if filters.assignee == "me":
        stmt = stmt.where(SedeNotification.assignee_id == user.id)
    elif filters.assignee == "none":
        stmt = stmt.where(SedeNotification.assignee_id.is_(None))
    elif filters.assignee.isdigit():
        stmt = stmt.where(SedeNotification.assignee_id == int(filters.assignee))
    if filters.query:
        pattern = f"%{filters.query}%"
        stmt = stmt.where(
            or_(
                SedeNotification.subject.ilike(pattern),
                SedeNotification.issuer_name.ilike(pattern),
                SedeNotification.external_id.ilike(pattern),
                SedeNotification.client_id.in_(select(Client.id).where(clients_matching(filters.query))),
            )
        )
    return stmt


def list_page(user, filters: Filters, today: date, cursor: str | None = None, per_page: int = PER_PAGE) -> Page:
    """A page of the list, the latest found first (ids follow the puesta a disposición within a sync,
    which stores them in that order): a constant number of queries whatever the page holds. (Keyed
    by id alone: core's cursors carry plain JSON values, which PostgreSQL will not compare with a
    timestamp.)"""
    stmt = filtered(user, filters, today).options(
        selectinload(SedeNotification.client), selectinload(SedeNotification.assignee)
    )
    return keyset_page(db.session, stmt, [SedeNotification.id], cursor, per_page, descending=True)


def month_calendar(user, year: int, month: int, filters: Filters | None = None) -> dict:
    """The deadline calendar of a month: weeks of days, each with the notifications due that day."""
    first = date(year, month, 1)
    last = date(year, month, _calendar.monthrange(year, month)[1])
    stmt = (
        filtered(user, filters or Filters(), first)
        .where(SedeNotification.deadline_on.between(first, last))
        .options(selectinload(SedeNotification.client))
        .order_by(SedeNotification.deadline_on, SedeNotification.id)
    )
    by_day: dict[date, list[SedeNotification]] = {}
    for notification in db.session.scalars(stmt):
        by_day.setdefault(notification.deadline_on, []).append(notification)
    weeks = _calendar.Calendar(firstweekday=0).monthdatescalendar(year, month)
    previous = (first - timedelta(days=1)).replace(day=1)
    following = last + timedelta(days=1)
    return {"first": first, "weeks": weeks, "by_day": by_day, "previous": previous, "next": following}


def assignable_users(notification: SedeNotification) -> list[User]:
    """Staff who may handle the notification: who see its client and hold the view permission."""
    return [u for u in users_with_permission(VIEW) if get_visible_client(u, notification.client_id) is not None]


# --- the office's workflow ----------------------------------------------------------------------


def _need(user, permission: str) -> None:
    if not has_permission(user, permission):
        raise DomainError(_l("Your role does not allow this."))


def assign(user, notification: SedeNotification, assignee_id: int | None) -> None:
    """Give the notification to a staff member (or to nobody); audited by the model."""
    _need(user, MANAGE)
    if assignee_id is not None and assignee_id not in {u.id for u in assignable_users(notification)}:
        raise DomainError(_l("That person cannot see this client's notifications."), field="assignee")
    notification.assignee_id = assignee_id
    db.session.commit()


def set_state(user, notification: SedeNotification, state: str) -> None:
    """Move the notification in the office's workflow (pendiente de lectura → leída → en trámite → cerrada)."""
    _need(user, MANAGE)
    if state not in WORKFLOW_STATES:
        raise DomainError(_l("Unknown state."), field="state")
    notification.workflow_state = state
    notification.handled_at = utcnow()
    db.session.commit()


def mark_read(user, notification: SedeNotification) -> None:
    """Someone looked at it: pending reading becomes read (no change at the sede)."""
    if notification.workflow_state == UNREAD and has_permission(user, MANAGE):
        notification.workflow_state = READ
        notification.handled_at = utcnow()
        db.session.commit()


# --- comparecencia ------------------------------------------------------------------------------


def record_of(notification: SedeNotification) -> NotificationRecord:
    """The connector's view of a stored notification (what ``open`` and ``fetch_document`` take)."""
    raw = dict(notification.raw or {})
    documents = tuple(
        DocumentRef(
            d.get("name") or "", d.get("mime") or "application/octet-stream", d.get("reference"), d.get("sha256")
        )
        for d in raw.get("documents", [])
    )
    return NotificationRecord(
        sede=notification.sede_code,
        external_id=notification.external_id,
        kind=Kind(notification.kind),
        state=SedeState(notification.sede_state),
        titular_nif=notification.titular_nif,
        issuer_name=notification.issuer_name,
        subject=notification.subject,
        made_available_at=_aware(notification.made_available_at),
        issuer_code=notification.issuer_code,
        titular_name=notification.titular_name,
        link=Link(notification.link) if notification.link else None,
        state_at=_aware(notification.state_at) if notification.state_at else None,
        expires_at=_aware(notification.sede_expires_at) if notification.sede_expires_at else None,
        procedure=notification.procedure,
        documents=documents,
        raw={k: v for k, v in raw.items() if k != "documents"},
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _mailbox_context(tenant: Tenant, notification: SedeNotification) -> tuple[object, MailboxContext, SedeMailbox]:
    from plugins.sedes.connectors import connector_for
    from plugins.sedes.sync import ca_bundle_for, credential_of, licensed_sedes

    mailbox = notification.mailbox
    if mailbox is None:
        raise DomainError(_l("The mailbox that brought this notification no longer exists."))
    sede = mailbox.sede
    licensed = licensed_sedes(tenant)
    if licensed is not None and sede.code not in licensed:
        raise DomainError(_l("The organisation's licence does not include this sede."))
    if not sede.syncable:
        raise DomainError(_l("This sede has no connector: open the notification on its portal."))
    certificate = mailbox.certificate
    if _aware(certificate.not_after) <= utcnow():
        raise DomainError(CertificateExpired.default_message)
    context = MailboxContext(
        sede=sede.code,
        client_nif=mailbox.client.tax_id,
        credential=credential_of(certificate),
        as_proxy=mailbox.as_proxy,
        base_url=sede.base_url or None,
        ca_bundle=ca_bundle_for(sede),
    )
    return connector_for(sede.connector), context, mailbox


def open_notification(tenant: Tenant, user, notification: SedeNotification, *, confirmed: bool) -> SedeNotification:
    """Comparecencia: accept the notification at the sede, keep its documents and the acuse.

    Only with ``confirmed`` (the user ticked that they know it starts the legal deadlines); the
    model's audit records who opened it and when, and the certificate's use is recorded too.
    """
    _need(user, OPEN)
    if get_visible_client(user, notification.client_id) is None:
        raise DomainError(_l("This notification does not exist or you cannot see it."))
    if not confirmed:
        raise DomainError(
            _l("Confirm that you want to open it: opening it at the sede counts as notified."), field="confirm"
        )
    if notification.opened_at is not None:
        return notification
    if notification.sede_state not in (SedeState.PENDIENTE.value, SedeState.DESCONOCIDO.value):
        raise DomainError(_l("This notification can no longer be opened at the sede."))
    connector, context, mailbox = _mailbox_context(tenant, notification)
    notification_id = notification.id
    from plugins.sedes.certificates import use_row

    audit_rows(
        [use_row(mailbox.certificate, f"open {notification.sede_code} {notification.external_id}", mailbox.client_id)]
    )
    db.session.commit()
    try:
        opened = connector.open(context, record_of(notification), confirmed=True)
    except SedeError as error:
        log.info("opening notification %s: %s %s", notification_id, error.code, error.detail)
        raise DomainError(error.message) from error
    notification = db.session.get(SedeNotification, notification_id)
    now = utcnow()
    for document in opened.documents:
        _keep_document(notification, document.name, document.mime, document.content, is_acuse=False)
    if opened.acuse is not None:
        _keep_document(notification, opened.acuse.name, opened.acuse.mime, opened.acuse.content, is_acuse=True)
    notification.sede_state = opened.record.state.value
    notification.state_at = _aware(opened.record.state_at).astimezone(UTC) if opened.record.state_at else now
    notification.opened_at = now
    notification.opened_by_id = user.id
    notification.handled_at = now
    if notification.workflow_state == UNREAD:
        notification.workflow_state = READ
    webhooks.emit(tenant, webhooks.OPENED, [notification.id])
    db.session.commit()
    return notification


def can_fetch_documents(notification: SedeNotification) -> bool:
    """A notification realised at the sede (opened elsewhere, read, expired…) whose documents the
    sede names but that are not kept here yet: they can be brought with no new legal effect."""
    return (
        notification.sede_state not in (SedeState.PENDIENTE.value, SedeState.DESCONOCIDO.value)
        and bool((notification.raw or {}).get("documents"))
        and not notification.documents
    )


def fetch_documents(tenant: Tenant, user, notification: SedeNotification) -> SedeNotification:
    """Bring the documents (and acuse) of a notification already realised at the sede: no
    comparecencia, nothing changes there; the certificate's use is audited."""
    from plugins.sedes.certificates import use_row

    _need(user, VIEW)
    if get_visible_client(user, notification.client_id) is None:
        raise DomainError(_l("This notification does not exist or you cannot see it."))
    if not can_fetch_documents(notification):
        raise DomainError(_l("There are no documents to bring for this notification."))
    connector, context, mailbox = _mailbox_context(tenant, notification)
    record = record_of(notification)
    notification_id = notification.id
    audit_rows([use_row(mailbox.certificate, f"documents {record.sede} {record.external_id}", mailbox.client_id)])
    db.session.commit()
    try:
        documents = [(ref, connector.fetch_document(context, record, ref)) for ref in record.documents]
    except SedeError as error:
        log.info("documents of notification %s: %s %s", notification_id, error.code, error.detail)
        raise DomainError(error.message) from error
    notification = db.session.get(SedeNotification, notification_id)
    for ref, document in documents:
        # The connectors name the acuse so (its reference or file name starts with "acuse").
        is_acuse = (ref.reference or "").startswith("acuse") or ref.name.lower().startswith("acuse")
        _keep_document(notification, document.name or ref.name, document.mime, document.content, is_acuse=is_acuse)
    db.session.commit()
    return notification


def _keep_document(notification: SedeNotification, name: str, mime: str, content: bytes, *, is_acuse: bool) -> None:
    """A document through core's files when it is a PDF; any other type is listed, to be read at the sede."""
    file_id = None
    if content.startswith(b"%PDF-"):
        try:
            with db.session.begin_nested():
                file_id = accept_upload(content, name, DOCUMENT_KIND.name).id
        except DomainError:
            log.warning("notification %s: document %r was not a usable PDF", notification.id, name)
    db.session.add(
        SedeNotificationDocument(
            notification_id=notification.id,
            file_id=file_id,
            name=(name or ("acuse.pdf" if is_acuse else "documento.pdf"))[:255],
            mime=(mime or "application/octet-stream")[:100],
            is_acuse=is_acuse,
            sha256=hashlib.sha256(content).hexdigest(),
        )
    )


def document_of(notification: SedeNotification, document_id: int) -> SedeNotificationDocument | None:
    return db.session.scalar(
        select(SedeNotificationDocument).where(
            SedeNotificationDocument.id == document_id, SedeNotificationDocument.notification_id == notification.id
        )
    )


# --- export ----------------------------------------------------------------------------------------


def export_rows(user, filters: Filters, today: date, language: str) -> Iterator[list]:
    """The CSV of the filtered list (header first), streamed from the cursor in batches."""
    with force_locale(language):
        yield [
            str(_l("Client")),
            str(_l("Tax id")),
            str(_l("Sede")),
            str(_l("Identifier")),
            str(_l("Kind")),
            str(_l("Issuer")),
            str(_l("DIR3 code")),
            str(_l("Subject")),
            str(_l("Made available")),
            str(_l("Deadline")),
            str(_l("State at the sede")),
            str(_l("State")),
            str(_l("Assigned to")),
            str(_l("Opened at")),
        ]
        kinds = {key: str(value) for key, value in KINDS.items()}
        sede_states = {key: str(value) for key, value in SEDE_STATES.items()}
        states = {key: str(value) for key, value in WORKFLOW_STATES.items()}
    stmt = (
        filtered(user, filters, today)
        .with_only_columns(
            Client.name,
            Client.tax_id,
            SedeNotification.sede_code,
            SedeNotification.external_id,
            SedeNotification.kind,
            SedeNotification.issuer_name,
            SedeNotification.issuer_code,
            SedeNotification.subject,
            SedeNotification.made_available_at,
            SedeNotification.deadline_on,
            SedeNotification.sede_state,
            SedeNotification.workflow_state,
            User.name,
            SedeNotification.opened_at,
        )
        .join(Client, Client.id == SedeNotification.client_id)
        .outerjoin(User, User.id == SedeNotification.assignee_id)
        .order_by(SedeNotification.made_available_at.desc(), SedeNotification.id.desc())
        .execution_options(yield_per=500)
    )
    for row in db.session.execute(stmt):
        yield [
            row[0],
            row[1],
            row[2],
            row[3],
            kinds.get(row[4], row[4]),
            row[5],
            row[6] or "",
            row[7],
            _madrid(row[8]),
            row[9].isoformat() if row[9] else "",
            sede_states.get(row[10], row[10]),
            states.get(row[11], row[11]),
            row[12] or "",
            _madrid(row[13]) if row[13] else "",
        ]


def _madrid(moment: datetime) -> str:
    return _aware(moment).astimezone(deadlines.MADRID).strftime("%Y-%m-%d %H:%M")


# --- dashboard, client list ----------------------------------------------------------------------


def _unopened():
    # An edict of the TEU (plugins.sedes.teu) is not opened at a sede: it waits while nobody has read it.
    return and_(
        SedeNotification.opened_at.is_(None),
        or_(
            and_(
                SedeNotification.kind == Kind.NOTIFICACION.value,
                SedeNotification.sede_state == SedeState.PENDIENTE.value,
            ),
            and_(SedeNotification.kind == Kind.TEU.value, SedeNotification.workflow_state == UNREAD),
        ),
    )


def _unhandled():
    # Nobody in the office has read it, moved it in the workflow or opened it (handled_at), and it
    # still waits to be read (a row stored as already closed, by an import, was handled elsewhere).
    return and_(SedeNotification.handled_at.is_(None), SedeNotification.workflow_state == UNREAD)


def at_risk_condition(today: date):
    """At risk: unopened, unhandled, and two days or fewer left before its deadline ends (what is
    escalated to the supervisors)."""
    return and_(
        _unopened(),
        _unhandled(),
        SedeNotification.deadline_on.between(today, today + timedelta(days=deadlines.ESCALATION_DAYS[0])),
    )


def widget_counts(user, today: date) -> dict:
    """Due this week (not yet opened, deadline within seven days), expired unopened and at risk, in
    one query."""
    week = and_(_unopened(), SedeNotification.deadline_on.between(today, today + timedelta(days=6)))
    expired = or_(
        and_(_unopened(), SedeNotification.deadline_on < today),
        and_(SedeNotification.opened_at.is_(None), SedeNotification.sede_state == SedeState.EXPIRADA.value),
    )
    row = db.session.execute(
        select(
            func.count().filter(week),
            func.count().filter(expired),
            func.count().filter(at_risk_condition(today)),
        ).where(SedeNotification.client_id.in_(visible_client_ids(user)))
    ).one()
    return {"week": row[0], "expired": row[1], "at_risk": row[2]}


def at_risk(user, today: date, limit: int = 10) -> list[SedeNotification]:
    """The notifications at risk of the clients ``user`` sees, the nearest deadline first, with their
    client and assignee: three queries whatever their number."""
    return list(
        db.session.scalars(
            visible(user)
            .where(at_risk_condition(today))
            .options(selectinload(SedeNotification.client), selectinload(SedeNotification.assignee))
            .order_by(SedeNotification.deadline_on, SedeNotification.id)
            .limit(limit)
        )
    )


def pending_count_expression():
    """Per client (correlated): its notifications pending reading, for the client list's column."""
    return (
        select(func.count(SedeNotification.id))
        .where(SedeNotification.client_id == Client.id, SedeNotification.workflow_state == UNREAD)
        .correlate(Client)
        .scalar_subquery()
    )


def pending_condition(value: str):
    """The client list's filter: clients with (``yes``) or without (``no``) notifications pending reading."""
    pending = select(SedeNotification.client_id).where(SedeNotification.workflow_state == UNREAD)
    if value == "yes":
        return Client.id.in_(pending)
    if value == "no":
        return Client.id.not_in(pending)
    return None


# --- deadline alerts -------------------------------------------------------------------------------


def send_deadline_alerts(tenant: Tenant, today: date | None = None) -> dict:
    """Tell the assignee (else whoever sees the client) 5, 2 and 1 days before the deadline, each
    once; and while nobody has handled it, escalate it to the supervisors who see the client 2 and 1
    days before and on its last day, each once per supervisor (``escalation``).

    A supervisor who would get both mails gets the escalation only; the assignee is never escalated
    to. The mails, ``alerts_sent`` and the escalations' records are written in one transaction.
    """
    from plugins.sedes import NOTIFICATIONS_VIEW

    today = today or tenant_today(tenant)
    candidates = db.session.scalars(
        select(SedeNotification)
        .where(_unopened(), SedeNotification.deadline_on.between(today, today + timedelta(days=5)))
        .options(selectinload(SedeNotification.client), selectinload(SedeNotification.assignee))
        .order_by(SedeNotification.id)
    ).all()
    levels = {
        n.id: level
        for n in candidates
        if n.handled_at is None
        and n.workflow_state == UNREAD
        and (level := deadlines.escalation_due(n.deadline_on, today)) is not None
    }
    escalating = [n for n in candidates if n.id in levels]
    supervisors = escalation.supervisors_by_client({n.client_id for n in escalating})
    escalated_before = escalation.already_sent([n.id for n in escalating])
    sent_rows, records, alerted_ids, mails = [], [], [], 0
    staff = None
    seers: dict[int, list] = {}
    for notification in candidates:
        sent = list(notification.alerts_sent or [])
        threshold = deadlines.alert_due(notification.deadline_on, today, sent)
        level = levels.get(notification.id)
        supervising = [
            user
            for user in supervisors.get(notification.client_id, [])
            if level is not None
            and user.id != notification.assignee_id
            and (notification.id, user.id, level) not in escalated_before
        ]
        if threshold is None and not supervising:
            continue
        recipients = []
        if threshold is not None:
            if notification.assignee is not None and notification.assignee.active:
                recipients = [notification.assignee]
            else:
                # Nobody assigned: whoever handles the client's notifications (its groups' staff).
                if notification.client_id not in seers:
                    staff = staff if staff is not None else users_with_permission(NOTIFICATIONS_VIEW)
                    seers[notification.client_id] = [
                        u for u in staff if get_visible_client(u, notification.client_id) is not None
                    ]
                recipients = seers[notification.client_id]
            sent_rows.append(
                {"id": notification.id, "alerts_sent": sorted({*sent, *deadlines.alerts_covered(threshold)})}
            )
        link = external_url("sedes_notifications.show", tenant=tenant.slug, notification_id=notification.id)
        left = deadlines.days_left(notification.deadline_on, today)
        escalated_to = {user.id for user in supervising}
        for user in recipients:
            if user.id not in escalated_to:
                _deadline_mail(tenant, user, notification, left, link)
                mails += 1
        for user in supervising:
            _escalation_mail(tenant, user, notification, left, link)
            records.append({"notification_id": notification.id, "user_id": user.id, "threshold": level})
            mails += 1
        alerted_ids.append(notification.id)
    webhooks.emit(tenant, webhooks.DEADLINE_NEAR, [row["id"] for row in sent_rows], today=today)
    update_by_id(SedeNotification, sent_rows)
    escalation.record(records)
    db.session.commit()
    return {"alerts": len(alerted_ids), "emails": mails}


def _deadline_mail(tenant: Tenant, user, notification: SedeNotification, left: int, link: str) -> None:
    send_email(
        tenant,
        user.email,
        _l(
            "%(days)s days left to open a notification of %(client)s",
            days=left,
            client=notification.client.name,
        )
        if notification.kind != Kind.TEU.value
        else _l(
            "%(days)s days left on an edict of the TEU naming %(client)s",
            days=left,
            client=notification.client.name,
        ),
        "sedes/mail/deadline",
        user_language(user, tenant),
        commit=False,
        notification=notification,
        client=notification.client,
        days=left,
        link=link,
    )


def _escalation_mail(tenant: Tenant, user, notification: SedeNotification, left: int, link: str) -> None:
    """To a supervisor: nobody has handled it yet, to whom it is assigned, how long is left."""
    client = notification.client.name
    if left == 0:
        subject = _l("Not handled yet, last day today: a notification of %(client)s", client=client)
    else:
        subject = lazy_ngettext(
            "Not handled yet, %(num)s day left: a notification of %(client)s",
            "Not handled yet, %(num)s days left: a notification of %(client)s",
            left,
            client=client,
        )
    assignee = notification.assignee
    send_email(
        tenant,
        user.email,
        subject,
        "sedes/mail/deadline_escalation",
        user_language(user, tenant),
        commit=False,
        notification=notification,
        client=notification.client,
        assignee=assignee.name if assignee is not None else None,
        days=left,
        link=link,
    )


def month_of(value: str | None, today: date) -> tuple[int, int]:
    """``YYYY-MM`` from the calendar's URL, else this month."""
    if value and len(value) == 7 and value[4] == "-" and value[:4].isdigit() and value[5:].isdigit():
        year, month = int(value[:4]), int(value[5:])
        if 1 <= month <= 12 and 2000 <= year <= 2100:
            return year, month
    return today.year, today.month
