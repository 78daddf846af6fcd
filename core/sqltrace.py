"""Bench-only instrumentation: how many SQL statements a request ran, how long the database
took and how much CPU the request's own thread used, in a response header
(``X-Sql: <statements>;<database milliseconds>;<CPU milliseconds>``). The CPU time is the figure that
stays put when other work shares the machine.

Off unless ``VENTANILLA_SQL_TRACE=1`` (``SQL_TRACE`` in the config): a benchmark switches it on for
the server it measures; production never sets it, and then nothing is registered at all.
"""

from __future__ import annotations

import os
import time

from flask import Flask, g, has_request_context
from sqlalchemy import event

HEADER = "X-Sql"


def init_app(app: Flask, engine) -> None:
    if not app.config.get("SQL_TRACE", os.environ.get("VENTANILLA_SQL_TRACE") == "1"):
        return

    @event.listens_for(engine, "before_cursor_execute")
    def _started(conn, cursor, statement, parameters, context, executemany):
        if has_request_context():
            g._sql_started = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _ended(conn, cursor, statement, parameters, context, executemany):
        if has_request_context() and "_sql_started" in g:
            g._sql_count = g.get("_sql_count", 0) + 1
            g._sql_seconds = g.get("_sql_seconds", 0.0) + time.perf_counter() - g.pop("_sql_started")

    def _cpu_started(_endpoint, _values):
        g._cpu_started = time.thread_time()

    # First of all that runs for a request: the tenant's lookup and the access check count too.
    app.url_value_preprocessors.setdefault(None, []).insert(0, _cpu_started)

    @app.after_request
    def _header(response):
        cpu = time.thread_time() - g.get("_cpu_started", time.thread_time())
        response.headers[HEADER] = f"{g.get('_sql_count', 0)};{g.get('_sql_seconds', 0.0) * 1000:.2f};{cpu * 1000:.2f}"
        return response
