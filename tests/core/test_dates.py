"""The date filters of the templates write what flask-babel writes, in every language and zone, and
their `_()` follows the language of the moment."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import flask_babel
import pytest
from flask import g

from core.i18n.dates import format_date, format_datetime

MOMENTS = [
    datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC),  # an hour before Madrid moves its clocks forward
    datetime(2026, 3, 29, 1, 0, 0, tzinfo=UTC),
    datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # the hour Madrid lives twice
    datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 30, tzinfo=UTC),  # already next year in Rome
    datetime(2027, 1, 1, 4, 59),  # stored without a zone: UTC
    datetime(1999, 7, 4, 12, 0, 7, 123456, tzinfo=UTC),
]


@pytest.mark.parametrize("language", ["es", "it", "en"])
@pytest.mark.parametrize("zone", ["Europe/Madrid", "Europe/Rome", "UTC", "America/New_York", "Asia/Kolkata"])
def test_the_filters_write_what_flask_babel_writes(app, language, zone):
    with app.test_request_context("/"):
        g.tenant = SimpleNamespace(language=language, timezone=zone)
        flask_babel.refresh()
        for moment in MOMENTS:
            for format in ("short", "medium", "long", "full", "dd/MM/yyyy HH:mm"):
                assert format_datetime(moment, format) == flask_babel.format_datetime(moment, format), (moment, format)
            for format in ("short", "medium", "long", "full", "d MMM y"):
                assert format_date(moment, format) == flask_babel.format_date(moment, format), (moment, format)
            day = moment.date()
            for format in ("short", "medium", "long", "full", "MMMM y", None):
                assert format_date(day, format) == flask_babel.format_date(day, format), (day, format)
        assert format_datetime(None, "short") == flask_babel.format_datetime(None, "short")


def test_a_forced_language_is_the_one_written(app):
    moment = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    with app.test_request_context("/"):
        g.tenant = SimpleNamespace(language="es", timezone="Europe/Madrid")
        flask_babel.refresh()
        spanish = format_date(moment, "long")
        with flask_babel.force_locale("it"):
            assert format_date(moment, "long") == "1 maggio 2026" != spanish
        assert format_date(moment + timedelta(days=1), "long") == "2 de mayo de 2026"
        assert format_date(date(2026, 5, 1), "long") == spanish


def test_the_templates_use_them(app):
    assert app.jinja_env.filters["datetimeformat"] is format_datetime
    assert app.jinja_env.filters["dateformat"] is format_date


def test_templates_translate_in_the_language_of_the_moment(app):
    from flask import render_template_string

    page = (
        "{{ _('Clients') }} {{ pgettext('client', 'Deactivated') }} "
        "{{ ngettext('%(num)d client', '%(num)d clients', 2) }}"
    )
    with app.test_request_context("/"):
        g.tenant = SimpleNamespace(language="es", timezone="Europe/Madrid")
        flask_babel.refresh()
        spanish = render_template_string(page)
        with flask_babel.force_locale("it"):
            italian = render_template_string(page)
        assert render_template_string(page) == spanish
        g.tenant = SimpleNamespace(language="en", timezone="UTC")
        flask_babel.refresh()
        english = render_template_string(page)
    assert spanish.startswith("Clientes ") and italian.startswith("Clienti ") and english.startswith("Clients ")
    assert len({spanish, italian, english}) == 3


def test_lazy_strings_follow_the_language_of_the_moment_and_keep_their_values(app):
    from flask import render_template_string
    from flask_babel import lazy_gettext, lazy_ngettext, lazy_pgettext
    from markupsafe import escape

    clients = lazy_gettext("Clients")
    deactivated = lazy_pgettext("client", "Deactivated")
    counted = lazy_ngettext("%(num)d client", "%(num)d clients", 2)
    typed = lazy_gettext("%(value)s is not a valid choice.", value="<b>x</b>")
    with app.test_request_context("/"):
        g.tenant = SimpleNamespace(language="es", timezone="Europe/Madrid")
        flask_babel.refresh()
        assert str(clients) == flask_babel.gettext("Clients") == "Clientes"
        assert str(deactivated) == flask_babel.pgettext("client", "Deactivated") != "Deactivated"
        assert str(counted) == flask_babel.ngettext("%(num)d client", "%(num)d clients", 2)
        assert str(typed) == flask_babel.gettext("%(value)s is not a valid choice.", value="<b>x</b>")
        assert "<b>" not in render_template_string("{{ typed }}", typed=typed)
        assert escape(typed) == escape(str(typed))
        with flask_babel.force_locale("it"):
            assert str(clients) == "Clienti"
            assert render_template_string("{{ c }}", c=clients) == "Clienti"
        assert str(clients) == "Clientes"
    assert str(clients) == "Clients", "outside the application: the source text"


def test_wtforms_own_messages_speak_the_language_of_the_moment(app):
    """WTForms' messages come from its own catalogue, read once per language for the process."""
    from babel.support import Translations
    from flask_wtf import FlaskForm
    from wtforms import IntegerField
    from wtforms.i18n import messages_path

    class Form(FlaskForm):
        class Meta:
            csrf = False

        number = IntegerField()

    def errors() -> list[str]:
        form = Form()
        form.validate()
        return form.number.errors

    def wtforms_says(language: str) -> str:
        return Translations.load(messages_path(), [language], domain="wtforms").ugettext("Not a valid integer value.")

    with app.test_request_context("/", method="POST", data={"number": "x"}):
        app.preprocess_request()
        g.tenant = SimpleNamespace(language="es", timezone="Europe/Madrid")
        flask_babel.refresh()
        spanish = errors()
        with flask_babel.force_locale("it"):
            italian = errors()
        assert errors() == spanish
    assert spanish == [wtforms_says("es")] and italian == [wtforms_says("it")]
    assert len({spanish[0], italian[0], "Not a valid integer value."}) == 3
