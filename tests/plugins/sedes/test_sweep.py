"""The sweep at scale, part by part against the DEHú simulator: a sweep stamps the due mailboxes
and its parts read each once with one progress bar; a lease that expires is taken over, a slow but
living part keeps its own, a part whose lease was taken writes nothing (the fence); "Consultar
buzón" and a sweep never hold the same mailbox; the per-sede limit counts every holder."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from tests.plugins.sedes.sweep_helpers import (
    listings_by_nif,
    mailbox_rows,
    office_with_mailboxes,
    run_row,
    sweep_row,
)
from tests.plugins.sedes.sync_helpers import in_tenant


def cron(app) -> dict:
    """What the five-minute ``sedes.sweep`` tick runs, across tenants."""
    from core.jobs.runner import sweep as run_sweep

    with app.app_context():
        return run_sweep("sedes.sweep")


@pytest.fixture
def small_batches(app):
    """Sweeps of three parts leasing two mailboxes at a time, leases of 30 seconds."""
    settings = {
        "SEDES_SWEEP_PARTS": 3,
        "SEDES_SWEEP_BATCH": 2,
        "SEDES_SWEEP_LEASE_SECONDS": 30,
        "SEDES_SWEEP_POLL_SECONDS": 0.05,
    }
    app.config.update(settings)
    yield settings
    for name in settings:
        app.config.pop(name, None)


def test_a_sweep_reads_every_due_mailbox_once_over_its_parts_on_one_bar(
    app, factory, dehu_simulator, run_jobs, small_batches
):
    tenant, _ids, cifs = office_with_mailboxes(app, factory, dehu_simulator, 7)
    assert cron(app) == {"mailboxes": 7, "runs": 3}
    assert cron(app) == {"mailboxes": 0, "runs": 0}, "one open sweep per tenant; its runs are alive"
    sweep = sweep_row(app, tenant)
    assert (sweep["total"], sweep["parts"], sweep["done"], sweep["finished_at"]) == (7, 3, 0, None)
    assert sweep["job_run_id"] == sweep["run_ids"][0]
    assert all(row["sweep_id"] == sweep["id"] and row["queued_at"] for row in mailbox_rows(app, tenant).values())

    run_jobs()

    sweep = sweep_row(app, tenant)
    assert (sweep["done"], sweep["errors"], sweep["new"]) == (7, 0, 7) and sweep["finished_at"] is not None
    bar = run_row(app, tenant, sweep["job_run_id"])
    assert (bar["name"], bar["status"], bar["progress"]) == ("sedes.sweep_run", "finished", 100)
    assert bar["result"] == {"mailboxes": 7, "done": 7, "errors": 0, "new": 7}
    assert bar["progress_message"] == "7 of 7 mailboxes checked"
    assert {run_row(app, tenant, run)["status"] for run in sweep["run_ids"]} == {"finished"}
    listed = listings_by_nif(dehu_simulator)
    assert sorted(listed) == sorted(cifs) and all(len(requests) == 1 for requests in listed.values())
    rows = mailbox_rows(app, tenant)
    assert {(r["last_result"], r["sweep_id"], r["lease_owner"], r["queued_at"]) for r in rows.values()} == {
        ("ok", None, None, None)
    }
    assert cron(app) == {"mailboxes": 0, "runs": 0}, "nothing due until tomorrow"


def test_consultar_buzon_and_a_sweep_never_hold_the_same_mailbox(app, factory, dehu_simulator, small_batches):
    from core.auth.models import User
    from core.errors import DomainError
    from core.extensions import db
    from plugins.sedes import sweep, sync
    from plugins.sedes.models import SedeMailbox
    from tenants.models import Tenant

    tenant, ids, _cifs = office_with_mailboxes(app, factory, dehu_simulator, 3)
    user_id = factory.user(tenant, "jefa@acme.test", role_key="manager")
    with in_tenant(app, tenant.id):
        office, user = db.session.get(Tenant, tenant.id), db.session.get(User, user_id)
        sync.request_mailbox_sync(office, user, db.session.get(SedeMailbox, ids[0]))
        started = sweep.start_sweep(office)
        assert started.total == 2, "the mailbox queued on demand is not stamped"
        with pytest.raises(DomainError, match="already being checked"):
            sync.request_mailbox_sync(office, user, db.session.get(SedeMailbox, ids[1]))
    rows = mailbox_rows(app, tenant)
    assert rows[ids[0]]["sweep_id"] is None and rows[ids[1]]["sweep_id"] == rows[ids[2]]["sweep_id"] == started.id


def _read_and_store(app, tenant, part, ids) -> list[int]:
    """What a part does with a leased batch: read it at the simulator and write it through its fence."""
    from core.api import utcnow
    from core.extensions import db
    from plugins.sedes import sync
    from tenants.models import Tenant

    office = db.session.get(Tenant, tenant.id)
    works = sync._prepare(office, ids, utcnow())
    for work in works:
        work.result, work.error = sync._read(app, work)
    return [work.mailbox_id for work in sync._store(office, works, fence=part)]


def test_an_expired_lease_is_taken_over_and_its_late_holder_writes_nothing(app, factory, dehu_simulator, small_batches):
    from core.extensions import db
    from plugins.sedes import sweep
    from tenants.models import Tenant

    tenant, ids, cifs = office_with_mailboxes(app, factory, dehu_simulator, 5)
    start = datetime.now(UTC)
    with in_tenant(app, tenant.id), time_machine.travel(start, tick=False) as clock:
        office = db.session.get(Tenant, tenant.id)
        sweep_id = sweep.start_sweep(office).id
        slow, alive, late = (sweep.Part(app, office, sweep_id) for _ in range(3))
        assert slow.take(3) == ids[:3]
        assert alive.take(3) == ids[3:], "a part never takes a mailbox whose lease is alive"
        assert late.take(3) == []

        clock.shift(timedelta(seconds=20))
        assert alive.renew() == 2  # its heartbeat
        clock.shift(timedelta(seconds=15))  # the slow part's lease (30 s) has expired; the other's not
        assert late.take(5) == ids[:3], "the expired lease is taken over, the renewed one is not"

        # The slow part was alive after all: its answers arrive, but the mailboxes are no longer its own.
        assert _read_and_store(app, tenant, slow, ids[:3]) == []
        assert {ids[n]: mailbox_rows(app, tenant)[ids[n]]["lease_owner"] for n in range(3)} == {
            ids[n]: late.token for n in range(3)
        }
        assert sweep_row(app, tenant)["done"] == 0
        assert _read_and_store(app, tenant, late, ids[:3]) == ids[:3]
        assert _read_and_store(app, tenant, alive, ids[3:]) == ids[3:]
        assert late.take(5) == [] and late.left() == 0

    row = sweep_row(app, tenant)
    assert (row["total"], row["done"], row["new"]) == (5, 5, 5)
    assert run_row(app, tenant, row["job_run_id"])["progress"] == 100
    # The slow part did ask the sede (it could not know), but its outcome was never written: each
    # notification is stored once and each mailbox counted once.
    assert {nif: len(requests) for nif, requests in listings_by_nif(dehu_simulator).items()} == {
        **{nif: 2 for nif in cifs[:3]},
        **{nif: 1 for nif in cifs[3:]},
    }


def test_a_slow_but_living_part_keeps_its_lease_by_its_heartbeat(app, factory, dehu_simulator, small_batches):
    from core.extensions import db
    from plugins.sedes import sweep
    from tenants.models import Tenant

    app.config["SEDES_SWEEP_LEASE_SECONDS"] = 3  # renewed every second: room for a busy machine
    tenant, ids, _cifs = office_with_mailboxes(app, factory, dehu_simulator, 2)
    with in_tenant(app, tenant.id):
        office = db.session.get(Tenant, tenant.id)
        sweep_id = sweep.start_sweep(office).id
        slow, other = sweep.Part(app, office, sweep_id), sweep.Part(app, office, sweep_id)
        with slow.heartbeat():
            assert slow.take(2) == ids
            time.sleep(6.5)  # more than two leases long: only the heartbeat can keep it
            assert other.take(2) == []
        time.sleep(3.2)  # the heartbeat stopped with its part: the lease now lapses
        assert other.take(2) == ids


def test_the_per_sede_limit_counts_every_holder_and_frees_a_dead_ones_slot(app):
    from plugins.sedes import limits

    with app.app_context():
        assert limits.take_slot("dehu", 2, "a") and limits.take_slot("dehu", 2, "b")
        assert not limits.take_slot("dehu", 2, "c"), "a third reader waits"
        assert limits.take_slot("seg_social", 2, "c"), "each sede has its own slots"
        limits.release_slot("dehu", "a")
        assert limits.take_slot("dehu", 2, "c") and limits.holders("dehu") == 2
        # "b" and "c" die holding their slots: the slots come back when they expire.
        with time_machine.travel(datetime.now(UTC) + timedelta(seconds=limits.SLOT_TTL + 1)):
            assert limits.take_slot("dehu", 2, "d") and limits.take_slot("dehu", 2, "e")
            assert limits.holders("dehu") == 2


def test_a_long_read_keeps_its_sede_slot_by_renewal(app):
    from plugins.sedes import limits

    start = datetime.now(UTC)
    with app.app_context(), time_machine.travel(start, tick=False) as clock:
        with limits.sede_slot("dehu", 1):
            clock.shift(timedelta(seconds=limits.SLOT_TTL * 2 / 3))
            assert limits.renew_held() == 1  # what the process's renewing thread does every third of it
            clock.shift(timedelta(seconds=limits.SLOT_TTL * 2 / 3))  # past the first expiry
            assert not limits.take_slot("dehu", 1, "other"), "a slot renewed is still held"
        assert limits.renew_held() == 0 and limits.take_slot("dehu", 1, "other"), "given back at the end"


def test_the_operator_sets_a_sedes_concurrency_limit_in_the_catalogue(app, factory, client):
    from core.extensions import db
    from plugins.sedes.catalogue import ensure_catalogue
    from plugins.sedes.models import DEFAULT_MAX_CONCURRENCY, Sede
    from tests.conftest import login_operator

    factory.operator()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login_operator(client)
    with app.app_context():
        ensure_catalogue()
        assert db.session.get(Sede, "dehu").max_concurrency == DEFAULT_MAX_CONCURRENCY
    form = {
        "code": "dehu",
        "name": "DEHú",
        "connector": "dehu",
        "base_url": "https://gd-dehuws.redsara.es",
        "deadline_days": "10",
        "active": "y",
    }
    assert 'name="max_concurrency"' in client.get("/operator/sedes/dehu").get_data(as_text=True)
    refused = client.post("/operator/sedes/dehu", data={**form, "max_concurrency": "0"})
    assert refused.status_code == 200 and "Number must be between 1 and 1000." in refused.get_data(as_text=True)
    assert client.post("/operator/sedes/dehu", data={**form, "max_concurrency": "4"}).status_code == 302
    with app.app_context():
        assert db.session.get(Sede, "dehu").max_concurrency == 4


def test_a_sweep_whose_parts_all_died_is_resumed_by_the_next_tick(
    app, factory, dehu_simulator, run_jobs, small_batches
):
    from sqlalchemy import update

    from core.extensions import db
    from core.jobs.models import JobRun
    from core.jobs.services import get_queue

    tenant, _ids, cifs = office_with_mailboxes(app, factory, dehu_simulator, 4)
    assert cron(app) == {"mailboxes": 4, "runs": 2}
    first = sweep_row(app, tenant)
    # Their workers died before taking anything, and core settled their runs as abandoned.
    with in_tenant(app, tenant.id):
        db.session.execute(update(JobRun).values(status="failed", error="core.jobs:abandoned"))
        db.session.commit()
    with app.app_context():
        get_queue("sync").empty()
    assert cron(app) == {"mailboxes": 0, "runs": 1}, "one part more for the open sweep, no new sweep"
    assert cron(app) == {"mailboxes": 0, "runs": 0}, "its part is alive now"
    run_jobs()
    sweep = sweep_row(app, tenant)
    assert sweep["id"] == first["id"] and (sweep["done"], sweep["total"]) == (4, 4) and sweep["finished_at"]
    assert len(sweep["run_ids"]) == 3 and run_row(app, tenant, sweep["run_ids"][-1])["status"] == "finished"
    assert sorted(listings_by_nif(dehu_simulator)) == sorted(cifs)


def test_a_sweep_that_cannot_be_queued_gives_its_mailboxes_back(app, factory, dehu_simulator, small_batches):
    from redis import Redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    from core.extensions import db
    from plugins.sedes import sweep
    from tenants.models import Tenant

    tenant, _ids, _cifs = office_with_mailboxes(app, factory, dehu_simulator, 3)
    working = app.extensions.pop("redis", None)
    app.extensions["redis"] = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)  # nothing listens
    try:
        with in_tenant(app, tenant.id), pytest.raises(RedisConnectionError):
            sweep.start_sweep(db.session.get(Tenant, tenant.id))
    finally:
        app.extensions.pop("redis")
        if working is not None:
            app.extensions["redis"] = working
    assert sweep_row(app, tenant)["finished_at"] is not None
    rows = mailbox_rows(app, tenant).values()
    assert {(r["sweep_id"], r["queued_at"]) for r in rows} == {(None, None)}, "due again at the next tick"
    assert cron(app) == {"mailboxes": 3, "runs": 2}
