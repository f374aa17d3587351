"""The fault soak's flatness verdict (benchmarks/soak.py): a leak fails it; noise alone seldom does."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from benchmarks.soak import LogTally, Sample, ScrapeStats, SoakOptions, SoakReport

MB = 2**20


def _report(series: dict[str, list[float]], every: float = 5.0) -> SoakReport:
    options = SoakOptions(hosts=50, duration=600, window=60, sample_every=every)
    n = len(next(iter(series.values())))
    samples = [Sample(phase="flapping", elapsed=i * every, rss=series.get("rss", [100 * MB] * n)[i],
                      threads=series.get("threads", [25.0] * n)[i], fds=0, sockets=series.get("sockets", [40.0] * n)[i],
                      cpu=0, simulator_cpu=0, scrapes_ok=0, scrapes_failed=0, jobs_up=0, jobs=0, hosts_faulted=0,
                      pools_opened=0)
               for i in range(n)]
    healthy = {"threads": 20.0, "sockets": 90.0, "fds": 100.0, "rss": 100 * MB}
    return SoakReport(options=options, samples=samples, scrapes=ScrapeStats(), jobs=[], baseline=healthy,
                      final=dict(healthy), never_up=[], not_recovered=[], recovery_seconds=0, max_gap={},
                      runs_during_flapping={}, state_changes=0, faults_set=Counter(), logs=LogTally(),
                      server_shells_created=0, server_shells_open=0)


def _sockets(seed: int, per_minute: float, sd: float = 4.0) -> list[float]:
    """120 samples 5 s apart (the soak's ten minutes): 40 sockets, a trend, and noise."""
    noise = random.Random(seed)
    return [40 + t * 5 / 60 * per_minute + noise.gauss(0, sd) for t in range(120)]


def _sockets_failed(series: list[float]) -> bool:
    return any(p.startswith("sockets grew") for p in _report({"sockets": series}).flatness_problems())


def test_the_windows_and_the_fitted_growth():
    trend = _report({"sockets": [40 + t * 5 / 60 for t in range(120)]}).trend("sockets")
    # first minute: 60 to 115 s (median 87.5 s); last minute: 540 to 595 s (median 567.5 s)
    assert trend.first == pytest.approx(40 + 87.5 / 60)
    assert trend.last == pytest.approx(40 + 567.5 / 60)
    assert trend.minutes == pytest.approx(535 / 60)  # the fit: every sample from 60 s to 595 s
    assert trend.growth == pytest.approx(535 / 60)


def test_a_leak_of_one_socket_a_minute_fails_and_noise_alone_seldom_does():
    # The medians of two minutes 8 minutes apart: a leak of 8 against a margin of 5.
    seeds = range(200)
    assert sum(_sockets_failed(_sockets(seed, 1.0)) for seed in seeds) >= 175
    assert sum(_sockets_failed(_sockets(seed, 0.0)) for seed in seeds) <= 4
    # With the noise the soak measured (sd about 7 sockets) the margin is about two standard
    # deviations of the difference, and flat runs fail more often: docs/reliability.md.
    assert 4 < sum(_sockets_failed(_sockets(seed, 0.0, sd=7.0)) for seed in seeds) < 30


def test_rss_growing_past_ten_percent_fails_and_below_passes():
    growing = _report({"rss": [100 * MB + i * 0.2 * MB for i in range(120)]})  # +19.2 MB between the medians
    assert [p for p in growing.flatness_problems() if p.startswith("RSS grew")]
    flat = _report({"rss": [100 * MB + (i % 7) * MB for i in range(120)]})
    assert flat.flatness_problems() == []


def test_threads_after_recovery_above_the_baseline_fail():
    report = _report({"threads": [25.0] * 120})
    report.final["threads"] = report.baseline["threads"] + 6
    assert report.flatness_problems() == ["threads after recovery 26, healthy baseline 20"]
