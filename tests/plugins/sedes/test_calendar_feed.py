"""The deadlines' calendar feed: a user's secret link (made, shown once, regenerated, revoked) to an
iCalendar feed of the deadlines of the notifications they see, read back with ``icalendar``."""

from __future__ import annotations

import re
from datetime import date, timedelta

import icalendar
from sqlalchemy import select

from core.api.testing import count_queries
from tests.conftest import login
from tests.plugins.sedes.test_escalation import words
from tests.plugins.sedes.test_notifications import add_notification, in_tenant

VIEW = "sedes.notifications:view"


def office(app, factory):
    """Acme: Lee sees Norte's notifications (and reads Italian); Beta is another tenant."""
    from core.auth.models import User
    from core.extensions import db

    tenant = factory.tenant("acme", language="es")
    norte = factory.group(tenant, "Norte")
    sur = factory.group(tenant, "Sur")
    factory.user(tenant, "lee@acme.test", permissions=[VIEW], name="Lee", groups=[norte])
    with in_tenant(app, tenant.id):
        db.session.scalar(select(User).where(User.email == "lee@acme.test")).locale = "it"
        db.session.commit()
    north = factory.client(tenant, "Talleres Norte SL", groups=[norte])
    south = factory.client(tenant, "Frutas Sur SL", groups=[sur])
    beta = factory.tenant("beta")
    factory.user(beta, "jefa@beta.test", role_key="manager", name="Jefa Beta")
    beta_client = factory.client(beta, "Cliente Beta SL")
    return tenant, beta, north, south, beta_client


def today_of(app, tenant) -> date:
    from core.api import tenant_today
    from core.extensions import db
    from tenants.models import Tenant

    with app.app_context():
        return tenant_today(db.session.get(Tenant, tenant.id))


def make_link(client, slug: str) -> str:
    page = client.post(f"/{slug}/sedes/calendar/feed").get_data(as_text=True)
    (link,) = re.findall(r'value="(http://ventanilla\.test/[^"]+\.ics)"', page)
    return link


def path(link: str) -> str:
    return link.removeprefix("http://ventanilla.test")


def events(app, link: str) -> dict[str, icalendar.Event]:
    answer = app.test_client().get(path(link))  # no session: the secret is the credential
    assert answer.status_code == 200 and answer.mimetype == "text/calendar"
    return {str(event.summary): event for event in icalendar.Calendar.from_ical(answer.data).events}


def test_the_feed_lists_the_deadlines_the_user_sees_as_all_day_events(app, factory, client):
    tenant, beta, north, south, beta_client = office(app, factory)
    today = today_of(app, tenant)
    soon = add_notification(app, tenant, north, "N-1", subject="Embargo Norte", deadline_on=today + timedelta(days=3))
    add_notification(app, tenant, north, "N-2", subject="Pasada", deadline_on=today - timedelta(days=10))
    add_notification(app, tenant, north, "N-3", subject="Muy antigua", deadline_on=today - timedelta(days=40))
    add_notification(app, tenant, north, "N-4", subject="Comunicación", kind="comunicacion")
    add_notification(app, tenant, south, "S-1", subject="Embargo Sur", deadline_on=today + timedelta(days=3))
    add_notification(app, beta, beta_client, "B-1", subject="Embargo Beta", deadline_on=today + timedelta(days=3))

    login(client, "acme", "lee@acme.test")
    assert 'id="create"' in client.get("/acme/sedes/calendar/feed").get_data(as_text=True)
    link = make_link(client, "acme")
    # Shown once: the page afterwards says there is a link, but cannot show it (only its hash is kept).
    page = client.get("/acme/sedes/calendar/feed").get_data(as_text=True)
    assert 'id="regenerate"' in page and path(link) not in page

    found = events(app, link)
    summary = words(
        app, "it", "Deadline: %(client)s · %(subject)s", client="Talleres Norte SL", subject="Embargo Norte"
    )
    assert set(found) == {
        summary,
        words(app, "it", "Deadline: %(client)s · %(subject)s", client="Talleres Norte SL", subject="Pasada"),
    }
    event = found[summary]
    assert event.start == today + timedelta(days=3) and event.end == today + timedelta(days=4)
    assert type(event.start) is date  # an all-day event
    assert event.url == f"http://ventanilla.test/acme/sedes/notifications/{soon}"
    # The same UID at every refresh, whatever the link: calendars update the event in place.
    uid = str(event.uid)
    link = make_link(client, "acme")
    assert str(events(app, link)[summary].uid) == uid


def test_a_regenerated_or_revoked_link_answers_404(app, factory, client):
    from core.extensions import db
    from plugins.sedes.calendar_feed import SedeCalendarFeed

    tenant, *_rest = office(app, factory)
    login(client, "acme", "lee@acme.test")
    first = make_link(client, "acme")
    second = make_link(client, "acme")
    assert app.test_client().get(path(first)).status_code == 404
    events(app, second)
    with in_tenant(app, tenant.id):
        (stored,) = db.session.scalars(select(SedeCalendarFeed.secret_hash))
    assert stored not in second and second.rsplit("/", 1)[1].removesuffix(".ics") not in stored

    page = client.post("/acme/sedes/calendar/feed/revoke", follow_redirects=True).get_data(as_text=True)
    assert 'id="create"' in page
    assert app.test_client().get(path(second)).status_code == 404


def test_the_link_stops_with_the_permission_or_the_account_and_never_opens_another_tenant(app, factory, client):
    from core.auth.models import User
    from core.extensions import db
    from core.roles.models import Role, RolePermission

    tenant, beta, north, _south, beta_client = office(app, factory)
    today = today_of(app, tenant)
    add_notification(app, beta, beta_client, "B-1", subject="Embargo Beta", deadline_on=today + timedelta(days=3))
    add_notification(app, tenant, north, "N-1", subject="Embargo Norte", deadline_on=today + timedelta(days=3))
    login(client, "acme", "lee@acme.test")
    link = make_link(client, "acme")
    assert [s for s in events(app, link) if "Embargo" in s] == [
        words(app, "it", "Deadline: %(client)s · %(subject)s", client="Talleres Norte SL", subject="Embargo Norte")
    ]
    beta_reader = app.test_client()
    login(beta_reader, "beta", "jefa@beta.test")
    beta_link = make_link(beta_reader, "beta")
    assert any("Embargo Beta" in summary for summary in events(app, beta_link))

    # Another tenant's secret in this tenant's URL, and this one's in the other's: nothing.
    secret = link.rsplit("/", 1)[1]
    assert app.test_client().get(f"/beta/sedes/calendar/{secret}").status_code == 404
    assert app.test_client().get(f"/acme/sedes/calendar/{beta_link.rsplit('/', 1)[1]}").status_code == 404

    with in_tenant(app, tenant.id):
        role = db.session.scalar(select(Role).where(Role.name == "role for lee@acme.test"))
        role.grants = [grant for grant in role.grants if grant.code != VIEW]
        db.session.commit()
    assert app.test_client().get(path(link)).status_code == 404
    with in_tenant(app, tenant.id):
        role = db.session.scalar(select(Role).where(Role.name == "role for lee@acme.test"))
        role.grants.append(RolePermission(code=VIEW))
        db.session.commit()
    events(app, link)
    with in_tenant(app, tenant.id):
        db.session.scalar(select(User).where(User.email == "lee@acme.test")).active = False
        db.session.commit()
    assert app.test_client().get(path(link)).status_code == 404


def test_the_feed_takes_a_constant_number_of_queries(app, factory, client):
    tenant, _beta, north, _south, _beta_client = office(app, factory)
    today = today_of(app, tenant)
    add_notification(app, tenant, north, "N-0", deadline_on=today)
    login(client, "acme", "lee@acme.test")
    link = make_link(client, "acme")
    reader = app.test_client()
    reader.get(path(link))
    with count_queries(app) as one:
        assert len(events(app, link)) == 1
    for number in range(1, 8):
        add_notification(app, tenant, north, f"N-{number}", deadline_on=today + timedelta(days=number))
    # The first read after a change works out again what the tenant's data decides (permissions).
    events(app, link)
    with count_queries(app) as eight:
        assert len(events(app, link)) == 8
    assert len(one) == len(eight)
