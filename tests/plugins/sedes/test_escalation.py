"""Deadlines that escalate: a notification nobody has handled two days before its deadline goes also
to the supervisors who see its client, once per supervisor and threshold, in each one's language;
the dashboard shows supervisors the notifications at risk, and the list filters them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from core.api.testing import count_queries
from tests.conftest import login
from tests.plugins.sedes.test_notifications import add_notification, in_tenant

VIEW = "sedes.notifications:view"
SUPERVISE = "sedes.notifications:supervise"
DEADLINE = date(2026, 12, 14)


def _at(day: date, hour: int = 9) -> datetime:
    return datetime(day.year, day.month, day.day, hour, 0, tzinfo=UTC)


def _set_locale(app, tenant, email: str, locale: str) -> None:
    from core.auth.models import User
    from core.extensions import db

    with in_tenant(app, tenant.id):
        db.session.scalar(select(User).where(User.email == email)).locale = locale
        db.session.commit()


def office(app, factory):
    """Acme (in Spanish) with groups Norte and Sur: Ana handles Norte's notifications; Sofia (who
    reads Italian) and Pablo supervise Norte, Susana supervises Sur; Luis sees Norte but supervises
    nothing; Inés supervised Norte but has left. Beta, another tenant, has a supervisor of all."""
    tenant = factory.tenant("acme", language="es")
    norte = factory.group(tenant, "Norte")
    sur = factory.group(tenant, "Sur")
    ana = factory.user(tenant, "ana@acme.test", role_key="operator", name="Ana", groups=[norte])
    for email, name, group in (("sofia", "Sofia", norte), ("pablo", "Pablo", norte), ("susana", "Susana", sur)):
        factory.user(tenant, f"{email}@acme.test", permissions=[VIEW, SUPERVISE], name=name, groups=[group])
    factory.user(tenant, "luis@acme.test", permissions=[VIEW], name="Luis", groups=[norte])
    factory.user(tenant, "ines@acme.test", permissions=[VIEW, SUPERVISE], name="Inés", groups=[norte], active=False)
    _set_locale(app, tenant, "sofia@acme.test", "it")
    north = factory.client(tenant, "Talleres Norte SL", groups=[norte])
    south = factory.client(tenant, "Frutas Sur SL", groups=[sur])

    beta = factory.tenant("beta", language="es")
    factory.user(beta, "jefa@beta.test", permissions=["core.clients:view_all", VIEW, SUPERVISE], name="Jefa Beta")
    beta_client = factory.client(beta, "Cliente Beta SL")
    add_notification(app, beta, beta_client, "B-1", subject="Embargo Beta", deadline_on=DEADLINE)
    return tenant, beta, ana, north, south


def run_alerts(app, tenant) -> dict:
    from core.extensions import db
    from plugins.sedes import notifications
    from tenants.models import Tenant

    with in_tenant(app, tenant.id):
        return notifications.send_deadline_alerts(db.session.get(Tenant, tenant.id))


def mark_read(app, tenant, email: str, notification_id: int) -> None:
    from core.auth.models import User
    from core.extensions import db
    from plugins.sedes import notifications
    from plugins.sedes.models import SedeNotification

    with in_tenant(app, tenant.id):
        user = db.session.scalar(select(User).where(User.email == email))
        notifications.mark_read(user, db.session.get(SedeNotification, notification_id))


def by_recipient(mails) -> dict[str, list]:
    found: dict[str, list] = {}
    for mail in mails:
        found.setdefault(mail.to, []).append(mail)
    return found


def reader_of(outbox):
    """The mails delivered since the last call (the outbox folder keeps them all)."""
    seen: list = []

    def fresh() -> list:
        everything = outbox()
        new = everything[len(seen) :]
        seen[:] = everything
        return new

    return fresh


def words(app, locale: str, message: str, plural: str | None = None, num: int | None = None, **values) -> str:
    """A sentence as the plugin's catalogue says it in ``locale`` (translated or not yet)."""
    from flask_babel import force_locale, gettext, ngettext

    with app.test_request_context(), force_locale(locale):
        return ngettext(message, plural, num, **values) if plural else gettext(message, **values)


def escalation_subject(app, locale: str, days: int, client: str) -> str:
    return words(
        app,
        locale,
        "Not handled yet, %(num)s day left: a notification of %(client)s",
        "Not handled yet, %(num)s days left: a notification of %(client)s",
        days,
        client=client,
    )


def test_an_unhandled_notification_escalates_to_the_supervisors_of_its_clients_groups_once(app, factory, outbox):
    tenant, beta, ana, north, south = office(app, factory)
    new_mail = reader_of(outbox)
    nobody_read = add_notification(
        app, tenant, north, "N-1", subject="Embargo Norte", deadline_on=DEADLINE, assignee_id=ana
    )
    read = add_notification(
        app, tenant, north, "N-2", subject="Requerimiento leído", deadline_on=DEADLINE, assignee_id=ana
    )
    add_notification(app, tenant, south, "S-1", subject="Embargo Sur", deadline_on=DEADLINE)
    mark_read(app, tenant, "ana@acme.test", read)

    # Five days before: the assignee's alert (Sur's, unassigned, to whoever sees Sur), nothing escalates.
    with time_machine.travel(_at(DEADLINE - timedelta(days=5)), tick=False):
        assert run_alerts(app, tenant) == {"alerts": 3, "emails": 3}
        assert sorted(m.to for m in new_mail()) == ["ana@acme.test", "ana@acme.test", "susana@acme.test"]

    with time_machine.travel(_at(DEADLINE - timedelta(days=2)), tick=False):
        assert run_alerts(app, tenant) == {"alerts": 3, "emails": 5}
        assert run_alerts(app, tenant) == {"alerts": 0, "emails": 0}  # the hourly job again: nothing new
        assert run_alerts(app, beta) == {"alerts": 1, "emails": 1}  # beta's own, to beta's supervisor
        mails = by_recipient(new_mail())
    (beta_mail,) = mails.pop("jefa@beta.test")
    assert "Cliente Beta SL" in beta_mail.subject and "Norte" not in beta_mail.text
    assert not any("Beta" in m.text for sent in mails.values() for m in sent)
    # Ana her two alerts; Sofia and Pablo the one nobody has read, of Norte; Susana Sur's (unassigned:
    # as a supervisor, the escalation in place of the plain alert); not Luis, not Inés who has left.
    assert sorted(mails) == ["ana@acme.test", "pablo@acme.test", "sofia@acme.test", "susana@acme.test"]
    plain = words(
        app, "es", "%(days)s days left to open a notification of %(client)s", days=2, client="Talleres Norte SL"
    )
    assert [m.subject for m in mails["ana@acme.test"]] == [plain, plain]
    (sofia,), (pablo,), (susana,) = mails["sofia@acme.test"], mails["pablo@acme.test"], mails["susana@acme.test"]
    # Each in their own language: Sofia's Italian, Pablo the office's Spanish.
    assert (sofia.language, pablo.language) == ("it", "es")
    assert sofia.subject == escalation_subject(app, "it", 2, "Talleres Norte SL")
    assert pablo.subject == escalation_subject(app, "es", 2, "Talleres Norte SL")
    assert "14 dicembre 2026" in sofia.text and "14 de diciembre de 2026" in pablo.text
    assert "Embargo Norte" in sofia.text and "Requerimiento leído" not in sofia.text + pablo.text
    assert words(app, "it", "It is assigned to %(name)s.", name="Ana") in sofia.text
    assert f"http://ventanilla.test/acme/sedes/notifications/{nobody_read}" in sofia.text
    assert susana.subject == escalation_subject(app, "es", 2, "Frutas Sur SL")
    assert words(app, "es", "It is assigned to nobody.") in susana.text

    # One day before: the next threshold, once more to the same supervisors.
    with time_machine.travel(_at(DEADLINE - timedelta(days=1)), tick=False):
        assert run_alerts(app, tenant)["emails"] == 5
        assert sorted(m.to for m in new_mail()) == [
            "ana@acme.test",
            "ana@acme.test",
            "pablo@acme.test",
            "sofia@acme.test",
            "susana@acme.test",
        ]

    # Ana reads it at last: on the last day only Sur's, still unhandled, escalates.
    mark_read(app, tenant, "ana@acme.test", nobody_read)
    with time_machine.travel(_at(DEADLINE, hour=20), tick=False):  # 21:00 in Madrid, its last day
        assert run_alerts(app, tenant) == {"alerts": 1, "emails": 1}
        (last,) = new_mail()
    assert last.to == "susana@acme.test"
    assert last.subject == words(
        app, "es", "Not handled yet, last day today: a notification of %(client)s", client="Frutas Sur SL"
    )
    with time_machine.travel(_at(DEADLINE + timedelta(days=1)), tick=False):
        assert run_alerts(app, tenant) == {"alerts": 0, "emails": 0}  # the deadline has passed


def test_managers_supervise_by_default(app, factory):
    from core.auth.models import User
    from core.auth.services import has_permission
    from core.extensions import db

    tenant = factory.tenant("acme")
    factory.user(tenant, "jefa@acme.test", role_key="manager")
    factory.user(tenant, "gestor@acme.test", role_key="operator")
    with in_tenant(app, tenant.id):
        users = {u.email: u for u in db.session.scalars(select(User))}
        assert has_permission(users["jefa@acme.test"], SUPERVISE)
        assert not has_permission(users["gestor@acme.test"], SUPERVISE)


def test_a_run_that_dies_before_its_commit_leaves_nothing_and_its_retry_sends_everything_once(app, factory, outbox):
    from core.extensions import db
    from core.mail.models import OutboundMessage
    from plugins.sedes.escalation import SedeDeadlineEscalation

    tenant, _beta, ana, north, _south = office(app, factory)
    add_notification(app, tenant, north, "N-1", subject="Embargo Norte", deadline_on=DEADLINE, assignee_id=ana)

    def crash(session):
        raise RuntimeError("the worker died")

    with time_machine.travel(_at(DEADLINE - timedelta(days=2)), tick=False):
        event.listen(Session, "before_commit", crash)
        try:
            with pytest.raises(RuntimeError):
                run_alerts(app, tenant)
        finally:
            event.remove(Session, "before_commit", crash)
        with in_tenant(app, tenant.id):
            assert db.session.scalar(select(func.count(OutboundMessage.id))) == 0
            assert db.session.scalar(select(func.count(SedeDeadlineEscalation.id))) == 0
        assert run_alerts(app, tenant) == {"alerts": 1, "emails": 3}  # the retry
        assert run_alerts(app, tenant) == {"alerts": 0, "emails": 0}
        with in_tenant(app, tenant.id):
            assert db.session.scalar(select(func.count(SedeDeadlineEscalation.id))) == 2
        assert sorted(m.to for m in outbox()) == ["ana@acme.test", "pablo@acme.test", "sofia@acme.test"]


def test_supervisors_see_the_notifications_at_risk_on_the_dashboard_and_in_the_list(app, factory, client):
    from core.api import tenant_today
    from core.extensions import db
    from tenants.models import Tenant

    tenant, _beta, ana, north, south = office(app, factory)
    with app.app_context():
        today = tenant_today(db.session.get(Tenant, tenant.id))
    add_notification(
        app, tenant, north, "N-1", subject="Embargo Norte", deadline_on=today + timedelta(days=1), assignee_id=ana
    )
    handled = add_notification(
        app, tenant, north, "N-2", subject="Requerimiento leído", deadline_on=today + timedelta(days=1)
    )
    add_notification(app, tenant, north, "N-3", subject="Vence más tarde", deadline_on=today + timedelta(days=4))
    add_notification(app, tenant, north, "N-4", subject="Ya abierta", deadline_on=today, sede_state="aceptada")
    add_notification(app, tenant, south, "S-1", subject="Embargo Sur", deadline_on=today)
    mark_read(app, tenant, "ana@acme.test", handled)

    login(client, "acme", "sofia@acme.test")
    home = client.get("/acme/").get_data(as_text=True)
    card = home.split('data-widget="sedes-at-risk"')[1].split("</ul>")[0]
    assert card.split("data-count>")[1].split("<")[0] == "1"
    assert "Embargo Norte" in card and "Talleres Norte SL" in card and "Ana" in card
    assert "Embargo Sur" not in card and "Requerimiento leído" not in card and "Vence más tarde" not in card
    listing = client.get("/acme/sedes/notifications/?window=risk").get_data(as_text=True)
    assert "Embargo Norte" in listing
    assert [s for s in ("Requerimiento leído", "Vence más tarde", "Ya abierta", "Embargo Sur") if s in listing] == []

    # A constant number of queries, however many are at risk. Each page is counted once the one
    # before has kept the figures that stay the same (core.api.remember), as a dashboard's next view.
    client.get("/acme/")
    with count_queries(app) as one:
        client.get("/acme/")
    for number in range(5):
        add_notification(
            app, tenant, north, f"R-{number}", subject=f"Riesgo {number}", deadline_on=today + timedelta(days=2)
        )
    client.get("/acme/")
    with count_queries(app) as six:
        home = client.get("/acme/").get_data(as_text=True)
    assert home.split('data-widget="sedes-at-risk"')[1].split("data-count>")[1].split("<")[0] == "6"
    assert len(one) == len(six)

    # Not a supervisor: no card (the filter is everyone's; it lists what they see).
    reader = app.test_client()
    login(reader, "acme", "luis@acme.test")
    assert 'data-widget="sedes-at-risk"' not in reader.get("/acme/").get_data(as_text=True)
    assert "Embargo Norte" in reader.get("/acme/sedes/notifications/?window=risk").get_data(as_text=True)


def test_escalation_thresholds_are_two_one_and_the_last_day():
    from plugins.sedes.deadlines import escalation_due

    assert [escalation_due(DEADLINE, DEADLINE - timedelta(days=d)) for d in (5, 3, 2, 1, 0, -1)] == [
        None,
        None,
        2,
        1,
        0,
        None,
    ]
    assert escalation_due(None, DEADLINE) is None


def test_moving_it_in_the_workflow_counts_as_handling_it(app, factory):
    from core.auth.models import User
    from core.extensions import db
    from plugins.sedes import notifications
    from plugins.sedes.models import SedeNotification

    tenant, _beta, ana, north, _south = office(app, factory)
    moved = add_notification(app, tenant, north, "N-1", deadline_on=DEADLINE, assignee_id=ana)
    waiting = add_notification(app, tenant, north, "N-2", deadline_on=DEADLINE, assignee_id=ana)
    with in_tenant(app, tenant.id):
        user = db.session.scalar(select(User).where(User.email == "ana@acme.test"))
        notifications.set_state(user, db.session.get(SedeNotification, moved), "in_progress")
        notifications.set_state(user, db.session.get(SedeNotification, moved), "unread")  # and back: still handled
        supervisor = db.session.scalar(select(User).where(User.email == "pablo@acme.test"))
        at_risk = notifications.at_risk(supervisor, DEADLINE - timedelta(days=1))
        assert [n.id for n in at_risk] == [waiting]
