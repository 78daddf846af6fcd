"""Test helpers for plugin authors: real rows made through core's services, logins, a statement
counter. Core's own suite uses them (tests/conftest.py); a plugin's tests may too (they are not
bound by the plugin contract, but nothing here needs more than the app).

``Factory(app)`` makes tenants, roles, users, groups, operators, clients and portal accounts and
returns plain values (ids, ``TenantRef``), never live ORM objects; ``login`` and
``login_operator`` sign a Flask test client in; ``count_queries(app)`` counts the SQL statements
a block runs.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from sqlalchemy import select

PASSWORD = "correct-horse-battery"


@dataclass(frozen=True)
class TenantRef:
    id: int
    slug: str
    name: str


class Factory:
    """Creates real rows through the services; returns plain values, never live ORM objects."""

    def __init__(self, app) -> None:
        self.app = app

    def tenant(self, slug: str, name: str | None = None, language: str = "es", plugins=None) -> TenantRef:
        """A tenant with ``plugins`` licensed and enabled (every installed plugin when None)."""
        from core import provisioning as services
        from tenants import licensing

        with self.app.app_context():
            tenant = services.create_tenant(slug, name or f"Org {slug}", language)
            for plugin in self.app.extensions["ventanilla_plugins"].installed if plugins is None else plugins:
                licensing.set_licence(tenant, plugin, True)
            return TenantRef(tenant.id, tenant.slug, tenant.name)

    def role(self, tenant: TenantRef, name: str, permissions=()) -> int:
        from core.extensions import db
        from core.roles.models import Role, RolePermission
        from tenants.context import tenant_context

        with self.app.app_context(), tenant_context(tenant.id):
            role = Role(name=name, grants=[RolePermission(code=c) for c in permissions])
            db.session.add(role)
            db.session.commit()
            return role.id

    def user(
        self,
        tenant: TenantRef,
        email: str,
        *,
        permissions=None,
        role_key: str | None = None,
        password: str | None = PASSWORD,
        name: str | None = None,
        active: bool = True,
        groups=(),
    ) -> int:
        """A user holding a role with exactly ``permissions``, or the default role ``role_key``."""
        from core.auth.models import User
        from core.auth.services import hash_password
        from core.extensions import db
        from core.groups.models import Group
        from core.roles.models import Role
        from tenants.context import tenant_context

        role_id = None
        if permissions is not None:
            role_id = self.role(tenant, f"role for {email}", permissions)
        with self.app.app_context(), tenant_context(tenant.id):
            roles = []
            if role_id is not None:
                roles.append(db.session.get(Role, role_id))
            if role_key is not None:
                roles.append(db.session.scalar(select(Role).where(Role.key == role_key)))
            user = User(
                email=email,
                name=name or email.split("@")[0].title(),
                active=active,
                password_hash=hash_password(password) if password else None,
                roles=roles,
                groups=list(db.session.scalars(select(Group).where(Group.id.in_(list(groups))))),
            )
            db.session.add(user)
            db.session.commit()
            return user.id

    def group(self, tenant: TenantRef, name: str, user_ids=()) -> int:
        from core.auth.models import User
        from core.extensions import db
        from core.groups.models import Group
        from tenants.context import tenant_context

        with self.app.app_context(), tenant_context(tenant.id):
            group = Group(name=name, users=list(db.session.scalars(select(User).where(User.id.in_(list(user_ids))))))
            db.session.add(group)
            db.session.commit()
            return group.id

    def operator(self, email: str = "op@ventanilla.test", password: str = PASSWORD) -> int:
        from core.auth.models import Operator
        from core.auth.services import hash_password
        from core.extensions import db

        with self.app.app_context():
            operator = Operator(email=email, name="Op", password_hash=hash_password(password))
            db.session.add(operator)
            db.session.commit()
            return operator.id

    def client(
        self,
        tenant: TenantRef,
        name: str,
        tax_id: str | None = None,
        *,
        groups=(),
        email: str = "",
        address: bool = True,
        active: bool = True,
    ) -> int:
        """A company client (valid tax id made up when none is given), with an address."""
        from stdnum.es import cif

        from core.clients.models import Client, ClientAddress, GroupClient
        from core.clients.services import fold
        from core.extensions import db
        from tenants.context import tenant_context

        if tax_id is None:
            self._serial = getattr(self, "_serial", 1000000) + 1
            digits = f"{self._serial:07d}"
            tax_id = f"B{digits}{cif.calc_check_digits('B' + digits)[1]}"
        with self.app.app_context(), tenant_context(tenant.id):
            client = Client(
                kind="company",
                tax_id=tax_id,
                tax_id_type="es_cif",
                country="ES",
                company_name=name,
                name=name,
                email=email,
                active=active,
                search_text=fold(f"{name} {tax_id} {email}"),
            )
            if address:
                client.addresses = [ClientAddress(street=f"Calle {name} 1", postal_code="46001", city="Valencia")]
            db.session.add(client)
            db.session.flush()
            for group_id in groups:
                db.session.add(GroupClient(group_id=group_id, client_id=client.id))
            db.session.commit()
            return client.id

    def portal_user(self, tenant: TenantRef, client_id: int, email: str, password: str | None = PASSWORD) -> int:
        """The portal account of a client (the Cliente role, linked to the client)."""
        from core.auth.models import User
        from core.auth.services import hash_password
        from core.extensions import db
        from core.roles.models import Role
        from tenants.context import tenant_context

        with self.app.app_context(), tenant_context(tenant.id):
            role = db.session.scalar(select(Role).where(Role.key == "client"))
            user = User(
                email=email,
                name=email.split("@")[0].title(),
                client_id=client_id,
                roles=[role],
                password_hash=hash_password(password) if password else None,
            )
            db.session.add(user)
            db.session.commit()
            return user.id


def login(client, slug: str, email: str, password: str = PASSWORD):
    response = client.post(f"/{slug}/login", data={"email": email, "password": password})
    assert response.status_code == 302, f"login of {email} failed: {response.status_code}"
    return response


def login_operator(client, email: str = "op@ventanilla.test", password: str = PASSWORD):
    response = client.post("/operator/login", data={"email": email, "password": password})
    assert response.status_code == 302, f"operator login failed: {response.status_code}"
    return response


@contextlib.contextmanager
def count_queries(app):
    """The SQL statements run inside the block (a list that fills as they run)."""
    from sqlalchemy import event

    from core.extensions import db

    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
