"""Wires configuration, collectors, scheduler, snapshot store and HTTP server into one exporter."""

from __future__ import annotations

import logging
from typing import Any, Mapping

from collectors import registry
from collectors.contract import Collector, FactsBoard
from collectors.sources.remoting import SessionPool
from exporter.config import Config
from exporter.http import ExporterHTTPServer, parse_listen_address
from exporter.metrics import ExpositionCache
from exporter.scheduler import CollectionScheduler, JobRunner
from exporter.state import SnapshotStore
from exporter.web_config import WebConfig

log = logging.getLogger(__name__)


class Exporter:
    def __init__(
        self,
        config: Config,
        listen_address: str,
        collectors: Mapping[str, Collector[Any, Any]] | None = None,
        web_config: WebConfig | None = None,
    ) -> None:
        # One instance of each collector per exporter; tests may pass their own (a fake DNS resolver).
        collectors = dict(collectors or {name: cls() for name, cls in registry.by_name().items()})
        self.config = config
        self.store = SnapshotStore(config.global_.staleness_intervals)
        self.sessions = SessionPool()
        self.facts = FactsBoard()  # what one job reads for others, shared by this exporter's jobs only
        self.runners = [
            JobRunner(collectors[job.collector], job, self.store, self.sessions, config.global_, self.facts)
            for job in config.jobs(collectors)
        ]
        self.scheduler = CollectionScheduler(self.runners, config.global_.max_concurrent_jobs)
        known_metrics = [spec for c in collectors.values() for spec in c.metrics]
        self.cache = ExpositionCache(self.store, known_metrics)
        self.server = ExporterHTTPServer(
            parse_listen_address(listen_address), self.cache, self.store, healthy=lambda: self.scheduler.running,
            web_config=web_config,
        )
        self.web_config = web_config

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        shown = "127.0.0.1" if host in ("", "0.0.0.0") else host
        return f"{self.server.scheme}://{shown}:{port}"

    def start(self) -> None:
        self.cache.start()
        self.server.serve_in_thread()
        self.scheduler.start()
        protection = self.web_config.summary() if self.web_config else "TLS off, basic auth off"
        log.info("listening", extra={"address": self.url, "jobs": len(self.runners), "web": protection})

    def stop(self) -> None:
        """Stop scheduling, close remote sessions (bounded), then stop serving."""
        self.scheduler.shutdown()
        for runner in self.runners:
            runner.close()
        self.sessions.close_all(timeout=10)
        self.server.shutdown()
        self.server.server_close()
        self.cache.stop()
        log.info("stopped")
