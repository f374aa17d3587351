"""The simulated estate: one listener per host, a control API, scenarios and faults switchable live.

    sim = Simulator(scenario="healthy", listen_host="127.0.0.1", control_port=0, tls=False,
                    username="sim-monitor", password="...")
    sim.start()
    sim.hosts()["ex01.contoso.com"].windows_url   # http://127.0.0.1:PORT/wsman
    sim.set_fault("fe01.contoso.com", "hang"); sim.clear_faults()
    sim.set_scenario("no-event-112")
    sim.stop()

With ``control_port=P`` (P > 0) host i (scenario order) listens on P+1+i; with 0 every port is
ephemeral. ``scenario`` may be a name, a YAML path or a Scenario (e.g. ``load_scenario("healthy")
.scaled(200)``); ``scale=N`` does the same for names, and live switches keep the host count.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from pathlib import Path
from typing import Any

from simulator.control import ControlError, ControlServer
from simulator.estate import Estate
from simulator.faults import make_fault
from simulator.http_handler import HostEndpoints
from simulator.runtime import HostRuntime
from simulator.scenario import Scenario, resolve_scenario, scenario_names
from simulator.tls import TlsMaterial
from simulator.tls_endpoints import TlsServices
from simulator.transport import Listener, Transport

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class HostInfo:
    name: str
    roles: list[str]
    port: int
    windows_url: str
    exchange_url: str | None
    # The host's TLS services (OWA 443, front end 5061, Edge 443/5061): real endpoint "name:port" ->
    # the loopback address serving it; their certificates chain to tls_ca_file.
    tls_services: dict[str, str] = dataclasses.field(default_factory=dict)
    tls_ca_file: str | None = None


class Simulator:
    def __init__(
        self,
        scenario: str | Path | Scenario = "healthy",
        listen_host: str = "127.0.0.1",
        control_port: int = 0,
        tls: bool = False,
        username: str = "sim-monitor",
        password: str = "sim-password",
        scale: int | None = None,
        tls_services: bool = True,
    ) -> None:
        if not username or not password:
            raise ValueError("username and password are required (the hosts use Basic auth)")
        if listen_host not in ("127.0.0.1", "localhost", "::1"):
            log.warning("simulator listening on %s: its control API has no authentication", listen_host)
        loaded = resolve_scenario(scenario, scale)
        self._scale = loaded.scale
        self._clone_replicas = loaded.clone_replicas
        self._listen_host = listen_host
        self._control_port = control_port
        self._tls_enabled = tls
        self._username = username
        self._password = password
        self._estate = Estate(loaded)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._runtimes: dict[str, HostRuntime] = {}
        self._listeners: dict[str, Listener] = {}
        self._transport: Transport | None = None
        self._control: ControlServer | None = None
        self._tls: TlsMaterial | None = None
        self._tls_services_enabled = tls_services
        self._tls_services: TlsServices | None = None
        self._started = False

    # ------------------------------------------------------------ lifecycle

    def start(self) -> Simulator:
        if self._started:
            return self
        try:
            self._control = ControlServer(self, self._listen_host, self._control_port)
            if self._tls_enabled:
                self._tls = TlsMaterial(self._estate.scenario.host_names())
            self._transport = Transport(self._tls.server_context() if self._tls else None)
            self._transport.start()
            scheme = "https" if self._tls_enabled else "http"
            for index, name in enumerate(self._estate.scenario.host_names()):
                port = self._control.port + 1 + index if self._control_port else 0
                runtime = HostRuntime(name, self._estate, self._username, self._password, self._stopping)
                listener = Listener(name, self._listen_host, port, handler=lambda c, a: None)
                self._transport.bind(listener)
                endpoints = HostEndpoints(runtime, f"{scheme}://{self._listen_host}:{listener.port}")
                listener.handler = endpoints.serve
                self._runtimes[name] = runtime
                self._listeners[name] = listener
            if self._tls_services_enabled:
                self._tls_services = TlsServices(self._estate, self._listen_host)
                self._tls_services.start()
            self._control.start()
        except Exception:
            self.stop()
            raise
        self._started = True
        log.info("simulator started: %d hosts, control %s", len(self._runtimes), self.control_url)
        return self

    def stop(self) -> None:
        """Close every listener and connection; hung handlers return at once."""
        self._stopping.set()
        for runtime in self._runtimes.values():
            runtime.faults.wake()
        if self._control is not None:
            self._control.stop()
            self._control = None
        if self._transport is not None:
            self._transport.stop()
            self._transport = None
        if self._tls_services is not None:
            self._tls_services.stop()
            self._tls_services = None
        for runtime in self._runtimes.values():
            runtime.drop_shells()
        if self._tls is not None:
            self._tls.remove()
            self._tls = None
        self._started = False

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------ information

    @property
    def control_url(self) -> str:
        if self._control is None:
            raise RuntimeError("the simulator is not started")
        return f"http://{self._listen_host}:{self._control.port}"

    @property
    def ca_cert_path(self) -> str | None:
        """PEM of the CA that signed the listeners' certificate (tls=True only)."""
        return self._tls.ca_cert_path if self._tls else None

    @property
    def scenario_name(self) -> str:
        return self._estate.scenario.name

    def hosts(self) -> dict[str, HostInfo]:
        scheme = "https" if self._tls_enabled else "http"
        result = {}
        for name, listener in self._listeners.items():
            runtime = self._runtimes[name]
            base = f"{scheme}://{self._listen_host}:{listener.port}"
            services = self._tls_services
            result[name] = HostInfo(name, list(runtime.roles), listener.port, f"{base}/wsman",
                                    f"{base}/PowerShell" if runtime.is_exchange else None,
                                    services.endpoints(name) if services else {},
                                    services.ca_cert_path if services else None)
        return result

    def stats(self) -> dict[str, dict[str, int]]:
        return {name: runtime.stats() for name, runtime in self._runtimes.items()}

    def state(self) -> dict[str, Any]:
        hosts = {}
        for name, info in self.hosts().items():
            faults = self._runtimes[name].faults.active()
            hosts[name] = {
                "roles": info.roles,
                "port": info.port,
                "windows_url": info.windows_url,
                "exchange_url": info.exchange_url,
                "tls_services": info.tls_services,
                "faults": [f.describe() for f in faults.values()],
            }
        return {
            "scenario": self.scenario_name,
            "description": self._estate.scenario.model.description,
            "scenarios": scenario_names(),
            "tls": self._tls_enabled,
            "hosts": hosts,
        }

    # ------------------------------------------------------------ control

    def set_scenario(self, scenario: str | Path | Scenario) -> None:
        """Switch live; the new scenario must have the same hosts (shipped ones all do)."""
        self._estate.set_scenario(resolve_scenario(scenario, self._scale, self._clone_replicas))

    def _runtime(self, host: str) -> HostRuntime:
        runtime = self._runtimes.get(host)
        if runtime is None:
            raise ControlError(f"unknown host {host!r}; known: {', '.join(self._runtimes)}")
        return runtime

    def set_fault(self, host: str, fault: str, **options: Any) -> None:
        """Activate a fault on one host (see simulator.faults for kinds and options)."""
        runtime = self._runtime(host)
        made = make_fault(fault, **options)
        with self._lock:
            runtime.faults.set(made)
            if made.kind == "refuse" and self._transport is not None:
                self._transport.unbind(self._listeners[host])
                if self._tls_services is not None:
                    self._tls_services.refuse(runtime.name)

    def clear_faults(self, host: str | None = None) -> None:
        """Clear one host's faults (or every host's); a refused listener binds its port again."""
        names = [self._runtime(host).name] if host is not None else list(self._runtimes)
        with self._lock:
            for name in names:
                runtime = self._runtimes[name]
                was_refused = runtime.faults.has("refuse")
                runtime.faults.clear()
                listener = self._listeners[name]
                if was_refused and listener.sock is None and self._transport is not None:
                    self._transport.bind(listener)
                if was_refused and self._tls_services is not None:
                    self._tls_services.restore(name)

    def thread_count(self) -> int:
        """Threads the simulator's transport runs now (acceptor + connections), for leak checks."""
        return self._transport.thread_count() if self._transport else 0
