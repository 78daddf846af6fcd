"""Language and time zone of each request: the user's choice, then the tenant's default."""

from __future__ import annotations

import os

import flask_babel
from babel.support import Translations
from flask import Flask, g, has_app_context, has_request_context, request, session
from flask_login import current_user
from markupsafe import Markup, escape
from wtforms.i18n import messages_path

from core.config import LANGUAGES
from core.i18n.dates import current_locale, format_date, format_datetime


def _shell_language() -> str:
    """Outside a request (the CLI, a job without ``force_locale``): the shell's language, else English."""
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        language = os.environ.get(variable, "")[:2].lower()
        if language in LANGUAGES:
            return language
    return "en"


def select_locale() -> str:
    if not has_request_context():
        return _shell_language()
    user = current_user
    if getattr(user, "is_authenticated", False) and getattr(user, "locale", None) in LANGUAGES:
        return user.locale
    if session.get("lang") in LANGUAGES:
        return session["lang"]
    tenant = g.get("tenant")
    if tenant is not None and tenant.language in LANGUAGES:
        return tenant.language
    return request.accept_languages.best_match(LANGUAGES) or "es"


def select_timezone() -> str:
    tenant = g.get("tenant") if has_request_context() else None
    return tenant.timezone if tenant is not None else "UTC"


def _page_translations():
    """flask-babel's translations for the templates' ``_()``, kept while the language stays the same.

    flask-babel looks its context, domain and catalogue up again for every string a template
    translates, some forty a page; a language forced for a while (``force_locale``) is another
    locale object, so it is looked up again, and so is the request's own when it comes back."""
    if not has_app_context():  # flask-babel's untranslated strings
        return flask_babel.get_translations()
    # The namespace itself rather than the proxy: a proxy lookup costs as much as the translation.
    page = g._get_current_object()
    locale = current_locale()
    kept = page.get("ventanilla_translations")
    if kept is None or kept[0] is not locale:
        kept = page.ventanilla_translations = (locale, flask_babel.get_translations())
    return kept[1]


LANGUAGE_NAMES = {"es": "Español", "it": "Italiano", "en": "English"}


class _FormMessages:
    """WTForms' own messages ("This field is required.") in the language of the moment.

    Flask-WTF reads WTForms' catalogue from disk once per request that shows a form, for the
    request's language, and keeps it on the request as ``wtforms_translations``. A request that
    finds this object there instead uses each language's catalogue read once per process."""

    _catalogues: dict[str, Translations] = {}

    def _catalogue(self) -> Translations:
        locale = current_locale()
        key = str(locale)
        catalogue = self._catalogues.get(key)
        if catalogue is None:
            catalogue = self._catalogues[key] = Translations.load(messages_path(), [locale], domain="wtforms")
        return catalogue

    def ugettext(self, string: str) -> str:
        return self._catalogue().ugettext(string)

    def ungettext(self, singular: str, plural: str, n: int) -> str:
        return self._catalogue().ungettext(singular, plural, n)


_FORM_MESSAGES = _FormMessages()


def _offer_form_messages() -> None:
    request.wtforms_translations = _FORM_MESSAGES


def _lazy_text(self) -> str:
    """A lazy string's text: ``_l`` and ``lazy_pgettext`` through the page's kept catalogue.

    A list page shows a lazy string or more on each row (field names, states, labels): flask-babel
    looks its context, domain, locale and catalogue up again for each, three times the work of
    the translation itself. The others (plural forms) keep flask-babel's way."""
    func = self._func
    if func is flask_babel.gettext:
        text = _page_translations().ugettext(*self._args)
    elif func is flask_babel.pgettext:
        text = _page_translations().upgettext(*self._args)
    else:
        return str(func(*self._args, **self._kwargs))
    return text % self._kwargs if self._kwargs else text


def _lazy_text_is_escaped(self) -> Markup:
    return escape(_lazy_text(self))


def lazy_strings_are_text() -> None:
    """Make templates escape lazy translated strings like any other text, and translate them with
    the page's catalogue.

    flask-babel's ``LazyString`` declares itself safe HTML (its ``__html__`` returns the string as
    it is), so a message built with a value the user typed (``_l("%(value)s is not a valid
    choice.", value=...)`` as a form error, a ``DomainError``) reached the page unescaped. No
    source string is markup, so every lazy string is escaped when a template shows it.
    """
    from flask_babel.speaklater import LazyString

    LazyString.__str__ = _lazy_text
    LazyString.__html__ = _lazy_text_is_escaped


def init_app(app: Flask, directories: list[str]) -> None:
    """``directories``: each plugin's own ``translations/``, then core's (the last wins on a shared message)."""
    from core.extensions import babel

    lazy_strings_are_text()
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = ";".join(directories)
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    app.jinja_env.filters.update(datetimeformat=format_datetime, dateformat=format_date)
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: _page_translations().ugettext(s),
        ngettext=lambda s, p, n: _page_translations().ungettext(s, p, n),
        pgettext=lambda c, s: _page_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: _page_translations().unpgettext(c, s, p, n),
        newstyle=True,
    )

    app.before_request(_offer_form_messages)

    @app.context_processor
    def _languages():
        return {"LANGUAGES": LANGUAGES, "LANGUAGE_NAMES": LANGUAGE_NAMES}
