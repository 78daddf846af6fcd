"""The certificate's state and validity as pages show them, in the reader's language."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace

import flask_babel
from flask import g, render_template_string


def test_the_badges_speak_the_readers_language_and_escape_what_they_show(app, monkeypatch):
    from plugins.center_certificates import badges
    from plugins.center_certificates.models import STATUS_LABELS, STATUS_STYLES

    status = next(iter(STATUS_LABELS))
    open_one = SimpleNamespace(status=status, archived_at=None, validity_date=date(2027, 3, 9))
    archived = SimpleNamespace(status=status, archived_at=datetime(2026, 1, 2, tzinfo=UTC), validity_date=None)
    page = "{{ certificate_status_badge(c) }}|{{ certificate_validity(c) }}"
    with app.test_request_context("/"):
        g.tenant = SimpleNamespace(language="es", timezone="Europe/Madrid")
        flask_babel.refresh()
        spanish = render_template_string(page, c=open_one)
        label = str(STATUS_LABELS[status])
        assert spanish == (
            f'<span class="badge text-bg-{STATUS_STYLES[status]}" data-status="{status}">{label}</span>'
            f"|{flask_babel.format_date(date(2027, 3, 9), 'medium')}"
        )
        with flask_babel.force_locale("it"):
            shown = render_template_string(page, c=archived)
        assert shown.endswith('<span class="badge text-bg-light border">Archiviato</span>|—'), shown

    monkeypatch.setattr(badges, "STATUS_LABELS", {'"x"': "<b>x</b>"})
    monkeypatch.setattr(badges, "STATUS_STYLES", {'"x"': "danger"})
    with app.test_request_context("/"):
        typed = render_template_string(
            "{{ certificate_status_badge(c) }}", c=SimpleNamespace(status='"x"', archived_at=None)
        )
    assert typed == '<span class="badge text-bg-danger" data-status="&#34;x&#34;">&lt;b&gt;x&lt;/b&gt;</span>'
