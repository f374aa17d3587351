"""Wires configuration, collectors, scheduler, snapshot store and the serving process (the HTTP
endpoint, exporter.serving) into one exporter, and applies a reloaded configuration to it (``apply``:
only the jobs that differ are touched)."""

from __future__ import annotations

import logging
from typing import Any, Mapping

from collectors import registry
from collectors.contract import Collector, FactsBoard
from exporter.config import Config
from exporter.fact_reader import fact_reader_runner
from exporter.http import parse_listen_address
from exporter.job_plan import PlanChange, compare, planned_jobs
from exporter.metrics import ExpositionCache
from exporter.reload import Reloader, ReloadStatus
from exporter.removal import ReleasableSessionPool
from exporter.scheduler import CollectionScheduler, JobRunner
from exporter.serving import ForwardedWebConfig, ServingProcess
from exporter.sharding import UNSHARDED, FactReaderSpec, Shard, describe
from exporter.state import SnapshotStore
from exporter.status_page import VerdictWatcher, render
from exporter.web_config import WebConfig

log = logging.getLogger(__name__)

# Global settings a reload cannot apply: the scheduler's worker pool is sized at start. Every other
# one applies at once (runners read them at every run, new runners get the new ones).
RESTART_GLOBAL_SETTINGS = ("max_concurrent_jobs",)


class Exporter:
    def __init__(
        self,
        config: Config,
        listen_address: str,
        collectors: Mapping[str, Collector[Any, Any]] | None = None,
        web_config: WebConfig | None = None,
        *,
        collector_switches: Mapping[str, bool] | None = None,
        telemetry_path: str = "/metrics",
        enable_lifecycle: bool = False,
        shard: Shard = UNSHARDED,
    ) -> None:
        # One instance of each collector per exporter; tests may pass their own (a fake DNS resolver).
        self.collectors = dict(collectors or {name: cls() for name, cls in registry.by_name().items()})
        self.collector_switches = dict(collector_switches or {})
        self.config = config
        self.store = SnapshotStore(config.global_.staleness_intervals)
        self.sessions = ReleasableSessionPool()
        self.facts = FactsBoard()  # what one job reads for others, shared by this exporter's jobs only
        self.shard = shard  # the share of the targets this exporter polls; reloads keep it
        jobs = planned_jobs(config, self.collectors, self.collector_switches, shard)
        if shard.total > 1:
            log.info("sharded", extra={"shard": describe(jobs, shard)})
        runners = [self._runner(spec) for spec in jobs]
        self.scheduler = CollectionScheduler(runners, config.global_.max_concurrent_jobs)
        self.reload_status = ReloadStatus()
        known_metrics = [spec for c in self.collectors.values() for spec in c.metrics]
        self.cache = ExpositionCache(self.store, known_metrics, build_labels=shard.labels(), live_collectors=[
            self.reload_status, self.scheduler.guards, self.scheduler.series_cap])  # backoff, series cut per target
        # The endpoint is served by a process of its own, fed with what this one renders (exporter.serving).
        self.server = ServingProcess(
            parse_listen_address(listen_address), self.cache, healthy=lambda: self.scheduler.running,
            status_page=lambda: render(self.store, telemetry_path).encode(),
            generation=lambda: self.store.generation, web_config=web_config, telemetry_path=telemetry_path,
            reload=(lambda: self.reloader.reload()) if enable_lifecycle else None,
        )
        self.web = ForwardedWebConfig(web_config, self.server) if web_config is not None else None
        self.reloader = Reloader(self)  # SIGHUP, and POST /-/reload with the lifecycle API on
        # Judges after every run, so the status page's "broken since" is when a run first showed it.
        self.verdict_watcher = VerdictWatcher(self.store)

    @property
    def runners(self) -> list[JobRunner]:
        return self.scheduler.runners

    @property
    def web_config(self) -> WebConfig | None:
        return self.web.current if self.web is not None else None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        shown = "127.0.0.1" if host in ("", "0.0.0.0") else host
        return f"{self.server.scheme}://{shown}:{port}"

    def _runner(self, spec) -> JobRunner:
        if isinstance(spec, FactReaderSpec):
            return fact_reader_runner(self.collectors[spec.collector], spec, self.sessions, self.config.global_,
                                      self.facts)
        return JobRunner(self.collectors[spec.collector], spec, self.store, self.sessions, self.config.global_,
                         self.facts)

    def start(self) -> None:
        self.cache.start()
        self.verdict_watcher.start()
        # The scheduler first: the snapshot sent at launch then says "healthy", so /healthz answers 200
        # from the first request the serving process takes (before its first publish, it said 503).
        self.scheduler.start()
        try:
            self.server.launch()  # the serving process starts its interpreter while the first runs start
            self.server.wait_ready()
        except Exception:
            self.stop()
            raise
        protection = self.web_config.summary() if self.web_config else "TLS off, basic auth off"
        log.info("listening", extra={"address": self.url, "jobs": len(self.runners), "web": protection,
                                     "telemetry_path": self.server.telemetry_path, "serving_pid": self.server.pid})

    def apply(self, config: Config) -> PlanChange:
        """Run ``config`` from now on, touching only what differs: removed jobs stop and their series
        go at once, changed jobs restart (fresh state and counters), new jobs start, and unchanged
        jobs keep their runner (collector state such as event log cursors, counters, sessions)."""
        running = {runner.job_id: runner for runner in self.runners}
        change = compare({job_id: r.spec for job_id, r in running.items()},
                         planned_jobs(config, self.collectors, self.collector_switches, self.shard))
        self._apply_global(config)
        self.config = config
        for job_id in change.removed:
            runner = running[job_id]
            self.scheduler.remove(runner)
            runner.retire()
            self.store.unregister(runner.collector.name, runner.spec.target.name)
        for spec in change.changed:
            old = running[spec.id]
            self.scheduler.remove(old)
            old.retire()  # before the successor registers: nothing of the old run lands on the new job
            self.scheduler.add(self._runner(spec))
        for spec in change.added:
            self.scheduler.add(self._runner(spec))
        for job_id in change.unchanged:
            running[job_id].global_settings = config.global_  # read at every run: the pool FQDN, hybrid...
        self.cache.refresh_now()
        wanted = [r.endpoints.spec(kind) for r in self.runners for kind in r.spec.target.endpoints]
        released = self.sessions.release_unused(wanted)
        log.info("jobs updated: %s; %d remote sessions closed", change.summary(), released)
        return change

    def _apply_global(self, config: Config) -> None:
        old, new = self.config.global_, config.global_
        self.store.staleness_intervals = new.staleness_intervals
        later = [key for key in RESTART_GLOBAL_SETTINGS if getattr(old, key) != getattr(new, key)]
        if later:
            log.warning("global settings changed that take effect only at restart; running with the old values",
                        extra={"settings": ",".join(later)})

    def stop(self) -> None:
        """Stop serving and scheduling, close remote sessions (bounded), then wait for the serving process
        (it closes its connections meanwhile)."""
        self.server.begin_stop()
        self.scheduler.shutdown()
        for runner in list(self.runners):
            runner.close()
        self.sessions.close_all(timeout=10)
        self.server.shutdown()
        self.server.server_close()
        self.cache.stop()
        self.verdict_watcher.stop()
        log.info("stopped")
