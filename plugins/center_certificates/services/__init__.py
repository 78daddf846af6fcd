"""Certificates a centre asks its clients for: templates, requests, the state machine, notices.

The rules live in the modules of this package, one seam each: ``queries`` (who sees what, the
lists and counts), ``templates``, ``lifecycle`` (each write), ``transitions`` (the periodic
sweep), ``notices`` and ``generation``; ``dates`` the tenant's calendar. The names below are
what views, jobs, the demo and tests use.

States: Falta información (``missing_info``, initial) → Pendiente de aprobación (a file was
uploaded) → Aprobado → Caduca pronto (approved, validity date within the template's lead time)
→ Caducado (24 h after the validity date: from midnight after it, in the tenant's time zone).
Rechazar sends a pending certificate back to Falta información with a reason. The client and the
centre may correct a document until it is approved. While a certificate expires soon, its next
document can be handed in (a new certificate linked to it by ``renewal_of_id``); once that one is
approved, the expiring one goes to the history by itself.

Dates are computed in the tenant's time zone. The date-driven transitions happen both on every
write (a certificate approved late inside a window is right at once) and in a periodic sweep
of set-based statements, whose events reach the audit trail as the ORM's would. An archived
approved certificate also becomes Caducado when its validity passes (so the history shows what
it is), without a notice and without a renewal. A certificate that expired and was not renewed
stays among the client's current ones, as Caducado.

Each event the client is told about (created, approved, expiring, expired) is sent once per
certificate, and a rejection once per rejection: a unique notice row is written in the same
transaction as the e-mail it queues.
"""

from plugins.center_certificates.services.dates import dated_status, today_for
from plugins.center_certificates.services.generation import (
    ALL_CLIENTS,
    CENTRES,
    GENERATION_BATCH,
    GenerationChanged,
    GenerationChoice,
    centre_choices,
    centres_for,
    generate,
    generation_count,
    generation_notice_count,
    held_generation_notices,
    send_held_generation_notices,
    start_generation,
)
from plugins.center_certificates.services.lifecycle import (
    UPLOAD_KIND,
    approve,
    archive,
    delete,
    hand_in_next,
    reject,
    request_certificate,
    request_for_new_clients,
    submit,
    update_notes,
)
from plugins.center_certificates.services.notices import (
    held_count,
    notice_subject,
    notify,
    notify_soon,
    push_text,
    release_held,
)
from plugins.center_certificates.services.queries import (
    all_templates,
    bin_statement,
    get_template,
    get_visible,
    history_events,
    list_statement,
    of_client,
    of_portal_account,
    open_counts,
    status_counts,
    template_choices,
    templates_in_use,
    visible_statement,
)
from plugins.center_certificates.services.templates import TemplateData, clone_data, save_template
from plugins.center_certificates.services.transitions import sweep

__all__ = [
    "ALL_CLIENTS",
    "CENTRES",
    "GENERATION_BATCH",
    "UPLOAD_KIND",
    "GenerationChanged",
    "GenerationChoice",
    "TemplateData",
    "all_templates",
    "approve",
    "archive",
    "bin_statement",
    "centre_choices",
    "centres_for",
    "clone_data",
    "dated_status",
    "delete",
    "generate",
    "generation_count",
    "generation_notice_count",
    "get_template",
    "get_visible",
    "hand_in_next",
    "held_count",
    "held_generation_notices",
    "history_events",
    "list_statement",
    "notice_subject",
    "notify",
    "notify_soon",
    "of_client",
    "of_portal_account",
    "open_counts",
    "push_text",
    "reject",
    "release_held",
    "request_certificate",
    "request_for_new_clients",
    "save_template",
    "send_held_generation_notices",
    "start_generation",
    "status_counts",
    "submit",
    "sweep",
    "template_choices",
    "templates_in_use",
    "today_for",
    "update_notes",
    "visible_statement",
]
