"""Jobs that plugins (and core) register through the ``register_jobs`` hook."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# ``push``: web push notifications, slow and best effort, kept off the mail queue.
QUEUES = ("default", "sync", "mail", "bulk", "push")

# The workers of one machine: short jobs (mail batches, cron fan-outs, pushes) never wait behind a
# long one, mailbox syncs never behind an import; the long-job workers help with the short queues
# when they have nothing of their own. Every queue is served by at least two of them but push.
SINGLE_MACHINE = (
    ("mail", "default", "push"),
    ("sync", "default", "mail"),
    ("bulk", "default", "mail"),
)


@dataclass(frozen=True)
class JobSpec:
    name: str
    func: Callable
    plugin: str
    queue: str = "default"
    title: object = ""
    cron: str | None = None
    interval: int | None = None
    timeout: int = 3600
    per_tenant: bool = True

    @property
    def scheduled(self) -> bool:
        return bool(self.cron or self.interval)


class JobRegistry:
    """All registered jobs, by name (``<plugin>.<job>``)."""

    def __init__(self) -> None:
        self._specs: dict[str, JobSpec] = {}

    def for_plugin(self, plugin: str) -> PluginJobs:
        return PluginJobs(self, plugin)

    def _add(self, spec: JobSpec) -> None:
        if spec.name in self._specs:
            raise ValueError(f"job {spec.name!r} registered twice")
        self._specs[spec.name] = spec

    def get(self, name: str) -> JobSpec | None:
        return self._specs.get(name)

    def all(self) -> list[JobSpec]:
        return sorted(self._specs.values(), key=lambda s: s.name)

    def scheduled(self) -> list[JobSpec]:
        return [s for s in self.all() if s.scheduled]


class PluginJobs:
    """What ``register_jobs(jobs)`` receives: a registry that only accepts the plugin's namespace."""

    def __init__(self, registry: JobRegistry, plugin: str) -> None:
        self._registry = registry
        self.plugin = plugin

    def add(
        self,
        name: str,
        func: Callable,
        *,
        queue: str = "default",
        title: object = "",
        cron: str | None = None,
        interval: int | None = None,
        timeout: int = 3600,
        per_tenant: bool = True,
    ) -> JobSpec:
        """Register ``func(ctx, **arguments)`` as job ``name``; with ``cron`` or ``interval`` it is periodic.

        A periodic job runs once per tenant that has the plugin enabled (each run has its
        ``JobRun``), on RQ's cron scheduler. A frequent, light periodic job can instead be a
        sweep (``per_tenant=False``): one run for the whole platform, ``func(tenant_ids)``,
        given the ids of the active tenants that have the plugin, and no ``JobRun`` history.
        """
        if not per_tenant and not (cron or interval):
            raise ValueError(f"job {name!r}: only a periodic job can be a sweep")
        if not name.startswith(f"{self.plugin}."):
            raise ValueError(f"job {name!r} of plugin {self.plugin!r} must be named {self.plugin}.<job>")
        if queue not in QUEUES:
            raise ValueError(f"job {name!r}: unknown queue {queue!r} (one of {', '.join(QUEUES)})")
        if cron and interval:
            raise ValueError(f"job {name!r}: give cron or interval, not both")
        spec = JobSpec(name, func, self.plugin, queue, title or name, cron, interval, timeout, per_tenant)
        self._registry._add(spec)
        return spec
