"""A certificate's state and validity as every page shows them.

Functions rather than Jinja macros: the certificate list shows both on each of its fifty rows, and
the macro calls cost 0.16 ms of the page's 5.7 ms more than the functions do.
"""

from __future__ import annotations

from flask_babel import gettext as _
from markupsafe import Markup, escape

from core.api import format_date
from plugins.center_certificates.models import STATUS_LABELS, STATUS_STYLES


def status_badge(certificate) -> Markup:
    """The state as a coloured badge (``data-status`` names it for scripts and tests), and a
    second badge when the certificate is archived."""
    # Each value escaped and put in place by an f-string: Markup.format goes through
    # string.Formatter, which cost more than the macro it replaces.
    status = certificate.status
    badge = (
        f'<span class="badge text-bg-{escape(STATUS_STYLES[status])}" data-status="{escape(status)}">'
        f"{escape(STATUS_LABELS[status])}</span>"
    )
    if certificate.archived_at:
        badge += f' <span class="badge text-bg-light border">{escape(_("Archived"))}</span>'
    return Markup(badge)


def validity(certificate) -> str:
    """Until when the document is valid, in the reader's language; a dash before there is one."""
    return format_date(certificate.validity_date, "medium") if certificate.validity_date else "—"
