"""What the isolation and permission walkers need of the pec plugin (see tests/walker.py)."""

from __future__ import annotations

from sqlalchemy import select

ROW_ARGUMENTS = {
    "box_id": "pec_box",
    "holder_address_id": "pec_holder_address",
    "activity_id": "pec_activity",
    "document_id": "pec_document",
    "domain_id": "pec_domain",
    "agent_id": "pec_agent",
    "package_id": "pec_package",
    "assistant_id": "pec_assistant",
    "assistant_package_id": "pec_assistant_package",
    "pec_import_id": "pec_import",
}
OPERATOR_ARGUMENTS = {"pec_box_id": "pec_box", "pec_domain_id": "pec_domain"}


def populate(app, tenant_id: int, client_id: int, marker: str) -> dict:
    """One row of each kind in the tenant, every text carrying ``marker``: a domain, the client as a
    holder with an address and an activity, an agent with the domain and a package, an active box
    of the client in the package with a PDF document, an assistant with a package, an import."""
    from core.api import Client, Tenant, db, tenant_context
    from plugins.pec import agents, assistants, boxes, holders
    from plugins.pec.activation import service as activation
    from plugins.pec.models import Domain, ImportRun
    from tests.core.files.samples import pdf

    slug = marker.lower().replace("_", "-")
    with app.app_context(), tenant_context(tenant_id):
        tenant = db.session.get(Tenant, tenant_id)
        client = db.session.get(Client, client_id)
        domain = Domain(name=f"pec.{slug}.example", notes=f"{marker} domain", provider="manual")
        db.session.add(domain)
        db.session.flush()
        address = holders.add_address(
            client, holders.AddressData(f"Via {marker} 1", "Samone", "TO", "10010", "IT", "0125 53 2917")
        )
        activity = holders.add_activity(client, holders.ActivityData(f"{marker} Attività S.r.l.", "", marker))
        agent = agents.create_agent(
            agents.AgentData(f"{marker} Agenzia", "", "", f"agent-{slug}@agents.test"), [domain.id]
        )
        package = agents.add_package(agent, f"{marker} package", 5, 1)
        box = boxes.Box(
            domain_id=domain.id,
            local_part=slug,
            address=f"{slug}@{domain.name}",
            holder_id=client.id,
            holder_address_id=address.id,
            activity_id=activity.id,
            request_id=f"walker-{slug}",
            agent_id=agent.id,
        )
        db.session.add(box)
        db.session.flush()
        activation.activate(tenant, box)
        boxes.set_package(box, package.id)
        document = boxes.add_document(tenant, box, "activation", pdf(), f"{marker}.pdf", marker, None)
        assistant, _password = assistants.create_assistant(
            tenant,
            assistants.AssistantData(
                first_name="Assistente",
                last_name="Walker",
                email=f"assistant-{slug}@assistants.test",
                company_name=f"{marker} Servizi",
                domain_id=domain.id,
                pec_addresses=[f"{slug}@pec.example.it"],
            ),
        )
        assistant_package = assistants.add_package(tenant, assistant, f"{marker} allowance", 3, 1)
        run = ImportRun(
            kind="holders", filename=f"{marker}.csv", data=f"cf\n{marker}\n".encode(), problems=[[2, "CF", marker]]
        )
        db.session.add(run)
        db.session.commit()
        return {
            "pec_box": box.id,
            "pec_holder_address": address.id,
            "pec_activity": activity.id,
            "pec_document": document.id,
            "pec_domain": domain.id,
            "pec_agent": agent.id,
            "pec_package": package.id,
            "pec_assistant": assistant.id,
            "pec_assistant_package": assistant_package.id,
            "pec_import": run.id,
        }


def snapshot(app, tenant_id: int) -> dict:
    from core.api import db, tenant_context
    from plugins.pec.models import (
        Agent,
        AgentDomain,
        Assistant,
        Box,
        BoxDocument,
        Domain,
        HolderActivity,
        HolderAddress,
        HolderProfile,
        ImportRun,
        Package,
        PanelAccount,
        ProviderConfig,
    )

    with app.app_context(), tenant_context(tenant_id):
        return {
            "boxes": sorted(
                (b.id, b.state, b.agent_id, b.package_id, b.holder_id, b.expires_on, b.agent_requested)
                for b in db.session.scalars(select(Box))
            ),
            "addresses": sorted((a.id, a.street, a.phone) for a in db.session.scalars(select(HolderAddress))),
            "activities": sorted((a.id, a.company_name) for a in db.session.scalars(select(HolderActivity))),
            "profiles": sorted((p.id, p.partita_iva, p.birth_date) for p in db.session.scalars(select(HolderProfile))),
            "domains": sorted((d.id, d.name, d.active, d.provider) for d in db.session.scalars(select(Domain))),
            "agents": sorted((a.id, a.active, a.email) for a in db.session.scalars(select(Agent))),
            "agent_domains": sorted((a.agent_id, a.domain_id) for a in db.session.scalars(select(AgentDomain))),
            "packages": sorted((p.id, p.state, p.size) for p in db.session.scalars(select(Package))),
            "assistants": sorted(
                (a.id, a.active, a.package_mode, tuple(a.pec_addresses)) for a in db.session.scalars(select(Assistant))
            ),
            "documents": sorted((d.id, d.kind) for d in db.session.scalars(select(BoxDocument))),
            "imports": sorted((i.id, i.finished_at) for i in db.session.scalars(select(ImportRun))),
            "accounts": sorted((a.id, a.code, a.user_id) for a in db.session.scalars(select(PanelAccount))),
            "providers": sorted((p.id, p.settings) for p in db.session.scalars(select(ProviderConfig))),
        }
