"""No queue starves another: what a person waits for goes to the front of its queue, and the
workers of one machine serve every queue."""

from __future__ import annotations


def test_an_urgent_run_goes_to_the_front_of_its_queue(app, factory):
    from core.extensions import db
    from core.jobs.services import enqueue, get_queue
    from tenants.models import Tenant

    acme = factory.tenant("acme")
    with app.app_context():
        tenant = db.session.get(Tenant, acme.id)
        scheduled = [enqueue(tenant, "sample.count_notes", scheduled=True).rq_job_id for _ in range(3)]
        pressed = enqueue(tenant, "sample.count_notes", urgent=True).rq_job_id
        assert get_queue("default").job_ids == [pressed, *scheduled]


def test_the_workers_of_one_machine_serve_every_queue_and_short_jobs_never_wait_behind_long_ones():
    from core.jobs.registry import QUEUES, SINGLE_MACHINE

    assert {name for queues in SINGLE_MACHINE for name in queues} == set(QUEUES)
    short = next(queues for queues in SINGLE_MACHINE if "push" in queues)
    assert "bulk" not in short and "sync" not in short and "mail" in short and "default" in short
    assert all("mail" in queues and "default" in queues for queues in SINGLE_MACHINE)
