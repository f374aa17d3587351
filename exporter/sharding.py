"""Several exporters, one estate: ``--shard N --total-shards M``, as kube-state-metrics shards.

Each exporter polls the targets whose name hashes to its shard (FNV-1a, 32 bits, of the target
name's UTF-8 bytes, modulo M: the hash kube-state-metrics uses), so the M exporters together poll
every target exactly once, and a target stays in its shard across restarts, reloads and machines.
All collectors of one target run in one shard, so every series of a target comes from one
exporter and Prometheus tells the shards apart by the scrape's ``instance`` label.

Facts that cross targets (the CMS copy of the hosting provider for the Edges, the SipName UM
servers for the front ends, the OWA trusted application pools for the Exchange servers) pass on a
facts board inside one exporter process. A shard whose jobs read a fact that none of its own jobs
posts also runs a *fact reader*: the posting collector against the first target in the
configuration that posts it (polled and exported by another shard), calling only the cmdlets the
fact needs and exporting nothing, so coverage stays disjoint. The extra calls are counted in
``docs/operating.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Protocol

from exporter.config import JobSpec

FNV32_OFFSET_BASIS = 0x811C9DC5
FNV32_PRIME = 0x01000193
# A StatefulSet pod's host name is "<set name>-<ordinal>".
ORDINAL_SUFFIX = re.compile(r"-(\d+)$")


def fnv1a_32(data: bytes) -> int:
    """FNV-1a, 32 bits (not Python's hash(), which changes with every process)."""
    value = FNV32_OFFSET_BASIS
    for byte in data:
        value = ((value ^ byte) * FNV32_PRIME) & 0xFFFFFFFF
    return value


def shard_of(target_name: str, total_shards: int) -> int:
    return fnv1a_32(target_name.encode("utf-8")) % total_shards


def shard_problem(shard: int, total_shards: int) -> str | None:
    """Why ``--shard``/``--total-shards`` cannot be used together, or None."""
    if total_shards < 1:
        return f"--total-shards {total_shards}: must be 1 or more"
    if not 0 <= shard < total_shards:
        return (f"--shard {shard}: must be from 0 to {total_shards - 1} "
                f"(shards are numbered from 0, below --total-shards {total_shards})")
    return None


def ordinal_from_hostname(hostname: str) -> int:
    """The ordinal a StatefulSet gives its pod, from the host name ("lync-owa-exporter-2" -> 2)."""
    found = ORDINAL_SUFFIX.search(hostname.strip().split(".", 1)[0])
    if found is None:
        raise ValueError(f"host name {hostname!r} does not end in -<number> as a StatefulSet pod's does "
                         f"(<set name>-<ordinal>); give --shard instead")
    return int(found.group(1))


@dataclass(frozen=True)
class Shard:
    index: int = 0
    total: int = 1

    def __post_init__(self) -> None:
        problem = shard_problem(self.index, self.total)
        if problem:
            raise ValueError(problem)

    def owns(self, target_name: str) -> bool:
        return shard_of(target_name, self.total) == self.index

    def labels(self) -> dict[str, str]:
        """What ``lync_owa_build_info`` says about this exporter's shard."""
        return {"shard": str(self.index), "total_shards": str(self.total)}

    def __str__(self) -> str:
        return f"shard {self.index} of {self.total}"


UNSHARDED = Shard()


class FactRoutes(Protocol):
    """What planning needs to know of a collector (class or instance): the facts its jobs post and read."""

    def facts_posted(self, roles: Iterable[str]) -> frozenset[str]: ...

    def facts_read(self, roles: Iterable[str], settings: Any) -> frozenset[str]: ...


class FactReaderSpec(JobSpec):
    """A job that only posts facts for this shard's jobs (``Collector.post_facts``) on a target
    another shard polls: it exports no series and its target is not this shard's."""


def shard_jobs(jobs: list[JobSpec], shard: Shard, collectors: Mapping[str, FactRoutes]) -> list[JobSpec]:
    """This shard's jobs (all jobs of the targets it owns), then a fact reader for each fact they
    read that none of them posts, on the first target (configuration order) whose job posts it."""
    if shard.total == 1:
        return list(jobs)
    own = [job for job in jobs if shard.owns(job.target.name)]
    posted = set().union(*(_posts(collectors, job) for job in own))
    needed = set().union(*(_reads(collectors, job) for job in own))
    readers: list[JobSpec] = []
    for fact in sorted(needed - posted):
        if fact in posted:  # a reader added for another fact posts it too
            continue
        source = next((job for job in jobs if fact in _posts(collectors, job)), None)
        if source is None:  # nothing in the whole configuration posts it: as unsharded, the check is not made
            continue
        if all(reader.id != source.id for reader in readers):
            readers.append(FactReaderSpec(collector=source.collector, target=source.target, settings=source.settings))
        posted |= _posts(collectors, source)
    return own + readers


def describe(jobs: list[JobSpec], shard: Shard) -> str:
    """One line for the log and ``check``: the shard's targets, jobs and fact readers."""
    readers = [job for job in jobs if isinstance(job, FactReaderSpec)]
    targets = {job.target.name for job in jobs if not isinstance(job, FactReaderSpec)}
    text = f"{shard}: {_count(len(targets), 'target')}, {_count(len(jobs) - len(readers), 'job')}"
    if readers:
        text += ", fact readers: " + ", ".join(job.id for job in readers)
    return text


def _posts(collectors: Mapping[str, FactRoutes], job: JobSpec) -> frozenset[str]:
    return collectors[job.collector].facts_posted(job.target.roles)


def _reads(collectors: Mapping[str, FactRoutes], job: JobSpec) -> frozenset[str]:
    return collectors[job.collector].facts_read(job.target.roles, job.settings)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
