"""Both isolation layers fail closed: the ORM criteria everywhere, row-level security on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, insert, select, text, update

from tenants.context import TenantContextMissing, TenantMismatch, all_tenants, tenant_context


@pytest.fixture
def two_tenants(app, factory):
    acme = factory.tenant("acme")
    beta = factory.tenant("beta")
    factory.note(acme, "acme note")
    factory.note(beta, "beta note")
    return acme, beta


def _titles():
    from core.extensions import db
    from tests.sample_plugin.models import SampleNote

    return sorted(db.session.scalars(select(SampleNote.title)))


def test_a_query_without_a_tenant_context_raises(app, two_tenants):
    from core.extensions import db
    from tests.sample_plugin.models import SampleNote

    with app.app_context():
        with pytest.raises(TenantContextMissing):
            db.session.scalars(select(SampleNote)).all()
        with pytest.raises(TenantContextMissing):
            db.session.execute(select(func.count()).select_from(SampleNote)).scalar()


def test_an_insert_without_a_tenant_context_raises(app, two_tenants):
    from core.extensions import db
    from tests.sample_plugin.models import SampleNote

    with app.app_context():
        db.session.add(SampleNote(title="orphan"))
        with pytest.raises(TenantContextMissing):
            db.session.flush()
        db.session.rollback()
        with pytest.raises(TenantContextMissing):
            db.session.execute(insert(SampleNote), [{"title": "bulk orphan", "body": ""}])


def test_queries_see_only_the_current_tenant(app, two_tenants):
    acme, beta = two_tenants
    with app.app_context():
        with tenant_context(acme.id):
            assert _titles() == ["Welcome note", "acme note"]
        with tenant_context(beta.id):
            assert _titles() == ["Welcome note", "beta note"]
        with all_tenants():
            assert len(_titles()) == 4


def test_bulk_update_and_delete_touch_only_the_current_tenant(app, two_tenants):
    from core.extensions import db
    from tests.sample_plugin.models import SampleNote

    acme, beta = two_tenants
    with app.app_context():
        with tenant_context(acme.id):
            db.session.execute(update(SampleNote).values(body="changed"))
            db.session.execute(delete(SampleNote).where(SampleNote.title == "Welcome note"))
            db.session.commit()
        with tenant_context(beta.id):
            bodies = dict(db.session.execute(select(SampleNote.title, SampleNote.body)).all())
    assert bodies == {"Welcome note": "Hello, Org beta", "beta note": "body of beta note"}


def _titles_and_bodies(app, tenant_id):
    from core.extensions import db
    from tests.sample_plugin.models import SampleNote

    with app.app_context(), tenant_context(tenant_id):
        return dict(db.session.execute(select(SampleNote.title, SampleNote.body)).all())


def test_statements_the_tenant_criteria_cannot_reach_are_refused(app, two_tenants):
    """Verified on main: tenant A's session rewrote tenant B's row with a bulk UPDATE by primary key."""
    from core.extensions import db
    from tenants.isolation import UnscopedStatement
    from tests.sample_plugin.models import SampleNote

    acme, beta = two_tenants
    with app.app_context():
        with all_tenants():
            foreign = db.session.scalar(select(SampleNote.id).where(SampleNote.title == "beta note"))
        with tenant_context(acme.id):
            attempts = [
                lambda: db.session.execute(update(SampleNote), [{"id": foreign, "body": "stolen"}]),
                lambda: db.session.execute(
                    text("UPDATE sample_notes SET body = 'stolen' WHERE id = :id"), {"id": foreign}
                ),
                lambda: db.session.execute(text("delete from Sample_Notes where id = :id"), {"id": foreign}),
                lambda: db.session.execute(text("SELECT body FROM sample_notes WHERE id = :id"), {"id": foreign}),
                lambda: db.session.execute(
                    update(SampleNote.__table__).where(SampleNote.__table__.c.id == foreign).values(body="stolen")
                ),
                lambda: db.session.execute(delete(SampleNote.__table__).where(SampleNote.__table__.c.id == foreign)),
            ]
            for attempt in attempts:
                with pytest.raises(UnscopedStatement):
                    attempt()
                db.session.rollback()
            assert db.session.execute(text("SELECT 1")).scalar() == 1, "SQL on no tenant table is not concerned"
    assert _titles_and_bodies(app, beta.id)["beta note"] == "body of beta note"


def test_the_helpers_put_the_tenant_into_bulk_updates_and_textual_sql(app, two_tenants):
    from core.extensions import db
    from tenants.isolation import tenant_sql, update_by_id
    from tests.sample_plugin.models import SampleNote

    acme, beta = two_tenants
    with app.app_context():
        with all_tenants():
            ids = dict(db.session.execute(select(SampleNote.title, SampleNote.id)).all())
        with tenant_context(acme.id):
            update_by_id(
                db.session,
                SampleNote,
                [{"id": ids["acme note"], "body": "mine"}, {"id": ids["beta note"], "body": "x"}],
            )
            db.session.execute(
                tenant_sql(
                    "UPDATE sample_notes SET body = 'also mine' WHERE tenant_id = :tenant_id AND title = :title"
                ),
                {"title": "Welcome note"},
            )
            db.session.execute(
                tenant_sql("UPDATE sample_notes SET body = 'x' WHERE tenant_id = :tenant_id AND id = :id"),
                {"id": ids["beta note"]},
            )
            db.session.commit()
            with pytest.raises(ValueError):
                tenant_sql("UPDATE sample_notes SET body = 'x'")
    assert _titles_and_bodies(app, acme.id) == {"Welcome note": "also mine", "acme note": "mine"}
    assert _titles_and_bodies(app, beta.id) == {"Welcome note": "Hello, Org beta", "beta note": "body of beta note"}


def test_a_row_of_another_tenant_cannot_be_written(app, two_tenants):
    from core.extensions import db
    from tests.sample_plugin.models import SampleNote

    acme, beta = two_tenants
    with app.app_context():
        with all_tenants():
            foreign = db.session.scalar(select(SampleNote).where(SampleNote.title == "beta note"))
        with tenant_context(acme.id):
            foreign.title = "stolen"
            with pytest.raises(TenantMismatch):
                db.session.flush()
            db.session.rollback()
            db.session.add(SampleNote(title="planted", tenant_id=beta.id))
            with pytest.raises(TenantMismatch):
                db.session.flush()
            db.session.rollback()
            with pytest.raises(TenantMismatch):
                db.session.execute(insert(SampleNote), [{"title": "planted", "body": "", "tenant_id": beta.id}])


def test_new_rows_take_the_current_tenant(app, two_tenants):
    from core.extensions import db
    from tests.sample_plugin.models import SampleNote

    acme, _ = two_tenants
    with app.app_context(), tenant_context(acme.id):
        note = SampleNote(title="fresh")
        db.session.add(note)
        db.session.commit()
        assert note.tenant_id == acme.id


def test_every_tenant_owned_table_carries_tenant_id(app):
    """Only the tenants themselves, operators and models marked installation-wide have no tenant."""
    from core.extensions import db
    from tenants.isolation import TenantScoped

    global_tables = {"tenants", "core_operators"} | {
        m.local_table.name for m in db.Model.registry.mappers if getattr(m.class_, "ventanilla_global", False)
    }
    assert global_tables == {"tenants", "core_operators", "core_vapid_keys", "sedes_sedes"}
    for table in db.metadata.sorted_tables:
        if table.name in global_tables:
            continue
        assert "tenant_id" in table.c, f"{table.name} has no tenant_id"
        assert not table.c.tenant_id.nullable
    for mapper in db.Model.registry.mappers:
        if mapper.local_table.name not in global_tables:
            assert issubclass(mapper.class_, TenantScoped), mapper.class_


def test_migrations_match_the_models(app):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine

    from core.extensions import db
    from tenants.isolation import made_on

    engine = create_engine(app.config["DATABASE_MIGRATION_URL"])
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": made_on(connection.dialect.name)}
        )
        differences = compare_metadata(context, db.metadata)
    engine.dispose()
    assert differences == []


# --- layer 2: PostgreSQL row-level security -----------------------------------------------


@pytest.fixture
def postgres_only(database):
    if database["engine"] != "postgresql":
        pytest.skip("row-level security exists on PostgreSQL only (TEST_DATABASE_URL unset)")


def test_every_tenant_table_forces_row_level_security(app, owner_engine, postgres_only):
    from core.extensions import db

    tenant_tables = {t.name for t in db.metadata.sorted_tables if "tenant_id" in t.c and t.name != "tenants"}
    with owner_engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
                "(SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind = 'r'"
            )
        ).all()
    security = {name: (enabled, forced, policies) for name, enabled, forced, policies in rows}
    for table in tenant_tables:
        assert security[table] == (True, True, 1), f"{table}: {security.get(table)}"


def test_the_application_role_is_subject_to_the_policies(app, postgres_only):
    from core.extensions import db

    with app.app_context():
        superuser, bypass = db.session.execute(
            text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        ).one()
        owns = db.session.scalar(text("SELECT count(*) FROM pg_tables WHERE tableowner = current_user"))
    assert (superuser, bypass, owns) == (False, False, 0)


def test_raw_sql_with_another_tenants_setting_returns_no_rows(app, two_tenants, postgres_only):
    from core.extensions import db

    acme, beta = two_tenants
    with app.app_context():
        engine = db.engine
        with engine.connect() as connection, connection.begin():
            connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(acme.id)})
            rows = connection.execute(text("SELECT title FROM sample_notes WHERE tenant_id = :b"), {"b": beta.id}).all()
            everything = connection.execute(text("SELECT DISTINCT tenant_id FROM sample_notes")).scalars().all()
        with engine.connect() as connection, connection.begin():
            nothing = connection.execute(text("SELECT count(*) FROM sample_notes")).scalar()
    assert rows == [] and everything == [acme.id]
    assert nothing == 0, "with no tenant setting at all, no row is visible"


def test_raw_sql_cannot_write_into_another_tenant(app, two_tenants, postgres_only):
    from sqlalchemy.exc import ProgrammingError

    from core.extensions import db

    acme, beta = two_tenants
    with app.app_context():
        with db.engine.connect() as connection, connection.begin():
            connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(acme.id)})
            changed = connection.execute(
                text("UPDATE sample_notes SET title = 'x' WHERE tenant_id = :b"), {"b": beta.id}
            ).rowcount
        assert changed == 0
        with (
            pytest.raises(ProgrammingError, match="row-level security"),
            db.engine.connect() as connection,
            connection.begin(),
        ):
            connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(acme.id)})
            connection.execute(
                text("INSERT INTO sample_notes (title, body, tenant_id) VALUES ('x', '', :b)"), {"b": beta.id}
            )


def test_aggregates_and_association_rows_are_scoped_too(app, factory):
    from core.extensions import db
    from core.roles.models import UserRole
    from tests.sample_plugin.models import SampleNote

    acme = factory.tenant("acme")
    beta = factory.tenant("beta")
    factory.user(acme, "a@acme.test", role_key="admin")
    for n in range(3):
        factory.user(beta, f"b{n}@beta.test", role_key="admin")
    with app.app_context(), tenant_context(acme.id):
        assert db.session.scalar(select(func.count().filter(SampleNote.title != ""))) == 1
        assert db.session.scalar(select(func.count()).select_from(UserRole)) == 1
        assert db.session.scalar(select(func.count(UserRole.user_id))) == 1


# --- layer 3: a row never points at another tenant's row ------------------------------------------


def test_a_row_can_never_point_at_a_row_of_another_tenant(app, factory):
    from sqlalchemy.exc import IntegrityError

    from core.clients.models import ClientAddress, GroupClient
    from core.extensions import db

    acme = factory.tenant("acme")
    beta = factory.tenant("beta")
    own_group = factory.group(acme, "Mine")
    foreign_client = factory.client(beta, "Beta Client")
    with app.app_context(), tenant_context(acme.id):
        for row in (
            ClientAddress(client_id=foreign_client, street="Calle Robada 1"),
            GroupClient(group_id=own_group, client_id=foreign_client),
        ):
            db.session.add(row)
            with pytest.raises(IntegrityError):
                db.session.commit()
            db.session.rollback()
    with app.app_context(), tenant_context(beta.id):
        assert db.session.scalar(select(func.count()).select_from(ClientAddress)) == 1, "only its own address"


def test_every_reference_between_tenant_tables_has_its_same_tenant_key(app, owner_engine):
    from sqlalchemy import inspect

    from core.extensions import db
    from tenants.isolation import is_tenant_table, same_tenant_reference_name

    inspector = inspect(owner_engine)
    missing = []
    for table in db.metadata.sorted_tables:
        if not is_tenant_table(table):
            continue
        keys = {
            (tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
            for fk in inspector.get_foreign_keys(table.name)
        }
        for fk in table.foreign_keys:
            referred = fk.column.table
            if not is_tenant_table(referred):
                continue
            wanted = (("tenant_id", fk.parent.name), referred.name, ("tenant_id", fk.column.name))
            if wanted not in keys:
                missing.append(same_tenant_reference_name(table.name, fk.parent.name))
    assert missing == [], "add them to the migrations with tenants.isolation.same_tenant_references()"


# --- crossing tenants takes the application's key -----------------------------------------------


def _count_notes(connection) -> int:
    return connection.execute(text("SELECT count(*) FROM sample_notes")).scalar()


def test_the_applications_role_cannot_switch_on_all_tenants_by_itself(app, two_tenants, postgres_only):
    from sqlalchemy.exc import DBAPIError

    from core.extensions import db
    from tenants.isolation import all_tenants_key

    with app.app_context():
        engine = db.engine
        with engine.connect() as connection, connection.begin():
            connection.execute(text("SELECT set_config('app.all_tenants', 'on', true)"))
            assert _count_notes(connection) == 0, "the setting alone opens nothing"
        with pytest.raises(DBAPIError, match="all-tenants key does not match"), engine.connect() as connection:
            connection.execute(text("SELECT ventanilla_cross_tenants('guessed')"))
        with pytest.raises(DBAPIError, match="permission denied"), engine.connect() as connection:
            connection.execute(text("SELECT value FROM ventanilla_private.settings"))
        with engine.connect() as connection:
            with connection.begin():
                key = all_tenants_key(app.config["SECRET_KEY"])
                connection.execute(text("SELECT ventanilla_cross_tenants(:key)"), {"key": key})
                assert _count_notes(connection) == 4, "the application's own key crosses tenants"
                captured = connection.execute(text("SELECT current_setting('app.all_tenants')")).scalar()
            with connection.begin():
                connection.execute(text("SELECT set_config('app.all_tenants', :v, true)"), {"v": captured})
                assert _count_notes(connection) == 0, "a value read once is worth nothing in another transaction"
        with all_tenants():
            assert len(_titles()) == 4
