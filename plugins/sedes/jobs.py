"""The plugin's background jobs: thin entry points that call the services.

- ``sedes.sync`` (queue ``sync``): one run reads a list of mailboxes (``sync.run_sync``);
- ``sedes.sweep`` (every five minutes, one run for the platform): opens a sweep of the due
  mailboxes of every tenant with the plugin (``sweep.start_sweeps``);
- ``sedes.sweep_run`` and ``sedes.sweep_part`` (queue ``sync``): the parts of a sweep, the first
  with its progress bar (``sweep.run_part``);
- ``sedes.deadline_alerts`` (every hour, per tenant): the 5/2/1-day alerts, each sent once.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from plugins.sedes import notifications, sweep, sync

SWEEP_CRON = "*/5 * * * *"
ALERTS_CRON = "17 * * * *"


def run_deadline_alerts(ctx) -> dict:
    """Tell whoever handles a notification that its deadline comes (idempotent: once per threshold)."""
    return notifications.send_deadline_alerts(ctx.tenant)


def register(jobs) -> None:
    """What the plugin's ``register_jobs`` hook adds."""
    jobs.add(sync.JOB, sync.run_sync, queue="sync", title=_l("Check electronic mailboxes"), timeout=sync.JOB_TIMEOUT)
    jobs.add(
        "sedes.sweep",
        sweep.start_sweeps,
        queue="sync",
        title=_l("Start the sync of due electronic mailboxes"),
        cron=SWEEP_CRON,
        per_tenant=False,
    )
    jobs.add(
        sweep.JOB, sweep.run_part, queue="sync", title=_l("Sync the due electronic mailboxes"), timeout=sync.JOB_TIMEOUT
    )
    jobs.add(
        sweep.PART_JOB,
        sweep.run_part,
        queue="sync",
        title=_l("Help sync the due electronic mailboxes"),
        timeout=sync.JOB_TIMEOUT,
    )
    jobs.add(
        "sedes.deadline_alerts",
        run_deadline_alerts,
        queue="mail",
        title=_l("Warn of notification deadlines"),
        cron=ALERTS_CRON,
        timeout=1800,
    )
