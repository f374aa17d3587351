"""Run every collector against every target on its own interval, each run under a hard deadline.

APScheduler fires one job per collector x target (interval with jitter, ``max_instances=1``,
coalescing missed runs). Each firing runs the collector in a thread of its own and waits for it
until the deadline: a run that overruns is abandoned and counted as a timeout, and while the
abandoned thread still lives the job's next firings are skipped, so two runs of one job never
overlap. A failing job touches only its own snapshot. A target takes at most four workers at once and
is backed off while its runs keep running out their deadline (exporter.host_guard), so hung hosts
cannot starve the others; a stop lets waiting workers go at once.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping, Sequence

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers import SchedulerNotRunningError
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
from exporter.failure_log import FailureLog
from exporter.host_guard import (
    HOGGED_FRACTION,
    Admission,
    TargetGuard,
    TargetGuards,
)
from exporter.series_cap import SeriesCap
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
        self.failure_log = FailureLog(self.log)  # a failure is logged when it starts and ends, not every run
        # Guards retirement (a reload took this job out) against a run starting or recording.
        self._lifecycle = threading.Lock()
        self.retired = False
        self._closed = False
        # Runs in flight and backoff of the target, and its series cap: the scheduler gives every job of
        # one target the same ones (exporter.host_guard, exporter.series_cap); a runner alone has its own.
        self.guard = TargetGuard(spec.target.name)
        self.series_cap = SeriesCap()
        self.retry_soon: Callable[[], None] | None = None  # fires this job now (the scheduler's)
        self._busy_since: float | None = None  # since when this job's firings found its target's slots taken
        self.stopping = threading.Event()  # the scheduler is stopping: a waiting worker lets go at once
        store.register(collector.name, spec.target.name, spec.settings.interval)

    @property
    def job_id(self) -> str:
        return self.spec.id

    def __call__(self) -> None:
        timeout = self.spec.settings.timeout
        if self._thread is not None and self._thread.is_alive():
            self._fail(ErrorKind.TIMEOUT, "previous run is still running past its deadline; run skipped", 0.0)
            return
        if self.stopping.is_set() or not self._admitted():
            return
        outcome = _Outcome()
        started = time.monotonic()
        deadline = Deadline(timeout)
        thread = threading.Thread(target=self._execute, args=(deadline, outcome), name=self.job_id, daemon=True)
        with self._lifecycle:
            if self.retired:  # a reload took the job out after this firing was due
                self.guard.finished(succeeded=False, hogged=False, interval=self.spec.settings.interval)
                return
            self._thread = thread
            thread.start()
        if not self._wait_for(thread, timeout + HANDOVER_GRACE_SECONDS):
            self.guard.finished(succeeded=False, hogged=False, interval=self.spec.settings.interval)
            return  # stopping: nothing is recorded any more
        duration = time.monotonic() - started
        self.guard.finished(succeeded=not thread.is_alive() and outcome.error is None,
                            hogged=thread.is_alive() or (outcome.error is not None and (
                                outcome.error.kind is ErrorKind.TIMEOUT or duration >= HOGGED_FRACTION * timeout)),
                            interval=self.spec.settings.interval)
        if thread.is_alive():
            self._fail(ErrorKind.TIMEOUT, f"run exceeded its {timeout:g}s deadline and was abandoned", duration)
        elif outcome.error is not None:
            self._fail(outcome.error.kind, str(outcome.error), duration)
        else:
            with self._lifecycle:
                if not self.retired:  # a retired job's series are gone or belong to its successor
                    samples = self.series_cap.admit(self.spec.target.name, self.job_id, outcome.samples or [],
                                                    self.global_settings.max_series_per_target)
                    self.store.record_success(self.collector.name, self.spec.target.name, samples, duration)
            self.failure_log.succeeded()
            self.log.debug("collector run succeeded in %.3fs", duration)
        with self._lifecycle:
            if self._thread is thread and not thread.is_alive():
                # A finished run's thread (its Event, Condition, locks: about 1.5 kB) is not kept until the
                # next run; an abandoned one stays, so the next firing sees it still running.
                self._thread = None
        if self.retired:
            self.close()  # retired during this run: its resources were left to us

    def _admitted(self) -> bool:
        """Take one of the target's run slots, or say why not (exporter.host_guard)."""
        admission = self.guard.admit(wake=self.retry_soon)
        now = time.monotonic()
        if admission is Admission.RUN:
            self._busy_since = None
            return True
        if admission is Admission.BUSY:
            self._busy_since = self._busy_since or now
            waited = now - self._busy_since
            if waited < self.spec.settings.interval and self.retry_soon is not None:
                return False  # not waiting on a worker: the guard fires it again when a run of the target ends
            self._busy_since = None  # a whole interval without a slot: say so, and wait for the next firing
            self._fail(ErrorKind.TIMEOUT, f"not run: {self.spec.target.name} had {self.guard.in_flight} runs in "
                       f"flight (the most per target) for {waited:.0f}s", 0.0)
            return False
        self._fail(ErrorKind.TIMEOUT, f"not run: {self.spec.target.name} is backed off for "
                   f"{self.guard.backoff_seconds:g}s after {self.guard.timeouts_in_a_row} runs in a row ran out "
                   f"their deadline; next attempt in {self.guard.next_attempt_in():.0f}s", 0.0)
        return False

    def _wait_for(self, thread: threading.Thread, limit: float) -> bool:
        """Wait for the run until ``limit``; False when the scheduler stops first (the worker lets go)."""
        end = time.monotonic() + limit
        while thread.is_alive() and not self.stopping.is_set():
            left = end - time.monotonic()
            if left <= 0:
                break
            thread.join(min(left, 0.25))
        return not (self.stopping.is_set() and thread.is_alive())

    def _execute(self, deadline: Deadline, outcome: _Outcome) -> None:
        target = self.spec.target
        ctx = CollectContext(
            target=TargetInfo(name=target.name, host=target.host, roles=target.roles),
            settings=self.spec.settings,
            state=self.state,
            deadline=deadline,
            runner=self.endpoints,
            log=self.log,
            estate=Estate(lync_pool_fqdn=self.global_settings.lync_pool_fqdn, hybrid=self.global_settings.hybrid),
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
            if not self.failure_log.failing:  # the traceback once, not at every run of a broken collector
                self.log.exception("collector raised unexpectedly")
            outcome.error = CollectError(ErrorKind.SHAPE, self.job_id, f"collector failed: {type(exc).__name__}: {exc}"[:300])

    def close(self) -> None:
        """Let the collector release this job's resources (watchers), once; never raises."""
        with self._lifecycle:
            if self._closed:
                return
            self._closed = True
        try:
            self.collector.close(self.state)
        except Exception:  # noqa: BLE001 - shutting down must go on for the other jobs
            self.log.exception("collector close failed")

    def retire(self) -> None:
        """Taken out by a reload (removed, or replaced by a changed job): record nothing from now on,
        and release the collector's resources now, or when the run in flight ends."""
        with self._lifecycle:
            self.retired = True
            busy = self._thread is not None and self._thread.is_alive()
        if not busy:
            self.close()

    def _fail(self, kind: ErrorKind | str, message: str, duration: float) -> None:
        kind_value = kind.value if isinstance(kind, ErrorKind) else str(kind)
        with self._lifecycle:
            if self.retired:
                return
            self.store.record_failure(self.collector.name, self.spec.target.name, kind_value, message, duration)
        self.failure_log.failed(kind_value, message)


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
        # Shared by the jobs of each target: runs in flight and backoff; series per target.
        self.guards = TargetGuards()
        self.series_cap = SeriesCap()
        self._stopping = threading.Event()

    def start(self) -> None:
        now = datetime.now(timezone.utc)
        for runner in self.runners:
            self._schedule(runner, now)
        self._scheduler.start()
        self.running = True
        log.info("scheduler started with %d jobs", len(self.runners))

    def _schedule(self, runner: JobRunner, now: datetime) -> None:
        if runner.collector.cmdlets:  # jobs on the target's remoting endpoints share its slots and backoff
            runner.guard = self.guards.for_target(runner.spec.target.name)
        runner.series_cap = self.series_cap
        runner.stopping = self._stopping
        runner.retry_soon = lambda: self._fire_soon(runner.job_id)
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

    def add(self, runner: JobRunner) -> None:
        """A job a reload added (or changed): its first run comes as soon as a fresh start's would."""
        self.runners.append(runner)
        if self.running:
            self._schedule(runner, datetime.now(timezone.utc))

    def remove(self, runner: JobRunner) -> None:
        """Stop firing a job; a run in flight ends on its own (``JobRunner.retire`` drops its result)."""
        self.runners.remove(runner)
        self.series_cap.forget(runner.spec.target.name, runner.job_id)
        if self.running:
            try:
                self._scheduler.remove_job(runner.job_id)
            except JobLookupError:
                pass

    def _fire_soon(self, job_id: str) -> None:
        """Fire a job now (a run of its busy target ended); its interval then counts from that run."""
        when = datetime.now(timezone.utc)
        try:
            self._scheduler.modify_job(job_id, next_run_time=when)
        except (JobLookupError, SchedulerNotRunningError):  # removed by a reload, or stopping
            pass

    def shutdown(self) -> None:
        self._stopping.set()  # workers waiting on runs let go now: the pool's threads end with the process
        if self.running:
            # Do not wait for abandoned or slow runs: their threads are daemons and bounded anyway.
            self._scheduler.shutdown(wait=False)
            self.running = False
