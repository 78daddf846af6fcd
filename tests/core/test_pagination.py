"""Keyset pagination walks a list keyed on a date-time exactly once, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select


@pytest.mark.parametrize("descending", [False, True])
def test_pages_keyed_on_a_date_time_show_each_row_once_in_order(app, factory, descending):
    from core.clients.models import Client
    from core.extensions import db
    from core.pagination import keyset_page
    from tenants.context import tenant_context

    acme = factory.tenant("acme", plugins=())
    ids = [factory.client(acme, f"Client {n}") for n in range(7)]
    start = datetime(2026, 3, 29, 0, 59, 59, 250000, tzinfo=UTC)
    with app.app_context(), tenant_context(acme.id):
        # Two clients share a moment: the id settles their order.
        moments = [start + timedelta(microseconds=n * 1000) for n in (0, 1, 1, 2, 3, 500, 999)]
        for client_id, moment in zip(ids, moments, strict=True):
            db.session.get(Client, client_id).created_at = moment
        db.session.commit()

        seen, cursor = [], None
        for _ in range(10):
            page = keyset_page(
                db.session, select(Client), [Client.created_at, Client.id], cursor, per_page=3, descending=descending
            )
            seen += [client.id for client in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break

    assert seen == (list(reversed(ids)) if descending else ids)


def test_a_cursor_that_is_not_ours_gives_the_first_page(app, factory):
    import base64
    import json

    from core.clients.models import Client
    from core.extensions import db
    from core.pagination import keyset_page
    from tenants.context import tenant_context

    acme = factory.tenant("acme", plugins=())
    ids = [factory.client(acme, f"Client {n}") for n in range(3)]
    forged = base64.urlsafe_b64encode(json.dumps(["not a date", 1]).encode()).decode()
    with app.app_context(), tenant_context(acme.id):
        page = keyset_page(db.session, select(Client), [Client.created_at, Client.id], forged, per_page=5)
    assert [client.id for client in page.items] == ids and page.is_first


def test_the_page_links_keep_the_path_arguments_of_the_list(app, factory):
    """A list under a path argument (a client's, a sede's) pages without losing it."""
    from flask import render_template_string

    from core.pagination import Page

    factory.tenant("acme", plugins=())
    macro = '{% from "macros.html" import next_page %}{{ next_page(page, "clients.show") }}'
    with app.test_request_context("/acme/clients/42?tab=history&after=abc"):
        app.preprocess_request()
        html = render_template_string(macro, page=Page([], "nextcursor", False))
    assert 'href="/acme/clients/42?tab=history&amp;after=nextcursor"' in html
    assert 'href="/acme/clients/42?tab=history"' in html
