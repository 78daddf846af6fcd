"""Holders (titolari): core clients, with what the plugin adds — birth data and partita IVA (client
fields), several addresses with their phones, several activities — and who sees which.

Who sees a holder: with ``pec.boxes:view_all``, every client the user sees in core; without it
(an assistant), the holders they created and those of the boxes they entered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, or_, select

from core.api import (
    CHOICE_FIELD,
    Client,
    ClientField,
    ModelClientFields,
    clients_matching,
    db,
    has_permission,
    visible_clients,
)
from plugins.pec import people
from plugins.pec.addresses import Address, validate_address
from plugins.pec.comuni import comuni, fold
from plugins.pec.errors import PecError, PecErrors
from plugins.pec.identity import (
    COMPANY,
    PERSON,
    HolderIdentity,
    company_key,
    decode_codice_fiscale,
    is_personal_code,
    normalise_company_name,
    validate_codice_fiscale,
    validate_holder_identity,
    validate_partita_iva,
)
from plugins.pec.imports import normalise_email
from plugins.pec.models import Box, HolderActivity, HolderAddress, HolderProfile

VIEW_ALL = "pec.boxes:view_all"

SEXES = (("M", _l("Male")), ("F", _l("Female")))


# --- who sees what ----------------------------------------------------------------------


def sees_all(user) -> bool:
    return has_permission(user, VIEW_ALL)


def visible_statement(user, stmt: Select | None = None) -> Select:
    """``stmt`` over clients limited to the holders ``user`` may see in the panel."""
    stmt = stmt if stmt is not None else select(Client)
    if sees_all(user):
        return visible_clients(user, stmt)
    own_boxes = select(Box.holder_id).where(Box.created_by_id == user.id)
    return stmt.where(or_(Client.created_by_id == user.id, Client.id.in_(own_boxes)))


def get_visible(user, client_id: int) -> Client | None:
    return db.session.scalar(visible_statement(user, select(Client).where(Client.id == client_id)))


def search_statement(user, q: str = "") -> Select:
    """Holders matching ``q``: nome, cognome, ragione sociale, codice fiscale (core's search) and
    partita IVA (the plugin's)."""
    stmt = visible_statement(user)
    text = (q or "").strip()
    if text:
        folded = fold(text)
        piva = select(HolderProfile.client_id).where(
            HolderProfile.partita_iva.contains(text.upper().removeprefix("IT"))
        )
        activity = select(HolderActivity.client_id).where(HolderActivity.company_key.contains(folded))
        stmt = stmt.where(or_(clients_matching(text), Client.id.in_(piva), Client.id.in_(activity)))
    return stmt


def find_by_tax_id(value: str) -> Client | None:
    """The client whose codice fiscale (or partita IVA as tax id) is ``value``, whoever entered it:
    the wizard fills in the holder's name from it, as the seed describes."""
    try:
        code = validate_codice_fiscale(value)
    except PecError:
        return None
    client = db.session.scalar(select(Client).where(Client.tax_id == code))
    if client is None and len(code) == 11:
        owner = select(HolderProfile.client_id).where(HolderProfile.partita_iva == code)
        client = db.session.scalar(select(Client).where(Client.id.in_(owner)).limit(1))
    return client


def tax_ids(client: Client) -> set[str]:
    """Every identifier of a holder: codice fiscale and partita IVA."""
    ids = {client.tax_id}
    profile = profile_of(client.id)
    if profile is not None and profile.partita_iva:
        ids.add(profile.partita_iva)
    return {x for x in ids if x}


# --- the client fields: birth data and partita IVA ------------------------------------------


def profile_of(client_id: int) -> HolderProfile | None:
    return db.session.scalar(select(HolderProfile).where(HolderProfile.client_id == client_id))


def _check_profile(values: dict, client_id: int | None) -> dict:
    errors = []
    if "partita_iva" in values:
        raw = (values["partita_iva"] or "").strip()
        try:
            values["partita_iva"] = validate_partita_iva(raw) if raw else ""
        except PecError as error:
            errors.append(error)
    if "birth_date" in values:
        raw = (values["birth_date"] or "").strip()
        values["birth_date"] = ""
        if raw:
            try:
                born = _parse_day(raw)
                if born > date.today() or born.year < 1900:
                    raise ValueError(raw)
                values["birth_date"] = born.isoformat()
            except ValueError:
                errors.append(
                    PecError(_l("Write the date of birth as 31/12/1980."), field="birth_date", code="birth.date")
                )
    if "sex" in values:
        values["sex"] = (values["sex"] or "").strip().upper()[:1]
        if values["sex"] not in ("", "M", "F"):
            errors.append(PecError(_l("Choose M or F."), field="sex", code="birth.sex"))
    if "birth_provincia" in values:
        sigla = (values["birth_provincia"] or "").strip().upper()
        if sigla and sigla != "EE" and sigla not in comuni().sigle:
            errors.append(PecError(_l("%(value)s is not a provincia.", value=sigla), field="birth_provincia"))
        values["birth_provincia"] = sigla
    for key in ("birth_comune", "birth_country"):
        if key in values:
            values[key] = " ".join((values[key] or "").split())[:120]
    if errors:
        raise errors[0]
    return values


def _parse_day(text: str) -> date:
    text = text.strip()
    if "/" in text or "." in text:
        day, month, year = (int(part) for part in text.replace(".", "/").split("/"))
        return date(year, month, day)
    return date.fromisoformat(text)


class HolderFields(ModelClientFields):
    """The plugin's section of the client form. What the holder's codice fiscale tells (birth date,
    sex, birth comune and provincia) fills the fields left empty when the client is saved."""

    def save(self, values_by_client):
        super().save(values_by_client)
        # Set-based for an import's batch: the clients and their profiles in two queries.
        ids = list(values_by_client)
        profiles = self._rows(ids)
        for client in db.session.scalars(select(Client).where(Client.id.in_(ids))):
            fill_from_codice_fiscale(client, profiles.get(client.id), flush=False)
        db.session.flush()


def holder_fields() -> HolderFields:
    return HolderFields(
        HolderProfile,
        _l("PEC holder"),
        [
            ClientField("partita_iva", _l("Partita IVA"), headers=("partita iva", "piva", "p.iva"), max_length=13),
            ClientField(
                "birth_date",
                _l("Date of birth"),
                help=_l("Filled in from the codice fiscale when left empty."),
                headers=("data di nascita", "data nascita"),
                max_length=10,
            ),
            ClientField("sex", _l("Sex"), kind=CHOICE_FIELD, choices=SEXES, headers=("sesso",)),
            ClientField("birth_comune", _l("Comune of birth"), headers=("comune di nascita", "luogo di nascita")),
            ClientField("birth_provincia", _l("Provincia of birth"), headers=("provincia di nascita",), max_length=2),
            ClientField("birth_country", _l("Country of birth"), headers=("nazione di nascita",)),
        ],
        check=_check_profile,
        order=30,
    )


def fill_from_codice_fiscale(client: Client, profile: HolderProfile | None = None, flush: bool = True) -> HolderProfile:
    """The holder's profile, with the birth data its codice fiscale tells written where empty."""
    profile = profile or profile_of(client.id)
    if profile is None:
        profile = HolderProfile(client_id=client.id)
        db.session.add(profile)
    if client.tax_id and is_personal_code(client.tax_id):
        try:
            decoded = decode_codice_fiscale(client.tax_id)
        except PecError:
            decoded = None
        if decoded is not None:
            if not profile.birth_date:
                profile.birth_date = decoded.birth_date.isoformat()
            if not profile.sex:
                profile.sex = decoded.sex
            if not profile.birth_comune and not profile.birth_country:
                if decoded.born_abroad:
                    profile.birth_country = decoded.birth_country or ""
                    profile.birth_provincia = "EE"
                else:
                    profile.birth_comune = decoded.birth_comune or ""
                    profile.birth_provincia = decoded.birth_provincia or ""
    if flush:
        db.session.flush()
    return profile


# --- a new holder ---------------------------------------------------------------------------


@dataclass
class HolderData:
    """What the wizard (or an import row) says about a holder not in the database yet."""

    kind: str
    codice_fiscale: str
    first_name: str = ""
    last_name: str = ""
    company_name: str = ""
    partita_iva: str = ""
    email: str = ""
    phone: str = ""


def create_holder(data: HolderData, user) -> Client:
    """A holder as a core client (with its profile), every field checked together."""
    errors: list[PecError] = []
    identity: HolderIdentity | None = None
    try:
        identity = validate_holder_identity(
            data.kind, data.codice_fiscale, data.partita_iva, data.first_name, data.last_name, data.company_name
        )
    except PecErrors as problems:
        errors += problems.errors
    try:
        email = normalise_email(data.email)
    except PecError as error:
        errors.append(error)
    if errors:
        raise PecErrors(errors)
    if find_by_tax_id(identity.codice_fiscale) is not None:
        raise PecError(
            _l("A holder with the codice fiscale %(code)s already exists.", code=identity.codice_fiscale),
            field="codice_fiscale",
            code="holder.exists",
        )
    client = people.create_holder_client(identity, email, data.phone, user)
    profile = HolderProfile(client_id=client.id, partita_iva=identity.partita_iva or "")
    if identity.kind == COMPANY and not profile.partita_iva and len(identity.codice_fiscale) == 11:
        profile.partita_iva = identity.codice_fiscale
    db.session.add(profile)
    db.session.flush()
    fill_from_codice_fiscale(client)
    return client


KINDS = ((PERSON, _l("Persona fisica")), (COMPANY, _l("Persona giuridica")))


# --- addresses ------------------------------------------------------------------------------


@dataclass
class AddressData:
    street: str = ""
    comune: str = ""
    provincia: str = ""
    cap: str = ""
    nazione: str = ""
    phone: str = ""
    mobile: str = ""
    fax: str = ""


def check_address(data: AddressData) -> Address:
    """The address checked (every field mandatory but fax and cellulare). A comune with one CAP in
    the data gets it when the CAP was left empty: the proposal the form makes with JavaScript."""
    cap = data.cap
    if not (cap or "").strip() and (data.nazione or "IT").strip().upper() in ("", "IT", "ITALIA", "ITALY"):
        try:
            place = comuni().get(data.comune, data.provincia or None)
        except PecError:
            place = None
        if place is not None and place.cap:
            cap = place.cap
    return validate_address(
        data.street, data.comune, data.provincia, cap, data.nazione, data.phone, data.mobile, data.fax
    )


def _apply_address(row: HolderAddress, address: Address) -> None:
    row.street = address.street
    row.cap = address.cap
    row.comune = address.comune
    row.provincia = address.provincia
    row.nazione = address.nazione
    row.codice_istat = address.codice_istat
    row.phone = address.phone.e164
    row.mobile = address.mobile.e164 if address.mobile else ""
    row.fax = address.fax.e164 if address.fax else ""


def add_address(client: Client, data: AddressData) -> HolderAddress:
    address = check_address(data)
    row = HolderAddress(client_id=client.id)
    _apply_address(row, address)
    db.session.add(row)
    db.session.flush()
    return row


def update_address(row: HolderAddress, data: AddressData) -> HolderAddress:
    _apply_address(row, check_address(data))
    db.session.flush()
    return row


def addresses_of(client_id: int) -> list[HolderAddress]:
    return list(
        db.session.scalars(select(HolderAddress).where(HolderAddress.client_id == client_id).order_by(HolderAddress.id))
    )


def address_of(client_id: int, address_id: int) -> HolderAddress | None:
    return db.session.scalar(
        select(HolderAddress).where(HolderAddress.client_id == client_id, HolderAddress.id == address_id)
    )


# --- activities -----------------------------------------------------------------------------


@dataclass
class ActivityData:
    company_name: str = ""
    partita_iva: str = ""
    description: str = ""
    address_id: int | None = None


def _check_activity(client: Client, data: ActivityData, except_id: int | None = None) -> dict:
    errors = []
    name = key = piva = None
    try:
        name = normalise_company_name(data.company_name)
        key = company_key(name)
    except PecError as error:
        errors.append(error)
    try:
        piva = validate_partita_iva(data.partita_iva) if (data.partita_iva or "").strip() else ""
    except PecError as error:
        errors.append(error)
    if data.address_id is not None and address_of(client.id, data.address_id) is None:
        errors.append(
            PecError(_l("Choose one of the holder's addresses."), field="address_id", code="activity.address")
        )
    if key is not None:
        stmt = select(HolderActivity.id).where(HolderActivity.client_id == client.id, HolderActivity.company_key == key)
        if except_id is not None:
            stmt = stmt.where(HolderActivity.id != except_id)
        if db.session.scalar(stmt) is not None:
            errors.append(
                PecError(
                    _l("The holder already has the activity %(name)s.", name=name),
                    field="company_name",
                    code="activity.duplicate",
                )
            )
    if errors:
        raise PecErrors(errors)
    description = " ".join((data.description or "").split())[:200]
    return {
        "company_name": name,
        "company_key": key,
        "partita_iva": piva,
        "description": description,
        "address_id": data.address_id,
    }


def add_activity(client: Client, data: ActivityData) -> HolderActivity:
    activity = HolderActivity(client_id=client.id, **_check_activity(client, data))
    db.session.add(activity)
    db.session.flush()
    return activity


def update_activity(client: Client, activity: HolderActivity, data: ActivityData) -> HolderActivity:
    for key, value in _check_activity(client, data, except_id=activity.id).items():
        setattr(activity, key, value)
    db.session.flush()
    return activity


def activities_of(client_id: int) -> list[HolderActivity]:
    return list(
        db.session.scalars(
            select(HolderActivity).where(HolderActivity.client_id == client_id).order_by(HolderActivity.id)
        )
    )


def activity_of(client_id: int, activity_id: int) -> HolderActivity | None:
    return db.session.scalar(
        select(HolderActivity).where(HolderActivity.client_id == client_id, HolderActivity.id == activity_id)
    )


def holder_summary(client: Client) -> dict:
    """What the wizard shows of a found holder (JSON of the lookup endpoint)."""
    return {
        "id": client.id,
        "name": client.name,
        "kind": client.kind,
        "first_name": client.first_name,
        "last_name": client.last_name,
        "company_name": client.company_name,
        "email": client.email,
        "tax_id": client.tax_id,
    }
