"""The bulk queue on a long-running ``worker.py`` that sits idle, then gets work.

Every queue has such a test: default (test_worker_process), mail (test_storage_s3), sync (the
sedes sync tests), push (test_push) and bulk here. A worker dedicated to the queue, as the README's
larger layouts have one, idle past redis-py's socket timeout, where a waiting connection used to fail.
"""

from __future__ import annotations

import time

from sqlalchemy import func, select

from tests.core.test_clients import IMPORT_CSV, _admin, _import
from tests.workers import IDLE_SECONDS, running_worker, wait_for, worker_environment


def test_an_idle_bulk_worker_takes_an_import_posted_later(app, factory, client, tmp_path):
    from core.clients.models import Client, ClientImport
    from core.extensions import db
    from tenants.context import tenant_context

    tenant = _admin(factory, client, language="es")
    factory.group(tenant, "Centro")

    def finished() -> tuple | None:
        with app.app_context(), tenant_context(tenant.id):
            report = db.session.execute(select(ClientImport.finished_at, ClientImport.created)).first()
            clients = db.session.scalar(select(func.count()).select_from(Client))
            db.session.rollback()
        return (report.created, clients) if report is not None and report.finished_at is not None else None

    log = tmp_path / "bulk.log"
    with running_worker(worker_environment(app), log, "--queues", "bulk", "--no-cron"):
        time.sleep(IDLE_SECONDS)
        assert _import(client, IMPORT_CSV).status_code == 302
        assert wait_for(finished, 60, "the import to end", log) == (2, 2)
