"""The simulated estate: one listener per host, a control API, scenarios and faults switchable live.

    sim = Simulator(scenario="healthy", listen_host="127.0.0.1", control_port=0, tls=False,
                    username="sim-monitor", password="...")
    sim.start()
    sim.hosts()["ex01.contoso.com"].windows_url   # http://127.0.0.1:PORT/wsman
    sim.set_fault("fe01.contoso.com", "hang"); sim.clear_faults()
    sim.set_scenario("no-event-112")
    sim.stop()

With ``control_port=P`` (P > 0) host i (scenario order) listens on P+1+i; with 0 every port is
ephemeral.

Authentication (``simulator/auth.py``): ``auth`` is what every host offers unless its scenario entry
says otherwise (``hosts.<name>.auth``) or ``set_auth(host, ...)`` overrides it live: a list of
schemes for both endpoints, or ``{"windows": [...], "exchange": [...]}``; Basic alone by default,
``simulator.auth.PRODUCTION`` for what Windows and Exchange offer as installed. Kerberos needs
``keytab`` (the hosts' ``HTTP/<name>`` keys); NTLM checks ``ntlm_user_file`` (pyspnego's format), or
the simulator's own user and password when none is given. ``allow_unencrypted=False`` makes plain-HTTP
requests without WinRM message encryption fail, as WinRM's default does. ``scenario`` may be a name, a YAML path or a Scenario (e.g. ``load_scenario("healthy")
.scaled(200)``); ``scale=N`` does the same for names, and live switches keep the host count.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from simulator import auth as sim_auth
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
    # Front ends: Lync's own remote PowerShell (/OcsPowershell), where its RBAC roles apply.
    lync_url: str | None = None


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
        auth: Mapping[str, Iterable[str]] | Iterable[str] | None = None,
        keytab: str | Path | None = None,
        ntlm_user_file: str | Path | None = None,
        allow_unencrypted: bool = True,
    ) -> None:
        if not username or not password:
            raise ValueError("username and password are required (the hosts use Basic auth)")
        self._auth = sim_auth.normalise(auth)
        self._keytab = str(keytab) if keytab else None
        if self._keytab and not os.path.isfile(self._keytab.removeprefix("FILE:")):
            raise ValueError(f"keytab {self._keytab} does not exist")
        self._ntlm_user_file = str(ntlm_user_file) if ntlm_user_file else None
        self._generated_user_file: str | None = None
        self._allow_unencrypted = allow_unencrypted
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
            self._set_acceptor_environment()
            self._control = ControlServer(self, self._listen_host, self._control_port)
            if self._tls_enabled:
                self._tls = TlsMaterial(self._estate.scenario.host_names())
            cbt = _channel_binding(self._tls.cert_path) if self._tls else None
            self._transport = Transport(self._tls.server_context() if self._tls else None)
            self._transport.start()
            scheme = "https" if self._tls_enabled else "http"
            for index, name in enumerate(self._estate.scenario.host_names()):
                port = self._control.port + 1 + index if self._control_port else 0
                runtime = HostRuntime(name, self._estate, self._username, self._password, self._stopping,
                                      auth=self._auth, allow_unencrypted=self._allow_unencrypted)
                listener = Listener(name, self._listen_host, port, handler=lambda c, a: None)
                self._transport.bind(listener)
                endpoints = HostEndpoints(runtime, f"{scheme}://{self._listen_host}:{listener.port}", cbt)
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
        if self._generated_user_file is not None:
            try:
                os.unlink(self._generated_user_file)
                os.rmdir(os.path.dirname(self._generated_user_file))
            except OSError:
                pass
            self._generated_user_file = None
        self._started = False

    def _set_acceptor_environment(self) -> None:
        """pyspnego's acceptors read the keytab and the NTLM users from the process environment."""
        offered = {scheme for schemes in self._auth.values() for scheme in schemes}
        offered |= {scheme for host in self._estate.scenario.model.hosts.values()
                    for schemes in (host.auth.windows or [], host.auth.exchange or []) for scheme in schemes}
        if self._keytab:
            _set_env("KRB5_KTNAME", self._keytab if ":" in self._keytab else f"FILE:{self._keytab}")
        user_file = self._ntlm_user_file
        if user_file is None and offered & {"negotiate", "ntlm"} and not os.environ.get("NTLM_USER_FILE"):
            folder = tempfile.mkdtemp(prefix="lync-owa-sim-ntlm-")
            user_file = self._generated_user_file = os.path.join(folder, "users")
            with open(os.open(user_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
                handle.write(f":{self._username}:{self._password}\n")
        if user_file:
            _set_env("NTLM_USER_FILE", user_file)
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
                                    services.ca_cert_path if services else None,
                                    lync_url=f"{base}/OcsPowershell" if runtime.is_lync_frontend else None)
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
                "lync_url": info.lync_url,
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

    def set_auth(self, host: str | None, offer: Mapping[str, Iterable[str]] | Iterable[str] | None) -> None:
        """What one host (or every host) accepts from now on; ``None`` returns to the configured choice.

        Connections already authenticated stay so until they close, as on Windows.
        """
        names = [self._runtime(host).name] if host is not None else list(self._runtimes)
        for name in names:
            self._runtimes[name].set_auth(offer)

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


def _set_env(name: str, value: str) -> None:
    current = os.environ.get(name)
    if current and current != value:
        log.warning("simulator: %s was %s, now %s (acceptors of every simulator in this process use it)",
                    name, current, value)
    os.environ[name] = value


def _channel_binding(cert_path: str) -> bytes:
    """RFC 5929 tls-server-end-point data of the listeners' certificate (its signature hash, SHA-256 here)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    with open(cert_path, "rb") as handle:
        certificate = x509.load_pem_x509_certificate(handle.read())
    algorithm = certificate.signature_hash_algorithm
    name = algorithm.name if algorithm is not None and algorithm.name not in ("md5", "sha1") else "sha256"
    digest = hashlib.new(name, certificate.public_bytes(serialization.Encoding.DER)).digest()
    return b"tls-server-end-point:" + digest
