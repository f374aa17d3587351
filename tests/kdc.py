"""A throw-away MIT Kerberos realm on loopback, for the tests that authenticate as production does.

    kdc = TestKDC(tmp_path, hosts=["ex01.contoso.com"]).start()
    kdc.env             # KRB5_CONFIG (clients), KRB5_KTNAME (the simulated hosts' keytab), ...
    kdc.user_keytab     # the monitoring user's keys, as an operator would mount them
    kdc.stop()

Everything lives in one temporary folder: the KDC's database, its kdc.conf (``KRB5_KDC_PROFILE``),
the clients' krb5.conf (``KRB5_CONFIG``), the service keytab with ``HTTP/<host>`` for every simulated
host, the monitoring user's keytab and an NTLM user file (pyspnego's ``NTLM_USER_FILE`` format) with
the same user and password, so one credential works for Kerberos and for NTLM as in a real domain.
``krb5kdc`` runs in the foreground on a free loopback port (TCP and UDP) and is stopped by ``stop()``.

``clock_offset`` runs the KDC under libfaketime with its clock shifted (e.g. ``"+1h"``): a KDC whose
clock disagrees with the exporter's by more than the 5-minute limit, as after a failed NTP sync.
The binaries come from Debian's krb5-kdc, krb5-admin-server (kadmin.local) and krb5-user packages
and faketime; ``require_kerberos_tools()`` fails in CI and skips elsewhere when one is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.conftest import SIM_PASSWORD, unavailable

REALM = "CONTOSO.TEST"
MONITOR_USER = "svc-lyncmon"
MONITOR_PRINCIPAL = f"{MONITOR_USER}@{REALM}"
# The simulator's Basic password too, so one password variable serves every credential of a test
# configuration, and the tests that search logs and errors for SIM_PASSWORD cover Kerberos and NTLM.
MONITOR_PASSWORD = SIM_PASSWORD
_MASTER_PASSWORD = "master-key-of-a-throw-away-realm"
_TOOLS = {"krb5kdc": "krb5-kdc", "kdb5_util": "krb5-kdc", "kadmin.local": "krb5-admin-server",
          "kinit": "krb5-user", "klist": "krb5-user"}
FAKETIME_LIBRARIES = ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                      "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1")
_SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")


def tool(name: str) -> str | None:
    """The path of a Kerberos binary (kdb5_util and friends live in sbin, often not on PATH)."""
    found = shutil.which(name)
    if found:
        return found
    for folder in _SBIN:
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def require_kerberos_tools(*, faketime: bool = False) -> None:
    missing = sorted({package for name, package in _TOOLS.items() if tool(name) is None})
    if faketime and faketime_library() is None:
        missing.append("libfaketime")
    if missing:
        unavailable(f"MIT Kerberos test tools missing (Debian packages {', '.join(missing)}); "
                    f"scripts/bootstrap --with-system-packages installs them")


def require_gssapi() -> None:
    try:
        import gssapi  # noqa: F401
        import krb5  # noqa: F401
    except ImportError as exc:
        unavailable(f"the Python gssapi/krb5 packages are not installed ({exc}); "
                    "scripts/bootstrap installs the project's 'kerberos' extra")


def faketime_library() -> str | None:
    return next((path for path in FAKETIME_LIBRARIES if Path(path).exists()), None)


def _free_port() -> int:
    # A port free for both TCP and UDP on loopback (the KDC listens on both).
    for _ in range(50):
        with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for the test KDC")


class TestKDC:
    """One realm, one krb5kdc process. Not thread-safe; one per test session (or per test)."""

    __test__ = False  # not a pytest test class

    def __init__(self, folder: Path, hosts: list[str], *, realm: str = REALM, clock_offset: str | None = None,
                 max_life: str = "10h", extra_realms: dict[str, int] | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.realm = realm
        self.hosts = list(hosts)
        self.clock_offset = clock_offset
        self.max_life = max_life
        self.port = _free_port()
        self.extra_realms = dict(extra_realms or {})  # other realms' KDC ports, for the clients' krb5.conf
        self.krb5_conf = self.folder / "krb5.conf"
        self.kdc_conf = self.folder / "kdc.conf"
        self.service_keytab = self.folder / "http.keytab"
        self.user_keytab = self.folder / "monitor.keytab"
        self.ntlm_user_file = self.folder / "ntlm-users"
        self.log_file = self.folder / "kdc.log"
        self.rcache_dir = self.folder / "rcache"
        self._process: subprocess.Popen | None = None

    # ------------------------------------------------------------ what clients and acceptors use

    @property
    def user_principal(self) -> str:
        return f"{MONITOR_USER}@{self.realm}"

    @property
    def env(self) -> dict[str, str]:
        """The environment the tests, the simulator's acceptors and the exporter need."""
        return {
            "KRB5_CONFIG": str(self.krb5_conf),
            "KRB5_KTNAME": f"FILE:{self.service_keytab}",
            "KRB5RCACHEDIR": str(self.rcache_dir),
            "NTLM_USER_FILE": str(self.ntlm_user_file),
        }

    def krb5_conf_text(self, kdc_address: str = "127.0.0.1") -> str:
        """krb5.conf for a client; ``kdc_address`` is how the client reaches this machine's loopback."""
        realms = {self.realm: self.port, **self.extra_realms}
        realm_blocks = "".join(
            f"    {name} = {{\n        kdc = {kdc_address}:{port}\n    }}\n" for name, port in realms.items())
        return (
            "[libdefaults]\n"
            f"    default_realm = {self.realm}\n"
            "    dns_lookup_kdc = false\n"
            "    dns_lookup_realm = false\n"
            "    dns_canonicalize_hostname = false\n"
            "    rdns = false\n"
            "    udp_preference_limit = 1\n"
            "    kdc_timeout = 3s\n"
            "    max_retries = 1\n"
            f"    ticket_lifetime = {self.max_life}\n"
            f"[realms]\n{realm_blocks}"
            "[domain_realm]\n"
            f"    .contoso.com = {self.realm}\n"
            f"    contoso.com = {self.realm}\n"
            + "".join(f"    .{name.lower()} = {name}\n" for name in self.extra_realms)
        )

    # ------------------------------------------------------------ lifecycle

    def start(self) -> TestKDC:
        require_kerberos_tools(faketime=self.clock_offset is not None)
        self.rcache_dir.mkdir(exist_ok=True)
        self.krb5_conf.write_text(self.krb5_conf_text())
        self.kdc_conf.write_text(
            "[kdcdefaults]\n"
            f"    kdc_listen = 127.0.0.1:{self.port}\n"
            f"    kdc_tcp_listen = 127.0.0.1:{self.port}\n"
            "[realms]\n"
            f"    {self.realm} = {{\n"
            f"        database_name = {self.folder / 'principal'}\n"
            f"        key_stash_file = {self.folder / 'stash'}\n"
            f"        acl_file = {self.folder / 'kadm5.acl'}\n"
            f"        max_life = {self.max_life}\n"
            "        max_renewable_life = 7d\n"
            "        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal\n"
            "    }\n"
            "[logging]\n"
            f"    kdc = FILE:{self.log_file}\n"
            f"    admin_server = FILE:{self.folder / 'kadmin.log'}\n"
            f"    default = FILE:{self.folder / 'krb5lib.log'}\n"
        )
        (self.folder / "kadm5.acl").write_text("")
        self._run(tool("kdb5_util"), "create", "-s", "-r", self.realm, "-P", _MASTER_PASSWORD)
        queries = [f"addprinc +requires_preauth -pw {MONITOR_PASSWORD} {self.user_principal}",
                   # -norandkey keeps the password valid: the keytab holds the keys derived from it.
                   f"ktadd -norandkey -k {self.user_keytab} {self.user_principal}"]
        for host in self.hosts:
            queries += [f"addprinc -randkey HTTP/{host}@{self.realm}",
                        f"ktadd -k {self.service_keytab} HTTP/{host}@{self.realm}"]
        for query in queries:
            self.kadmin(query)
        # pyspnego's NTLM acceptor: the same user, by the names a client may give (UPN and plain).
        self.ntlm_user_file.write_text(
            f":{self.user_principal}:{MONITOR_PASSWORD}\n"
            f"{self.realm.split('.')[0]}:{MONITOR_USER}:{MONITOR_PASSWORD}\n"
            f":{MONITOR_USER}:{MONITOR_PASSWORD}\n")
        for path in (self.ntlm_user_file, self.user_keytab, self.service_keytab):
            if path.exists():
                path.chmod(0o600)
        self._start_kdc()
        return self

    def _start_kdc(self) -> None:
        env = {**os.environ, **self._tool_env()}
        if self.clock_offset is not None:
            env.update({"LD_PRELOAD": faketime_library() or "", "FAKETIME": self.clock_offset,
                        "FAKETIME_DONT_RESET": "1", "FAKETIME_NO_CACHE": "1"})
        self._process = subprocess.Popen(
            [tool("krb5kdc"), "-n", "-r", self.realm], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                err = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                raise RuntimeError(f"krb5kdc exited {self._process.returncode}: {err}\n{self.kdc_log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"krb5kdc did not listen on 127.0.0.1:{self.port} within 20s\n{self.kdc_log()}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        if process.stderr:
            process.stderr.close()

    def __enter__(self) -> TestKDC:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ administration

    def add_service(self, host: str, keytab: Path) -> str:
        """``HTTP/<host>`` in this realm, its keys added to ``keytab`` (e.g. another realm's service keytab)."""
        principal = f"HTTP/{host}@{self.realm}"
        self.kadmin(f"addprinc -randkey {principal}")
        self.kadmin(f"ktadd -k {keytab} {principal}")
        return principal

    def kadmin(self, query: str) -> str:
        return self._run(tool("kadmin.local"), "-r", self.realm, "-q", query)

    def add_user(self, name: str, password: str, *, keytab: Path | None = None) -> str:
        principal = f"{name}@{self.realm}"
        self.kadmin(f"addprinc +requires_preauth -pw {password} {principal}")
        if keytab is not None:
            self.kadmin(f"ktadd -norandkey -k {keytab} {principal}")
        return principal

    def kdc_log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def _tool_env(self) -> dict[str, str]:
        return {"KRB5_CONFIG": str(self.krb5_conf), "KRB5_KDC_PROFILE": str(self.kdc_conf)}

    def _run(self, program: str | None, *args: str) -> str:
        if program is None:
            raise RuntimeError("a Kerberos tool is missing (require_kerberos_tools() should have said)")
        result = subprocess.run([program, *args], env={**os.environ, **self._tool_env()}, capture_output=True,
                                text=True, timeout=60, check=False)
        if result.returncode != 0 or "error" in result.stderr.lower():
            raise RuntimeError(f"{Path(program).name} {' '.join(args[:2])} failed ({result.returncode}): "
                               f"{result.stderr.replace(MONITOR_PASSWORD, '<redacted>')[-2000:]}")
        return result.stdout
