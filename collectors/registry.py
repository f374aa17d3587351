"""The collectors this exporter knows, by name. Adding a collector means adding it here."""

from __future__ import annotations

from collectors.base import Collector
from collectors.cms_replication import CmsReplicationCollector
from exporter.config import CollectorSchema

ALL_COLLECTORS: tuple[Collector, ...] = (CmsReplicationCollector(),)


def by_name() -> dict[str, Collector]:
    return {c.name: c for c in ALL_COLLECTORS}


def schema_of(collector: Collector) -> CollectorSchema:
    return CollectorSchema(collector.settings_model, collector.roles)


def schemas() -> dict[str, CollectorSchema]:
    """What the configuration loader validates per-collector settings against."""
    return {c.name: schema_of(c) for c in ALL_COLLECTORS}
