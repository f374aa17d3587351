"""Every collector works through a JEA endpoint that exposes only deploy/jea/LyncOwaExporter.psrc.

The simulator's JEA configuration is loaded from the committed role capability, so a collector that
calls a cmdlet missing from it fails here exactly as it would on a real server; and the runtime
refuses any call a collector did not declare, so the declarations cannot fall behind the code.
"""

from __future__ import annotations

import copy
import re

import pytest

from collectors.contract import (
    CollectContext,
    CollectError,
    Deadline,
    ErrorKind,
    TargetInfo,
)
from collectors.registry import ALL_COLLECTORS
from exporter.jea import ROLE_NAME
from simulator.scenario import Scenario, load_scenario
from tests.conftest import PROJECT_ROOT
from tests.integration.collector_harness import Job


def psrc_cmdlets() -> list[str]:
    text = (PROJECT_ROOT / "deploy" / "jea" / f"{ROLE_NAME}.psrc").read_text()
    block = text[text.index("VisibleCmdlets"):]
    return re.findall(r"^\s*(?:@\{ Name = )?'([A-Za-z]+-[A-Za-z]+)'", block, re.M)


@pytest.fixture
def jea_sim(sim):
    healthy = load_scenario("healthy")
    raw = copy.deepcopy(healthy.raw)
    raw["jea_configurations"] = {ROLE_NAME: {"visible_cmdlets": psrc_cmdlets()}}
    sim.set_scenario(Scenario("healthy", raw, "healthy with the generated JEA role"))
    return sim


def test_every_collector_succeeds_through_the_generated_jea_role(jea_sim, tmp_path, password_env):
    hosts = jea_sim.hosts()
    failures = []
    ran = 0
    for collector in ALL_COLLECTORS:
        for host, info in hosts.items():
            if not set(info.roles) & collector.roles:
                continue
            job = Job(jea_sim, tmp_path, collector(), host.split(".")[0], windows_configuration=ROLE_NAME)
            try:
                status = job.run()
            finally:
                job.close()
            ran += 1
            if not status.up:
                failures.append(f"{collector.name}@{host}: {status.last_error_kind}: {status.last_error}")
    assert ran, "no collector ran"
    assert not failures, "\n".join(failures)


def test_an_undeclared_cmdlet_is_refused_before_it_is_sent(sim, tmp_path, password_env):
    collector = next(c for c in ALL_COLLECTORS if c.name == "cms_replication")
    job = Job(sim, tmp_path, collector(), "fe01")
    ctx = CollectContext(target=TargetInfo("fe01", "fe01.contoso.com", frozenset({"lync_frontend"})),
                         settings=job.runner.spec.settings, state=job.runner.state, deadline=Deadline(5),
                         runner=job.runner.endpoints, log=job.runner.log,
                         declared_cmdlets=collector.declared_cmdlets())
    with pytest.raises(CollectError) as caught:
        ctx.run("windows", "Get-CsCertificate", None, None)  # type: ignore[arg-type]
    assert caught.value.kind is ErrorKind.COMMAND and "not among the collector's declared cmdlets" in str(caught.value)
