"""CSV import of clients: every row checked, valid rows written set-based, a per-row report.

Re-importing the same file creates nothing new: rows whose tax id exists update that client
(only what changed; a column the file lacks keeps the client's value, and an address is added
when the client does not have it yet), so the job is also safe to run twice.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from flask import current_app
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import insert, select

from core.audit.bulk import audited_write
from core.audit.models import CREATE
from core.audit.recorder import acting_as, make_row, record_many
from core.auth.models import User
from core.clients import fields as client_fields
from core.clients.models import Client, ClientAddress, ClientImport, GroupClient
from core.clients.portal import revoke_portals
from core.clients.services import (
    COLUMN_FIELDS,
    ClientData,
    announce_created,
    announce_updated,
    check,
    fold,
    own_group_ids,
    sees_every_client,
    tax_id_unavailable,
)
from core.clients.taxids import parse_tax_id
from core.csvstream import unneutralise
from core.errors import DomainError
from core.extensions import db, utcnow
from core.groups.models import Group
from core.maintenance import analyse

MAX_ROWS = 100_000
BATCH = 1000
# Rows written from which an import refreshes the planner's statistics itself.
ANALYSE_AFTER = 500

HEADERS = {
    "tax_id": {
        "taxid",
        "nif",
        "cif",
        "nie",
        "dni",
        "nifcif",
        "codicefiscale",
        "cf",
        "partitaiva",
        "piva",
        "vat",
        "idfiscal",
    },
    "country": {"country", "pais", "paese", "nazione"},
    "kind": {"kind", "type", "tipo"},
    "first_name": {"firstname", "name", "nombre", "nome"},
    "last_name": {"lastname", "lastnames", "surname", "apellidos", "cognome"},
    "company_name": {"companyname", "company", "razonsocial", "ragionesociale", "empresa", "societa", "azienda"},
    "email": {"email", "correo", "correoelectronico", "mail"},
    "phone": {"phone", "telephone", "telefono", "tel", "movil", "cellulare"},
    "notes": {"notes", "notas", "note"},
    "locale": {"language", "idioma", "lingua", "locale"},
    "groups": {"groups", "grupos", "gruppi", "centros", "centri"},
    "street": {"street", "address", "direccion", "domicilio", "indirizzo", "via"},
    "postal_code": {"postalcode", "zip", "cp", "codigopostal", "cap"},
    "city": {"city", "ciudad", "poblacion", "localidad", "municipio", "citta", "comune"},
    "province": {"province", "provincia"},
    "address_country": {"addresscountry", "paisdireccion", "paeseindirizzo"},
    "active": {"active", "activo", "attivo"},
}
KINDS = {
    "person": "person",
    "persona": "person",
    "fisica": "person",
    "personafisica": "person",
    "company": "company",
    "empresa": "company",
    "juridica": "company",
    "personajuridica": "company",
    "societa": "company",
    "azienda": "company",
    "personagiuridica": "company",
}
NO = {"no", "false", "0", "n", "falso", "inactive", "inactivo"}
# A language as people write it in a file: its code or its name in any of the three languages.
LOCALES = {
    **{code: code for code in ("es", "it", "en")},
    **dict.fromkeys(("espanol", "castellano", "spanish", "spagnolo"), "es"),
    **dict.fromkeys(("italiano", "italian"), "it"),
    **dict.fromkeys(("english", "ingles", "inglese"), "en"),
}

# How the report names the field a problem is in, in the reader's language.
FIELD_LABELS = {
    "file": _l("CSV file"),
    "tax_id": _l("Tax id"),
    "country": _l("Country"),
    "kind": _l("Type"),
    "first_name": _l("First name"),
    "last_name": _l("Last names"),
    "company_name": _l("Company name"),
    "email": _l("E-mail"),
    "phone": _l("Phone"),
    "notes": _l("Notes"),
    "locale": _l("Language"),
    "groups": _l("Groups"),
}


def field_label(field_name: str, plugin_labels: dict | None = None) -> str:
    if field_name in FIELD_LABELS:
        return str(FIELD_LABELS[field_name])
    return str((plugin_labels or {}).get(field_name, field_name))


def field_labeller(tenant):
    """``field_label`` that also names the tenant's plugin fields ("Section: Label")."""
    plugin_labels = client_fields.labels(client_fields.field_sets(tenant))
    return lambda field_name: field_label(field_name, plugin_labels)


@dataclass
class Row:
    number: int
    values: dict


def _key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", fold(header))


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _reader(text: str):
    """A CSV reader in the file's own dialect (comma, semicolon, tab or bar), guessed from its start."""
    try:
        dialect = csv.Sniffer().sniff(text[:20000], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    return csv.reader(io.StringIO(text), dialect)


@dataclass
class ParsedFile:
    fields: set[str]
    rows: list[Row]


def parse(data: bytes, plugin_headers: dict[str, str] | None = None) -> ParsedFile:
    """The file's columns and rows, keyed by field (plugin fields by their full name, from
    ``plugin_headers``: header key → full name); raises ``DomainError`` when the file itself is
    unusable."""
    text = _decode(data)
    if "\x00" in text:
        raise DomainError(_l("The file is not a CSV text file."))
    reader = _reader(text)
    header = next(reader, None)
    if not header:
        raise DomainError(_l("The file is empty."))
    fields = {}
    for index, name in enumerate(header):
        for field_name, accepted in HEADERS.items():
            if _key(name) in accepted and field_name not in fields.values():
                fields[index] = field_name
        plugin_field = (plugin_headers or {}).get(_key(name))
        if index not in fields and plugin_field and plugin_field not in fields.values():
            fields[index] = plugin_field
    if "tax_id" not in fields.values():
        raise DomainError(_l("The file has no tax id column (for example NIF, CIF, codice fiscale or tax_id)."))
    rows = []
    for number, cells in enumerate(reader, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        values = {fields[i]: unneutralise(cell.strip()).strip() for i, cell in enumerate(cells) if i in fields}
        rows.append(Row(number, values))
        if len(rows) > MAX_ROWS:
            raise DomainError(_l("The file has more than %(n)s rows: split it.", n=MAX_ROWS))
    return ParsedFile(set(fields.values()), rows)


def start_import(
    tenant, user, filename: str, data: bytes, group_id: int | None, language: str, *, notify: bool = False
) -> ClientImport:
    """Keep the uploaded file and start the import job; the file is checked by the job, row by row.

    ``notify``: whether the new clients are told (e-mail, push) of what the plugins do for them
    (the certificates asked of them...). Off unless the person importing chooses it: a firm that
    moves its 20,000 clients in must not mail them all by accident. What is held back can be sent
    later from the import's report (``held_notices``, ``send_held_notices``).
    """
    from core.jobs.services import enqueue

    if not data:
        raise DomainError(_l("The file is empty."), field="file")
    if len(data) > current_app.config["CLIENT_IMPORT_MAX_BYTES"]:
        raise DomainError(
            _l("The file is larger than %(n)s MB.", n=current_app.config["CLIENT_IMPORT_MAX_BYTES"] // 1_000_000),
            field="file",
        )
    if group_id is None and not sees_every_client(user):
        raise DomainError(_l("Choose one of your groups for the new clients."), field="group")
    if group_id is not None and not sees_every_client(user) and group_id not in own_group_ids(user):
        raise DomainError(_l("You cannot put clients in a group you do not belong to."), field="group")
    job = ClientImport(filename=filename[:255], data=data, group_id=group_id, language=language, created_by_id=user.id)
    db.session.add(job)
    db.session.commit()
    run = enqueue(tenant, "core.clients_import", {"import_id": job.id, "notify": bool(notify)}, started_by=user)
    job.job_run_id = run.id
    db.session.commit()
    return job


# What a row may say about a client that exists already; a column the file lacks keeps the
# client's value (a file with only tax ids and e-mails must not erase names or phones). The tax
# id finds the client and the name follows from the others.
MERGED = tuple(name for name in COLUMN_FIELDS if name not in ("tax_id", "name"))


def _plugin_cells(row: Row, plugin_fields: dict) -> dict:
    """The row's plugin cells as values (``{full name: value}``); a cell that cannot be one raises."""
    parsed = {}
    for name, field in plugin_fields.items():
        if name in row.values:
            try:
                parsed[name] = client_fields.parse_cell(field, row.values[name])
            except DomainError as error:
                raise DomainError(error.message, field=name) from error
    return parsed


def _row_data(
    row: Row, groups_by_name: dict[str, Group], default_country: str
) -> tuple[ClientData, list[int], dict | None, bool | None]:
    """What the row says; ``active`` is None when the row does not say."""
    values = row.values
    kind = KINDS.get(_key(values.get("kind", "")), "") if values.get("kind") else ""
    if values.get("kind") and not kind:
        raise DomainError(_l("Unknown type %(value)s: write person or company.", value=values["kind"]), field="kind")
    group_ids = []
    for name in filter(None, (n.strip() for n in re.split(r"[|,]", values.get("groups", "")))):
        group = groups_by_name.get(fold(name))
        if group is None:
            raise DomainError(_l("There is no group called %(name)s.", name=name), field="groups")
        group_ids.append(group.id)
    country = (values.get("country") or default_country).upper()
    address = None
    if values.get("street"):
        address = {key: values.get(key, "") for key in ("street", "postal_code", "city", "province")}
        address["country"] = (values.get("address_country") or country).upper()[:2]
    data = ClientData(
        tax_id=values.get("tax_id", ""),
        country=country,
        kind=kind,
        first_name=values.get("first_name", ""),
        last_name=values.get("last_name", ""),
        company_name=values.get("company_name", ""),
        email=values.get("email", ""),
        phone=values.get("phone", ""),
        notes=values.get("notes", ""),
        locale=LOCALES.get(_key(values.get("locale", "")), values.get("locale", "")),
    )
    active = _key(values["active"]) not in NO if values.get("active") else None
    return data, group_ids, address, active


def _normalised_tax_id(data: ClientData) -> str | None:
    try:
        return parse_tax_id(data.country, data.tax_id).value
    except DomainError:
        return None


def _existing(tax_ids: set[str]) -> dict:
    """What the file may change of the tenant's clients whose tax id it names, a batch at a time
    (plain rows: a file of 100,000 known clients loads no ORM objects here)."""
    columns = [Client.id, Client.tax_id, Client.active, *(getattr(Client, name) for name in MERGED)]
    wanted, found = sorted(tax_ids), {}
    for start in range(0, len(wanted), BATCH):
        for client in db.session.execute(select(*columns).where(Client.tax_id.in_(wanted[start : start + BATCH]))):
            found[client.tax_id] = client
    return found


def _merge(data: ClientData, client, fields: set[str]) -> None:
    for name in MERGED:
        if name not in fields or (name == "kind" and not data.kind):
            setattr(data, name, getattr(client, name) or "")


def run_import(ctx, import_id: int, notify: bool = False):
    """The ``core.clients_import`` job (``notify``: see ``start_import``; a job queued before the
    choice existed announces nothing)."""
    job = db.session.get(ClientImport, import_id)
    if job is None or job.finished_at is not None:
        return None
    user = db.session.get(User, job.created_by_id) if job.created_by_id else None
    with force_locale(job.language), acting_as("user", getattr(user, "id", None), getattr(user, "name", "")):
        return _import(ctx, job, user, notify)


def held_key(job: ClientImport) -> str:
    """The key under which the plugins hold back the messages of this import's new clients."""
    return f"core.clients_import:{job.id}"


def held_notices(tenant, job: ClientImport) -> list:
    """What the plugins held back for this import (``HeldNotices``: label, count, release)."""
    from core.plugins import host
    from tenants.licensing import enabled_for

    if job.finished_at is None or not job.created:
        return []
    return host().call_for_tenant("held_notices", enabled_for(tenant), tenant=tenant, held_for=held_key(job))


def held_count(tenant, job: ClientImport) -> int:
    """How many messages sending this import's held notices would send now."""
    return sum(held.count for held in held_notices(tenant, job))


def send_held_notices(tenant, job: ClientImport, *, counted: int | None) -> int:
    """Send what the plugins held back for this import, if the number confirmed is the number
    they would send now (else ``DomainError``: the page shows the new number to confirm). Once:
    the plugins hand each held message over only once, so a second confirmation sends nothing."""
    held = held_notices(tenant, job)
    if counted is None or counted != sum(h.count for h in held):
        raise DomainError(_l("The number of messages has changed since it was shown: check it and confirm again."))
    return sum(h.release() for h in held)


def _import(ctx, job: ClientImport, user, notify: bool = False):
    problems: list[list] = []
    sets = client_fields.field_sets(ctx.tenant, user)
    plugin_fields = {name: field for bound in sets for name, field in bound.items()}
    try:
        parsed = parse(job.data, client_fields.headers(sets))
    except DomainError as error:
        problems.append([1, "file", str(error.message)])
        parsed = ParsedFile(set(), [])
    rows = parsed.rows
    every = user is None or sees_every_client(user)
    visible_ids = None if every else _visible_client_ids(user)
    groups_by_name = {fold(g.name): g for g in db.session.scalars(select(Group))}
    allowed_groups = None if every else own_group_ids(user)
    # Where a file has no country column, its tax ids are of the organisation's own country.
    default_country = "IT" if ctx.tenant.language == "it" else "ES"
    read: list = []
    for row in rows:
        try:
            data, group_ids, address, active = _row_data(row, groups_by_name, default_country)
            plugin_raw = _plugin_cells(row, plugin_fields)
            if allowed_groups is not None and set(group_ids) - allowed_groups:
                raise DomainError(_l("You cannot put clients in a group you do not belong to."), field="groups")
        except DomainError as error:
            problems.append([row.number, error.field or "", str(error.message)])
            continue
        read.append((row, data, group_ids, address, active, plugin_raw, _normalised_tax_id(data)))
    existing = _existing({tax_id for *_rest, tax_id in read if tax_id})
    seen: dict[str, int] = {}
    creates, updates = [], []
    for index, (row, data, group_ids, address, active, plugin_raw, tax_id) in enumerate(read, start=1):
        client = existing.get(tax_id)
        if client is not None:
            if visible_ids is not None and client.id not in visible_ids:
                problems.append([row.number, "tax_id", str(tax_id_unavailable(tax_id))])
                continue
            _merge(data, client, parsed.fields)
        try:
            checked = check(data)
            plugin_values = client_fields.validate(sets, plugin_raw, client.id if client is not None else None)
        except DomainError as error:
            problems.append([row.number, error.field or "", str(error.message)])
            continue
        if checked.tax_id in seen:
            problems.append(
                [
                    row.number,
                    "tax_id",
                    str(
                        _l(
                            "The tax id %(tax_id)s is also on row %(row)s.",
                            tax_id=checked.tax_id,
                            row=seen[checked.tax_id],
                        )
                    ),
                ]
            )
            continue
        seen[checked.tax_id] = row.number
        groups = set(group_ids) | ({job.group_id} if job.group_id else set())
        if client is not None:
            updates.append(
                (client.id, checked, groups, client.active if active is None else active, address, plugin_values)
            )
        else:
            creates.append((checked, groups, address, True if active is None else active, plugin_values))
        if index % 500 == 0:
            ctx.progress(50 * index // len(read), message=f"{index}/{len(read)}")
    group_names = {g.id: g.name for g in groups_by_name.values()}
    created = _create(ctx, creates, user, group_names, sets, notify=notify, held_for=held_key(job))
    changed, unchanged = _update(ctx.tenant, updates, group_names, sets)
    job.rows = len(rows)
    job.created = created
    job.updated = changed
    job.unchanged = unchanged
    job.problems = problems
    job.finished_at = utcnow()
    job.data = b"" if not problems else job.data
    db.session.commit()
    if created + changed >= ANALYSE_AFTER:
        # The planner learns of the new rows now, not when autovacuum next comes round.
        analyse("core_clients", "core_group_clients", "core_client_addresses")
    return {
        "rows": len(rows),
        "created": job.created,
        "updated": job.updated,
        "unchanged": unchanged,
        "rejected": job.rejected,
        "import": job.id,
    }


def _visible_client_ids(user) -> set[int]:
    from core.clients.services import visible

    return set(db.session.scalars(visible(user, select(Client.id))))


def _add_addresses(tenant_id: int, addresses: list[dict]) -> None:
    """Insert the rows' addresses, each with its creation under its client's history."""
    if addresses:
        audited_write(ClientAddress, tenant_id, insert_from=[{"label": "", **address} for address in addresses])


ADDRESS_FIELDS = ("street", "postal_code", "city", "province", "country")


def _create(ctx, creates: list, user, group_names: dict[int, str], sets, *, notify: bool, held_for: str) -> int:
    """Insert the new clients a batch at a time; each batch commits, then the plugins hear of it
    (``clients_created`` with the batch's ids, and whether the clients may be told). Returns how
    many were created."""
    tenant_id = ctx.tenant.id
    created = 0
    for start in range(0, len(creates), BATCH):
        batch = creates[start : start + BATCH]
        values = [
            {**checked.columns(), "active": active, "tenant_id": tenant_id, "created_by_id": getattr(user, "id", None)}
            for checked, _groups, _address, active, _plugin in batch
        ]
        ids = db.session.scalars(insert(Client).returning(Client.id, sort_by_parameter_order=True), values).all()
        links = [
            {"group_id": g, "client_id": cid, "tenant_id": tenant_id}
            for cid, (_c, groups, _a, _active, _p) in zip(ids, batch, strict=True)
            for g in groups
        ]
        if links:
            db.session.execute(insert(GroupClient), links)
        audit = []
        for cid, (checked, groups, _a, active, _p) in zip(ids, batch, strict=True):
            changes = {k: [None, v] for k, v in checked.columns().items() if v and k != "search_text"}
            changes["active"] = [None, active]
            if groups:
                changes["groups"] = [None, sorted(group_names[g] for g in groups)]
            audit.append(make_row(tenant_id, CREATE, "client", cid, f"{checked.name} ({checked.tax_id})", changes))
        record_many(db.session, audit)
        _add_addresses(
            tenant_id,
            [
                {**address, "client_id": cid}
                for cid, (_c, _g, address, _a, _p) in zip(ids, batch, strict=True)
                if address
            ],
        )
        client_fields.save(sets, {cid: plugin for cid, (*_rest, plugin) in zip(ids, batch, strict=True) if plugin})
        db.session.commit()
        announce_created(ctx.tenant, list(ids), notify=notify, held_for=held_for)
        created += len(ids)
        done = start + len(batch)
        ctx.progress(50 + 50 * done // len(creates), message=f"{done}/{len(creates)}")
    return created


def _update(tenant, updates: list, group_names: dict[int, str], sets) -> tuple[int, int]:
    """Write the rows that change something (an address the client lacks is added), a batch at a
    time; after each batch's commit the plugins hear of the changes (``clients_updated``, in the
    same shape as a change on the form). Returns how many clients changed and how many rows
    changed nothing."""
    tenant_id = tenant.id
    changed, unchanged = 0, 0
    for start in range(0, len(updates), BATCH):
        batch = updates[start : start + BATCH]
        current = {c.id: c for c in db.session.scalars(select(Client).where(Client.id.in_([u[0] for u in batch])))}
        links: dict[int, set[int]] = {}
        for client_id, group_id in db.session.execute(
            select(GroupClient.client_id, GroupClient.group_id).where(GroupClient.client_id.in_(current))
        ):
            links.setdefault(client_id, set()).add(group_id)
        addresses: dict[int, list[ClientAddress]] = {}
        for address in db.session.scalars(
            select(ClientAddress).where(ClientAddress.client_id.in_(current)).order_by(ClientAddress.id)
        ):
            addresses.setdefault(address.client_id, []).append(address)
        plugin_before = client_fields.load(sets, list(current)) if sets else {}
        rows, relations, new_links, new_addresses, plugin_saves, changes_by_id = [], {}, [], [], {}, {}
        deactivated = []
        for client_id, checked, groups, active, address, plugin_values in batch:
            client = current[client_id]
            if client.active and not active:
                deactivated.append(client_id)
            columns = checked.columns()
            changes = {
                k: (getattr(client, k), columns[k])
                for k in COLUMN_FIELDS
                if (columns[k] or "") != (getattr(client, k) or "")
            }
            if client.active != active:
                changes["active"] = (client.active, active)
            before_groups = links.get(client_id, set())
            added = sorted(groups - before_groups)
            if added:
                changes["groups"] = tuple(
                    sorted(group_names[g] for g in ids) for ids in (before_groups, before_groups | set(added))
                )
                # Recorded as the ORM records the collection: the names before and after.
                relations[client_id] = {"groups": [list(names) for names in changes["groups"]]}
                new_links += [{"group_id": g, "client_id": client_id, "tenant_id": tenant_id} for g in added]
            known = addresses.get(client_id, [])
            if address and not any(
                (fold(a.street), fold(a.postal_code)) == (fold(address["street"]), fold(address["postal_code"]))
                for a in known
            ):
                new_addresses.append({**address, "client_id": client_id})
                before_lines = [a.one_line for a in known]
                added_line = ClientAddress(**{k: address.get(k, "") for k in ADDRESS_FIELDS}).one_line
                changes["addresses"] = (before_lines, [*before_lines, added_line])
                known.append(ClientAddress(**{k: address.get(k, "") for k in ADDRESS_FIELDS}))
                addresses[client_id] = known
            plugin_changes = client_fields.changes(plugin_before.get(client_id, {}), plugin_values)
            if plugin_changes:
                plugin_saves[client_id] = plugin_values
                changes.update(plugin_changes)
            if not changes:
                unchanged += 1
                continue
            if added or any(k in COLUMN_FIELDS or k == "active" for k in changes):
                rows.append({"id": client_id, **columns, "active": active})
            changes_by_id[client_id] = changes
        # One statement (two on SQLite) for the batch: by id and tenant, with each client's event.
        if rows:
            audited_write(Client, tenant_id, by_id=rows, also=relations)
        # A client the file deactivates loses its portal access, as on its page.
        revoke_portals(deactivated)
        if new_links:
            db.session.execute(insert(GroupClient), new_links)
        _add_addresses(tenant_id, new_addresses)
        client_fields.save(sets, plugin_saves)
        db.session.commit()
        announce_updated(tenant, changes_by_id)
        changed += len(changes_by_id)
    return changed, unchanged


def rejected_rows(job: ClientImport, label=field_label) -> list[list]:
    """The rows that were not imported, as in the file, with the reasons in a last column
    (fields named by ``label``)."""
    reasons: dict[int, list[str]] = {}
    for number, field_name, message in job.problems:
        reasons.setdefault(number, []).append(f"{label(field_name)}: {message}" if field_name else message)
    lines = list(_reader(_decode(job.data)))
    if not lines:
        return [["error"], *[[" / ".join(r)] for r in reasons.values()]]
    out = [[*lines[0], "error"]]
    for number, cells in enumerate(lines[1:], start=2):
        if number in reasons:
            out.append([*cells, " / ".join(reasons[number])])
    return out
