"""The plugin's client fields (seed 001, "Datos del cliente"): the Seguridad Social codes — every CCC
of a company and the NAF — and the two checkboxes "Habilitado para recibir notificaciones
electrónicas" and "Habilitado para consultar notificaciones en tablón" (on by default).

Through core's client-fields extension point they sit on the client form, the data tab, the CSV
import (CCCs separated by ``|``) and the export. Codes are kept one per row (``sedes_ssid_codes``)
so the sync can read them in one query for many mailboxes; the checkboxes in ``sedes_client_data``.
A client with a mailbox at a sede that needs them cannot be left without a CCC or NAF.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core.api import BOOLEAN_FIELD, LIST_FIELD, TEXT_FIELD, ClientField, ClientFieldSet, DomainError, db
from plugins.sedes.models import CCC, NAF, Mailbox, Sede, SedesClientData, SsidCode
from plugins.sedes.ssid import validate_ccc, validate_naf

RECEIVES = "receives_electronic"
CHECKS_BOARD = "checks_board"
CCCS = "ccc"
NAF_KEY = "naf"

FIELDS = (
    ClientField(
        CCCS,
        _l("CCC (Seguridad Social)"),
        kind=LIST_FIELD,
        help=_l("Every contribution account code of the company, one per line (11 digits)."),
        headers=("ccc", "codigo cuenta cotizacion", "cccs"),
    ),
    ClientField(
        NAF_KEY,
        _l("NAF (Seguridad Social)"),
        kind=TEXT_FIELD,
        help=_l("The affiliation number (12 digits)."),
        headers=("naf", "numero afiliacion", "numero de afiliacion"),
        max_length=20,
    ),
    ClientField(
        RECEIVES,
        _l("Enabled to receive electronic notifications"),
        kind=BOOLEAN_FIELD,
        default=False,
        headers=("habilitado para recibir notificaciones electronicas", "notificaciones electronicas"),
    ),
    ClientField(
        CHECKS_BOARD,
        _l("Enabled to check notifications on the board (TEU)"),
        kind=BOOLEAN_FIELD,
        default=True,
        help=_l("Keep it ticked so that the Tablón Edictal Único of the BOE is searched for the client."),
        headers=("habilitado para consultar notificaciones en tablon", "tablon", "teu"),
    ),
)


def codes_of(client_ids) -> dict[int, dict[str, list[str]]]:
    """``{client_id: {"ccc": [...], "naf": [...]}}`` in one query (clients without codes left out)."""
    found: dict[int, dict[str, list[str]]] = {}
    ids = list(client_ids)
    for start in range(0, len(ids), 1000):
        stmt = select(SsidCode).where(SsidCode.client_id.in_(ids[start : start + 1000])).order_by(SsidCode.id)
        for row in db.session.scalars(stmt):
            found.setdefault(row.client_id, {CCC: [], NAF: []})[row.kind].append(row.code)
    return found


def needs_ssid(client_id: int) -> bool:
    """Whether the client has a mailbox at a sede that needs its CCC or NAF."""
    stmt = (
        select(Mailbox.id)
        .join(Sede, Sede.code == Mailbox.sede_code)
        .where(Mailbox.client_id == client_id, Sede.needs_ssid.is_(True))
        .limit(1)
    )
    return db.session.scalar(stmt) is not None


class SedesClientFields(ClientFieldSet):
    title = _l("Electronic notifications")
    fields = FIELDS
    order = 40

    def load(self, client_ids: list[int]) -> Mapping[int, dict]:
        values: dict[int, dict] = {}
        ids = list(client_ids)
        for start in range(0, len(ids), 1000):
            stmt = select(SedesClientData).where(SedesClientData.client_id.in_(ids[start : start + 1000]))
            for row in db.session.scalars(stmt):
                values[row.client_id] = {RECEIVES: row.receives_electronic, CHECKS_BOARD: row.checks_board}
        for client_id, codes in codes_of(ids).items():
            entry = values.setdefault(client_id, {})
            entry[CCCS] = codes[CCC]
            entry[NAF_KEY] = codes[NAF][0] if codes[NAF] else ""
        return values

    def validate(self, values: dict, client_id: int | None) -> dict:
        if CCCS in values:
            checked: list[str] = []
            for code in values[CCCS] or []:
                try:
                    digits = validate_ccc(code)
                except DomainError as error:
                    raise DomainError(error.message, field=CCCS) from error
                if digits not in checked:
                    checked.append(digits)
            values[CCCS] = checked
        if NAF_KEY in values:
            try:
                values[NAF_KEY] = validate_naf(values[NAF_KEY]) if (values[NAF_KEY] or "").strip() else ""
            except DomainError as error:
                raise DomainError(error.message, field=NAF_KEY) from error
        if client_id is not None and (CCCS in values or NAF_KEY in values):
            stored = codes_of([client_id]).get(client_id, {CCC: [], NAF: []})
            cccs = values[CCCS] if CCCS in values else stored[CCC]
            naf = values[NAF_KEY] if NAF_KEY in values else (stored[NAF][0] if stored[NAF] else "")
            if not cccs and not naf and needs_ssid(client_id):
                raise DomainError(
                    _l("The client has a mailbox at a sede that needs its CCC or NAF: keep at least one."),
                    field=CCCS,
                )
        return values

    def save(self, values_by_client: Mapping[int, dict]) -> None:
        ids = list(values_by_client)
        rows = {
            row.client_id: row
            for row in db.session.scalars(select(SedesClientData).where(SedesClientData.client_id.in_(ids)))
        }
        existing: dict[tuple[int, str], list[SsidCode]] = {}
        for row in db.session.scalars(select(SsidCode).where(SsidCode.client_id.in_(ids))):
            existing.setdefault((row.client_id, row.kind), []).append(row)
        for client_id, values in values_by_client.items():
            if RECEIVES in values or CHECKS_BOARD in values:
                row = rows.get(client_id)
                if row is None:
                    row = SedesClientData(client_id=client_id, receives_electronic=False, checks_board=True)
                    db.session.add(row)
                if RECEIVES in values:
                    row.receives_electronic = bool(values[RECEIVES])
                if CHECKS_BOARD in values:
                    row.checks_board = bool(values[CHECKS_BOARD])
            for key, kind in ((CCCS, CCC), (NAF_KEY, NAF)):
                if key not in values:
                    continue
                wanted = values[key] if kind == CCC else ([values[key]] if values[key] else [])
                current = existing.get((client_id, kind), [])
                for row in current:
                    if row.code not in wanted:
                        db.session.delete(row)
                kept = {row.code for row in current}
                for code in wanted:
                    if code not in kept:
                        db.session.add(SsidCode(client_id=client_id, kind=kind, code=code))
        db.session.flush()


def client_fields() -> SedesClientFields:
    return SedesClientFields()
