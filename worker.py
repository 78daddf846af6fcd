"""The RQ worker for every Ventanilla queue.

Runs RQ's scheduler (delayed retries) and, when it holds the lease, the cron scheduler of the
periodic jobs. Start as many as needed, on as many machines: ``python worker.py``; a worker
can be dedicated to some queues with ``--queues sync,bulk`` (or ``--queues push``).

A worker takes its queues in turn (RQ's round-robin): after a job of one queue it looks at the
next one first, so a backlog in one queue never starves the others. Jobs keep that fair: a mail
job sends a bounded batch and enqueues the rest behind it. What is urgent within a queue (a
password-reset mail, "Consultar buzón") is put at its front. Long jobs (an import, a mailbox
sync) hold their worker, so one machine runs three (``core.jobs.registry.SINGLE_MACHINE``, what ``make run`` starts).
"""

from __future__ import annotations

import argparse
import logging

from rq import Worker
from rq.worker import DequeueStrategy

from core.app import create_app
from core.jobs.cron import CronLeader
from core.jobs.registry import QUEUES
from core.jobs.runner import use_app
from core.jobs.services import get_queue
from core.redis_connection import use_worker_connection

DEFAULT_ORDER = ("mail", "default", "push", "sync", "bulk")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--queues", default=",".join(DEFAULT_ORDER), help="comma-separated, taken in turn from the first"
    )
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
            Worker(queues, connection=connection).work(
                with_scheduler=True, burst=args.burst, dequeue_strategy=DequeueStrategy.ROUND_ROBIN
            )
        finally:
            if cron is not None:
                cron.stop()


if __name__ == "__main__":
    main()
