"""The organisation's settings and plugins: permissions, menu entries, core's settings sections."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from core.hookspecs import hookimpl
from core.hooktypes import NavItem, SettingsSection
from core.permissions import Permission
from core.templating import settings_sections as available_sections


@hookimpl
def register_permissions():
    return [
        Permission("core.plugins:manage", _l("Switch the organisation's plugins on and off")),
        Permission("core.settings:manage", _l("Change the organisation's settings")),
    ]


@hookimpl
def navigation(tenant, user):
    entries = [
        NavItem(_l("Plugins"), "settings.plugins", "core.plugins:manage", icon="puzzle", order=40, section="admin")
    ]
    # "Settings" for whoever may open one of its sections (core's or a plugin's).
    if available_sections():
        entries.append(NavItem(_l("Settings"), "settings.index", icon="gear", order=50, section="admin"))
    return entries


@hookimpl
def settings_sections(tenant, user):
    return [
        SettingsSection(
            "organisation", _l("Organisation"), "settings.organisation", "core.settings:manage", "building", 0
        ),
        SettingsSection("mail", _l("E-mail"), "mail.settings", "core.mail:manage", "envelope", 10),
        SettingsSection("plugins", _l("Plugins"), "settings.plugins", "core.plugins:manage", "puzzle", 20),
    ]
