"""Helpers for the E3 and E6 tests: run a collector once, compare what it exported across scenarios."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from collectors.contract import Collector
from collectors.im_certificate.collector import ImCertificateCollector
from collectors.owa_im_settings import OwaImSettingsCollector
from exporter.state import JobStatus
from tests.integration.collector_harness import Job

# (metric name, label values without target) -> value
Snapshot = dict[tuple[str, tuple[str, ...]], float]

EXCHANGE_TARGETS = ("ex01", "ex02")


def new_collector(name: str) -> Collector:
    return {"im_certificate": ImCertificateCollector, "owa_im_settings": OwaImSettingsCollector}[name]()


def run_once(sim, tmp_path: Path, collector: Collector, target: str, settings: dict | None = None,
             **config_kw: Any) -> JobStatus:
    job = Job(sim, tmp_path, collector, target, settings, **config_kw)
    try:
        return job.run()
    finally:
        job.close()


def snapshot(sim, tmp_path: Path, collector: Collector, target: str, settings: dict | None = None,
             **config_kw: Any) -> Snapshot:
    status = run_once(sim, tmp_path, collector, target, settings, **config_kw)
    assert status.up, status.last_error
    return {(s.spec.name, s.label_values): s.value for s in status.samples}


def assert_same(expected: Snapshot, actual: Snapshot) -> None:
    """Equal series; points in time may differ by the seconds between two runs (scenario times are relative)."""
    assert set(actual) == set(expected)
    for key, want in expected.items():
        if key[0].endswith("_timestamp_seconds"):
            assert abs(actual[key] - want) < 600, key
        else:
            assert actual[key] == want, key


def healthy_estate(sim, tmp_path: Path) -> dict[tuple[str, str], Snapshot]:
    """What both collectors export for both Exchange servers in the current (healthy) scenario."""
    return {
        (target, name): snapshot(sim, tmp_path, new_collector(name), target)
        for target in EXCHANGE_TARGETS
        for name in ("im_certificate", "owa_im_settings")
    }


def assert_untouched(sim, tmp_path: Path, healthy: dict[tuple[str, str], Snapshot], *skip: tuple[str, str]) -> None:
    """Every (target, collector) not in ``skip`` still exports exactly what it did when healthy."""
    for (target, name), expected in healthy.items():
        if (target, name) not in skip:
            assert_same(expected, snapshot(sim, tmp_path, new_collector(name), target))


def write_scenario(tmp_path: Path, name: str, overlay: str) -> Path:
    """A scenario file overlaying ``healthy`` (for cases no shipped scenario covers)."""
    path = tmp_path / f"{name}.yaml"
    path.write_text("base: healthy\n" + overlay)
    return path
