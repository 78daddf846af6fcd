"""Demonstration data for ``make run``: the Italian demo tenant (``demo-it``) becomes a reseller.

Two certified domains (one activated by hand in the operator console, one through the loopback
HTTP gestore that ``demo_services`` starts), holders with addresses and activities, boxes in
every state, two sales agents with packages, and an assistant with their own login and boxes.
Idempotent: a tenant that already has a PEC domain is left alone.
"""

from __future__ import annotations

import os
import sys
import uuid
from datetime import timedelta

from codicefiscale import codicefiscale
from sqlalchemy import select
from stdnum import luhn

from core.api import DemoService, Tenant, User, db, tenant_context, tenant_today, utcnow
from plugins.pec import accounts, agents, assistants, holders
from plugins.pec.activation import service as activation
from plugins.pec.comuni import comuni
from plugins.pec.identity import COMPANY, PERSON
from plugins.pec.lifecycle import BoxState
from plugins.pec.models import Box, Domain

DEMO_TENANT = "demo-it"
RESELLER_USER = "admin@demo-it.test"
ASSISTANT = ("assistente@demo-it.test", "Anna", "Assistente", "demo-assistant")
PROVIDER_PORT = int(os.environ.get("PEC_DEMO_PROVIDER_PORT", "8765"))
PROVIDER_TOKEN = "demo-gestore-token"
PROVIDER_SECRET = "demo-gestore-secret"
MANUAL_DOMAIN = "pec.studio-demo.example"
HTTP_DOMAIN = "cert.studio-demo.example"


def _piva(base: str) -> str:
    return base + luhn.calc_check_digit(base)


def _cf(last: str, first: str, sex: str, born: str, place: str) -> str:
    return codicefiscale.encode(lastname=last, firstname=first, gender=sex, birthdate=born, birthplace=place)


def _cap(name: str, sigla: str) -> str:
    return comuni().get(name, sigla).caps[0]


# (kind, last or ragione sociale, first, sex, born, birthplace, e-mail, comune, sigla, street, phone, mobile)
HOLDERS = [
    (
        PERSON,
        "Rossi",
        "Mario",
        "M",
        "15/04/1978",
        "Roma",
        "mario.rossi@cliente.test",
        "Roma",
        "RM",
        "Via Appia Nuova 120",
        "06 4857 3921",
        "347 218 9053",
    ),
    (
        PERSON,
        "Esposito",
        "Giulia",
        "F",
        "03/11/1985",
        "Napoli",
        "giulia.esposito@cliente.test",
        "Napoli",
        "NA",
        "Via Toledo 45",
        "081 552 7364",
        "",
    ),
    (
        PERSON,
        "Ferrari",
        "Luca",
        "M",
        "22/07/1969",
        "Torino",
        "luca.ferrari@cliente.test",
        "Samone",
        "TO",
        "Via Roma 3",
        "0125 53 2917",
        "333 481 2765",
    ),
    (
        PERSON,
        "Colombo",
        "Sara",
        "F",
        "09/02/1991",
        "Milano",
        "sara.colombo@cliente.test",
        "Milano",
        "MI",
        "Corso Buenos Aires 18",
        "02 2951 8463",
        "",
    ),
    (
        COMPANY,
        "Trattoria Da Gino S.r.l.",
        "",
        "",
        "",
        "",
        "amministrazione@dagino.test",
        "Firenze",
        "FI",
        "Via dei Neri 12",
        "055 213 8946",
        "",
    ),
    (
        COMPANY,
        "Edilizia Lombarda S.p.A.",
        "",
        "",
        "",
        "",
        "segreteria@ediliziaLombarda.test",
        "Bergamo",
        "BG",
        "Via Borgo Palazzo 77",
        "035 246 1938",
        "",
    ),
]
COMPANY_PIVAS = {
    "Trattoria Da Gino S.r.l.": _piva("0528341" + "048"),
    "Edilizia Lombarda S.p.A.": _piva("0317624" + "016"),
}


def load(tenant) -> list[str]:
    if tenant.slug != DEMO_TENANT:
        return []
    if db.session.scalar(select(Domain.id).limit(1)) is not None:
        return []
    today = tenant_today(tenant)
    out = []
    account = accounts.ensure_reseller_account(tenant)
    admin = db.session.scalar(select(User).where(User.email == RESELLER_USER))
    if admin is not None:
        account.user_id = admin.id
    manual = Domain(name=MANUAL_DOMAIN, certified_on=today - timedelta(days=400), mx_host="mx.gestore-demo.example")
    http = Domain(
        name=HTTP_DOMAIN, certified_on=today - timedelta(days=120), mx_host="mx.gestore-demo.example", provider="http"
    )
    db.session.add_all([manual, http])
    db.session.flush()
    activation.save_config(
        "http",
        {
            "base_url": f"http://127.0.0.1:{PROVIDER_PORT}",
            "api_token": PROVIDER_TOKEN,
            "webhook_secret": PROVIDER_SECRET,
        },
    )
    clients = []
    for kind, last, first, sex, born, place, email, comune, sigla, street, phone, mobile in HOLDERS:
        if kind == PERSON:
            data = holders.HolderData(PERSON, _cf(last, first, sex, born, place), first, last, email=email, phone=phone)
        else:
            data = holders.HolderData(COMPANY, COMPANY_PIVAS[last], company_name=last, email=email, phone=phone)
        client = holders.create_holder(data, admin)
        address = holders.add_address(
            client,
            holders.AddressData(street, comune, sigla, _cap(comune, sigla), "IT", phone, mobile),
        )
        clients.append((client, address))
    rossi, esposito, ferrari, colombo, gino, edilizia = clients
    holders.add_activity(
        rossi[0], holders.ActivityData("Studio Rossi Consulenze", _piva("0934712" + "058"), "Consulenza", rossi[1].id)
    )
    out.append(f"{len(clients)} PEC holders created")

    north = agents.create_agent(
        agents.AgentData("Agenzia Nord S.a.s.", "Paolo", "Brambilla", "paolo.brambilla@agenti.test", "02 3957 1846"),
        [manual.id, http.id],
    )
    south = agents.create_agent(
        agents.AgentData("", "Rosa", "Greco", "rosa.greco@agenti.test", "081 764 2918"), [manual.id]
    )
    north_package = agents.add_package(north, "Professionisti 2026", 10, 1)
    agents.add_package(north, "Imprese triennale", 5, 3)
    south_package = agents.add_package(south, "Campania base", 3, 1)

    def box(name, domain, holder, state, *, days=None, agent=None, package=None, creator=None, reason=""):
        client, address = holder
        row = Box(
            domain_id=domain.id,
            local_part=name,
            address=f"{name}@{domain.name}",
            holder_id=client.id,
            holder_address_id=address.id,
            state=BoxState.PENDING.value,
            box_type="standard",
            mailbox_mb=1024,
            years=1,
            renewal="manual",
            request_id=uuid.uuid4().hex,
            provider=domain.provider,
            agent_id=agent.id if agent else None,
            package_id=package.id if package else None,
            created_by_id=(creator or admin).id if (creator or admin) else None,
        )
        if state != BoxState.PENDING:
            row.submitted_at = utcnow()
        if days is not None:
            # ``days`` from today to the expiry: negative when it is already past.
            row.expires_on = today + timedelta(days=days)
            activated_on = row.expires_on + timedelta(days=1) - timedelta(days=365)
            row.activated_at = utcnow() - timedelta(days=(today - activated_on).days)
        row.state = state.value
        row.refusal_reason = reason
        if state == BoxState.DELETED:
            row.deleted_on = today + timedelta(days=days + 91)
        db.session.add(row)
        return row

    box("mario.rossi", manual, rossi, BoxState.ACTIVE, days=200, agent=north, package=north_package)
    box("studio.rossi", manual, rossi, BoxState.ACTIVE, days=25, agent=north, package=north_package)
    box("giulia.esposito", manual, esposito, BoxState.ACTIVE, days=80, agent=south, package=south_package)
    box("luca.ferrari", http, ferrari, BoxState.ACTIVE, days=320)
    box("sara.colombo", manual, colombo, BoxState.PENDING)
    box("amministrazione", manual, gino, BoxState.PENDING, agent=south)
    box("ufficio.tecnico", manual, edilizia, BoxState.REFUSED, reason="Documento d'identità illeggibile")
    box("dagino", manual, gino, BoxState.EXPIRED, days=-12)
    box("cantieri", manual, edilizia, BoxState.SUSPENDED, days=-45)
    box("vecchia.casella", manual, esposito, BoxState.DELETED, days=-120)
    http_pending = box("direzione", http, edilizia, BoxState.PENDING)
    out.append("PEC boxes created in every state")

    assistant, _password = assistants.create_assistant(
        tenant,
        assistants.AssistantData(
            first_name=ASSISTANT[1],
            last_name=ASSISTANT[2],
            email=ASSISTANT[0],
            phone="02 8573 1946",
            company_name="Servizi Digitali Brianza S.r.l.",
            street="Via Italia 8",
            comune="Monza",
            provincia="MB",
            cap=_cap("Monza", "MB"),
            domain_id=manual.id,
            pec_addresses=["anna.assistente@pec.studio-demo.example"],
            package_mode="pacchetto",
        ),
        password=ASSISTANT[3],
    )
    assistants.add_package(tenant, assistant, "Pacchetto assistente", 5, 1)
    box("anna.clienti", manual, colombo, BoxState.ACTIVE, days=150, creator=assistant.user)
    box("brianza.uffici", manual, ferrari, BoxState.PENDING, creator=assistant.user)
    out.append(f"assistant {ASSISTANT[0]} created with two boxes of their own")
    db.session.commit()
    activation.request_activation(tenant, http_pending)
    return out


def services(app) -> list[DemoService]:
    argv = (
        sys.executable,
        "-m",
        "plugins.pec.test_provider",
        "--port",
        str(PROVIDER_PORT),
        "--token",
        PROVIDER_TOKEN,
        "--secret",
        PROVIDER_SECRET,
        "--delay",
        "5",
    )
    return [
        DemoService(
            "pec-gestore",
            argv,
            lines=(
                f"PEC: boxes on {HTTP_DOMAIN} are activated by a loopback gestore (port {PROVIDER_PORT}) 5 s after"
                " their address is saved",
                f"PEC: boxes on {MANUAL_DOMAIN} wait for the gestore in /operator/pec/",
            ),
        )
    ]


def logins() -> list[str]:
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == DEMO_TENANT))
    if tenant is None:
        return []
    with tenant_context(tenant.id):
        account = accounts.reseller_account()
        assistant = db.session.scalar(select(User).where(User.email == ASSISTANT[0]))
        assistant_account = accounts.account_of(assistant) if assistant else None
        lines = []
        if account is not None:
            lines.append(
                f"{'demo-it PEC':<17} /demo-it/pec/     reseller code {account.code}"
                f" (held by {RESELLER_USER} / demo-admin)"
            )
        if assistant_account is not None:
            lines.append(
                f"{'demo-it PEC':<17} /demo-it/pec/     assistant {ASSISTANT[0]} / {ASSISTANT[3]}"
                f" (code {assistant_account.code})"
            )
        lines.append(f"{'PEC gestore':<17} /operator/pec/    the operator's login")
        return lines
