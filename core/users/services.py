"""Managing the people of a tenant."""

from __future__ import annotations

import secrets
import string

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select

from core.auth.models import TOKEN_INVITE, User, new_session_nonce
from core.auth.services import check_new_password, email_invitation, hash_password, issue_token, normalise_email
from core.errors import DomainError
from core.extensions import db
from core.groups.models import Group
from core.roles.models import Role, UserRole
from core.roles.services import check_can_change_roles


def _roles(ids) -> list[Role]:
    ids = list(ids or [])
    return list(db.session.scalars(select(Role).where(Role.id.in_(ids)))) if ids else []


def _groups(ids) -> list[Group]:
    ids = list(ids or [])
    return list(db.session.scalars(select(Group).where(Group.id.in_(ids)))) if ids else []


def _check_email_free(email: str, except_id: int | None = None) -> None:
    stmt = select(User).where(func.lower(User.email) == email)
    if except_id is not None:
        stmt = stmt.where(User.id != except_id)
    existing = db.session.scalar(stmt)
    if existing is not None:
        raise DomainError(
            _l("There is already a user with the e-mail %(email)s (%(name)s).", email=email, name=existing.name),
            field="email",
        )


def active_administrators(except_user_id: int | None = None) -> int:
    stmt = (
        select(func.count(func.distinct(User.id)))
        .join(UserRole, UserRole.user_id == User.id)
        .join(Role, Role.id == UserRole.role_id)
        .where(Role.all_permissions.is_(True), User.active.is_(True))
    )
    if except_user_id is not None:
        stmt = stmt.where(User.id != except_user_id)
    return db.session.scalar(stmt) or 0


def _keep_an_administrator(user: User, roles_after: list[Role] | None, active_after: bool) -> None:
    is_admin_after = active_after and any(
        r.all_permissions for r in (roles_after if roles_after is not None else user.roles)
    )
    if not is_admin_after and active_administrators(except_user_id=user.id) == 0:
        raise DomainError(_l("The organisation must keep at least one active administrator."))


def invite_user(
    tenant,
    email: str,
    name: str,
    role_ids=(),
    group_ids=(),
    locale: str | None = None,
    *,
    inviter_id: int | None = None,
    inviter_name: str | None = None,
    actor=None,
) -> User:
    """Create a user who sets a password through the e-mailed invitation link.

    ``actor`` (who invites) may only give roles they could grant (``roles.services.can_grant``).
    """
    email = normalise_email(email)
    _check_email_free(email)
    roles = _roles(role_ids)
    check_can_change_roles(actor, [], roles)
    user = User(email=email, name=name.strip(), locale=locale or None, invited_by_id=inviter_id)
    user.roles = roles
    user.groups = _groups(group_ids)
    db.session.add(user)
    db.session.flush()
    token = issue_token(user, TOKEN_INVITE)
    # The user, the link and the message commit together (send_email commits).
    email_invitation(tenant, user, token, inviter_name or tenant.name)
    return user


def create_with_password(
    tenant, email: str, name: str, role_key: str, *, password: str | None = None, actor=None
) -> tuple[User, str]:
    """A staff account with the default role ``role_key`` and a first password instead of an
    invitation link (panels whose users get their credentials by e-mail): ``(user, password)``.
    An existing account with that e-mail is returned unchanged, with an empty password."""
    email = normalise_email(email)
    existing = db.session.scalar(select(User).where(func.lower(User.email) == email))
    if existing is not None:
        return existing, ""
    password = password or first_password()
    check_new_password(password, password)
    roles = list(db.session.scalars(select(Role).where(Role.key == role_key)))
    check_can_change_roles(actor, [], roles)
    user = User(email=email, name=name.strip(), password_hash=hash_password(password), roles=roles)
    db.session.add(user)
    db.session.flush()
    return user, password


# Letters and digits a person cannot confuse when copying them from an e-mail (no O/0, I/1).
PASSWORD_ALPHABET = "".join(c for c in string.ascii_uppercase + string.digits if c not in "O0I1")


def first_password() -> str:
    """A first password to e-mail: unambiguous letters and digits, at least the platform's minimum."""
    length = max(12, int(current_app.config.get("PASSWORD_MIN_LENGTH", 12)))
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


def resend_invitation(tenant, user: User, inviter_name: str) -> None:
    if not user.is_invited:
        raise DomainError(_l("This user has already accepted the invitation."))
    token = issue_token(user, TOKEN_INVITE)
    email_invitation(tenant, user, token, inviter_name)


def update_user(user: User, name: str, role_ids=(), group_ids=(), locale: str | None = None, actor=None) -> User:
    """Change a user; ``actor`` may only give or take away roles they could grant."""
    roles = _roles(role_ids)
    check_can_change_roles(actor, list(user.roles), roles)
    _keep_an_administrator(user, roles, user.active)
    user.name = name.strip()
    user.roles = roles
    user.groups = _groups(group_ids)
    user.locale = locale or None
    db.session.commit()
    return user


def deactivate_user(user: User, actor) -> None:
    if user.id == getattr(actor, "id", None):
        raise DomainError(_l("You cannot deactivate your own account."))
    _keep_an_administrator(user, None, False)
    user.active = False
    user.session_nonce = new_session_nonce()
    db.session.commit()


def reactivate_user(user: User) -> None:
    user.active = True
    db.session.commit()


def search_statement(q: str | None, status: str | None, role_id: int | None):
    """Staff accounts only: clients' portal accounts are managed from each client's page."""
    stmt = select(User).where(User.client_id.is_(None))
    if q:
        like = f"%{q.strip().lower()}%"
        stmt = stmt.where(or_(func.lower(User.name).like(like), func.lower(User.email).like(like)))
    if status == "active":
        stmt = stmt.where(User.active.is_(True), User.password_hash.is_not(None))
    elif status == "invited":
        stmt = stmt.where(User.active.is_(True), User.password_hash.is_(None))
    elif status == "inactive":
        stmt = stmt.where(User.active.is_(False))
    if role_id:
        stmt = stmt.where(User.id.in_(select(UserRole.user_id).where(UserRole.role_id == role_id)))
    return stmt
