"""Periodic jobs on RQ's own cron scheduler, run by exactly one worker at a time.

Every ``python worker.py`` may run the scheduler loop, but only the holder of a Redis lease
enqueues: several workers on several machines never start the same tick twice.
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid

from flask import Flask
from redis import Redis
from rq.cron import CronScheduler

from core.jobs.runner import fan_out, sweep

log = logging.getLogger(__name__)

LEASE_KEY = "ventanilla:cron:leader"
LEASE_SECONDS = 90


def build_scheduler(app: Flask, connection: Redis) -> CronScheduler:
    """An RQ cron scheduler with one entry per scheduled job; each tick fans out over tenants."""
    scheduler = CronScheduler(connection=connection, name=f"ventanilla:{socket.gethostname()}:{uuid.uuid4().hex[:6]}")
    prefix = app.config["QUEUE_PREFIX"]
    for spec in app.extensions["ventanilla_jobs"].scheduled():
        scheduler.register(
            fan_out if spec.per_tenant else sweep,
            queue_name=f"{prefix}{'default' if spec.per_tenant else spec.queue}",
            args=(spec.name,),
            cron=spec.cron,
            interval=spec.interval,
            name=f"ventanilla:{spec.name}",
            # A sweep does the work itself (over every tenant): RQ's default of 180 s would kill it.
            # A fan-out only enqueues the tenants' runs, which carry the job's timeout themselves.
            job_timeout=None if spec.per_tenant else spec.timeout,
        )
    return scheduler


class CronLeader:
    """Runs the cron scheduler in a thread while this process holds the lease."""

    def __init__(self, app: Flask, connection: Redis) -> None:
        self.scheduler = build_scheduler(app, connection)
        self.connection = connection
        self.identity = self.scheduler.name
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="ventanilla-cron", daemon=True)

    def _hold_lease(self) -> bool:
        if self.connection.set(LEASE_KEY, self.identity, nx=True, ex=LEASE_SECONDS):
            return True
        if self.connection.get(LEASE_KEY) == self.identity.encode():
            self.connection.expire(LEASE_KEY, LEASE_SECONDS)
            return True
        return False

    def tick(self) -> list:
        """Enqueue what is due if this process leads; returns the cron jobs enqueued."""
        if not self._hold_lease():
            return []
        enqueued = self.scheduler.enqueue_jobs()
        if enqueued:
            self.scheduler.save()
        return enqueued

    def _loop(self) -> None:
        self.scheduler.register_birth()
        try:
            while not self._stop.is_set():
                try:
                    self.tick()
                    self.scheduler.heartbeat()
                except Exception:
                    log.exception("cron tick failed")
                self._stop.wait(max(1.0, min(self.scheduler.calculate_sleep_interval(), 30.0)))
        finally:
            if self.connection.get(LEASE_KEY) == self.identity.encode():
                self.connection.delete(LEASE_KEY)
            self.scheduler.register_death()

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=5)
