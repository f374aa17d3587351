"""Check E5: the OWA application pool on an Exchange mailbox server.

``Get-WebAppPoolState`` says whether IIS runs MSExchangeOWAAppPool; the start time of its worker
process (w3wp.exe, from Win32_Process) anchors check E1: after every start an Event 112 should
follow once a user signs in. Optionally, OWA's own health page is fetched from the exporter.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from pydantic import Field as SettingField
from pydantic import StrictBool, ValidationInfo, field_validator

from collectors.contract import (
    CollectContext,
    CollectError,
    Collector,
    CollectorSettings,
    Duration,
    ErrorKind,
    Field,
    MetricSpec,
    Sample,
    Shape,
)
from collectors.helpers.paths import check_ca_file
from collectors.helpers.text import clean_text
from collectors.sources.app_pool_workers import (
    PROCESS_CMDLET,
    PROCESS_PARAMETERS,
    read_pool_workers,
)
from collectors.sources.http_probe import probe

STATE_CMDLET = "Get-WebAppPoolState"
DEFAULT_POOL = "MSExchangeOWAAppPool"
# Get-WebAppPoolState's values, in IIS's order; anything else is reported as Unknown.
POOL_STATES = ("Starting", "Started", "Stopping", "Stopped", "Unknown")
_STATE_BY_KEY = {state.lower(): state for state in POOL_STATES}
HOST_PLACEHOLDER = "{host}"

POOL_STATE = Shape(STATE_CMDLET, (Field("Value", "str", nullable=True),))

STATE = MetricSpec(
    "lync_owa_app_pool_state",
    "gauge",
    "1 for the state the OWA application pool is in (Get-WebAppPoolState), 0 for the others.",
    ("state",),
)
WORKER_RUNNING = MetricSpec(
    "lync_owa_app_pool_worker_running",
    "gauge",
    "1 when a w3wp.exe worker process serves the OWA application pool, else 0.",
)
WORKER_START = MetricSpec(
    "lync_owa_app_pool_worker_start_timestamp_seconds",
    "gauge",
    "When the newest w3wp.exe worker of the OWA application pool started (absent while none runs).",
)
HEALTHCHECK_UP = MetricSpec(
    "lync_owa_healthcheck_up",
    "gauge",
    "1 when OWA's health page (healthcheck_url) answered HTTP 200, else 0.",
)
HEALTHCHECK_STATUS = MetricSpec(
    "lync_owa_healthcheck_status_code",
    "gauge",
    "HTTP status code of OWA's health page (healthcheck_url); 0 when there was no HTTP answer.",
)

# Leave this much of the run's deadline for handing the result over after the probe.
_PROBE_MARGIN_SECONDS = 0.5


class OwaAppPoolSettings(CollectorSettings):
    pool_name: str = SettingField(default=DEFAULT_POOL, min_length=1, max_length=64)
    # e.g. "https://{host}/owa/healthcheck.htm"; {host} is the target's host. Unset: no probe.
    healthcheck_url: str | None = None
    healthcheck_timeout: Duration = SettingField(default=5.0, gt=0)
    healthcheck_tls_verify: StrictBool = True
    healthcheck_ca_file: str | None = SettingField(default=None, min_length=1)

    @field_validator("pool_name")
    @classmethod
    def _plain_pool_name(cls, name: str) -> str:
        # IIS forbids these in pool names; wildcards would also make Get-WebAppPoolState match several.
        if re.search(r'[\x00-\x1f\x7f*?\[\]"\\/:<>|]', name) or name != name.strip():
            raise ValueError(f"not an IIS application pool name: {name!r}")
        return name

    @field_validator("healthcheck_url")
    @classmethod
    def _url_template(cls, template: str | None) -> str | None:
        if template is None:
            return None
        url = template.replace(HOST_PLACEHOLDER, "host.invalid")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL, e.g. 'https://{host}/owa/healthcheck.htm'")
        if any(ch in url for ch in "{} \t\r\n"):
            raise ValueError("may contain no spaces and no placeholder other than {host}")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials")
        return template

    @field_validator("healthcheck_ca_file")
    @classmethod
    def _ca_file_readable(cls, ca_file: str | None, info: ValidationInfo) -> str | None:
        return None if ca_file is None else check_ca_file(ca_file, info, require_certificate=False)


def pool_state_of(value: Any) -> str | None:
    """Get-WebAppPoolState's Value as one of POOL_STATES, or None when it is none of them."""
    if value is None:
        return None
    return _STATE_BY_KEY.get(clean_text(value).lower())


@dataclass
class OwaAppPoolState:
    healthcheck_insecure_logged: bool = False
    healthcheck_outcome: str | None = None  # the last one logged: said once per change, not every run


Context = CollectContext[OwaAppPoolSettings, OwaAppPoolState]


class OwaAppPoolCollector(Collector[OwaAppPoolSettings, OwaAppPoolState]):
    name = "owa_app_pool"
    roles = frozenset({"exchange_mailbox"})
    settings_model = OwaAppPoolSettings
    state_model = OwaAppPoolState
    metrics = (STATE, WORKER_RUNNING, WORKER_START, HEALTHCHECK_UP, HEALTHCHECK_STATUS)
    cmdlets = (("windows", STATE_CMDLET), ("windows", PROCESS_CMDLET))
    cmdlet_parameters = {
        STATE_CMDLET: {"Name": None},  # the pool name is a setting
        PROCESS_CMDLET: PROCESS_PARAMETERS,
    }

    def collect(self, ctx: Context) -> list[Sample]:
        settings = ctx.settings
        samples = self._state(ctx, settings.pool_name)
        samples += self._worker(ctx, settings.pool_name)
        if settings.healthcheck_url:
            samples += self._healthcheck(ctx, settings, settings.healthcheck_url)
        return samples

    def _state(self, ctx: Context, pool_name: str) -> list[Sample]:
        # A pool that does not exist is a PathNotFound error: a wrong pool_name fails the run visibly.
        answer = ctx.run("windows", STATE_CMDLET, {"Name": pool_name}, POOL_STATE)
        if not answer.objects:
            raise CollectError(ErrorKind.SHAPE, f"{ctx.target.host} {STATE_CMDLET} -Name {pool_name}",
                              "no state object in the answer")
        raw = answer.objects[0]["Value"]
        state = pool_state_of(raw)
        if state is None:
            ctx.log.warning("application pool %s reports an unknown state %.40r; exported as Unknown", pool_name, raw)
            state = "Unknown"
        return [STATE.sample(1 if s == state else 0, state=s) for s in POOL_STATES]

    def _worker(self, ctx: Context, pool_name: str) -> list[Sample]:
        workers = read_pool_workers(ctx, pool_name)
        samples = [WORKER_RUNNING.sample(1 if workers.count else 0)]
        if workers.newest_start is not None:
            samples.append(WORKER_START.sample(workers.newest_start.timestamp()))
        return samples

    def _healthcheck(self, ctx: Context, settings: OwaAppPoolSettings, template: str) -> list[Sample]:
        url = healthcheck_url_for(template, ctx.target.host)
        verify: bool | str = settings.healthcheck_tls_verify
        if not settings.healthcheck_tls_verify:
            if not ctx.state.healthcheck_insecure_logged:
                ctx.log.warning("TLS certificate verification is disabled for the OWA health check %s", url)
                ctx.state.healthcheck_insecure_logged = True
        elif settings.healthcheck_ca_file:
            verify = settings.healthcheck_ca_file
        timeout = min(settings.healthcheck_timeout, ctx.deadline.remaining() - _PROBE_MARGIN_SECONDS)
        if timeout <= 0:
            result_code, failure = 0, "timeout"
        else:
            result = probe(url, timeout, verify)
            result_code, failure = result.status_code, result.failure
        # Say why once per change of outcome, not at every run.
        outcome = failure or str(result_code)
        if outcome != ctx.state.healthcheck_outcome:
            ctx.state.healthcheck_outcome = outcome
            if result_code != 200:
                ctx.log.warning("OWA health check %s: %s", url, f"HTTP {result_code}" if result_code else failure)
        return [HEALTHCHECK_UP.sample(1 if result_code == 200 else 0), HEALTHCHECK_STATUS.sample(result_code)]


def healthcheck_url_for(template: str, host: str) -> str:
    """The template with {host} replaced by the target's host (an IPv6 address gets its brackets).

    A plain replacement, not str.format: the template is configuration, and format() would also
    interpret other braces and attribute lookups in it.
    """
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return template.replace(HOST_PLACEHOLDER, host)
