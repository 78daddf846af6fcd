"""Background jobs on RQ: registry, enqueueing, the tenant-aware runner, the cron scheduler."""

from core.jobs.registry import QUEUES, JobRegistry, JobSpec, PluginJobs


class TransientJobError(Exception):
    """A failure worth retrying later (a server that did not answer, a lock held elsewhere)."""


__all__ = ["QUEUES", "JobRegistry", "JobSpec", "PluginJobs", "TransientJobError"]
