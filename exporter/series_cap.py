"""A cap on the series one target's data may add to the exposition.

Label values come from servers: a server that reports 5,000 CMS replicas made an 8.9 MB exposition
and took the exporter's RSS from 76 to 189 MB. Each target may have at most
``global.max_series_per_target`` domain series over all its jobs (the jobs' health series are always
served). A job whose samples would pass the target's cap keeps the first ones it produced, in order,
as many as the target's other jobs leave room for; what is cut is counted in
``lync_owa_target_series_dropped{target}`` and logged once, when the target first goes over.
"""

from __future__ import annotations

import logging
import threading
from typing import Sequence

from prometheus_client.core import GaugeMetricFamily, Metric

from collectors.contract import Sample

log = logging.getLogger(__name__)


class SeriesCap:
    """Per target: what each job's latest samples kept and had cut; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: dict[str, dict[str, int]] = {}
        self._cut: dict[str, dict[str, int]] = {}
        self._over: set[str] = set()  # targets logged as over the cap, until they fall back under it

    def admit(self, target: str, job_id: str, samples: Sequence[Sample], limit: int) -> list[Sample]:
        """The samples of ``job_id``'s latest run that fit ``target``'s cap of ``limit`` series."""
        with self._lock:
            kept_by_job = self._kept.setdefault(target, {})
            room = max(limit - sum(n for job, n in kept_by_job.items() if job != job_id), 0)
            kept = list(samples[:room])
            kept_by_job[job_id] = len(kept)
            self._cut.setdefault(target, {})[job_id] = len(samples) - len(kept)
            cut = sum(self._cut[target].values())
            first_time = cut and target not in self._over
            if cut:
                self._over.add(target)
            else:
                self._over.discard(target)
        if first_time:
            log.warning("target's data passes the cap on series per target; the rest is left out",
                        extra={"target": target, "job": job_id, "limit": limit, "series_dropped": cut,
                               "setting": "global.max_series_per_target"})
        return kept

    def forget(self, target: str, job_id: str) -> None:
        """A job left (a reload removed it): its series no longer count against its target."""
        with self._lock:
            self._kept.get(target, {}).pop(job_id, None)
            self._cut.get(target, {}).pop(job_id, None)

    def dropped(self, target: str) -> int:
        with self._lock:
            return sum(self._cut.get(target, {}).values())

    def collect(self) -> list[Metric]:
        """A prometheus_client collector's ``collect``: series cut per target, 0 for targets within."""
        with self._lock:
            cut = {target: sum(jobs.values()) for target, jobs in self._cut.items()}
        family = GaugeMetricFamily(
            "lync_owa_target_series_dropped",
            "Series of this target's latest data left out because they pass global.max_series_per_target.",
            labels=["target"],
        )
        for target in sorted(cut):
            family.add_metric([target], float(cut[target]))
        return [family]
