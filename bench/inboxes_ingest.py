"""Benchmark of reading an inbound mailbox into requests: 5,000 messages in a Dovecot of our own.

First a bare IMAPClient loop fetches every message of the folder (log in, select, search, fetch the
bodies in batches, nothing else) — the floor set by the server and the protocol. Then the plugin's
sync reads the same messages as the ``inboxes.sync`` job does (runs of at most 200 messages: fetch,
parse, sanitise, thread, store each request and its attachments, commit each one before the
message is flagged on the server). Both over IMAPS on loopback, certificate verified. Prints both
rates, their ratio and the SQL statements per message.

Mail: four in five plain text, one in seven with an HTML alternative, one in twenty with a small
attachment; every tenth one a reply to an earlier one (it joins that request).

    .venv/bin/python bench/inboxes_ingest.py                  # SQLite in a temporary folder
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/inboxes_ingest.py
"""

from __future__ import annotations

import argparse
import sys
import time
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import StatementCounter, bench_app

PASSWORD = "bench-password"
BATCH = 500


def message(n: int) -> bytes:
    mail = EmailMessage()
    mail["From"] = f"Cliente {n % 97} <cliente{n % 97}@clientes.example>"
    mail["To"] = "soporte@bench.example"
    mail["Message-ID"] = f"<bench-{n}@clientes.example>"
    mail["Date"] = "Tue, 03 Dec 2024 10:00:00 +0100"
    if n % 10 == 9:
        mail["Subject"] = f"Re: Consulta número {n - 9}"
        mail["In-Reply-To"] = f"<bench-{n - 9}@clientes.example>"
    else:
        mail["Subject"] = f"Consulta número {n}"
    text = f"Buenos días:\n\nLes escribo por el asunto {n}. " + "Necesito que revisen la factura adjunta. " * 12
    mail.set_content(text + "\n\nUn saludo.")
    if n % 7 == 0:
        mail.add_alternative(f"<p>Buenos días:</p><p>Asunto <b>{n}</b>.</p><script>alert(1)</script>", subtype="html")
    if n % 20 == 0:
        mail.add_attachment(f"línea {n}\n".encode() * 200, maintype="text", subtype="plain", filename=f"nota-{n}.txt")
    return mail.as_bytes()


def bare_fetch(server, user) -> tuple[int, float]:
    """Every body of the folder with IMAPClient, as fast as it goes."""
    from imapclient import IMAPClient

    from plugins.inboxes.connectors.tls import client_context

    started = time.perf_counter()
    client = IMAPClient(
        "localhost", server.ports["imaps"], ssl=True, ssl_context=client_context(ca_file=str(server.ca_file))
    )
    client.login(user.name, user.password)
    client.select_folder("INBOX", readonly=True)
    uids = client.search(["ALL"])
    fetched = 0
    for start in range(0, len(uids), BATCH):
        for data in client.fetch(uids[start : start + BATCH], ["BODY.PEEK[]"]).values():
            fetched += len(data[b"BODY[]"]) > 0
    client.logout()
    return fetched, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5_000)
    args = parser.parse_args()

    from plugins.inboxes.dovecot import DovecotServer, find_dovecot

    if not find_dovecot():
        sys.exit("Dovecot is not installed: apt-get install -y dovecot-imapd dovecot-pop3d")
    with DovecotServer() as server, bench_app(["inboxes"], ALLOW_PRIVATE_HOSTS=True) as app, app.app_context():
        user = server.add_user("soporte@bench.example", PASSWORD)
        for n in range(args.messages):
            server.deliver(user, message(n))

        fetched, bare = bare_fetch(server, user)
        assert fetched == args.messages, fetched

        from sqlalchemy import func, select

        from core.extensions import db
        from core.provisioning import create_tenant
        from plugins.inboxes import mailboxes
        from plugins.inboxes.models import Contract, ContractInbox, Mailbox, Request, RequestMessage
        from plugins.inboxes.sync import Lease, sync_mailbox
        from tenants.context import tenant_context
        from tenants.licensing import set_licence

        tenant = create_tenant("bench", "Asesoría Bench", "es")
        set_licence(tenant, "inboxes", True)
        with tenant_context(tenant.id):
            from core.clients.models import Client

            client = Client(
                kind="company",
                tax_id="BENCH1",
                tax_id_type="other",
                country="ES",
                company_name="Cliente",
                name="Cliente",
            )
            db.session.add(client)
            db.session.flush()
            box = mailboxes.save_mailbox(
                None,
                "inbound",
                mailboxes.MailboxData(
                    name="Soporte",
                    host="localhost",
                    port=server.ports["imaps"],
                    username=user.name,
                    password=PASSWORD,
                    ca_certificate=server.ca_file.read_text(),
                    after_fetch="mark_seen",
                ),
            )
            contract = Contract(client_id=client.id, name="Contrato")
            db.session.add(contract)
            db.session.flush()
            db.session.add(ContractInbox(contract_id=contract.id, mailbox_id=box.id))
            db.session.commit()

            statements = StatementCounter(db.engine)
            runs = stored = 0
            started = time.perf_counter()
            while True:
                lease = Lease.acquire(box.id)
                try:
                    summary = sync_mailbox(db.session.get(Mailbox, box.id), lease)
                finally:
                    lease.release()
                runs += 1
                stored += summary["fetched"]
                assert "error" not in summary, summary
                if not summary["remaining"]:
                    break
            ours = time.perf_counter() - started
            requests = db.session.scalar(select(func.count()).select_from(Request))
            entries = db.session.scalar(select(func.count()).select_from(RequestMessage))
        assert stored == entries == args.messages, (stored, entries)
        print(f"engine: {db.engine.dialect.name}; Dovecot {server.binary}, {args.messages:,} messages over IMAPS")
        print(f"bare IMAPClient fetch loop: {bare:.2f} s ({args.messages / bare:,.0f} messages/s)")
        print(
            f"inboxes sync into requests: {ours:.2f} s ({args.messages / ours:,.0f} messages/s) in {runs} runs; "
            f"{requests:,} requests, {entries - requests:,} follow-ups; "
            f"{statements.count / args.messages:.1f} SQL statements a message"
        )
        print(f"ratio: the sync takes {ours / bare:.1f} times the bare fetch")


if __name__ == "__main__":
    main()
