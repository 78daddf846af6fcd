"""Benchmark of outbound mail at volume: 5,000 messages of one tenant through its SMTP server.

An aiosmtpd server on loopback takes them (it only counts them). First what a Python program
reaches with a bare smtplib loop over one connection, building each message (text and HTML) as
it goes, and the same with the messages built beforehand (the socket alone). Then
Ventanilla: the messages stored in the outbox (one transaction, as a notice job does), and a real
RQ worker delivering them in batches (``core.mail.delivery``), claim, send and record included,
until none is left. Prints messages per second of each, the ratios, and the SMTP connections
Ventanilla opened. The tenant's rate is off (``MAIL_RATE_PER_MINUTE=0``): this measures the
machinery, not a pace chosen for a server.

    .venv/bin/python bench/mail_volume.py                  # SQLite in a temporary folder
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/mail_volume.py
"""

from __future__ import annotations

import argparse
import smtplib
import socket
import sys
import threading
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import bench_app

TEXT = "Estimado cliente:\n\nSu certificado de estar al corriente vence el 31 de diciembre.\n" * 4
HTML = f"<p>{TEXT.replace(chr(10), '<br>')}</p>"


class Counter:
    """aiosmtpd handler: counts messages and the connections they came over."""

    def __init__(self) -> None:
        self.messages = 0
        self.peers: set = set()
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages += 1
            self.peers.add(tuple(session.peer))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(counter: Counter, count: int) -> None:
    while counter.messages < count:
        time.sleep(0.01)


def _message(n: int) -> EmailMessage:
    """What a plain program would send: text and HTML, the usual headers."""
    mail = EmailMessage()
    mail["From"] = "Gestoría Bench <noreply@bench.test>"
    mail["To"] = f"client{n}@client.test"
    mail["Subject"] = f"Aviso {n}"
    mail["Date"] = formatdate()
    mail["Message-ID"] = make_msgid(domain="bench.test")
    mail.set_content(TEXT)
    mail.add_alternative(HTML, subtype="html")
    return mail


def bare_loop(port: int, counter: Counter, count: int, *, prebuilt: bool) -> float:
    """Messages per second of a plain smtplib loop over one connection: building each message in
    the loop (as any sender must), or with every message built beforehand (the socket alone)."""
    first = counter.messages
    mails = [_message(n) for n in range(count)] if prebuilt else None
    start = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as client:
        for n in range(count):
            client.send_message(mails[n] if prebuilt else _message(n))
    _wait(counter, first + count)
    return count / (time.perf_counter() - start)


def ventanilla(app, port: int, counter: Counter, count: int) -> tuple[float, float]:
    """Messages per second of the outbox and a worker; and the seconds it took to store them."""
    from rq import Worker

    from core.extensions import db
    from core.jobs.runner import use_app
    from core.jobs.services import get_queue
    from core.mail.services import save_tenant_settings, send_composed_email
    from core.provisioning import create_tenant
    from core.redis_connection import get_redis
    from tenants.context import tenant_context

    use_app(app)
    with app.app_context():
        tenant = create_tenant("bench", "Gestoría Bench", "es")
        save_tenant_settings(tenant, "127.0.0.1", port, "none", None, None, "noreply@bench.test")
        stored = time.perf_counter()
        with tenant_context(tenant.id):
            for n in range(count):
                send_composed_email(
                    tenant.id, f"client{n}@client.test", f"Aviso {n}", TEXT, HTML, commit=False, priority="bulk"
                )
            db.session.commit()
        stored = time.perf_counter() - stored
        db.engine.dispose()  # the worker's forked work-horses open their own
        first = counter.messages
        start = time.perf_counter()
        Worker([get_queue("mail")], connection=get_redis()).work(burst=True, with_scheduler=False)
        _wait(counter, first + count)
        return count / (time.perf_counter() - start), stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    args = parser.parse_args()

    from aiosmtpd.controller import Controller

    counter = Counter()
    port = _free_port()
    controller = Controller(counter, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        bare = bare_loop(port, counter, args.messages, prebuilt=False)
        floor = bare_loop(port, counter, args.messages, prebuilt=True)
        config = {"ALLOW_PRIVATE_HOSTS": True, "MAIL_RATE_PER_MINUTE": 0, "MAIL_RATE_MAX_PER_MINUTE": 0}
        with bench_app([], **config) as app:
            counter.peers.clear()
            rate, stored = ventanilla(app, port, counter, args.messages)
            engine = app.config["SQLALCHEMY_DATABASE_URI"].split(":", 1)[0]
            batch = app.config["MAIL_BATCH_SIZE"]
    finally:
        controller.stop()
    print(f"{args.messages} messages to aiosmtpd on loopback, database {engine}")
    print(f"  bare smtplib loop, one connection:            {bare:6.0f} messages/s")
    print(f"    the same with every message built beforehand: {floor:6.0f} messages/s")
    print(
        f"  Ventanilla outbox + worker:                   {rate:6.0f} messages/s"
        f"  ({rate / bare:.2f}x the bare loop, {rate / floor:.2f}x the one with messages built beforehand)"
    )
    print(f"    SMTP connections: {len(counter.peers)} (batches of {batch})")
    print(f"    storing them in the outbox took {stored:.1f} s ({args.messages / stored:.0f} messages/s)")


if __name__ == "__main__":
    main()
