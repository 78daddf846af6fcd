"""Demo data (``flask demo load``) and the demo's DEHú (``make run``).

``make run`` starts the DEHú simulator as a process (``demo_services``) on 127.0.0.1:10443 with its
state in ``instance/sedes-dehu`` (its CA, enrolments and notifications survive restarts). The demo
load, which runs first, points the catalogue's DEHú at it (base URL and its CA), and gives the demo
tenant's clients certificates issued by that CA (the simulator enrols them on first use) and a DEHú
mailbox each. The simulator puts a few notifications at the disposal of each NIF the first time it
is asked: press "Consultar buzón" on a client (or "Check all its mailboxes" on its Notificaciones
tab) and they arrive; then open one (comparecencia) to get its document and acuse.

The same simulator speaks the Seguridad Social's WSCN service: the catalogue's Seguridad Social points
at it too, and Marta Soler Ibáñez (persona física) keeps her NAF and a Seguridad Social mailbox read
with her own certificate; its notifications are accepted by signing the acuse (comparecencia).

The TEU board reads a BOE simulator of its own (``plugins.sedes.simulator.teu``, on 127.0.0.1:10444,
its CA in ``instance/sedes-boe``) that publishes yesterday's and today's edicts naming the demo
clients' NIFs: "Search the TEU now" on the notifications list brings them as notifications of kind TEU.

Idempotent: a second load adds nothing.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import select

from core.api import Client, DemoService, User, db, utcnow
from plugins.sedes import certificates, mailboxes, pki
from plugins.sedes.catalogue import ensure_catalogue
from plugins.sedes.client_fields import CCCS, NAF_KEY, client_fields
from plugins.sedes.models import Sede, SedeMailbox

DEMO_TENANT = "demo"
SEDE = "dehu"
SS_SEDE = "seg_social"
SS_HOLDERS = ("48123456G",)  # clients that also get a Seguridad Social mailbox, with their NAF/CCC
DEFAULT_PORT = 10443
BOE_PORT = 10444
NOTIFICATIONS_PER_NIF = 3
CA_NAME = "DEHú Simulador AC"
PASSWORD = "demo-certificado"
DEMO_STAFF = "gestor@demo.test"  # core's demo manager: uploads the certificates, opens the mailboxes
# The demo's clients (core's demo data) that get a certificate and a DEHú mailbox: a representative
# of each company, the person's own certificate.
HOLDERS = (
    ("B4612345A", "representante", "48123456G", "MARTA", "SOLER IBÁÑEZ"),
    ("B2876543F", "representante", "52987654R", "JAVIER", "ORTEGA RUIZ"),
    ("48123456G", "persona_fisica", "48123456G", "MARTA", "SOLER IBÁÑEZ"),
)


def port() -> int:
    return int(os.environ.get("VENTANILLA_DEMO_DEHU_PORT") or DEFAULT_PORT)


def state_dir(app=None) -> Path:
    app = app or current_app
    return Path(app.config.get("INSTANCE_PATH") or app.instance_path) / "sedes-dehu"


def boe_port() -> int:
    return int(os.environ.get("VENTANILLA_DEMO_BOE_PORT") or BOE_PORT)


def boe_state_dir(app=None) -> Path:
    return state_dir(app).with_name("sedes-boe")


def authority(app=None) -> pki.CertificateAuthority:
    """The simulator's CA, kept in its state directory (made there the first time)."""
    return pki.CertificateAuthority.stored(state_dir(app), CA_NAME)


def _issue(ca: pki.CertificateAuthority, client: Client, kind: str, person_nif: str, given: str, surname: str):
    if kind == "representante":
        return ca.representante(person_nif, client.tax_id, client.name.upper(), given, surname)
    return ca.persona_fisica(person_nif, given, surname)


def load(tenant) -> list[str]:
    if tenant.slug != DEMO_TENANT:
        return []
    lines = []
    ensure_catalogue()
    ca = authority()
    url = f"https://127.0.0.1:{port()}"
    pem = ca.cert_pem.decode()
    for code in (SEDE, SS_SEDE):
        sede = db.session.get(Sede, code)
        if sede is not None and (sede.base_url != url or sede.ca_certificates != pem):
            sede.base_url = url
            sede.ca_certificates = pem
            db.session.commit()
            lines.append(f"sede {code} points at the DEHú simulator {url}")
    lines += _board()
    staff = db.session.scalar(select(User).where(User.email == DEMO_STAFF))
    if staff is None:
        return lines
    for tax_id, kind, person_nif, given, surname in HOLDERS:
        client = db.session.scalar(select(Client).where(Client.tax_id == tax_id))
        if client is None:
            continue
        if db.session.scalar(select(SedeMailbox.id).where(SedeMailbox.client_id == client.id)) is not None:
            continue
        # Through the services, as the office's manager would: upload, then Nuevo buzón.
        data = _issue(ca, client, kind, person_nif, given, surname).pkcs12(PASSWORD)
        certificate = certificates.upload(tenant, staff, certificates.UploadData(data, PASSWORD, client.id))
        mailboxes.create_mailbox(
            tenant,
            staff,
            mailboxes.MailboxData(
                SEDE, certificate.id, client.id, next_sync_at=utcnow() + timedelta(days=1), period_days=1
            ),
        )
        lines.append(f"certificate and DEHú mailbox of {client.name}")
        if tax_id in SS_HOLDERS:
            _seguridad_social_mailbox(tenant, staff, client, certificate.id)
            lines.append(f"NAF/CCC and Seguridad Social mailbox of {client.name}")
    return lines


def _board() -> list[str]:
    """The catalogue's TEU reads the demo's BOE simulator (its URL and CA)."""
    from plugins.sedes.simulator.teu import BoeSimulator
    from plugins.sedes.teu.board import board_sede, configure

    url = f"https://127.0.0.1:{boe_port()}"
    pem = BoeSimulator.authority(boe_state_dir()).cert_pem.decode()
    sede = board_sede()
    if sede.base_url == url and sede.ca_certificates == pem:
        return []
    configure(url, pem)
    return [f"the TEU board reads the BOE simulator {url}"]


def _seguridad_social_mailbox(tenant, staff, client: Client, certificate_id: int) -> None:
    """The client's Seguridad Social code (the one the simulator addresses its notifications to)
    through the client fields, then its mailbox through Nuevo buzón's rules."""
    from plugins.sedes.simulator.wscn import demo_code

    kind, code = demo_code(client.tax_id)
    client_fields().save({client.id: {NAF_KEY: code} if kind == "NAF" else {CCCS: [code]}})
    db.session.commit()
    mailboxes.create_mailbox(
        tenant,
        staff,
        mailboxes.MailboxData(
            SS_SEDE, certificate_id, client.id, next_sync_at=utcnow() + timedelta(days=1), period_days=1
        ),
    )


def services(app) -> list[DemoService]:
    """The DEHú (and WSCN) simulator and the BOE simulator for ``make run``."""
    folder = state_dir(app)
    boe_folder = boe_state_dir(app)
    named = sorted({tax_id for tax_id, *_ in HOLDERS} | {person for _, _, person, *_ in HOLDERS})
    return [
        DemoService(
            "sedes",
            (
                sys.executable,
                "-m",
                "plugins.sedes.simulator",
                "--port",
                str(port()),
                "--state-dir",
                str(folder),
                "--demo-notifications",
                str(NOTIFICATIONS_PER_NIF),
                "--latency",
                "0.2",
            ),
            lines=(
                f"DEHú simulator on https://127.0.0.1:{port()} (state in {folder})",
                "open a client (Talleres del Turia SL), tab Buzones electrónicos → Consultar buzón; "
                "the notifications arrive in its Notificaciones tab and in /demo/sedes/notifications/",
                "Marta Soler Ibáñez also has a Seguridad Social mailbox (WSCN, with her NAF) on the same simulator",
            ),
        ),
        DemoService(
            "sedes-teu",
            (
                sys.executable,
                "-m",
                "plugins.sedes.simulator.teu",
                "--port",
                str(boe_port()),
                "--state-dir",
                str(boe_folder),
                "--nifs",
                ",".join(named),
            ),
            lines=(
                f"BOE (TEU) simulator on https://127.0.0.1:{boe_port()}: its edicts name the demo clients; "
                "press Search the TEU now in /demo/sedes/notifications/",
            ),
        ),
    ]
