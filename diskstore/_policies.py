"""Eviction policies, described as data.

A policy names the column that orders victims (indexed, so culling never scans the table)
and what a read must record. Reads under ``least-recently-used`` and
``least-frequently-used`` record their access in memory and write it back in batches (at
least every second and on close), so a read stays a single ``SELECT``; eviction order is
therefore exact up to the last flush.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

ReadEffect = Literal["none", "access_time", "access_count"]


@dataclasses.dataclass(frozen=True)
class EvictionPolicy:
    """How one eviction policy orders victims and what a read must record."""

    name: str
    #: Column whose ascending order lists victims first; ``None`` disables size eviction.
    order_column: str | None
    #: What a successful read updates.
    on_read: ReadEffect

    @property
    def index_name(self) -> str | None:
        return None if self.order_column is None else f"items_evict_{self.order_column}"


POLICIES: dict[str, EvictionPolicy] = {
    policy.name: policy
    for policy in (
        EvictionPolicy("none", None, "none"),
        EvictionPolicy("least-recently-stored", "store_time", "none"),
        EvictionPolicy("least-recently-used", "access_time", "access_time"),
        EvictionPolicy("least-frequently-used", "access_count", "access_count"),
    )
}

EVICTION_POLICY = POLICIES
"""The eviction policies by name (the registry diskcache calls ``EVICTION_POLICY``)."""
