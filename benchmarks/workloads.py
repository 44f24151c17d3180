"""Every workload, in the order a run executes and reports them.

The list is the contract the smoke test holds the harness to: each name here must
appear in a run's JSON with results for the engines it lists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from benchmarks import extras, heavy, parallel, remote, single, startup
from benchmarks.context import Context
from benchmarks.results import WorkloadResult


@dataclass(frozen=True)
class Workload:
    """A named workload and the function that runs it."""

    name: str
    run: Callable[[Context], WorkloadResult]


WORKLOADS = (
    Workload("mixed", single.mixed),
    Workload("mixed_4proc", parallel.mixed_4proc),
    Workload("value_1kb", single.value_1kb),
    Workload("value_100kb", single.value_100kb),
    Workload("value_10mb", single.value_10mb),
    Workload("value_json_1mb", single.value_json_1mb),
    Workload("memoize", single.memoize),
    Workload("incr_4proc", parallel.incr_4proc),
    Workload("cull_1kb", single.cull_1kb),
    Workload("cull_64kb", single.cull_64kb),
    Workload("get_lru", single.get_lru),
    Workload("get_statistics", single.get_statistics),
    Workload("disk_json_100kb", single.disk_json_100kb),
    Workload("signed_small", extras.signed_small),
    Workload("fanout_signed_small", extras.fanout_signed_small),
    Workload("unsigned_small", extras.unsigned_small),
    Workload("hot_get", extras.hot_get),
    Workload("async_burst", extras.async_burst),
    Workload("redis", remote.redis_workload),
    Workload("large_values", heavy.large_values),
    Workload("memoize_heavy", heavy.memoize_heavy),
    Workload("import", startup.import_time),
)
NAMES = tuple(workload.name for workload in WORKLOADS)


def select(names: list[str] | None) -> list[Workload]:
    """Return the workloads called ``names`` in run order (all when None)."""
    if not names:
        return list(WORKLOADS)
    unknown = sorted(set(names) - set(NAMES))
    if unknown:
        raise ValueError(f"unknown workload(s) {unknown!r}; choose from {', '.join(NAMES)}")
    return [workload for workload in WORKLOADS if workload.name in names]
