"""What hooks return: plain descriptions that core renders, dispatches and enforces.

Plugins build these through ``core.api`` (which re-exports every one); core reads them. None
of them holds a database session or a request: they may be built at start-up or per request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# --- describing a plugin ----------------------------------------------------------------

NUMBER = "number"
LIST = "list"
TEXT = "text"
LIMIT_KINDS = (NUMBER, LIST, TEXT)


@dataclass(frozen=True)
class LicenceLimit:
    """One limit the operator may set in a tenant's licence of the plugin.

    ``kind`` says what the value is: a whole ``number`` (``mailboxes=500``), a ``list`` of codes
    (``sedes=dehu,tgss``: which of a catalogue the tenant may use) or a line of ``text``. An
    empty value means "no limit". ``choices`` (a callable giving ``(code, label)`` pairs, called
    when the operator edits the licence) offers the codes a list may hold; without it any codes
    are accepted.
    """

    label: object
    kind: str = NUMBER
    help: object = ""
    choices: Callable[[], Iterable[tuple[str, object]]] | None = None

    def __post_init__(self) -> None:
        if self.kind not in LIMIT_KINDS:
            raise ValueError(f"licence limit kind must be one of {LIMIT_KINDS}, not {self.kind!r}")


@dataclass
class PluginInfo:
    """What ``ventanilla_plugin()`` returns: the plugin's name (its entry-point name), a translatable
    title and description, a version, the licence limits it understands: ``{key: LicenceLimit}``
    (a bare label stands for a number limit), and ``hookspecs``: a module of hook specifications
    of its own (``pluggy.HookspecMarker("ventanilla")``) that other packages may implement (the
    sedes plugin's ``sede_connectors``); call them with ``core.api.call_plugins``."""

    name: str
    title: object
    version: str = "0"
    description: object = ""
    limits: dict = field(default_factory=dict)
    hookspecs: object = None

    def __post_init__(self) -> None:
        self.limits = {
            key: value if isinstance(value, LicenceLimit) else LicenceLimit(value) for key, value in self.limits.items()
        }


@dataclass(frozen=True)
class DemoService:
    """A process ``make run`` starts beside the web server and the worker for the demo, and stops
    with them: a stand-in for an outside system (a sede simulator, a mail server). ``argv`` is run
    with the environment plus ``env``; ``lines`` are printed with the demo's logins (what to try)."""

    name: str
    argv: tuple[str, ...]
    env: dict = field(default_factory=dict)
    lines: tuple[str, ...] = ()


# --- the staff interface ----------------------------------------------------------------


@dataclass
class NavItem:
    """A menu entry (``navigation``) or a portal section (``portal_navigation``).

    ``section`` "main" entries make up the menu, "admin" entries the administration section.
    Entries whose ``permission`` the user lacks are left out by core.
    """

    title: object
    endpoint: str
    permission: str | None = None
    icon: str = "circle"
    order: int = 100
    section: str = "main"
    url_values: dict = field(default_factory=dict)


@dataclass
class Widget:
    """A card on the dashboard: ``template`` is rendered with ``ctx`` = ``context``."""

    title: object
    template: str
    context: dict = field(default_factory=dict)
    permission: str | None = None
    order: int = 100


@dataclass
class ClientTab:
    """A tab of the client page (``?tab=<key>``): ``template`` is rendered with ``ctx`` = ``context``."""

    key: str
    title: object
    template: str
    context: dict = field(default_factory=dict)
    permission: str | None = None
    order: int = 100


@dataclass
class SearchResult:
    """One line of the search box's results."""

    title: str
    url: str
    kind: object = ""
    detail: str = ""


@dataclass(frozen=True)
class LoginIdentifier:
    """Another way to name oneself on the tenant's login page than the e-mail (a reseller's panel
    code). ``find(text)`` gives the active user ``text`` names in the current tenant, or None; core
    asks it when what was typed is not an e-mail address, and then checks the password and
    throttles exactly as for an e-mail. ``label`` names it in the login form's hint ("You may also
    sign in with your panel code.")."""

    label: object
    find: Callable[[str], Any]


@dataclass
class SettingsSection:
    """An entry of the settings page's own menu, beside core's (Organisation, E-mail, Plugins).

    ``endpoint`` is a view of the plugin; its template extends ``settings/layout.html`` (and sets
    ``settings_active`` to ``key``) so that it is drawn inside the settings page.
    """

    key: str
    title: object
    endpoint: str
    permission: str | None = None
    icon: str = "sliders"
    order: int = 100
    url_values: dict = field(default_factory=dict)


# --- plugin data on the client --------------------------------------------------------------

TEXT_FIELD = "text"
TEXTAREA_FIELD = "textarea"
BOOLEAN_FIELD = "boolean"
CHOICE_FIELD = "choice"
LIST_FIELD = "list"
FIELD_KINDS = (TEXT_FIELD, TEXTAREA_FIELD, BOOLEAN_FIELD, CHOICE_FIELD, LIST_FIELD)


@dataclass(frozen=True)
class ClientField:
    """One value a plugin keeps about a client, shown on the client form, the data tab, the CSV
    import and the export.

    ``kind``: ``text`` (one line), ``textarea``, ``boolean``, ``choice`` (one of ``choices``,
    ``(value, label)`` pairs) or ``list`` (several lines of text, such as the CCCs of a company:
    one per line in the form, separated by ``|`` in a CSV cell). ``default`` is the value of a client
    the plugin knows nothing about. ``headers`` are further CSV column names the import accepts
    (compared without case, accents, spaces or punctuation); the column is always accepted under
    ``<plugin>.<key>``, which is also its name in the export.
    """

    key: str
    label: object
    kind: str = TEXT_FIELD
    default: Any = None
    help: object = ""
    choices: tuple = ()
    headers: tuple[str, ...] = ()
    max_length: int = 250

    def __post_init__(self) -> None:
        if self.kind not in FIELD_KINDS:
            raise ValueError(f"client field kind must be one of {FIELD_KINDS}, not {self.kind!r}")

    @property
    def empty(self):
        if self.default is not None:
            return self.default
        return False if self.kind == BOOLEAN_FIELD else [] if self.kind == LIST_FIELD else ""


class ClientFieldSet:
    """A plugin's section of client fields (``client_fields`` hook).

    Core calls, always in the tenant's context and inside the transaction of the change:

    - ``load(client_ids) -> {client_id: {key: value}}``: the stored values of many clients in one
      query (data tab, export, and the "before" of a change); a client missing from the answer
      has the fields' defaults.
    - ``validate(values, client_id) -> values``: check and normalise what a person typed or a CSV
      row said (``client_id`` is None for a new client); raise ``DomainError(message, field=key)``.
      Only keys present in ``values`` are to be checked and saved (a CSV without the column keeps
      the stored value).
    - ``save(values_by_client) -> None``: write ``{client_id: {key: value}}`` (validated) without
      committing: core commits with the client. Set-based: an import calls it once per batch.

    Subclass it, or use ``core.api.ModelClientFields`` for the common case of one row per client
    in a table of the plugin.
    """

    title: object = ""
    fields: tuple[ClientField, ...] = ()
    permission: str | None = None
    order: int = 100

    def load(self, client_ids: list[int]) -> Mapping[int, dict]:
        raise NotImplementedError

    def validate(self, values: dict, client_id: int | None) -> dict:
        return values

    def save(self, values_by_client: Mapping[int, dict]) -> None:
        raise NotImplementedError


# --- the client list --------------------------------------------------------------------


@dataclass(frozen=True)
class ClientColumn:
    """A column of the client list. ``expression()`` gives a SQL expression over ``Client`` (a
    correlated scalar subquery, typically) that the list's one query selects for every row: the
    page costs the same number of statements whatever the number of plugins and columns.
    ``badge`` draws a non-empty value as a badge of that Bootstrap style."""

    key: str
    title: object
    expression: Callable[[], Any]
    permission: str | None = None
    order: int = 100
    badge: str | None = None


@dataclass(frozen=True)
class ClientFilter:
    """A filter of the client list: a select of ``choices`` (``(value, label)`` pairs; an empty
    value means "no filter"). ``condition(value)`` gives the WHERE condition over ``Client`` for a
    chosen value (or None to ignore it). The filter applies to the list, its JSON API and the export."""

    key: str
    title: object
    choices: Callable[[], Iterable[tuple[str, object]]]
    condition: Callable[[str], Any]
    permission: str | None = None
    order: int = 100


@dataclass(frozen=True)
class HeldNotices:
    """What ``held_notices`` returns: messages to clients a plugin held back for a bulk action.

    ``count`` is how many messages ``release()`` would send now (to clients who can be reached);
    ``release()`` starts sending them and returns how many it started. Releasing is once: the
    held messages are taken by the first call, so a second call (a double click, a retried
    request) returns 0 and sends nothing. ``label`` says what they are ("certificate requests").
    """

    label: object
    count: int
    release: Callable[[], int]
