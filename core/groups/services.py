"""Groups: which users work together (and, with clients, on which clients)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from core.auth.models import User
from core.errors import DomainError
from core.extensions import db
from core.groups.models import Group


def _check_name_free(name: str, except_id: int | None = None) -> None:
    stmt = select(Group.id).where(func.lower(Group.name) == name.strip().lower())
    if except_id is not None:
        stmt = stmt.where(Group.id != except_id)
    if db.session.scalar(stmt) is not None:
        raise DomainError(_l("There is already a group called %(name)s.", name=name.strip()), field="name")


def _users(ids) -> list[User]:
    ids = list(ids or [])
    return list(db.session.scalars(select(User).where(User.id.in_(ids)))) if ids else []


def save_group(group: Group | None, name: str, description: str, user_ids=()) -> Group:
    _check_name_free(name, except_id=group.id if group else None)
    if group is None:
        group = Group()
        db.session.add(group)
    group.name = name.strip()
    group.description = (description or "").strip()
    group.users = _users(user_ids)
    db.session.commit()
    return group


def delete_group(tenant, group: Group) -> None:
    """Delete the group; its clients stay, and plugins hear that they left it."""
    from core.clients.models import Client, GroupClient
    from core.clients.services import announce_updated

    members = db.session.scalars(
        select(Client)
        .where(Client.id.in_(select(GroupClient.client_id).where(GroupClient.group_id == group.id)))
        .options(selectinload(Client.groups))
    ).all()
    changes = {}
    for client in members:
        before = [g.name for g in client.groups]
        changes[client.id] = {"groups": (before, [name for name in before if name != group.name])}
    db.session.delete(group)
    db.session.commit()
    announce_updated(tenant, changes)
