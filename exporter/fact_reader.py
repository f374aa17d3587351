"""The runner of a sharded exporter's fact reader (exporter.sharding.FactReaderSpec).

A fact reader runs like any job (its interval, deadline, target guard and failure log), but through
the collector's ``post_facts``: it posts on this exporter's facts board and records into a snapshot
store of its own that is never served, because its target's series belong to the shard that polls it;
for the same reason its run slots, backoff and series cap are its own, not the served per-target ones.
"""

from __future__ import annotations

from typing import Any

from collectors.contract import CollectContext, Collector, FactsBoard, Sample
from collectors.sources.remoting import SessionPool
from exporter.config import GlobalSettings
from exporter.scheduler import JobRunner
from exporter.series_cap import SeriesCap
from exporter.sharding import FactReaderSpec
from exporter.state import SnapshotStore


class FactsOnly:
    """A collector seen through ``post_facts``: a run posts its facts and yields no sample."""

    # Not the target's shared run slots and backoff (the scheduler gives those to collectors with
    # cmdlets, and serves them per target): the declared cmdlets still bound every call (declared_cmdlets).
    cmdlets = ()

    def __init__(self, collector: Collector[Any, Any]) -> None:
        self._collector = collector

    def __getattr__(self, name: str) -> Any:
        return getattr(self._collector, name)

    def collect(self, ctx: CollectContext[Any, Any]) -> list[Sample]:
        self._collector.post_facts(ctx)
        return []


class FactReaderRunner(JobRunner):
    """A job runner whose series cap stays its own: the scheduler hands every runner the shared one,
    which is served per target (lync_owa_target_series_dropped{target}), and this target's figures are
    another shard's to serve."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._own_series_cap = SeriesCap()
        super().__init__(*args, **kwargs)

    @property  # type: ignore[override]
    def series_cap(self) -> SeriesCap:
        return self._own_series_cap

    @series_cap.setter
    def series_cap(self, shared: SeriesCap) -> None:
        pass  # keeps its own


def fact_reader_runner(collector: Collector[Any, Any], spec: FactReaderSpec, sessions: SessionPool,
                       global_settings: GlobalSettings, facts: FactsBoard) -> JobRunner:
    unserved = SnapshotStore(global_settings.staleness_intervals)
    runner = FactReaderRunner(FactsOnly(collector), spec, unserved, sessions, global_settings, facts)
    # Its failures are logged like any job's; the extra field says the target is another shard's.
    runner.log.extra = {**(runner.log.extra or {}), "fact_reader": "true"}
    return runner
