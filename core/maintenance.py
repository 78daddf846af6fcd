"""Keeping the database's planner informed after bulk writes.

PostgreSQL plans every query from statistics that autovacuum refreshes some time after rows
change (autovacuum must be on: see the README's production section). A bulk import or generation
changes thousands of rows at once, and until the next automatic ANALYZE the planner may take a
tenant's 20,000 clients for none (the client list's first query went from 0.1 ms to 16.6 ms).
Whoever writes in bulk calls ``analyse`` once it has committed.
"""

from __future__ import annotations

from sqlalchemy import text

from core.extensions import db


def analyse(*tables: str) -> None:
    """Refresh the statistics of ``tables`` (names of the application's tables) and commit.

    The application's role owns no table and may not ANALYZE them itself: on PostgreSQL it calls
    ``ventanilla_analyse``, which the migrations' role owns (migration 0012_scale_reads)."""
    known = db.metadata.tables
    unknown = [name for name in tables if name not in known]
    if unknown:
        raise ValueError(f"not tables of the application: {', '.join(unknown)}")
    connection = db.session.connection()
    for name in tables:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT ventanilla_analyse(:name)"), {"name": name})
        else:
            # Outside the ORM's statement checks: ANALYZE reads no row of any tenant.
            connection.exec_driver_sql(f'ANALYZE "{name}"')
    db.session.commit()
