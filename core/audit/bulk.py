"""Set-based writes that leave the audit trail an ORM write of the same rows would leave.

The ORM records a change as it flushes (``core.audit.recorder``); an ``UPDATE … WHERE`` or an
``INSERT … SELECT`` bypasses the flush, and writing the events by hand means loading every row
first. ``audited_write`` does the write and its events together, in SQL: a constant number of
statements per call whatever the number of rows, no object per row, in the caller's transaction.

- An update records, for each row it changes, the audited fields before and after (secrets
  masked, unchanged fields left out; a row whose audited fields do not change gets no event).
- An insert records a creation per new row with its non-empty audited fields.
- The object's label and parent are what ``audit_label``/``audit_parent`` give, from the SQL
  the model describes them with (``audit_label_sql``/``audit_parent_sql``).

The tenant condition is always written into the statements here (never left to the ORM's
criteria, which do not reach Core statements): an update touches only rows of ``tenant_id``, an
insert's rows and events carry it. Other tenant tables the caller's conditions or SELECT read
must compare their ``tenant_id`` there, or the write is refused (``TenantNotNamed``).

On PostgreSQL the write, its events and the lock on the old rows are one statement
(data-modifying CTEs); on SQLite two statements, which the database's single writer keeps
consistent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    case,
    cast,
    column,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    true,
    type_coerce,
    update,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.elements import BinaryExpression, ClauseElement, ColumnClause
from sqlalchemy.sql.expression import ColumnElement, Select
from sqlalchemy.sql.schema import Table
from sqlalchemy.sql.selectable import FromClause

from core.audit.models import CREATE, MASK, UPDATE, AuditEvent
from core.audit.recorder import Audited, _address, _masked, _plain, current_actor
from core.crypto import EncryptedBytes, EncryptedText
from core.extensions import UTCDateTime, db, utcnow
from tenants.context import TenantMismatch, crossing_tenants, current_tenant_id
from tenants.isolation import is_tenant_table

EVENT_COLUMNS = (
    "tenant_id",
    "at",
    "actor_kind",
    "actor_id",
    "actor_name",
    "action",
    "object_type",
    "object_id",
    "object_label",
    "parent_type",
    "parent_id",
    "changes",
    "address",
)


def audited_write(
    model: type,
    tenant_id: int,
    *,
    values: Mapping[str, object] | None = None,
    where: Sequence[ColumnElement] = (),
    by_id: Sequence[Mapping[str, object]] | None = None,
    insert_from: Select | Sequence[Mapping[str, object]] | None = None,
    also: Mapping[int, dict] | None = None,
    returning: Sequence[str] = ("id",),
) -> list:
    """Write rows of the audited ``model`` set-based, in ``tenant_id``, and record in the same
    transaction the events an ORM write of those rows would record. One of three writes:

    - ``values`` (with ``where``): ``UPDATE … SET values WHERE tenant AND where``; a value is a
      constant or a SQL expression of the row's columns (evaluated on the old row, as SET does).
    - ``by_id``: one mapping per row, its ``"id"`` and its new values (the same keys in each):
      ``UPDATE … FROM`` those rows, by primary key and tenant.
    - ``insert_from``: a ``Select`` whose labelled columns name the new rows' columns
      (``INSERT … SELECT``), or a list of mappings, one per new row.

    ``also`` adds to an update's events what the row's columns cannot show (a collection that the
    same operation changed, such as a client's groups): ``{object id: {field: [before, after]}}``.
    Returns the rows written as ``Row`` tuples of the ``returning`` columns (followed by ``id`` when
    it is not among them); their order is not that of ``by_id`` or ``insert_from``.
    """
    if sum(x is not None for x in (values, by_id, insert_from)) != 1:
        raise TypeError("audited_write: give exactly one of values, by_id or insert_from")
    if not (isinstance(model, type) and issubclass(model, Audited)) or not model.__audit_type__:
        raise TypeError(f"audited_write: {model!r} is not an audited model")
    _check_sql_description(model)
    if not crossing_tenants() and current_tenant_id() != tenant_id:
        raise TenantMismatch(f"audited write of tenant {tenant_id} rows while acting for {current_tenant_id()}")
    _check_tenant_named(model.__table__, [*(values or {}).values(), *where, insert_from])
    session = db.session
    session.flush()
    connection = session.connection()
    writer = _Writer(model, tenant_id, connection.dialect.name)
    returning = (*returning, "id") if "id" not in returning else tuple(returning)
    if insert_from is not None:
        if also:
            raise TypeError("audited_write: also is for updates (a new row has no id yet)")
        source = insert_from if isinstance(insert_from, Select) else writer.rows_select(insert_from)
        return writer.insert(connection, source, returning)
    if by_id is not None:
        if not by_id:
            return []
        rows_source = writer.rows_source(by_id)
        names = [col.name for col in rows_source.c if col.name != "id"]
        table = writer.table
        new_values = {name: rows_source.c[name] for name in names}
        conditions = [table.c.id == rows_source.c.id]
        return writer.update(connection, new_values, conditions, also, returning)
    return writer.update(connection, dict(values), list(where), also, returning)


class TenantNotNamed(ValueError):
    """A table the write reads is not restricted to a tenant in the statement."""


def _check_tenant_named(target, clauses) -> None:
    """Every tenant table the caller's clauses read (other than the target table itself, which the
    statement restricts) must compare its ``tenant_id`` in them: these statements do not go through
    the ORM's tenant criteria, and on SQLite no row-level security stands behind them."""
    read, named = {}, set()
    for clause in clauses:
        if not isinstance(clause, ClauseElement):
            continue
        for element in visitors.iterate(clause):
            if isinstance(element, ColumnClause) and isinstance(element.table, FromClause):
                source = element.table._deannotate()
                base = getattr(source, "element", source)
                if isinstance(base, Table) and is_tenant_table(base) and source is not target:
                    read[id(source)] = source
            elif isinstance(element, BinaryExpression) and element.operator is operators.eq:
                for side in (element.left, element.right):
                    if isinstance(side, ColumnClause) and side.name == "tenant_id" and side.table is not None:
                        named.add(id(side.table._deannotate()))
    missing = sorted(str(getattr(source, "name", source)) for key, source in read.items() if key not in named)
    if missing:
        raise TenantNotNamed(f"audited_write: compare the tenant_id of {', '.join(missing)} in the statement")


def _owner(model: type, name: str) -> type:
    return next(cls for cls in model.__mro__ if name in vars(cls))


def _check_sql_description(model: type) -> None:
    """A model that names its objects in Python must name them in SQL too, or its events would
    carry another label than the ORM's."""
    for python_name, sql_name in (("audit_label", "audit_label_sql"), ("audit_parent", "audit_parent_sql")):
        mro = model.__mro__
        if mro.index(_owner(model, sql_name)) > mro.index(_owner(model, python_name)):
            raise TypeError(f"{model.__name__} defines {python_name} but not {sql_name}: describe it for SQL")


class _Writer:
    def __init__(self, model: type, tenant_id: int, dialect: str):
        self.model = model
        self.table = model.__table__
        self.tenant_id = tenant_id
        self.postgres = dialect == "postgresql"
        self.dialect = dialect
        mapper = sa_inspect(model)
        skip = set(model.__audit_exclude__) | {"id", "tenant_id"}
        # (key of the attribute, name of the column, the column), as the ORM's recorder walks them.
        self.audited = [
            (attr.key, attr.columns[0].name, attr.columns[0]) for attr in mapper.column_attrs if attr.key not in skip
        ]

    # --- JSON of the recorded values, in SQL -------------------------------------------------

    def _masked(self, key: str, col) -> bool:
        return _masked(self.model, key, col)

    def json_of(self, expr, key: str, col):
        """A column's value as the recorder writes it (``_plain``): JSON on PostgreSQL (native
        values; ``jsonb_build_array`` converts them), JSON text on SQLite."""
        kind = col.type
        if self._masked(key, col) or isinstance(kind, EncryptedText | EncryptedBytes):
            value = case((expr.is_(None), None), else_=literal(MASK, String))
            return value if self.postgres else case((expr.is_(None), "null"), else_=json.dumps(MASK))
        if isinstance(kind, DateTime | UTCDateTime):
            return self._json_datetime(expr)
        if self.postgres:
            if isinstance(kind, LargeBinary):
                return case((expr.is_(None), None), else_="<" + cast(func.length(expr), Text) + " bytes>")
            if isinstance(kind, Numeric) and kind.asdecimal:
                return cast(expr, Text)
            return expr
        if isinstance(kind, Boolean):
            return case((expr.is_(None), "null"), (expr == true(), "true"), else_="false")
        if isinstance(kind, JSON):
            return case((expr.is_(None), "null"), else_=func.json(expr))
        if isinstance(kind, LargeBinary):
            return case((expr.is_(None), "null"), else_='"<' + cast(func.length(expr), Text) + ' bytes>"')
        if isinstance(kind, Numeric) and kind.asdecimal:
            return func.json_quote(cast(expr, Text))
        return func.json_quote(expr)

    def _json_datetime(self, expr):
        """``datetime.isoformat()`` of a UTC timestamp: microseconds only when there are some."""
        if self.postgres:
            utc = func.timezone("UTC", expr)
            fraction = func.to_char(utc, "US", type_=String)
            text_value = _text(
                func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS'),
                case((fraction == "000000", ""), else_="." + fraction),
                "+00:00",
            )
            return case((expr.is_(None), None), else_=text_value)
        stored = type_coerce(expr, String)  # "YYYY-MM-DD HH:MM:SS.ffffff", in UTC
        seconds = func.substr(stored, 1, 19)
        fraction = func.substr(stored, 20)
        iso = func.replace(case((fraction.in_(("", ".000000")), seconds), else_=stored), " ", "T")
        return case((expr.is_(None), "null"), else_=_text('"', iso, '+00:00"'))

    def json_constant(self, value, key: str, col):
        """A constant the statement writes, turned into JSON as the recorder turns it."""
        plain = _plain(value)
        if self._masked(key, col) and value is not None:
            plain = MASK
        text_value = json.dumps(plain)
        return cast(literal(text_value, Text), JSONB) if self.postgres else literal(text_value, String)

    def pair(self, before, after):
        if self.postgres:
            return func.jsonb_build_array(before, after)
        return _text("[", before, ",", after, "]")

    def json_object(self, entries: list[tuple[str, ColumnElement, ColumnElement]]):
        """``{key: pair}`` of the entries whose condition holds."""
        if self.postgres:
            if not entries:
                return cast(literal("{}", Text), JSONB)
            arguments = []
            for key, condition, pair in entries:
                arguments += [cast(literal(key, Text), Text), case((condition, pair))]
            return func.jsonb_strip_nulls(func.jsonb_build_object(*arguments))
        if not entries:
            return literal("{}", String)
        parts = [
            case((condition, _text(json.dumps(key) + ":", pair, ",")), else_="") for key, condition, pair in entries
        ]
        return _text("{", func.rtrim(_text(*parts), ","), "}")

    def with_also(self, changes, also_param, object_id):
        """Merge ``also[object_id]`` into the changes; with the condition that there was one."""
        if self.postgres:
            extra = func.jsonb_extract_path(also_param, cast(object_id, Text))
            return changes.op("||")(func.coalesce(extra, cast(literal("{}", Text), JSONB))), extra.is_not(None)
        extra = func.json_extract(also_param, _text('$."', cast(object_id, Text), '"'))
        return func.json_patch(changes, func.coalesce(extra, "{}")), extra.is_not(None)

    def finished(self, changes):
        """The changes as the audit column stores them."""
        return cast(changes, JSON) if self.postgres else func.json(changes)

    # --- the events -----------------------------------------------------------------------------

    def description(self, c) -> tuple:
        """(label, parent type, parent id) of the row whose columns are ``c``, as SQL."""
        parent = self.model.audit_parent_sql(c)
        return (
            func.substr(self.model.audit_label_sql(c), 1, 255),
            literal(parent[0], String) if parent else cast(null(), String),
            parent[1] if parent else cast(null(), Integer),
        )

    def event_columns(self, action: str, object_id, description: tuple, changes) -> list:
        """The audit row's columns, in ``EVENT_COLUMNS`` order."""
        kind, actor_id, actor_name = current_actor()
        label, parent_type, parent_id = description
        return [
            literal(self.tenant_id, Integer),
            literal(utcnow(), UTCDateTime()),
            literal(kind, String),
            literal(actor_id, Integer),
            literal(actor_name, String),
            literal(action, String),
            literal(self.model.__audit_type__, String),
            object_id,
            label,
            parent_type,
            parent_id,
            self.finished(changes),
            literal(_address(), String),
        ]

    def creation_changes(self, c):
        entries = []
        for key, name, col in self.audited:
            value = c[name]
            condition = value.is_not(None)
            if isinstance(col.type, String | Text) and not isinstance(col.type, EncryptedText):
                condition = condition & (value != "")
            nothing = literal_column("'null'::jsonb", JSONB) if self.postgres else literal("null", String)
            entries.append((key, condition, self.pair(nothing, self.json_of(value, key, col))))
        return self.json_object(entries)

    def update_changes(self, new_values: Mapping[str, object]):
        """The changes of an update, and the condition that any audited field changes."""
        entries, conditions = [], []
        for key, name, col in self.audited:
            if key not in new_values and name not in new_values:
                continue
            new = new_values[key] if key in new_values else new_values[name]
            old = self.table.c[name]
            if isinstance(new, ColumnElement):
                changed = old.is_distinct_from(new)
                after = self.json_of(new, key, col)
            else:
                changed = old.is_distinct_from(literal(new, col.type))
                after = self.json_constant(new, key, col)
            entries.append((key, changed, self.pair(self.json_of(old, key, col), after)))
            conditions.append(changed)
        return self.json_object(entries), (or_(*conditions) if conditions else None)

    # --- rows given as values ---------------------------------------------------------------------

    def _row_value(self, value, col):
        if value is None:
            return None
        if self.postgres:
            if isinstance(value, datetime | date):
                return value.isoformat()
            return value
        processor = col.type._cached_bind_processor(db.session.get_bind().dialect)
        return processor(value) if processor else value

    def rows_source(self, rows: Sequence[Mapping[str, object]]):
        """The rows as a table-valued source (one JSON parameter, whatever their number)."""
        names = list(rows[0])
        if any(list(row) != names and set(row) != set(names) for row in rows):
            raise TypeError("audited_write: every row must name the same columns")
        columns = {name: self.table.c[name] for name in names}
        payload = json.dumps([{n: self._row_value(row[n], columns[n]) for n in names} for row in rows])
        if self.postgres:
            recordset = func.jsonb_to_recordset(cast(literal(payload, Text), JSONB)).table_valued(
                *(column(n, columns[n].type) for n in names)
            )
            return recordset.render_derived(name="audited_rows", with_types=True)
        each = func.json_each(literal(payload, String)).table_valued("value")
        return (
            select(*(type_coerce(func.json_extract(each.c.value, f'$."{n}"'), columns[n].type).label(n) for n in names))
            .select_from(each)
            .subquery("audited_rows")
        )

    def rows_select(self, rows: Sequence[Mapping[str, object]]) -> Select:
        source = self.rows_source(rows)
        return select(*(col.label(col.name) for col in source.c))

    # --- the writes -------------------------------------------------------------------------------

    def insert(self, connection, source: Select, returning: Sequence[str]) -> list:
        table = self.table
        names = list(source.selected_columns.keys())
        if "tenant_id" not in names:
            source = source.add_columns(literal(self.tenant_id, Integer).label("tenant_id"))
            names.append("tenant_id")
        write = insert(table).from_select(names, source)
        events = insert(AuditEvent.__table__)
        if self.postgres:
            written = write.returning(*table.c).cte("audited_write")
            log = events.from_select(
                EVENT_COLUMNS,
                select(
                    *self.event_columns(
                        CREATE, written.c.id, self.description(written.c), self.creation_changes(written.c)
                    )
                ).where(written.c.tenant_id == self.tenant_id),
            ).cte("audited_events")
            return connection.execute(select(*(written.c[n] for n in returning)).add_cte(log)).all()
        rows = connection.execute(write.returning(*(table.c[n] for n in returning))).all()
        if rows:
            ids = json.dumps([row.id for row in rows])
            new_ids = select(column("value")).select_from(func.json_each(literal(ids, String)))
            connection.execute(
                events.from_select(
                    EVENT_COLUMNS,
                    select(
                        *self.event_columns(
                            CREATE, table.c.id, self.description(table.c), self.creation_changes(table.c)
                        )
                    ).where(table.c.tenant_id == self.tenant_id, table.c.id.in_(new_ids)),
                )
            )
        return rows

    def update(self, connection, new_values: dict, conditions: list, also, returning: Sequence[str]) -> list:
        table = self.table
        conditions = [table.c.tenant_id == self.tenant_id, *conditions]
        changes, changed = self.update_changes(new_values)
        also_param = None
        if also:
            payload = json.dumps({str(k): v for k, v in also.items()}, default=str)
            also_param = cast(literal(payload, Text), JSONB) if self.postgres else literal(payload, String)
            changes, extra = self.with_also(changes, also_param, table.c.id)
            changed = extra if changed is None else or_(changed, extra)
        if changed is None:
            changed = literal(False, Boolean)
        write = update(table).values(new_values)
        events = insert(AuditEvent.__table__)
        # The label and parent of the row as it will be (the ORM's recorder reads them after the change).
        label, parent_type, parent_id = self.description(_After(table, new_values))
        if self.postgres:
            before = (
                select(
                    table.c.id,
                    label.label("audited_label"),
                    parent_type.label("audited_parent_type"),
                    parent_id.label("audited_parent_id"),
                    changes.label("audited_changes"),
                    changed.label("audited_changed"),
                )
                .where(*conditions)
                .with_for_update(of=table)
                .cte("audited_before")
            )
            written = (
                write.where(*conditions, table.c.id.in_(select(before.c.id)))
                .returning(*(table.c[n] for n in returning))
                .cte("audited_write")
            )
            log = events.from_select(
                EVENT_COLUMNS,
                select(
                    *self.event_columns(
                        UPDATE,
                        before.c.id,
                        (before.c.audited_label, before.c.audited_parent_type, before.c.audited_parent_id),
                        before.c.audited_changes,
                    )
                ).where(before.c.audited_changed),
            ).cte("audited_events")
            return connection.execute(select(*written.c).add_cte(log)).all()
        connection.execute(
            events.from_select(
                EVENT_COLUMNS,
                select(*self.event_columns(UPDATE, table.c.id, (label, parent_type, parent_id), changes)).where(
                    *conditions, changed
                ),
            )
        )
        return connection.execute(write.where(*conditions).returning(*(table.c[n] for n in returning))).all()


class _After:
    """A row's columns as an UPDATE leaves them: the new value where one is set, else the column."""

    def __init__(self, table, new_values: Mapping[str, object]):
        self._table = table
        self._new = new_values

    def __contains__(self, name: str) -> bool:
        return name in self._table.c

    def __getitem__(self, name: str):
        column = self._table.c[name]
        if name not in self._new:
            return column
        value = self._new[name]
        return value if isinstance(value, ColumnElement) else literal(value, column.type)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]


def _text(*parts):
    """The parts (SQL expressions or strings) joined as text: ``||`` on both engines."""
    joined = None
    for part in parts:
        piece = literal(part, String) if isinstance(part, str) else type_coerce(part, String)
        joined = piece if joined is None else joined + piece
    return joined
