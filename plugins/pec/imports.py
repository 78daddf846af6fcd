"""Bulk CSV import of holders and boxes: every row checked, a report row by row.

A file is UTF-8 (with or without BOM) or Windows-1252, separated by ``,`` ``;`` tab or ``|``,
with a header row whose column names may be Italian, English or the names the gestori's own
exports use (``Codice Fiscale``, ``Ragione Sociale``, ``Cellulare``, ``Casella PEC``...).
Parsing gives, for each row, either the validated data or every problem found in it (field and
message). What needs the database — does the holder of a box exist, is the name free on its
domain, who is the agent — is checked by the import job over the valid rows, set-based.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l

from plugins.pec.addresses import Address, validate_address
from plugins.pec.catalogue import (
    DEFAULT_BOX_TYPES,
    BoxType,
    RenewalMode,
    find_box_type,
    parse_renewal_mode,
    validate_mailbox_space,
    validate_years,
)
from plugins.pec.comuni import fold
from plugins.pec.errors import PecError, PecErrors
from plugins.pec.identity import (
    COMPANY,
    PERSON,
    HolderIdentity,
    is_personal_code,
    validate_codice_fiscale,
    validate_holder_identity,
)
from plugins.pec.mailboxes import DEFAULT_NAME_POLICY, NamePolicy, normalise_domain, normalise_local_part, split_address

MAX_ROWS = 100_000
HOLDERS = "holders"
BOXES = "boxes"

HOLDER_HEADERS = {
    "kind": {"tipo", "tiposoggetto", "soggetto", "kind", "type", "personafisicagiuridica"},
    "codice_fiscale": {"codicefiscale", "cf", "codfiscale", "codicefiscaletitolare", "fiscalcode", "taxid"},
    "partita_iva": {"partitaiva", "piva", "pi", "vat", "vatnumber"},
    "first_name": {"nome", "firstname", "name"},
    "last_name": {"cognome", "lastname", "surname"},
    "company_name": {"ragionesociale", "denominazione", "companyname", "company", "societa", "azienda"},
    "email": {"email", "mail", "emailcontatto", "indirizzoemail"},
    "street": {"indirizzo", "via", "street", "address"},
    "cap": {"cap", "postalcode", "zip", "postcode"},
    "comune": {"comune", "citta", "city", "localita", "town"},
    "provincia": {"provincia", "prov", "siglaprovincia", "province"},
    "nazione": {"nazione", "paese", "stato", "country"},
    "phone": {"telefono", "telefonofisso", "telefonocomunicazioni", "tel", "phone"},
    "mobile": {"cellulare", "cell", "mobile", "telefonocellulare"},
    "fax": {"fax"},
}
BOX_HEADERS = {
    "address": {"casellapec", "indirizzopec", "emailpec", "pec", "indirizzocasella"},
    "name": {"casella", "nomecasella", "box", "mailbox", "localpart"},
    "domain": {"dominio", "domain", "dominiopec"},
    "codice_fiscale": HOLDER_HEADERS["codice_fiscale"] | {"cftitolare", "titolare"},
    "box_type": {"tipocasella", "tipologia", "tipologiacasella", "boxtype", "type", "tipo"},
    "years": {"durata", "anni", "duratanni", "years", "duration"},
    "renewal": {"rinnovo", "tiporinnovo", "modalitarinnovo", "renewal"},
    "mailbox_mb": {"spazio", "spaziomb", "dimensione", "dimensionemb", "quota", "mailboxmb"},
    "agent": {"agente", "agentecommerciale", "agent"},
    "package": {"pacchetto", "package"},
}

# How the report names a field, in the reader's language.
FIELD_LABELS = {
    "file": _l("CSV file"),
    "kind": _l("Type of subject"),
    "codice_fiscale": _l("Codice fiscale"),
    "partita_iva": _l("Partita IVA"),
    "first_name": _l("First name"),
    "last_name": _l("Surname"),
    "company_name": _l("Ragione sociale"),
    "email": _l("E-mail"),
    "street": _l("Address"),
    "cap": _l("CAP"),
    "comune": _l("Comune"),
    "provincia": _l("Provincia"),
    "nazione": _l("Country"),
    "phone": _l("Telephone"),
    "mobile": _l("Mobile"),
    "fax": _l("Fax"),
    "address": _l("PEC address"),
    "name": _l("Box"),
    "domain": _l("Domain"),
    "box_type": _l("Type of box"),
    "years": _l("Duration (years)"),
    "renewal": _l("Renewal"),
    "mailbox_mb": _l("Space (MB)"),
    "agent": _l("Agent"),
    "package": _l("Package"),
}

KINDS = {
    **dict.fromkeys(("pf", "f", "fisica", "personafisica", "persona", "person", "privato", "individual"), PERSON),
    **dict.fromkeys(("pg", "g", "giuridica", "personagiuridica", "societa", "azienda", "impresa", "company"), COMPANY),
}


def field_label(name: str | None) -> str:
    return str(FIELD_LABELS.get(name or "", name or ""))


@dataclass(frozen=True)
class RowError:
    row: int  # the line number in the file (the header is line 1)
    field: str | None
    message: Any  # translatable
    code: str | None = None

    @property
    def field_label(self) -> str:
        return field_label(self.field)


@dataclass
class RowResult:
    row: int
    data: Any | None  # HolderRow or BoxRow when the row is valid
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class HolderRow:
    identity: HolderIdentity
    email: str
    address: Address
    # The earlier row of the same holder (same codice fiscale): this row adds an address to it.
    same_holder_as: int | None = None


@dataclass(frozen=True)
class BoxRow:
    local_part: str
    domain: str
    holder_codice_fiscale: str
    box_type: BoxType
    mailbox_mb: int
    years: int
    renewal: RenewalMode
    agent: str | None  # as written: the job finds the agent (e-mail, or name)
    package: str | None  # as written: the job finds the agent's package by name

    @property
    def address(self) -> str:
        return f"{self.local_part}@{self.domain}"


@dataclass
class ImportReport:
    kind: str
    fields: list[str]  # the recognised columns, as field names
    ignored_columns: list[str]  # header cells that name no field
    rows: list[RowResult]

    @property
    def valid(self) -> list[Any]:
        return [r.data for r in self.rows if r.ok]

    @property
    def errors(self) -> list[RowError]:
        return [e for r in self.rows for e in r.errors]

    @property
    def counts(self) -> dict[str, int]:
        bad = sum(1 for r in self.rows if not r.ok)
        return {"rows": len(self.rows), "valid": len(self.rows) - bad, "rejected": bad}

    def error_table(self) -> Iterator[list[str]]:
        """The rejected rows as a table for the downloadable report: row, column, problem."""
        yield [str(_l("Row")), str(_l("Column")), str(_l("Problem"))]
        for error in self.errors:
            yield [str(error.row), error.field_label, str(error.message)]


# --- reading the file -------------------------------------------------------------------


def _key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", fold(header))


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _reader(text: str):
    try:
        dialect = csv.Sniffer().sniff(text[:20000], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    return csv.reader(io.StringIO(text), dialect)


def read_table(
    data: bytes, headers: dict[str, set[str]], required: tuple[str, ...]
) -> tuple[dict[int, str], list[str], list[tuple[int, dict[str, str]]]]:
    """The file's columns mapped to fields, the ignored header cells, and its non-empty rows as
    ``(line number, {field: value})``. Raises ``PecError`` when the file itself is unusable."""
    if not data:
        raise PecError(_l("The file is empty."), field="file", code="file.empty")
    text = decode(data)
    if "\x00" in text:
        raise PecError(_l("The file is not a CSV text file."), field="file", code="file.binary")
    reader = _reader(text)
    header = next(reader, None)
    if not header or not any(cell.strip() for cell in header):
        raise PecError(_l("The file is empty."), field="file", code="file.empty")
    columns: dict[int, str] = {}
    ignored = []
    for index, cell in enumerate(header):
        key = _key(cell)
        name = next((f for f, accepted in headers.items() if key in accepted and f not in columns.values()), None)
        if name is None:
            if cell.strip():
                ignored.append(cell.strip())
        else:
            columns[index] = name
    missing = [f for f in required if f not in columns.values()]
    if missing:
        raise PecError(
            _l("The file has no column for: %(fields)s.", fields=", ".join(field_label(f) for f in missing)),
            field="file",
            code="file.columns",
        )

    rows: list[tuple[int, dict[str, str]]] = []
    for line, cells in enumerate(reader, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(rows) == MAX_ROWS:
            # Refused before any row is checked: a file too big is not half imported.
            raise PecError(
                _l("The file has more than %(n)s rows: split it.", n=MAX_ROWS), field="file", code="file.rows"
            )
        rows.append((line, {columns[i]: cell.strip() for i, cell in enumerate(cells) if i in columns}))
    return columns, ignored, rows


def _collect(row: int, errors: list[RowError], check: Callable, *args, **kwargs):
    try:
        return check(*args, **kwargs)
    except PecErrors as problems:
        errors.extend(RowError(row, e.field, e.message, e.code) for e in problems.errors)
    except PecError as error:
        errors.append(RowError(row, error.field, error.message, error.code))
    return None


# --- holders ----------------------------------------------------------------------------


def parse_kind(value: str, codice_fiscale: str) -> str:
    """The kind of subject as written (``PF``, ``persona giuridica``...), or guessed from the code."""
    key = _key(value or "")
    if key:
        kind = KINDS.get(key)
        if kind is None:
            raise PecError(_l("Write persona fisica or persona giuridica."), field="kind", code="kind.unknown")
        return kind
    return PERSON if is_personal_code(codice_fiscale) else COMPANY


def normalise_email(value: str, field: str = "email") -> str:
    text = (value or "").strip()
    if not text:
        raise PecError(_l("Enter the e-mail address."), field=field, code="email.required")
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise PecError(
            _l("%(value)s is not a valid e-mail address.", value=text), field=field, code="email.invalid"
        ) from error


def parse_holders(data: bytes) -> ImportReport:
    """Each row a holder with one address; several rows of one codice fiscale add addresses."""
    fields, ignored, rows = read_table(data, HOLDER_HEADERS, required=("codice_fiscale",))
    results: list[RowResult] = []
    first_row_of: dict[str, tuple[int, HolderIdentity]] = {}
    for line, values in rows:
        errors: list[RowError] = []
        get = values.get
        kind = _collect(line, errors, parse_kind, get("kind", ""), get("codice_fiscale", ""))
        identity = None
        if kind is not None:
            identity = _collect(
                line,
                errors,
                validate_holder_identity,
                kind,
                get("codice_fiscale", ""),
                get("partita_iva", ""),
                get("first_name", ""),
                get("last_name", ""),
                get("company_name", ""),
            )
        email = _collect(line, errors, normalise_email, get("email", ""))
        address = _collect(
            line,
            errors,
            validate_address,
            get("street", ""),
            get("comune", ""),
            get("provincia", ""),
            get("cap", ""),
            get("nazione", ""),
            get("phone", ""),
            get("mobile", ""),
            get("fax", ""),
        )
        same_as = None
        if identity is not None:
            earlier = first_row_of.get(identity.codice_fiscale)
            if earlier is None:
                first_row_of[identity.codice_fiscale] = (line, identity)
            elif earlier[1] != identity:
                errors.append(
                    RowError(
                        line,
                        "codice_fiscale",
                        _l("Row %(row)s has this codice fiscale with other names or numbers.", row=earlier[0]),
                        "holder.conflict",
                    )
                )
            else:
                same_as = earlier[0]
        if errors:
            results.append(RowResult(line, None, errors))
        else:
            results.append(RowResult(line, HolderRow(identity, email, address, same_as)))
    return ImportReport(HOLDERS, list(fields.values()), ignored, results)


# --- boxes ------------------------------------------------------------------------------


def parse_boxes(
    data: bytes,
    box_types: tuple[BoxType, ...] = DEFAULT_BOX_TYPES,
    default_domain: str | None = None,
    default_years: int = 1,
    default_renewal: RenewalMode = RenewalMode.MANUAL,
    policy: NamePolicy = DEFAULT_NAME_POLICY,
) -> ImportReport:
    """Each row a box: its address (one column, or box and domain), its holder's codice fiscale,
    type, duration, renewal, space, and optionally an agent and package. Missing optional values
    take the defaults given (the first box type, ``default_years``, ``default_renewal``)."""
    fields, ignored, rows = read_table(data, BOX_HEADERS, required=("codice_fiscale",))
    names = set(fields.values())
    if "address" not in names and "name" not in names:
        raise PecError(
            _l("The file has no column for: %(fields)s.", fields=field_label("address")),
            field="file",
            code="file.columns",
        )
    results: list[RowResult] = []
    first_row_of: dict[str, int] = {}
    for line, values in rows:
        errors: list[RowError] = []
        get = values.get
        local = domain = None
        if get("address"):
            parts = _collect(line, errors, split_address, get("address"), policy, "address")
            if parts is not None:
                local, domain = parts
        else:
            local = _collect(line, errors, normalise_local_part, get("name", ""), policy, "name")
            domain = _collect(line, errors, normalise_domain, get("domain") or default_domain or "", "domain")
        cf = _collect(line, errors, validate_codice_fiscale, get("codice_fiscale", ""), "codice_fiscale")
        box_type = (
            _collect(line, errors, find_box_type, get("box_type"), box_types) if get("box_type") else box_types[0]
        )
        years = _collect(line, errors, validate_years, get("years") or default_years)
        renewal = _collect(line, errors, parse_renewal_mode, get("renewal")) if get("renewal") else default_renewal
        space = None
        if box_type is not None:
            raw_space = get("mailbox_mb", "")
            if raw_space and not raw_space.isdigit():
                errors.append(RowError(line, "mailbox_mb", _l("Write the space in MB, digits only."), "space.format"))
            else:
                space = _collect(line, errors, validate_mailbox_space, box_type, int(raw_space) if raw_space else None)
        if local is not None and domain is not None:
            address = f"{local}@{domain}"
            if address in first_row_of:
                errors.append(
                    RowError(
                        line,
                        "address" if get("address") else "name",
                        _l("Row %(row)s already has the box %(address)s.", row=first_row_of[address], address=address),
                        "name.duplicate",
                    )
                )
            else:
                first_row_of[address] = line
        if errors:
            results.append(RowResult(line, None, errors))
        else:
            results.append(
                RowResult(
                    line,
                    BoxRow(
                        local_part=local,
                        domain=domain,
                        holder_codice_fiscale=cf,
                        box_type=box_type,
                        mailbox_mb=space,
                        years=years,
                        renewal=renewal,
                        agent=get("agent") or None,
                        package=get("package") or None,
                    ),
                )
            )
    return ImportReport(BOXES, list(fields.values()), ignored, results)
