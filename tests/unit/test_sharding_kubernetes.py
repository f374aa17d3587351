"""examples/kubernetes/: the StatefulSet's arguments are flags the CLI accepts and give pod N shard N
of spec.replicas; the Prometheus scrape configuration lists every shard in one lync-owa.* job and
passes `promtool check config` (with the shipped rules beside it, as its rule_files names them)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from exporter import cli
from exporter.sharding import Shard
from tests.conftest import PROJECT_ROOT
from tests.e2e.alerting_stack import binary

EXAMPLES = PROJECT_ROOT / "examples" / "kubernetes"
STATEFULSET_FILE = EXAMPLES / "statefulset.yaml"
SCRAPE_FILE = EXAMPLES / "prometheus-scrape.yml"
RULES = PROJECT_ROOT / "alerts" / "lync-owa.rules.yml"


def documents():
    by_kind = {doc["kind"]: doc for doc in yaml.safe_load_all(STATEFULSET_FILE.read_text())}
    assert set(by_kind) == {"Service", "StatefulSet"}
    return by_kind["Service"], by_kind["StatefulSet"]


def container(statefulset):
    (only,) = statefulset["spec"]["template"]["spec"]["containers"]
    return only


def test_each_pod_gets_its_ordinal_as_shard_of_the_replicas(monkeypatch, capsys):
    _, statefulset = documents()
    name, replicas = statefulset["metadata"]["name"], statefulset["spec"]["replicas"]
    args = container(statefulset)["args"]
    for ordinal in range(replicas):
        monkeypatch.setattr("socket.gethostname", lambda: f"{name}-{ordinal}")
        parsed = cli.parse_args(args)
        assert parsed.command == "run" and parsed.shard_spec == Shard(ordinal, replicas)
    # A set scaled up without changing --total-shards: the new pod refuses to start, naming why.
    monkeypatch.setattr("socket.gethostname", lambda: f"{name}-{replicas}")
    with pytest.raises(SystemExit) as exited:
        cli.parse_args(args)
    assert exited.value.code == 2
    assert f"--shard {replicas}: must be from 0 to {replicas - 1}" in capsys.readouterr().err


def test_the_pod_wiring_fits_the_exporter():
    service, statefulset = documents()
    pod = statefulset["spec"]["template"]
    exporter = container(statefulset)
    parsed = cli.parse_args(exporter["args"][:1] + [a for a in exporter["args"][1:] if "shard" not in a])
    # The configuration file lives in the mounted ConfigMap.
    mounts = {m["name"]: m["mountPath"] for m in exporter["volumeMounts"]}
    assert parsed.config_file.startswith(mounts["config"] + "/")
    assert any(v["name"] == "config" and "configMap" in v for v in pod["spec"]["volumes"])
    # The port it listens on is the named port the probes, the Service and the scrape use.
    port = int(parsed.listen_address.rsplit(":", 1)[1])
    assert {p["name"]: p["containerPort"] for p in exporter["ports"]} == {"metrics": port}
    for probe in ("readinessProbe", "livenessProbe"):
        assert exporter[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    # The headless Service governs the set, selects its pods, and keeps not-ready pods resolvable.
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert statefulset["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    # As the container tests run the image: non-root, read-only root, no capabilities.
    security = exporter["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["capabilities"]["drop"] == ["ALL"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


def test_the_scrape_job_lists_every_shard_by_its_stable_name():
    service, statefulset = documents()
    config = yaml.safe_load(SCRAPE_FILE.read_text())
    (job,) = config["scrape_configs"]
    # LyncOwaExporterDown selects up{job=~"lync-owa.*"}: the job must match it.
    rules = yaml.safe_load(RULES.read_text())
    (down,) = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "LyncOwaExporterDown"]
    selector = re.search(r'up\{job=~"([^"]+)"\}', down["expr"]).group(1)
    assert re.fullmatch(selector, job["job_name"])
    name, namespace = statefulset["metadata"]["name"], statefulset["metadata"]["namespace"]
    port = service["spec"]["ports"][0]["port"]
    (static,) = job["static_configs"]
    assert static["targets"] == [f"{name}-{i}.{service['metadata']['name']}.{namespace}.svc:{port}"
                                 for i in range(statefulset["spec"]["replicas"])]


def test_promtool_accepts_the_scrape_configuration(tmp_path):
    promtool = binary("promtool")
    shutil.copy(SCRAPE_FILE, tmp_path / SCRAPE_FILE.name)
    shutil.copy(RULES, tmp_path / RULES.name)  # its rule_files names the shipped rules, beside it
    result = subprocess.run([promtool, "check", "config", str(tmp_path / SCRAPE_FILE.name)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr
