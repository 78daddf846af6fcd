"""Every message catalogue (core's and each plugin's; Spanish, Italian, English) is complete and
really translates.

Workflow: after adding or changing a translatable string (``_()``, ``_l()``, ``gettext``,
``ngettext`` in Python; ``{{ _('...') }}`` or ``ngettext(...)`` in a template), run
``make translations-update``. It extracts core's strings into core/translations/messages.pot and
each plugin's into plugins/<name>/translations/messages.pot, and merges those into the
{es,it,en}/LC_MESSAGES/messages.po beside them. Then fill the new, empty
entries in each language (English: the msgid itself, plural forms too), check any entry marked
``#, fuzzy`` (Babel's guess from a similar old string) and remove the flag, keep every ``%(name)s``
placeholder, and run ``make translations`` to compile the .mo files. These tests run the same
extraction (babel.cfg and the Makefile's BABEL_KEYWORDS) and fail while a string is missing,
empty, fuzzy or has different placeholders in any language.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

from core.config import LANGUAGES

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "core" / "translations"
# (name, folder whose strings are extracted, extraction config): core, then every built-in plugin.
SOURCES = [("core", ROOT, ROOT / "babel.cfg")] + [
    (folder.name, folder, ROOT / "babel-plugin.cfg")
    for folder in sorted((ROOT / "plugins").iterdir())
    if (folder / "__init__.py").is_file()
]
CATALOGUES = [name for name, _folder, _config in SOURCES]
# A %-conversion: named (%(name)s, %(num)d), positional (%s), an escaped %%, or a stray %.
PLACEHOLDER = re.compile(r"%\([^)]*\)[-#0 +]*\d*(?:\.\d+)?[a-zA-Z]|%[-#0 +]*\d*(?:\.\d+)?[a-zA-Z%]|%")


def _makefile_keywords() -> list[str]:
    """The keywords ``make translations-update`` extracts with, so both see the same strings."""
    match = re.search(r"^BABEL_KEYWORDS\s*:?=(.*)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match and match.group(1).split(), "the Makefile must define BABEL_KEYWORDS"
    return match.group(1).split()


def _folder(name: str) -> Path:
    return next(folder for source, folder, _config in SOURCES if source == name)


def _catalogue(language: str, name: str = "core") -> Catalog:
    translations = TRANSLATIONS if name == "core" else _folder(name) / "translations"
    path = translations / language / "LC_MESSAGES" / "messages.po"
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing: run `make translations-update`"
    with path.open("rb") as f:
        return read_po(f, locale=language)


def _entries(catalogue: Catalog) -> Iterator[Message]:
    """Every message but the header (obsolete ``#~`` entries are not part of the iteration)."""
    return (message for message in catalogue if message.id)


def _describe(message: Message) -> str:
    paths = [
        (Path(path).relative_to(ROOT) if Path(path).is_absolute() else path, line)
        for path, line in message.locations[:2]
    ]
    where = ", ".join(f"{path}:{line}" for path, line in paths)
    return f"{message.id!r}" + (f" ({where})" if where else "")


def _placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text))


@pytest.fixture(scope="module")
def source_messages(tmp_path_factory) -> dict[str, list[Message]]:
    """What ``pybabel extract`` finds in the sources today, exactly as the Makefile runs it, by catalogue."""
    found = {}
    for name, folder, config in SOURCES:
        pot = tmp_path_factory.mktemp("extract") / "messages.pot"
        args = ["pybabel", "-q", "extract", "-F", str(config), "-o", str(pot)]
        for keyword in _makefile_keywords():
            args += ["-k", keyword]
        CommandLineInterface().run([*args, str(folder)])
        with pot.open("rb") as f:
            found[name] = list(_entries(read_po(f)))
    assert len(found["core"]) > 100, "the extraction found almost nothing: check babel.cfg"
    return found


@pytest.mark.parametrize("name", CATALOGUES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_source_string_has_an_entry_in_the_catalogue(source_messages, language, name):
    catalogue = _catalogue(language, name)
    missing = []
    for message in source_messages[name]:
        entry = catalogue.get(message.id, context=message.context)
        if entry is None or entry.id != message.id:
            missing.append(_describe(message))
    assert not missing, (
        f"{len(missing)} strings of the sources are not in the {language} catalogue of {name}; "
        "run `make translations-update` and translate them:\n" + "\n".join(missing)
    )


@pytest.mark.parametrize("name", CATALOGUES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_entry_is_translated_and_none_is_fuzzy(language, name):
    catalogue = _catalogue(language, name)
    assert not catalogue.fuzzy, f"the header of the {language} catalogue is marked fuzzy"
    untranslated, fuzzy = [], []
    for message in _entries(catalogue):
        forms = message.string if message.pluralizable else (message.string,)
        if len(forms) != (catalogue.num_plurals if message.pluralizable else 1) or not all(
            form.strip() for form in forms
        ):
            untranslated.append(_describe(message))
        if message.fuzzy:
            fuzzy.append(_describe(message))
    assert not untranslated, f"{name} {language}: empty translations:\n" + "\n".join(untranslated)
    assert not fuzzy, f"{name} {language}: fuzzy entries (check them, then remove the flag):\n" + "\n".join(fuzzy)


@pytest.mark.parametrize("name", CATALOGUES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_the_placeholders_of_their_source(language, name):
    catalogue = _catalogue(language, name)
    wrong = []
    for message in _entries(catalogue):
        if message.pluralizable:
            singular, plural = message.id
            pairs = [(singular, message.string[0])] + [(plural, form) for form in message.string[1:]]
        else:
            pairs = [(message.id, message.string)]
        for source, translation in pairs:
            if translation and _placeholders(translation) != _placeholders(source):
                wrong.append(f"{_describe(message)} -> {translation!r}")
    # Babel's own checks, as `pybabel compile` runs them (format strings, number of plural forms).
    for message, errors in catalogue.check():
        wrong += [f"{_describe(message)}: {error}" for error in errors]
    assert not wrong, f"{name} {language}: placeholders differ from the source:\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    ("language", "log_in", "email_label"),
    [("it", "Accedi", "Email"), ("es", "Iniciar sesión", "Correo electrónico"), ("en", "Log in", "E-mail")],
)
def test_login_page_speaks_the_tenants_language(client, factory, language, log_in, email_label):
    compiled = TRANSLATIONS / language / "LC_MESSAGES" / "messages.mo"
    assert compiled.is_file(), f"{compiled.relative_to(ROOT)} is missing: compile with `make translations`"
    factory.tenant("acme", language=language)

    page = client.get("/acme/login")

    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'<html lang="{language}">' in html
    assert f'<h1 class="h4 mb-1">{log_in}</h1>' in html  # a template string
    assert f">{email_label}</label>" in html  # a lazy string of a Python form
    if language != "en":
        assert "Log in" not in html
