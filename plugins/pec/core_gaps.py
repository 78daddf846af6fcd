"""Workarounds for what plugin API v1 does not offer yet — all of them here, and only here.

``core.api`` lets a plugin read clients and users but not create them, and has no hook for a
login identifier other than the e-mail. The pec plugin needs to create a holder (a core client)
from its "Inserisci nuovo account certificato" wizard and from its bulk import, and an account
for each assistant it creates. Until core grows the functions named below, this module does the
least it can with the models ``core.api`` exports, following core's own rules:

- ``create_holder_client`` stands for ``core.api.create_client(tenant, user, data) -> Client``
  (core's ``create_client`` with its checks, group placement and ``clients_created`` announcement);
  here: an Italian tax id already validated by the plugin, core's search text, the creator's own
  groups when they do not see every client. Other plugins are not told of these clients
  (``clients_created`` cannot be called from a plugin).
- ``users_with_permission`` is ``core.api.users_with_permission`` made to work in a job too: core
  reads the tenant's enabled plugins from ``flask.g.tenant``, which only a request sets, so outside
  a request no plugin permission is ever granted (a job could not find whom to tell).
- ``create_panel_user`` stands for ``core.api.create_user(tenant, email, name, role_key, password)``
  (core's ``invite_user`` with a first password instead of an invitation link, for panels whose
  users receive their credentials by e-mail).

Replace each body with a call to core.api once it exists; nothing else in the plugin changes.
"""

from __future__ import annotations

import secrets
import string
import unicodedata

from argon2 import PasswordHasher
from flask import current_app, g
from sqlalchemy import func, select

from core.api import Client, Group, User, db, own_group_ids, sees_every_client
from core.api import users_with_permission as _users_with_permission
from plugins.pec.identity import COMPANY, HolderIdentity

# Core's types of Italian tax id (core.clients.models IT_CF / IT_PIVA).
IT_CF = "it_cf"
IT_PIVA = "it_piva"


def _fold(text: str) -> str:
    """Core's search key (core.clients.services.fold): lower case without accents."""
    if text is None or text.isascii():
        return (text or "").lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def create_holder_client(identity: HolderIdentity, email: str, phone: str, user) -> Client:
    """A core client for a holder the plugin has validated (flushed, not committed)."""
    if identity.kind == COMPANY:
        first, last, company = "", "", identity.company_name or ""
        name = company
    else:
        first, last, company = identity.first_name or "", identity.last_name or "", ""
        name = f"{first} {last}"
    tax_id = identity.codice_fiscale
    phone = (phone or "")[:40]
    client = Client(
        kind=identity.kind,
        tax_id=tax_id,
        tax_id_type=IT_PIVA if len(tax_id) == 11 else IT_CF,
        country="IT",
        first_name=first[:120],
        last_name=last[:200],
        company_name=company[:250],
        name=name[:320],
        email=(email or "").lower(),
        phone=phone,
        search_text=_fold(" ".join((name, tax_id, email or "", phone))),
        created_by_id=getattr(user, "id", None),
    )
    if user is not None and not sees_every_client(user):
        groups = own_group_ids(user)
        if groups:
            client.groups = list(db.session.scalars(select(Group).where(Group.id.in_(groups))))
    db.session.add(client)
    db.session.flush()
    return client


# Letters and digits a person cannot confuse when copying them from an e-mail (no O/0, I/1).
PASSWORD_ALPHABET = "".join(c for c in string.ascii_uppercase + string.digits if c not in "O0I1")


def first_password() -> str:
    """A first password: upper-case letters and digits as the seed's panels send (8 is the seed's
    floor), at least as long as the platform's minimum, and never shorter than 12."""
    length = max(12, int(current_app.config.get("PASSWORD_MIN_LENGTH", 12)))
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


def _role_class():
    # The Role model is not exported by core.api; the User.roles relationship names it.
    return User.roles.property.mapper.class_


def create_panel_user(email: str, name: str, role_key: str, password: str | None = None) -> tuple[User, str]:
    """A staff account with the tenant's default role ``role_key`` and a first password (returned
    in clear once, to be e-mailed). An existing account with that e-mail is returned unchanged
    (with an empty password): it keeps its own password and roles."""
    existing = db.session.scalar(select(User).where(func.lower(User.email) == email.lower()))
    if existing is not None:
        return existing, ""
    password = password or first_password()
    role_class = _role_class()
    role = db.session.scalar(select(role_class).where(role_class.key == role_key))
    user = User(
        email=email.lower(),
        name=name,
        password_hash=PasswordHasher().hash(password),
        roles=[role] if role is not None else [],
    )
    db.session.add(user)
    db.session.flush()
    return user, password


def set_user_active(user: User, active: bool) -> None:
    """Stands for ``core.api.deactivate_user`` / ``reactivate_user``: a deactivated account cannot
    sign in, and its open sessions end (core's users service renews the session nonce likewise)."""
    user.active = active
    if not active:
        user.session_nonce = secrets.token_hex(16)


def users_with_permission(tenant, code: str) -> list[User]:
    """The tenant's active staff whose roles grant ``code``, in a request or in a job."""
    if g.get("tenant") is not None:
        return _users_with_permission(code)
    g.tenant = tenant
    try:
        return _users_with_permission(code)
    finally:
        g.pop("tenant", None)
        g.pop("permission_cache", None)
