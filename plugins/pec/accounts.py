"""Panel access: the reseller's 10-digit code, assistants' codes, first credentials by e-mail.

The seed's panels sign in with a 10-digit code ("0000000129") and a password sent by e-mail.
Here every panel account is a core user; the code is the plugin's own data (``pec_panel_accounts``),
unique on the whole platform, made when the plugin is enabled (the reseller's) or when an
assistant is created. It is not a licence limit or a plugin setting because the platform must
guarantee that no two accounts share a code, which only a unique index can.

Signing in with the code needs a core hook that core.api does not have yet (see
``user_for_login_identifier`` and the final report): until then the code is shown on Info
Servizio and in the credentials e-mail, and the e-mail address signs in.
"""

from __future__ import annotations

import re
import secrets

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.api import User, db, external_url, send_email, user_language, utcnow
from plugins.pec import people
from plugins.pec.models import ASSISTANT, RESELLER, PanelAccount

CODE_LENGTH = 10
CODE_PATTERN = re.compile(r"^\d{10}$")
MANAGE_ASSISTANTS = "pec.assistants:manage"


def new_code() -> str:
    """Ten random digits, never all one digit."""
    while True:
        code = f"{secrets.randbelow(10**CODE_LENGTH):0{CODE_LENGTH}d}"
        if len(set(code)) > 1:
            return code


def _insert_account(kind: str, user_id: int | None, attempts: int = 20) -> PanelAccount:
    """A new account with a code no other account on the platform has (the unique index decides;
    a collision, one in billions, is retried with another code)."""
    for _attempt in range(attempts):
        account = PanelAccount(code=new_code(), kind=kind, user_id=user_id)
        try:
            with db.session.begin_nested():
                db.session.add(account)
        except IntegrityError:
            continue
        return account
    raise RuntimeError("could not find a free panel code")


def reseller_account() -> PanelAccount | None:
    return db.session.scalar(select(PanelAccount).where(PanelAccount.kind == RESELLER))


def ensure_reseller_account(tenant) -> PanelAccount:
    """The reseller's account, made on first use: its code, and as its user the first of the
    tenant's staff who may manage assistants (the reseller's administrator)."""
    account = reseller_account()
    if account is not None:
        return account
    managers = people.users_with_permission(tenant, MANAGE_ASSISTANTS)
    first = min(managers, key=lambda user: user.id) if managers else None
    return _insert_account(RESELLER, first.id if first else None)


def reseller_code(tenant) -> str:
    return ensure_reseller_account(tenant).code


def assistant_account(user_id: int) -> PanelAccount:
    """The panel account of an assistant's user, made on first use."""
    account = db.session.scalar(select(PanelAccount).where(PanelAccount.user_id == user_id))
    if account is not None:
        return account
    return _insert_account(ASSISTANT, user_id)


def account_of(user) -> PanelAccount | None:
    """The panel account a user signs in to the panel with, if any."""
    if user is None or getattr(user, "id", None) is None:
        return None
    return db.session.scalar(select(PanelAccount).where(PanelAccount.user_id == user.id))


def set_reseller_user(tenant, user_id: int) -> PanelAccount:
    """Give the reseller's code to another of the tenant's users (who then receives it)."""
    account = ensure_reseller_account(tenant)
    user = db.session.get(User, user_id)
    if user is None or not user.active or user.client_id is not None:
        from plugins.pec.errors import PecError

        raise PecError(_l("Choose an active member of the staff."), field="user", code="account.user")
    account.user_id = user.id
    account.credentials_sent_at = None
    return account


def user_for_login_identifier(identifier: str) -> User | None:
    """The active user a panel code names in the current tenant, or None: what core's login asks
    (``login_identifiers``) when what was typed is not an e-mail address; core then checks the
    password and throttles as for an e-mail."""
    code = re.sub(r"\s", "", identifier or "")
    if not CODE_PATTERN.match(code):
        return None
    account = db.session.scalar(select(PanelAccount).where(PanelAccount.code == code))
    if account is None or account.user is None or not account.user.active:
        return None
    return account.user


def send_credentials(tenant, account: PanelAccount, password: str = "") -> None:
    """E-mail the account's user their panel code (and their first password, when one was just
    made), with the address of the login page. Committed by the caller."""
    user = account.user
    if user is None:
        return
    send_email(
        tenant,
        user.email,
        _l("Your PEC panel credentials"),
        "pec/mail/credentials",
        user_language(user, tenant),
        commit=False,
        user=user,
        code=account.code,
        password=password,
        reseller=account.kind == RESELLER,
        link=external_url("auth.login", tenant=tenant.slug),
    )
    account.credentials_sent_at = utcnow()
