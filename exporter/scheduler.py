"""Run every collector against every target on its own interval, each run under a hard deadline.

APScheduler fires one job per collector x target (interval with jitter, ``max_instances=1``,
coalescing missed runs). Each firing runs the collector in a thread of its own and waits for it
until the deadline: a run that overruns is abandoned and counted as a timeout, and while the
abandoned thread still lives the job's next firings are skipped, so two runs of one job never
overlap. A failing job touches only its own snapshot.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Sequence

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from collectors.contract import (
    CmdletAnswer,
    CollectContext,
    CollectError,
    Collector,
    Deadline,
    ErrorKind,
    Estate,
    FactsBoard,
    Sample,
    Shape,
    TargetInfo,
)
from collectors.sources.remoting import EndpointSpec, SessionPool
from exporter.config import GlobalSettings, JobSpec, Target
from exporter.state import SnapshotStore

log = logging.getLogger(__name__)

# Time the waiting side grants beyond the deadline for a run to hand over its result.
HANDOVER_GRACE_SECONDS = 0.5
# First runs are spread over at most this many seconds so a fresh start shows data quickly.
FIRST_RUN_SPREAD_SECONDS = 2.0


@dataclass
class _Outcome:
    samples: list[Sample] | None = None
    error: CollectError | None = None


class TargetEndpoints:
    """Runs cmdlets on one target's endpoints for its collectors (the contract's ``CmdletRunner``).

    The credential stays here, in the runtime: collectors name an endpoint kind, never a password.
    """

    def __init__(self, target: Target, sessions: SessionPool) -> None:
        self.target = target
        self.sessions = sessions

    def spec(self, kind: str) -> EndpointSpec:
        endpoint = self.target.endpoint(kind)
        cred = self.target.credential
        return EndpointSpec(
            url=endpoint.url,
            configuration=endpoint.configuration,
            username=cred.username,
            password=cred.password.get_secret_value(),
            auth=cred.auth,
            tls_verify=endpoint.tls_verify,
            ca_file=endpoint.ca_file,
            encryption=endpoint.encryption,
            keytab_file=cred.keytab_file,
            ticket_cache=cred.ticket_cache,
            spn_hostname=endpoint.spn_hostname,
            spn_service=endpoint.spn_service,
        )

    def where(self, endpoint_kind: str) -> str:
        return self.spec(endpoint_kind).where

    def run(self, endpoint_kind: str, cmdlet: str, parameters: Mapping[str, Any] | None, shape: Shape,
            deadline: Deadline, accept_error_ids: Sequence[str]) -> CmdletAnswer:
        session = self.sessions.get(self.spec(endpoint_kind))
        return session.run(cmdlet, parameters, shape, deadline, accept_error_ids=accept_error_ids)


class JobRunner:
    """One collector against one target; called by APScheduler at every firing."""

    def __init__(
        self,
        collector: Collector[Any, Any],
        spec: JobSpec,
        store: SnapshotStore,
        sessions: SessionPool,
        global_settings: GlobalSettings | None = None,
        facts: FactsBoard | None = None,
    ) -> None:
        self.collector = collector
        self.global_settings = global_settings or GlobalSettings()
        self.spec = spec
        self.store = store
        self.endpoints = TargetEndpoints(spec.target, sessions)
        # Shared by every job of one exporter; a runner made alone (tests) gets a board of its own.
        self.facts = facts if facts is not None else FactsBoard()
        self.state = collector.new_state()
        self._thread: threading.Thread | None = None
        self.log = logging.LoggerAdapter(log, {"collector": collector.name, "target": spec.target.name})
        store.register(collector.name, spec.target.name, spec.settings.interval)

    @property
    def job_id(self) -> str:
        return self.spec.id

    def __call__(self) -> None:
        timeout = self.spec.settings.timeout
        if self._thread is not None and self._thread.is_alive():
            self._fail(ErrorKind.TIMEOUT, "previous run is still running past its deadline; run skipped", 0.0)
            return
        outcome = _Outcome()
        started = time.monotonic()
        deadline = Deadline(timeout)
        thread = threading.Thread(target=self._execute, args=(deadline, outcome), name=self.job_id, daemon=True)
        self._thread = thread
        thread.start()
        thread.join(timeout + HANDOVER_GRACE_SECONDS)
        duration = time.monotonic() - started
        if thread.is_alive():
            self._fail(ErrorKind.TIMEOUT, f"run exceeded its {timeout:g}s deadline and was abandoned", duration)
        elif outcome.error is not None:
            self._fail(outcome.error.kind, str(outcome.error), duration)
        else:
            self.store.record_success(self.collector.name, self.spec.target.name, outcome.samples or [], duration)
            self.log.debug("collector run succeeded in %.3fs", duration)

    def _execute(self, deadline: Deadline, outcome: _Outcome) -> None:
        target = self.spec.target
        ctx = CollectContext(
            target=TargetInfo(name=target.name, host=target.host, roles=target.roles),
            settings=self.spec.settings,
            state=self.state,
            deadline=deadline,
            runner=self.endpoints,
            log=self.log,
            estate=Estate(lync_pool_fqdn=self.global_settings.lync_pool_fqdn),
            facts=self.facts,
            # What a fact this job posts is good for: as long as its own data would be served.
            fact_lifetime=self.global_settings.staleness_intervals * self.spec.settings.interval,
            declared_cmdlets=self.collector.declared_cmdlets(),
            declared_parameters=self.collector.declared_parameters(),
        )
        try:
            outcome.samples = self.collector.collect(ctx)
        except CollectError as exc:
            outcome.error = exc
        except Exception as exc:  # noqa: BLE001 - a collector bug must stay inside its own job
            self.log.exception("collector raised unexpectedly")
            outcome.error = CollectError(ErrorKind.SHAPE, self.job_id, f"collector failed: {type(exc).__name__}: {exc}"[:300])

    def close(self) -> None:
        """Let the collector release this job's resources (watchers); never raises."""
        try:
            self.collector.close(self.state)
        except Exception:  # noqa: BLE001 - shutting down must go on for the other jobs
            self.log.exception("collector close failed")

    def _fail(self, kind: ErrorKind | str, message: str, duration: float) -> None:
        kind_value = kind.value if isinstance(kind, ErrorKind) else str(kind)
        self.store.record_failure(self.collector.name, self.spec.target.name, kind_value, message, duration)
        self.log.warning("collector run failed: kind=%s %s", kind_value, message)


WORKER_THREAD_PREFIX = "lync-owa-worker"


class CollectionScheduler:
    def __init__(self, runners: list[JobRunner], max_workers: int) -> None:
        self.runners = runners
        self._scheduler = BackgroundScheduler(
            # Named, so a soak can tell the pool (it grows to max_workers and keeps its idle
            # threads) from threads that should not outlive their work.
            executors={"default": ThreadPoolExecutor(max_workers=max_workers,
                                                     pool_kwargs={"thread_name_prefix": WORKER_THREAD_PREFIX})},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=timezone.utc,
        )
        self.running = False

    def start(self) -> None:
        now = datetime.now(timezone.utc)
        for runner in self.runners:
            settings = runner.spec.settings
            trigger = IntervalTrigger(seconds=settings.interval, jitter=settings.jitter or None, timezone=timezone.utc)
            first = now + timedelta(seconds=random.uniform(0, min(FIRST_RUN_SPREAD_SECONDS, settings.interval / 2)))
            self._scheduler.add_job(
                runner,
                trigger=trigger,
                id=runner.job_id,
                name=runner.job_id,
                next_run_time=first,
                misfire_grace_time=max(1, int(settings.interval)),
            )
        self._scheduler.start()
        self.running = True
        log.info("scheduler started with %d jobs", len(self.runners))

    def shutdown(self) -> None:
        if self.running:
            # Do not wait for abandoned or slow runs: their threads are daemons and bounded anyway.
            self._scheduler.shutdown(wait=False)
            self.running = False
