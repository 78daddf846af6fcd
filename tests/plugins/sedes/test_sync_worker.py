"""A long-running ``worker.py`` process, as in production (not a burst worker): it sits idle, then
picks up each "Consultar buzón" and brings what the DEHú simulator holds."""

from __future__ import annotations

import time

from tests.plugins.sedes.sync_helpers import (
    company_certificate,
    in_tenant,
    make_mailbox,
    notifications_of,
    point_catalogue_at,
    store_certificate,
)
from tests.workers import running_worker, wait_for, worker_environment

CIF = "B12345674"


def test_an_idle_worker_process_picks_up_each_sync_as_it_is_asked(app, factory, dehu_simulator, tmp_path):
    from core.auth.models import User
    from core.extensions import db
    from plugins.sedes import sync
    from plugins.sedes.models import SedeMailbox
    from tenants.models import Tenant

    tenant = factory.tenant("acme")
    user_id = factory.user(tenant, "jefa@acme.test", role_key="manager")
    point_catalogue_at(app, dehu_simulator)
    client_id = factory.client(tenant, "Construcciones Levante SL", CIF)
    mailbox = make_mailbox(
        app, tenant, client_id, store_certificate(app, tenant, client_id, company_certificate(dehu_simulator, CIF))
    )

    def consult() -> None:
        with in_tenant(app, tenant.id):
            sync.request_mailbox_sync(
                db.session.get(Tenant, tenant.id), db.session.get(User, user_id), db.session.get(SedeMailbox, mailbox)
            )

    def subjects() -> list[str]:
        return sorted(s for (s,) in notifications_of(app, tenant, "subject"))

    # The simulator listens on loopback.
    environment = worker_environment(app, VENTANILLA_ALLOW_PRIVATE_HOSTS="1")
    with running_worker(environment, tmp_path / "worker.log", "--queues", "sync") as worker:
        dehu_simulator.add_notification(CIF, subject="Primera")
        consult()
        wait_for(lambda: subjects() == ["Primera"], 30, "the first notification")
        worker.wait_until_idle()
        time.sleep(2)  # the worker idles between two requests
        dehu_simulator.add_notification(CIF, subject="Segunda")
        dehu_simulator.add_notification(CIF, subject="Tercera")
        consult()
        wait_for(lambda: len(subjects()) == 3, 30, "the later notifications")
    assert subjects() == ["Primera", "Segunda", "Tercera"]
    problems = [line for line in worker.lines() if " ERROR " in line or "Traceback" in line]
    assert problems == [], "\n".join(problems)
