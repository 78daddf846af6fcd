"""The sync queue with real workers: the minute's sweep starts a run per due mailbox, a failing
mailbox never stops the others, "Read now" reads at once, and a long-running ``worker.py`` process
(as in production, not a burst worker) turns mail into requests as it arrives."""

from __future__ import annotations

import time

from sqlalchemy import select

from plugins.inboxes.models import Mailbox, Request
from tests.conftest import login
from tests.plugins.inboxes.conftest import in_tenant, make_contract, make_inbound, rows, simple_message
from tests.workers import running_worker, wait_for, worker_environment


def poll(app, tenant_ids) -> dict:
    """What the cron's sweep runs (``core.jobs.runner.sweep``): across tenants."""
    from core.jobs.runner import sweep

    with app.app_context():
        return sweep("inboxes.poll")


def test_the_sweep_reads_every_due_mailbox_and_a_failing_one_stops_none_of_the_others(app, factory, dovecot, run_jobs):
    tenants = [factory.tenant("acme"), factory.tenant("beta")]
    boxes = {}
    for tenant in tenants:
        client_id = factory.client(tenant, f"Cliente {tenant.slug}")
        for name, password in (("bien", None), ("mal", "wrong"), ("tambien", None)):
            user = dovecot.add_user(f"{name}-{tenant.slug}@example.test", "s3cret-pass")
            dovecot.deliver(user, simple_message(f"{name} de {tenant.slug}", message_id=f"{name}-{tenant.slug}@x.test"))
            extra = {"password": password} if password else {}
            box = make_inbound(app, tenant, dovecot, user, name=f"{name} {tenant.slug}", **extra)
            make_contract(app, tenant, client_id, inbound=[box], name=f"{name} {tenant.slug}")
            boxes[(tenant.slug, name)] = box

    assert poll(app, [t.id for t in tenants]) == {"started": 6}
    assert poll(app, [t.id for t in tenants]) == {"started": 0}  # queued already: not twice
    run_jobs()

    for tenant in tenants:
        assert sorted(s for (s,) in rows(app, tenant, Request, "subject")) == [
            f"bien de {tenant.slug}",
            f"tambien de {tenant.slug}",
        ]
        health = dict(rows(app, tenant, Mailbox, "name", "last_error"))
        assert health == {
            f"bien {tenant.slug}": None,
            f"mal {tenant.slug}": "auth_failed",
            f"tambien {tenant.slug}": None,
        }
        from core.jobs.models import JobRun

        assert [s for (s,) in rows(app, tenant, JobRun, "status")] == ["finished"] * 3
    # Nothing is due until the polling interval (or the back-off) has passed.
    assert poll(app, [t.id for t in tenants]) == {"started": 0}


def test_read_now_reads_at_once_and_is_not_queued_twice(app, factory, dovecot, mailbox, client, run_jobs):
    tenant = factory.tenant("acme", language="en")
    factory.user(tenant, "jefa@acme.test", role_key="manager")
    box = make_inbound(app, tenant, dovecot, mailbox)
    login(client, "acme", "jefa@acme.test")
    page = client.post(f"/acme/inboxes/mailboxes/{box}/read", follow_redirects=True).get_data(as_text=True)
    assert "Link the mailbox to a contract first" in page

    make_contract(app, tenant, factory.client(tenant, "Cliente"), inbound=[box])
    dovecot.deliver(mailbox, simple_message("urgente", message_id="urgente@x.test"))
    first = client.post(f"/acme/inboxes/mailboxes/{box}/read", follow_redirects=True).get_data(as_text=True)
    second = client.post(f"/acme/inboxes/mailboxes/{box}/read", follow_redirects=True).get_data(as_text=True)
    assert "The mailbox will be read in a moment." in first
    assert "The mailbox is already waiting to be read." in second
    run_jobs()
    assert rows(app, tenant, Request, "subject") == [("urgente",)]


def test_a_long_running_worker_process_reads_mail_as_it_arrives(app, factory, dovecot, mailbox, tmp_path):
    from core.extensions import db
    from plugins.inboxes.sync import start
    from tenants.models import Tenant

    tenant = factory.tenant("acme")
    box = make_inbound(app, tenant, dovecot, mailbox)
    make_contract(app, tenant, factory.client(tenant, "Cliente"), inbound=[box])

    def read_now() -> None:
        with in_tenant(app, tenant.id):
            assert start(db.session.get(Tenant, tenant.id), [box]) == 1

    def subjects() -> list[str]:
        with in_tenant(app, tenant.id):
            found = sorted(db.session.scalars(select(Request.subject)))
            db.session.rollback()
            return found

    # The test Dovecot listens on loopback.
    environment = worker_environment(app, VENTANILLA_ALLOW_PRIVATE_HOSTS="1")
    with running_worker(environment, tmp_path / "worker.log", "--queues", "sync,mail") as worker:
        dovecot.deliver(mailbox, simple_message("primero", message_id="primero@x.test"))
        read_now()
        wait_for(lambda: subjects() == ["primero"], 30, "the first request")
        worker.wait_until_idle()
        time.sleep(1)  # the worker idles between two arrivals
        for n in range(3):
            dovecot.deliver(mailbox, simple_message(f"luego {n}", message_id=f"luego-{n}@x.test"))
        read_now()
        wait_for(lambda: len(subjects()) == 4, 30, "the later requests")
    assert subjects() == ["luego 0", "luego 1", "luego 2", "primero"]
    assert dovecot.messages(mailbox) == {}
    problems = [line for line in worker.lines() if " ERROR " in line or "Traceback" in line]
    assert problems == [], "\n".join(problems)
