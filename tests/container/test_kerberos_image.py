"""The image with Kerberos as production runs it: a keytab and krb5.conf mounted read-only, on a
read-only root with no writable place at all (no tmpfs), as the image's non-root user with no
capabilities, against the test realm's KDC (tests/kdc.py) and the simulator's real Kerberos acceptor on
this machine, on a host that accepts Kerberos only (both endpoints, WinRM messages sealed over HTTP).

The exporter gets its tickets from the keytab and keeps them in memory: with nowhere to write, a
ticket cache on disk would fail the first run. The image's environment even names a file cache on the
read-only root here, to show that a keytab credential never depends on KRB5CCNAME.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from simulator.auth import PRODUCTION
from simulator.server import Simulator
from tests.conftest import (
    SIM_PASSWORD,
    SIM_USERNAME,
    ClientAuth,
    estate_config,
    write_config,
)
from tests.container.running import (
    HOST_LOOPBACK_FROM_CONTAINER,
    IMAGE,
    collector_up,
    wait_for_every_job,
)

pytestmark = [pytest.mark.container, pytest.mark.kerberos, pytest.mark.timeout(1800)]

EX01 = "ex01.contoso.com"
# Exchange's /PowerShell, then WinRM's /wsman: both endpoints of the Kerberos-only host (the other
# collectors of its roles run with their defaults).
COLLECTORS = ("owa_im_settings", "owa_app_pool")


@pytest.fixture(scope="module")
def kerberos_estate(kdc):
    """Hosts as installed (no Basic anywhere, sealed messages required), ex01 accepting Kerberos only."""
    sim = Simulator(scenario="healthy", listen_host="127.0.0.1", control_port=0, tls=False,
                    username=SIM_USERNAME, password=SIM_PASSWORD, auth=PRODUCTION, keytab=kdc.service_keytab,
                    ntlm_user_file=kdc.ntlm_user_file, allow_unencrypted=False).start()
    sim.set_auth(EX01, ["kerberos"])
    yield sim
    sim.stop()


def _image_uid(podman) -> int:
    return int(json.loads(podman("image", "inspect", IMAGE).stdout)[0]["Config"]["User"])


def test_keytab_and_krb5_conf_mounted_read_only_on_a_read_only_root(start, podman, kdc, kerberos_estate, tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    keytab = etc / "svc-lyncmon.keytab"
    shutil.copyfile(kdc.user_keytab, keytab)
    os.chown(keytab, _image_uid(podman), -1)  # the image's user may read it, nobody else
    keytab.chmod(0o400)
    krb5_conf = etc / "krb5.conf"  # the realm's KDC as the container reaches this machine
    krb5_conf.write_text(kdc.krb5_conf_text(kdc_address=HOST_LOOPBACK_FROM_CONTAINER))
    auth = ClientAuth(exchange="kerberos", other="kerberos", principal=kdc.user_principal, keytab=keytab.name)
    document = estate_config(kerberos_estate, interval="5s", timeout="4s", hosts=[EX01], collectors=COLLECTORS,
                             auth=auth)
    for target in document["targets"]:
        for endpoint in target["endpoints"].values():
            endpoint["url"] = endpoint["url"].replace("127.0.0.1", HOST_LOOPBACK_FROM_CONTAINER)
    config = write_config(etc, document)
    for readable in (config, krb5_conf):
        readable.chmod(0o644)
    before = kerberos_estate.stats()[EX01]

    container = start(volumes={config: "/etc/lync-owa-exporter/config.yaml",
                               keytab: f"/etc/lync-owa-exporter/{keytab.name}", krb5_conf: "/etc/krb5.conf"},
                      env={"KRB5CCNAME": "FILE:/tmp/krb5cc_exporter"})
    text = wait_for_every_job(container, f"http://127.0.0.1:{container.port}")

    up = collector_up(text)  # every job of ex01's roles (wait_for_every_job: each one up)
    assert {target for _, target in up} == {"ex01"} and set(up.values()) == {1.0}, up
    assert {("owa_im_settings", "ex01"), ("owa_app_pool", "ex01")} <= set(up), up
    after = kerberos_estate.stats()[EX01]
    used = {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key, 0)}
    assert used.get("auth_exchange_kerberos", 0) > 0 and used.get("auth_windows_kerberos", 0) > 0, used
    assert used.get("requests_encrypted", 0) > 0, used  # plain HTTP: every message sealed with the session key
    assert not [key for key in used if key.startswith("auth_") and "kerberos" not in key], used
    for path in ("/tmp/krb5cc_exporter", "/etc/lync-owa-exporter/probe", "/run/probe"):
        attempt = container.podman("exec", container.name, "touch", path, check=False)
        assert attempt.returncode != 0 and "Read-only" in attempt.stderr, f"{path} is writable: {attempt}"
    logs = container.logs()
    for symptom in ("Traceback", "Read-only file system", "Permission denied", "level=error", "kind=auth"):
        assert symptom not in logs, f"{symptom!r} in the container's log:\n{logs}"
    assert SIM_PASSWORD not in logs
