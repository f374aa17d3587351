"""Which jobs a configuration asks for once the command line's collector switches are applied, and
what differs between the running jobs and a reloaded configuration's.

``--collector.<name>`` / ``--no-collector.<name>`` (node_exporter's switches) override the file's
``enabled`` for that collector everywhere, in ``collectors:`` and in every target's own section.
With ``--shard N --total-shards M`` only the shard's share of the targets is planned, plus the fact
readers its jobs need (exporter.sharding); a reload plans the same way, so the share holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from exporter.config import Config, JobSpec
from exporter.config.model import CollectorSchema
from exporter.sharding import UNSHARDED, FactReaderSpec, Shard, shard_jobs


def planned_jobs(config: Config, collectors: Mapping[str, CollectorSchema],
                 switches: Mapping[str, bool] | None = None, shard: Shard = UNSHARDED) -> list[JobSpec]:
    """One job per enabled collector x target whose roles fit, in ``Config.jobs``' order; a switch
    given for a collector decides instead of the file. Sharded: the shard's jobs and fact readers."""
    switches = switches or {}
    jobs = []
    for name in sorted(collectors):
        for target in config.targets:
            if not target.runs(collectors[name]):
                continue
            settings = target.collector_settings(name)
            enabled = switches.get(name, settings.enabled)
            if not enabled:
                continue
            if settings.enabled != enabled:  # the settings the job carries say what it does
                settings = settings.model_copy(update={"enabled": True})
            jobs.append(JobSpec(collector=name, target=target, settings=settings))
    return shard_jobs(jobs, shard, collectors)  # type: ignore[arg-type]


def job_fingerprint(spec: JobSpec) -> tuple[Any, ...]:
    """What a job's behaviour depends on. ``Target.settings`` (every collector's settings for the
    target) is left out: changing one collector's settings must not restart the others."""
    target = spec.target
    endpoints = tuple(sorted(target.endpoints.items()))
    return (spec.collector, target.name, target.host, target.roles, target.credential, endpoints, spec.settings,
            isinstance(spec, FactReaderSpec))


@dataclass(frozen=True)
class PlanChange:
    """Running jobs (by id) against the jobs of a new configuration."""

    added: list[JobSpec] = field(default_factory=list)
    changed: list[JobSpec] = field(default_factory=list)  # the new spec of a job whose id stays
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{len(self.added)} jobs added, {len(self.removed)} removed, {len(self.changed)} changed, "
                f"{len(self.unchanged)} unchanged")


def compare(running: Mapping[str, JobSpec], wanted: Iterable[JobSpec]) -> PlanChange:
    change = PlanChange()
    wanted_ids = set()
    for spec in wanted:
        wanted_ids.add(spec.id)
        old = running.get(spec.id)
        if old is None:
            change.added.append(spec)
        elif job_fingerprint(old) != job_fingerprint(spec):
            change.changed.append(spec)
        else:
            change.unchanged.append(spec.id)
    change.removed.extend(job_id for job_id in running if job_id not in wanted_ids)
    return change
