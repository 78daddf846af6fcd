"""``make run``: the web application and its workers together, on the embedded defaults.

Starts the embedded Redis server when ``REDIS_URL`` is unset, the ``worker.py`` processes of one
machine (``core.jobs.registry.SINGLE_MACHINE``), and the web server; Ctrl-C stops all of them.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

from werkzeug.serving import run_simple

from core.config import PROJECT_ROOT


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    args = parser.parse_args(argv)

    # Served over plain HTTP on this machine: cookies cannot demand HTTPS here.
    os.environ.setdefault("VENTANILLA_SECURE_COOKIES", "0")
    os.environ.setdefault("VENTANILLA_PUBLIC_URL", f"http://{args.host}:{args.port}")

    from core.app import create_app
    from core.demo import logins
    from core.jobs.registry import SINGLE_MACHINE
    from core.plugins import host
    from core.redis_connection import redis_url

    app = create_app()
    url = redis_url(app)  # starts the embedded server when REDIS_URL is unset, and exports it
    os.environ["REDIS_URL"] = url

    # What one machine needs: a worker for short jobs and one each for mailbox syncs and imports.
    workers = [
        subprocess.Popen(
            [sys.executable, str(PROJECT_ROOT / "worker.py"), "--queues", ",".join(queues)], env=os.environ.copy()
        )
        for queues in SINGLE_MACHINE
    ]
    with app.app_context():
        services = host().call_all("demo_services", app=app)
    helpers = [
        subprocess.Popen(list(service.argv), env={**os.environ, **service.env}, cwd=PROJECT_ROOT)
        for service in services
    ]

    def stop(*_args):
        raise KeyboardInterrupt

    # Set explicitly: a shell that starts us in the background has SIGINT ignored.
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    print(f"\n  Ventanilla is running at http://{args.host}:{args.port}/demo/  (Ctrl-C stops it)\n")
    print(f"  database: {app.config['SQLALCHEMY_DATABASE_URI']}")
    print(f"  redis:    {url}")
    outbox = app.config["OUTBOX_DIR"] if (app.config["OUTBOX_STORE"] or app.config["FILES_STORE"]) == "local" else "S3"
    print(f"  mail:     {'SMTP ' + app.config['SMTP_HOST'] if app.config['SMTP_HOST'] else 'outbox ' + outbox}\n")
    with app.app_context():
        for line in logins():
            print(f"  {line}")
    for service in services:
        for line in service.lines:
            print(f"  {service.name}: {line}")
    print()
    try:
        run_simple(args.host, args.port, app, threaded=True, use_reloader=False, use_debugger=False)
    except KeyboardInterrupt:
        pass
    finally:
        for process in [*workers, *helpers]:
            process.terminate()
        for process in [*workers, *helpers]:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        from core.redis_connection import stop_embedded

        stop_embedded()


if __name__ == "__main__":
    main()
