"""The RQ worker for every Ventanilla queue.

Runs RQ's scheduler (delayed retries) and, when it holds the lease, the cron scheduler of the
periodic jobs. Start as many as needed, on as many machines: ``python worker.py``; a worker
can be dedicated to some queues with ``--queues sync,bulk`` (or ``--queues push``).
"""

from __future__ import annotations

import argparse
import logging

from rq import Worker

from core.app import create_app
from core.jobs.cron import CronLeader
from core.jobs.registry import QUEUES
from core.jobs.runner import use_app
from core.jobs.services import get_queue
from core.redis_connection import use_worker_connection

# Mail first: a password-reset link should not wait behind a bulk import (or a slow push service).
DEFAULT_ORDER = ("mail", "default", "push", "sync", "bulk")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queues", default=",".join(DEFAULT_ORDER), help="comma-separated, in priority order")
    parser.add_argument("--burst", action="store_true", help="work until the queues are empty, then stop")
    parser.add_argument("--no-cron", action="store_true", help="never run the periodic-job scheduler")
    args = parser.parse_args(argv)

    names = [q.strip() for q in args.queues.split(",") if q.strip()]
    unknown = set(names) - set(QUEUES)
    if unknown:
        parser.error(f"unknown queue(s): {', '.join(sorted(unknown))}")

    app = create_app()
    use_app(app)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with app.app_context():
        # First: every later use of Redis in this process (queues, cron, jobs) shares this client.
        connection = use_worker_connection(app)
        queues = [get_queue(name) for name in names]
        cron = None if args.no_cron or args.burst else CronLeader(app, connection)
        if cron is not None:
            cron.start()
        try:
            Worker(queues, connection=connection).work(with_scheduler=True, burst=args.burst)
        finally:
            if cron is not None:
                cron.stop()


if __name__ == "__main__":
    main()
