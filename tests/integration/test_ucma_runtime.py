"""Check E4 through the real path: JobRunner, pypsrp over loopback, the simulated estate's registry and files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from collectors.ucma_runtime import UcmaRuntimeCollector
from tests.integration.collector_harness import Job

CHECK = "lync_owa_config_check_ok"
IM_KEY = r"HKLM:\SYSTEM\CurrentControlSet\Services\MSExchange OWA\InstantMessaging"
SSP = "C:\\Program Files\\Microsoft UCMA 4.0\\Runtime\\SSP"
DLL = SSP + "\\Microsoft.Rtc.Internal.Ucweb.dll"
DELETE = "__delete__"  # written as the scenario tag !delete
BOTH_OK = {("ucma_registry_value_present",): 1, ("ucma_dll_present",): 1}


@pytest.fixture(autouse=True)
def _password(password_env):
    return password_env


@pytest.fixture
def jobs(sim, tmp_path):
    made: list[Job] = []

    def make(target: str) -> Job:
        job = Job(sim, tmp_path, UcmaRuntimeCollector(), target)
        made.append(job)
        return job

    yield make
    for job in made:
        job.close()


def checks(job: Job) -> dict[tuple[str, ...], float]:
    status = job.run()
    assert status.up, status.last_error
    return job.values(CHECK)


def ex01_overlay(sim, tmp_path: Path, name: str, windows: dict) -> None:
    """Switch to ``healthy`` with these changes to ex01's Windows state (a scenario file of the test's own)."""
    text = yaml.safe_dump({"base": "healthy", "description": name,
                           "hosts": {"ex01.contoso.com": {"windows": windows}}})
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace(DELETE, "!delete"))
    sim.set_scenario(path)


def with_value(sim, tmp_path: Path, name: str, value) -> None:
    ex01_overlay(sim, tmp_path, name, {"registry": {IM_KEY: {"ImplementationDLLPath": value}}})


def commands_to(sim, host: str) -> int:
    return sim.stats()[host]["commands"]


def test_healthy_runtime_on_both_mailbox_servers(jobs):
    for target in ("ex01", "ex02"):
        assert checks(jobs(target)) == BOTH_OK


def test_ucma_missing_flips_only_ex01(sim, jobs):
    ex01, ex02 = jobs("ex01"), jobs("ex02")
    sim.set_scenario("ucma-missing")
    assert checks(ex01) == {("ucma_registry_value_present",): 0, ("ucma_dll_present",): 0}
    assert checks(ex02) == BOTH_OK
    sim.set_scenario("healthy")
    assert checks(ex01) == BOTH_OK


def test_value_present_but_runtime_folder_gone(sim, tmp_path, jobs):
    ex01_overlay(sim, tmp_path, "dll-gone", {"directories": {SSP: DELETE}})
    assert checks(jobs("ex01")) == {("ucma_registry_value_present",): 1, ("ucma_dll_present",): 0}


def test_value_pointing_elsewhere(sim, tmp_path, jobs):
    with_value(sim, tmp_path, "elsewhere", "C:\\Program Files\\Microsoft UCMA 3.0\\Runtime\\SSP\\")
    assert checks(jobs("ex01")) == {("ucma_registry_value_present",): 1, ("ucma_dll_present",): 0}


def test_key_missing_altogether(sim, tmp_path, jobs):
    ex01_overlay(sim, tmp_path, "no-key", {"registry": {IM_KEY: DELETE}})
    assert checks(jobs("ex01")) == {("ucma_registry_value_present",): 0, ("ucma_dll_present",): 0}


@pytest.mark.parametrize("value", [DLL, SSP, "  c:\\program files\\microsoft ucma 4.0\\runtime\\ssp\\  ", SSP + "/"])
def test_value_spellings_that_reach_the_dll(sim, tmp_path, jobs, value):
    with_value(sim, tmp_path, "spelling", value)
    assert checks(jobs("ex01")) == BOTH_OK


def test_value_name_in_another_case(sim, tmp_path, jobs):
    ex01_overlay(sim, tmp_path, "value-case", {"registry": {IM_KEY: {
        "ImplementationDLLPath": DELETE, "IMPLEMENTATIONDLLPATH": SSP + "\\"}}})
    assert checks(jobs("ex01")) == BOTH_OK


def test_blank_value_counts_as_missing(sim, tmp_path, jobs):
    with_value(sim, tmp_path, "blank", "   ")
    assert checks(jobs("ex01")) == {("ucma_registry_value_present",): 0, ("ucma_dll_present",): 0}


def test_value_of_the_wrong_type(sim, tmp_path, jobs):
    with_value(sim, tmp_path, "dword", 1)
    assert checks(jobs("ex01")) == {("ucma_registry_value_present",): 1, ("ucma_dll_present",): 0}


def test_a_share_in_the_value_is_never_asked_for(sim, tmp_path, jobs):
    with_value(sim, tmp_path, "unc", "\\\\fileserver\\ucma\\SSP\\")
    job = jobs("ex01")
    checks(job)  # opens the pool
    before = commands_to(sim, "ex01.contoso.com")
    assert checks(job) == {("ucma_registry_value_present",): 1, ("ucma_dll_present",): 0}
    assert commands_to(sim, "ex01.contoso.com") - before == 1  # Get-ItemProperty only, no Get-Item


def test_wildcards_in_the_value_are_characters(sim, tmp_path, jobs):
    # As a -Path pattern, "S*" would match the SSP folder; as data it names a folder that does not exist.
    with_value(sim, tmp_path, "wildcard", "C:\\Program Files\\Microsoft UCMA 4.0\\Runtime\\S*\\")
    assert checks(jobs("ex01")) == {("ucma_registry_value_present",): 1, ("ucma_dll_present",): 0}


def test_a_folder_named_like_the_dll_is_not_the_dll(sim, tmp_path, jobs):
    ex01_overlay(sim, tmp_path, "dll-folder", {"directories": {SSP: DELETE, DLL: {"created": "-1d"}}})
    assert checks(jobs("ex01")) == {("ucma_registry_value_present",): 1, ("ucma_dll_present",): 0}


def test_unexpected_registry_error_fails_the_run(sim, jobs):
    sim.set_fault("ex01.contoso.com", "non_terminating_error", cmdlet="Get-ItemProperty")
    status = jobs("ex01").run()
    assert not status.up and status.error_count("command") == 1
    assert checks(jobs("ex02")) == BOTH_OK
