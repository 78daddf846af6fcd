"""A backlog of bulk mail does not starve anyone: one real, long-running ``worker.py`` (all queues,
as on a single small machine), a real SMTP server (aiosmtpd), a password reset and a job on the
default queue asked for while thousands of notices wait."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.core.mail.conftest import use_smtp
from tests.core.test_worker_process import _run_state
from tests.workers import running_worker, wait_for, worker_environment

BACKLOG = 1500
BATCH = 50


def _store_backlog(app, tenant) -> None:
    from core.extensions import db
    from core.mail.services import send_composed_email
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant.id):
        for n in range(BACKLOG):
            send_composed_email(
                tenant.id, f"client{n}@client.test", f"Aviso {n}", "Su certificado.", commit=False, priority="bulk"
            )
        db.session.commit()


def _sent_count(app, tenant) -> int:
    from core.extensions import db
    from core.mail.models import SENT, OutboundMessage
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant.id):
        count = db.session.scalar(select(func.count()).where(OutboundMessage.status == SENT))
        db.session.rollback()
        return count


def _bulk_sent_by(app, tenant, moment) -> int:
    """How many notices of the backlog the server had accepted by ``moment`` (as the rows record it)."""
    from core.extensions import db
    from core.mail.models import BULK, OutboundMessage
    from tenants.context import tenant_context

    with app.app_context(), tenant_context(tenant.id):
        count = db.session.scalar(
            select(func.count()).where(OutboundMessage.priority == BULK, OutboundMessage.sent_at <= moment)
        )
        db.session.rollback()
        return count


def test_a_password_reset_and_a_default_job_overtake_a_backlog_of_bulk_mail(app, factory, smtp_server, tmp_path):
    from core.auth.services import request_password_reset
    from core.extensions import db
    from core.jobs.services import enqueue
    from tenants.models import Tenant

    acme = factory.tenant("acme")
    factory.user(acme, "ana@acme.test")
    use_smtp(app, acme, smtp_server)
    _store_backlog(app, acme)

    env = worker_environment(
        app,
        VENTANILLA_ALLOW_PRIVATE_HOSTS="1",
        MAIL_BATCH_SIZE=BATCH,
        MAIL_CLAIM_SIZE=25,
        MAIL_RATE_PER_MINUTE=0,
        MAIL_RATE_MAX_PER_MINUTE=0,
    )
    # The backlog waits already: this worker is never idle before it has sent it all.
    with running_worker(env, tmp_path / "worker.log", idle=False) as worker:
        wait_for(lambda: len(smtp_server.received) >= 1, 60, "the backlog to start going out")
        # The backlog is draining: now a person asks for a reset link, and a job lands on default.
        sent_before = _sent_count(app, acme)
        with app.test_request_context():
            request_password_reset(db.session.get(Tenant, acme.id), "ana@acme.test", "192.0.2.7")
        with app.app_context():
            run = enqueue(db.session.get(Tenant, acme.id), "sample.count_notes")
            run_id = run.id
        wait_for(lambda: len(smtp_server.received) >= BACKLOG + 1, 300, "the backlog to drain")
        status, started_at = _run_state(app, acme.id, run_id)

    assert sent_before < BACKLOG - 10 * BATCH, "the requests came while most of the backlog waited"
    order = [received.rcpt_tos[0] for received in smtp_server.received]
    assert len(order) == len(set(order)) == BACKLOG + 1, "every message once"
    reset_at = order.index("ana@acme.test")
    # At most the batch in progress, and one more batch per queue the worker looks at in turn.
    assert reset_at <= sent_before + 3 * BATCH, f"the reset went out after {reset_at} notices"
    assert status == "finished"
    job_started_after = _bulk_sent_by(app, acme, started_at)
    assert job_started_after <= sent_before + 2 * BATCH, f"the job started after {job_started_after} notices"
    problems = [line for line in worker.lines() if " ERROR " in line]
    assert problems == [], "\n".join(problems)
