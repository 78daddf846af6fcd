"""The plugin's background jobs: thin entry points that call the services."""

from __future__ import annotations

from contextlib import nullcontext

from core.api import acting_as
from plugins.center_certificates.services import generation, notices, transitions


def run_transitions(ctx) -> dict:
    """The periodic job: the date-driven transitions, then the notices they call for."""
    counts = transitions.sweep(ctx.tenant)
    counts.update(notices.notify(ctx.tenant))
    return counts


def run_notify(ctx) -> dict:
    """Tell clients what they are owed (queued by a write, and after every sweep)."""
    return notices.notify(ctx.tenant)


def run_generation(
    ctx,
    template_id: int,
    group_ids: list[int],
    all_clients: bool = False,
    batch: int = generation.GENERATION_BATCH,
    notify: bool = False,
) -> dict:
    """ "Generar certificados" (the ``bulk`` queue), in the name of who started it: the audit
    trail says who made the certificates. The clients are told only when ``notify`` was chosen;
    otherwise the notices are held under the run's key."""
    starter = getattr(ctx.run, "started_by", None)
    with acting_as("user", starter.id, starter.name) if starter is not None else nullcontext():
        return generation.generate(
            ctx.tenant,
            template_id,
            group_ids,
            all_clients,
            issued_by_id=ctx.run.started_by_id,
            progress=ctx.progress,
            batch=batch,
            notify=notify,
            held_for=f"{notices.GENERATION_HELD}{ctx.run.id}",
        )
