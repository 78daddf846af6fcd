"""The deadlines' calendar feed (issue 14): per user, an iCalendar (RFC 5545) feed of the deadlines of
the notifications they may see, at a secret link a calendar application subscribes to.

The link is a bearer credential (whoever has it reads the subjects of every client the user sees),
so only its SHA-256 is stored: a copy of the database or a backup hands out no working link. The
price is that the link can be shown once, when it is made; a user who loses it regenerates it,
which also revokes the old one. (The secret has 256 random bits: a fast hash is enough, there is
nothing to guess by brute force as with a password.)

The feed answers only while the user is active, is staff, and holds the view permission; then it
lists what they see now (their groups' clients), so a change of groups or role takes effect at the
next refresh.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

import icalendar
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import ForeignKey, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from core.api import (
    Audited,
    Client,
    Tenant,
    TenantScoped,
    User,
    db,
    external_url,
    has_permission,
    tenant_today,
    user_language,
    utcnow,
    visible_client_ids,
)
from plugins.sedes.models import SedeNotification

VIEW = "sedes.notifications:view"
PAST_DAYS = 30  # the feed starts this many days back: older deadlines are history, not agenda
LIMIT = 2000  # at most this many events (a gestoría's deadlines of ~six weeks fit many times over)


class SedeCalendarFeed(TenantScoped, Audited, db.Model):
    """A user's calendar feed: the SHA-256 (hex) of the secret in its link. One per user."""

    __tablename__ = "sedes_calendar_feeds"
    __table_args__ = (UniqueConstraint("tenant_id", "user_id"), UniqueConstraint("tenant_id", "secret_hash"))
    __audit_type__ = "sedes_calendar_feed"
    __audit_title__ = _l("Calendar feed link")
    __audit_mask__ = frozenset({"secret_hash"})
    __audit_exclude__ = frozenset({"user_id"})

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("core_users.id", ondelete="CASCADE"))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def audit_label(self) -> str:
        return str(self.user_id)

    def audit_parent(self) -> tuple[str, int]:
        return ("user", self.user_id)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def feed_of(user) -> SedeCalendarFeed | None:
    return db.session.scalar(select(SedeCalendarFeed).where(SedeCalendarFeed.user_id == user.id))


def issue(user) -> str:
    """A new secret for ``user``'s feed (the previous link stops working); returns the secret, which
    is not kept anywhere: show it now."""
    secret = secrets.token_urlsafe(32)
    feed = feed_of(user)
    if feed is None:
        db.session.add(SedeCalendarFeed(user_id=user.id, secret_hash=_digest(secret)))
    else:
        feed.secret_hash = _digest(secret)
        feed.created_at = utcnow()
    db.session.commit()
    return secret


def revoke(user) -> bool:
    """Delete ``user``'s feed link; False when there was none."""
    feed = feed_of(user)
    if feed is None:
        return False
    db.session.delete(feed)
    db.session.commit()
    return True


def link(tenant: Tenant, secret: str) -> str:
    return external_url("sedes_calendar.feed", tenant=tenant.slug, feed_token=secret)


def owner(secret: str) -> User | None:
    """The user whose feed ``secret`` opens, if it still may: active staff with the view permission."""
    if not secret or len(secret) > 100:
        return None
    user = db.session.scalar(
        select(User)
        .join(SedeCalendarFeed, SedeCalendarFeed.user_id == User.id)
        .where(SedeCalendarFeed.secret_hash == _digest(secret))
    )
    if user is None or not user.active or user.client_id is not None or not has_permission(user, VIEW):
        return None
    return user


def calendar(tenant: Tenant, user, today: date | None = None) -> bytes:
    """The feed: one all-day event per deadline of the notifications ``user`` sees, from
    ``PAST_DAYS`` ago on, in the user's language; one query for the events."""
    today = today or tenant_today(tenant)
    rows = db.session.execute(
        select(
            SedeNotification.id,
            SedeNotification.subject,
            SedeNotification.external_id,
            SedeNotification.issuer_name,
            SedeNotification.sede_code,
            SedeNotification.deadline_on,
            Client.name,
        )
        .join(Client, Client.id == SedeNotification.client_id)
        .where(
            SedeNotification.client_id.in_(visible_client_ids(user)),
            SedeNotification.deadline_on >= today - timedelta(days=PAST_DAYS),
        )
        .order_by(SedeNotification.deadline_on, SedeNotification.id)
        .limit(LIMIT)
    ).all()
    stamp = utcnow()
    with force_locale(user_language(user, tenant)):
        feed = icalendar.Calendar.new(
            name=str(_l("Notification deadlines · %(organisation)s", organisation=tenant.name)),
            prodid="-//Ventanilla//Sedes deadlines//EN",
        )
        for row in rows:
            url = external_url("sedes_notifications.show", tenant=tenant.slug, notification_id=row.id)
            feed.add_component(
                icalendar.Event.new(
                    # Stable across refreshes, links and users: calendars update the event in place.
                    uid=f"sedes-notification-{row.id}.{tenant.slug}@{urlsplit(url).hostname}",
                    stamp=stamp,
                    start=row.deadline_on,
                    end=row.deadline_on + timedelta(days=1),
                    summary=str(
                        _l(
                            "Deadline: %(client)s · %(subject)s",
                            client=row.name,
                            subject=row.subject or row.external_id,
                        )
                    ),
                    description=str(
                        _l("Issuer: %(issuer)s. Sede: %(sede)s.", issuer=row.issuer_name, sede=row.sede_code)
                    ),
                    url=url,
                )
            )
    return feed.to_ical()
