"""Run one real job (JobRunner: deadline thread, collector, snapshot store) against the simulator.

Collector integration tests use this to go through exactly the path the exporter runs: the YAML
configuration loader, the real pypsrp client over loopback HTTP, and the snapshot store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from collectors import registry
from collectors.contract import Collector, FactsBoard
from collectors.sources.remoting import SessionPool
from exporter.config import load_config
from exporter.scheduler import JobRunner
from exporter.state import JobStatus, SnapshotStore
from tests.conftest import estate_config, write_config


class Job:
    """One collector x one simulated host, run on demand; ``values()`` reads what it exported."""

    def __init__(self, sim, tmp_path: Path, collector: Collector, target: str, settings: dict[str, Any] | None = None,
                 sessions: SessionPool | None = None, facts: FactsBoard | None = None, **config_kw: Any) -> None:
        document = estate_config(sim, collectors={collector.name: settings or {}}, **config_kw)
        schemas = {**registry.by_name(), collector.name: collector}
        config = load_config(write_config(tmp_path, document), schemas)
        spec = next(j for j in config.jobs(schemas) if j.target.name == target and j.collector == collector.name)
        self.store = SnapshotStore(config.global_.staleness_intervals)
        self.sessions = sessions or SessionPool()
        self.runner = JobRunner(collector, spec, self.store, self.sessions, config.global_, facts)
        self.target = target

    def run(self) -> JobStatus:
        self.runner()
        return self.status

    @property
    def status(self) -> JobStatus:
        return next(j for j in self.store.jobs() if j.target == self.target)

    def values(self, metric: str) -> dict[tuple[str, ...], float]:
        """label values (without target) -> value, for one metric of the last successful run."""
        return {s.label_values: s.value for s in self.status.samples if s.spec.name == metric}

    def close(self) -> None:
        self.runner.close()
        self.sessions.close_all(timeout=5)
