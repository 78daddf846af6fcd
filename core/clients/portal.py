"""Portal accounts: a client invited to log in to the client portal of the tenant."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, select

from core.auth.models import TOKEN_INVITE, User, new_session_nonce
from core.auth.services import email_invitation, issue_token, normalise_email
from core.clients.models import Client
from core.errors import DomainError
from core.extensions import db
from core.push.models import PushSubscription
from core.roles.models import ROLE_CLIENT, Role


def portal_account(client: Client) -> User | None:
    return db.session.scalar(select(User).where(User.client_id == client.id))


def invite_to_portal(tenant, client: Client, inviter) -> User:
    """Create (or invite again) the client's portal account and e-mail the invitation link."""
    if not client.active:
        raise DomainError(_l("The client is deactivated."))
    email = normalise_email(client.email)
    if not email:
        raise DomainError(_l("The client needs an e-mail address to be invited to the portal."))
    account = portal_account(client)
    # Also when inviting again: the client's e-mail may have changed to someone else's since.
    taken = db.session.scalar(select(User).where(func.lower(User.email) == email))
    if taken is not None and taken is not account:
        raise DomainError(
            _l("The e-mail %(email)s already belongs to another account of the organisation.", email=email)
        )
    if account is None:
        role = db.session.scalar(select(Role).where(Role.key == ROLE_CLIENT))
        account = User(
            email=email,
            name=client.name,
            client_id=client.id,
            invited_by_id=inviter.id,
            roles=[role] if role else [],
            locale=client.locale,
        )
        db.session.add(account)
        db.session.flush()
    elif account.password_hash is not None and account.active:
        raise DomainError(_l("The client already uses the portal."))
    elif not account.active:
        # Access given back after a revocation: the old password must not open it again before the
        # client accepts the new invitation and chooses one.
        account.password_hash = None
        account.session_nonce = new_session_nonce()
    account.active = True
    account.email = email
    token = issue_token(account, TOKEN_INVITE)
    email_invitation(tenant, account, token, inviter.name)
    return account


def revoke_portal(client: Client) -> None:
    revoke_portals([client.id])
    db.session.commit()


def revoke_portals(client_ids: list[int]) -> None:
    """Close the portal accounts of these clients (in the caller's transaction): every session
    ends, unused invitation links die, and their phones stop getting notices (they subscribe again
    when the client is invited back and logs in)."""
    from core.auth.services import revoke_tokens

    if not client_ids:
        return
    accounts = list(db.session.scalars(select(User).where(User.client_id.in_(client_ids))))
    for account in accounts:
        account.active = False
        account.session_nonce = new_session_nonce()
        revoke_tokens(account)
    if accounts:
        db.session.execute(
            delete(PushSubscription).where(PushSubscription.user_id.in_([account.id for account in accounts]))
        )
