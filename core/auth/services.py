"""Passwords, login throttling, one-time links and what a user may do."""

from __future__ import annotations

import hashlib
import math
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, g
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from core.auth.models import TOKEN_INVITE, TOKEN_RESET, AuthToken, Operator, User, new_session_nonce
from core.cache import remember
from core.errors import DomainError
from core.extensions import db, utcnow
from core.redis_connection import get_redis
from core.roles.models import Role, RolePermission, UserRole
from tenants.context import current_tenant_id

_hasher = PasswordHasher()
# Verified against when the account does not exist, so that timing does not reveal accounts.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def check_new_password(password: str, confirm: str) -> None:
    minimum = current_app.config["PASSWORD_MIN_LENGTH"]
    if len(password) < minimum:
        raise DomainError(_l("The password must have at least %(n)s characters.", n=minimum), field="password")
    if password != confirm:
        raise DomainError(_l("The two passwords do not match."), field="confirm")


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


# --- throttling -------------------------------------------------------------------------


class LoginLocked(DomainError):
    def __init__(self, seconds: int) -> None:
        minutes = max(1, math.ceil(seconds / 60))
        super().__init__(
            _l(
                "Too many failed attempts. For your security, logging in is blocked for %(minutes)s "
                "minutes. You can also reset your password.",
                minutes=minutes,
            )
        )
        self.seconds = seconds


class ResetThrottled(DomainError):
    """This address asked for too many password reset links; it may ask again in ``seconds``."""

    def __init__(self, seconds: int) -> None:
        minutes = max(1, math.ceil(seconds / 60))
        super().__init__(
            _l(
                "Too many requests for a new password from your connection. For your security, "
                "try again in %(minutes)s minutes.",
                minutes=minutes,
            )
        )
        self.seconds = seconds


def _throttle_keys(kind: str, scope: str, email: str, address: str) -> tuple[str, str]:
    """The counters of one account (within ``scope``) and of one client address, for ``kind``."""
    return f"ventanilla:{kind}:{scope}:account:{email}", f"ventanilla:{kind}:address:{address}"


def _count(keys: tuple[str, ...], window: int) -> list[int]:
    """Add one to each counter and return the new values; a counter's window starts at its first hit."""
    redis = get_redis()
    with redis.pipeline() as pipe:
        for key in keys:
            pipe.incr(key)
            pipe.ttl(key)
        answers = pipe.execute()
    # EXPIRE ... NX needs Redis 7; the embedded server is 6.
    for key, ttl in zip(keys, answers[1::2], strict=True):
        if ttl < 0:
            redis.expire(key, window)
    return [int(value) for value in answers[0::2]]


def _check_throttle(scope: str, email: str, address: str) -> None:
    config = current_app.config
    redis = get_redis()
    account_key, address_key = _throttle_keys("login", scope, email, address)
    account, per_address = redis.mget(account_key, address_key)
    if account and int(account) >= config["LOGIN_MAX_FAILURES_PER_ACCOUNT"]:
        raise LoginLocked(max(redis.ttl(account_key), 1))
    if per_address and int(per_address) >= config["LOGIN_MAX_FAILURES_PER_ADDRESS"]:
        raise LoginLocked(max(redis.ttl(address_key), 1))


def _record_failure(scope: str, email: str, address: str) -> None:
    _count(_throttle_keys("login", scope, email, address), current_app.config["LOGIN_FAILURE_WINDOW"])


def _clear_account_failures(scope: str, email: str) -> None:
    get_redis().delete(_throttle_keys("login", scope, email, "")[0])


def _count_reset_request(scope: str, email: str, address: str) -> bool:
    """Count one request for a reset link; False when the account has had enough links for now.

    Raises ``ResetThrottled`` when the address is over its limit (nothing is counted then): it
    may be told, as it says nothing about any account. An account over its limit is not told
    apart from any other answer, so that the limit does not reveal which accounts exist.
    """
    config = current_app.config
    redis = get_redis()
    keys = _throttle_keys("reset", scope, email, address)
    per_address = redis.get(keys[1])
    if per_address and int(per_address) >= config["PASSWORD_RESET_MAX_PER_ADDRESS"]:
        raise ResetThrottled(max(redis.ttl(keys[1]), 1))
    account, _per_address = _count(keys, config["PASSWORD_RESET_WINDOW"])
    return account <= config["PASSWORD_RESET_MAX_PER_ACCOUNT"]


INVALID_LOGIN = _l("The e-mail or the password is not correct.")


def login_identifiers(tenant) -> list:
    """The tenant's plugins' other ways to name oneself at login (``login_identifiers`` hook)."""
    from core.plugins import host
    from tenants.licensing import enabled_for

    return host().call_for_tenant("login_identifiers", enabled_for(tenant), tenant=tenant)


def _user_named(tenant, identifier: str) -> User | None:
    """The user an e-mail address names, else the one a plugin's identifier names."""
    if "@" in identifier:
        return db.session.scalar(select(User).where(func.lower(User.email) == identifier))
    for login_identifier in login_identifiers(tenant):
        user = login_identifier.find(identifier)
        if user is not None:
            return user
    return None


def authenticate_user(tenant, email: str, password: str, address: str) -> User:
    """Return the active user of ``tenant`` with these credentials, or raise a ``DomainError``.
    ``email`` may also be another identifier a plugin understands (``login_identifiers``)."""
    email = normalise_email(email)
    scope = f"t{tenant.id}"
    _check_throttle(scope, email, address)
    user = _user_named(tenant, email)
    if user is None or not verify_password(user.password_hash, password):
        _record_failure(scope, email, address)
        raise DomainError(INVALID_LOGIN)
    if not user.active or (user.is_portal and not user.client.active):
        raise DomainError(_l("This account has been deactivated. Ask your administrator."))
    _clear_account_failures(scope, email)
    user.last_login_at = utcnow()
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    db.session.commit()
    return user


def authenticate_operator(email: str, password: str, address: str) -> Operator:
    email = normalise_email(email)
    _check_throttle("operator", email, address)
    operator = db.session.scalar(select(Operator).where(func.lower(Operator.email) == email))
    if operator is None or not operator.active or not verify_password(operator.password_hash, password):
        _record_failure("operator", email, address)
        raise DomainError(INVALID_LOGIN)
    _clear_account_failures("operator", email)
    operator.last_login_at = utcnow()
    db.session.commit()
    return operator


def set_password(user: User, password: str, confirm: str) -> None:
    """A new password: every session of the account ends and every unused one-time link dies."""
    check_new_password(password, confirm)
    user.password_hash = hash_password(password)
    user.session_nonce = new_session_nonce()
    revoke_tokens(user)
    _clear_account_failures(f"t{user.tenant_id}", normalise_email(user.email))


# --- one-time links ---------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(user: User, purpose: str) -> str:
    """Create a one-time link token for ``user``; older unused tokens of the same purpose die."""
    ttl = current_app.config["INVITATION_TTL" if purpose == TOKEN_INVITE else "PASSWORD_RESET_TTL"]
    now = utcnow()
    for old in db.session.scalars(
        select(AuthToken).where(AuthToken.user_id == user.id, AuthToken.purpose == purpose, AuthToken.used_at.is_(None))
    ):
        old.used_at = now
    token = secrets.token_urlsafe(32)
    db.session.add(
        AuthToken(user_id=user.id, purpose=purpose, token_hash=_digest(token), expires_at=now + timedelta(seconds=ttl))
    )
    return token


def revoke_tokens(user: User) -> None:
    """Spend every unused one-time link (reset, invitation) of ``user``."""
    now = utcnow()
    for row in db.session.scalars(select(AuthToken).where(AuthToken.user_id == user.id, AuthToken.used_at.is_(None))):
        row.used_at = now


def token_user(token: str, purpose: str) -> User:
    """The user a still-valid token belongs to, or a ``DomainError`` saying why not."""
    row = db.session.scalar(
        select(AuthToken).where(AuthToken.token_hash == _digest(token), AuthToken.purpose == purpose)
    )
    if row is None or row.used_at is not None:
        raise DomainError(_l("This link is not valid or has already been used."))
    if row.expires_at <= utcnow():
        raise DomainError(_l("This link has expired. Ask for a new one."))
    if not row.user.active or (row.user.is_portal and not row.user.client.active):
        raise DomainError(_l("This account has been deactivated. Ask your administrator."))
    return row.user


def consume_token(token: str, purpose: str, password: str, confirm: str) -> User:
    """Set the password through a one-time link; the link stops working."""
    user = token_user(token, purpose)
    set_password(user, password, confirm)
    row = db.session.scalar(select(AuthToken).where(AuthToken.token_hash == _digest(token)))
    row.used_at = utcnow()
    db.session.commit()
    return user


def request_password_reset(tenant, email: str, address: str) -> None:
    """Ask for a reset link for the account of ``tenant`` with this e-mail, if there is one.

    The request itself only counts the request and queues a ``mail``-queue job
    (``send_password_reset``) that looks the account up, makes the link and writes the e-mail: it
    does the same work, in the same time, whether or not the account exists. Nothing is queued
    when the account has been sent enough links within the window (a flood of reset e-mails to
    one person), which again says nothing about the account. ``ResetThrottled`` when ``address``
    has asked too often.
    """
    from core.jobs.services import get_queue

    email = normalise_email(email)
    if not _count_reset_request(f"t{tenant.id}", email, address):
        return
    get_queue("mail").enqueue(
        "core.auth.services.send_password_reset",
        tenant.id,
        email,
        job_timeout=current_app.config["MAIL_LEASE_SECONDS"],
        result_ttl=0,  # whether an account was found is nobody's business
        at_front=True,  # someone is waiting for the link: ahead of any backlog of mail
        description=f"password reset (tenant {tenant.id})",
    )


def send_password_reset(tenant_id: int, email: str) -> None:
    """The job behind ``request_password_reset``: a link and its e-mail for the active account of
    the tenant with ``email``; nothing when there is none."""
    from core.jobs.runner import _fresh_connections_after_fork, job_application
    from tenants.context import tenant_context
    from tenants.models import Tenant

    app = job_application()
    with app.app_context():
        _fresh_connections_after_fork()
        with tenant_context(tenant_id):
            tenant = db.session.get(Tenant, tenant_id)
            if tenant is None or not tenant.is_active:
                return
            user = db.session.scalar(select(User).where(func.lower(User.email) == email))
            if user is None or not user.is_active:
                return
            token = issue_token(user, TOKEN_RESET)
            # The link and its e-mail commit together.
            email_password_reset(tenant, user, token)


# --- permissions ------------------------------------------------------------------------


def permissions_of(user) -> frozenset[str]:
    """Codes the user's roles grant, limited to core and the tenant's enabled plugins.

    Computed with one query and kept for the rest of the request, and between requests until the
    tenant's data next changes (``core.cache``).
    """
    if user is None or not getattr(user, "is_authenticated", False) or user.is_operator:
        return frozenset()
    cache = g.setdefault("permission_cache", {})
    if user.id in cache:
        return cache[user.id]
    from core.plugins import host
    from tenants.licensing import enabled_for
    from tenants.models import Tenant

    def compute() -> list[str]:
        # The user's own tenant: the request's (memoised), or in a job the one the user belongs to.
        tenant = g.get("tenant")
        if tenant is None or tenant.id != user.tenant_id:
            tenant = db.session.get(Tenant, user.tenant_id)
        rows = db.session.execute(
            select(Role.all_permissions, RolePermission.code)
            .join(UserRole, UserRole.role_id == Role.id)
            .outerjoin(RolePermission, RolePermission.role_id == Role.id)
            .where(UserRole.user_id == user.id)
        ).all()
        usable = {p.code for p in host().permissions.for_plugins({"core"} | enabled_for(tenant))}
        granted = usable if any(all_perms for all_perms, _ in rows) else {code for _, code in rows if code}
        return sorted(granted & usable)

    # Roles, grants and licences are the tenant's data: what they grant is kept until it next changes.
    codes = remember(f"permissions of {user.id}", compute) if current_tenant_id() == user.tenant_id else compute()
    cache[user.id] = frozenset(codes)
    return cache[user.id]


def has_permission(user, code: str) -> bool:
    """Whether ``user``'s roles grant permission ``code`` (of core or of a plugin the tenant has enabled)."""
    return code in permissions_of(user)


def load_operator(operator_id: int, nonce: str) -> Operator | None:
    operator = db.session.get(Operator, operator_id)
    if operator is None or not operator.active or operator.session_nonce != nonce:
        return None
    return operator


# --- e-mails ----------------------------------------------------------------------------


def email_password_reset(tenant, user: User, token: str) -> None:
    """Queue the reset link in the outbox (committing the caller's transaction with it)."""
    from core.mail.services import send_email
    from core.urls import external_url

    send_email(
        tenant,
        user.email,
        _l("Reset your password for %(organisation)s", organisation=tenant.name),
        "password_reset",
        user.language_in(tenant),
        priority="urgent",
        user=user,
        organisation=tenant.name,
        link=external_url("auth.reset_password", tenant=tenant.slug, token=token),
        hours=current_app.config["PASSWORD_RESET_TTL"] // 3600,
    )


def email_invitation(tenant, user: User, token: str, inviter_name: str) -> None:
    """Queue the invitation in the outbox, in the same transaction as the new user and token."""
    from core.mail.services import send_email
    from core.urls import external_url

    send_email(
        tenant,
        user.email,
        _l("You are invited to %(organisation)s", organisation=tenant.name),
        "invitation",
        user.language_in(tenant),
        priority="urgent",
        user=user,
        organisation=tenant.name,
        inviter=inviter_name,
        link=external_url("auth.accept_invitation", tenant=tenant.slug, token=token),
        days=current_app.config["INVITATION_TTL"] // 86400,
    )
