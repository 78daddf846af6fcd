"""A long-running ``worker.py`` process, as in production (not a burst worker): it sits idle, then
picks up each "Consultar buzón" and brings what the DEHú simulator holds."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from core.config import PROJECT_ROOT
from tests.core.test_worker_process import _wait_for, _worker_environment
from tests.plugins.sedes.sync_helpers import (
    company_certificate,
    in_tenant,
    make_mailbox,
    notifications_of,
    point_catalogue_at,
    store_certificate,
)

CIF = "B12345674"


def test_an_idle_worker_process_picks_up_each_sync_as_it_is_asked(
    app, factory, database, redis_url, dehu_simulator, tmp_path
):
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

    environment = _worker_environment(app, database, redis_url)
    environment["VENTANILLA_ALLOW_PRIVATE_HOSTS"] = "1"  # the simulator listens on loopback
    log_path = Path(tmp_path) / "worker.log"
    with log_path.open("w") as log:
        worker = subprocess.Popen(
            [sys.executable, str(PROJECT_ROOT / "worker.py"), "--queues", "sync"],
            cwd=str(PROJECT_ROOT),
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        try:
            _wait_for(lambda: "Listening on" in log_path.read_text(), 60, "the worker to listen")
        except AssertionError as error:
            raise AssertionError(f"{error}; its log:\n{log_path.read_text()[-3000:]}") from None
        dehu_simulator.add_notification(CIF, subject="Primera")
        consult()
        _wait_for(lambda: subjects() == ["Primera"], 30, "the first notification")
        time.sleep(2)  # the worker idles between two requests
        dehu_simulator.add_notification(CIF, subject="Segunda")
        dehu_simulator.add_notification(CIF, subject="Tercera")
        consult()
        _wait_for(lambda: len(subjects()) == 3, 30, "the later notifications")
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    assert subjects() == ["Primera", "Segunda", "Tercera"]
    log = log_path.read_text()
    problems = [line for line in log.splitlines() if " ERROR " in line or "Traceback" in line]
    assert problems == [], "\n".join(problems)
