"""The performance targets, as data, and how a run is judged against them.

Every target is a ratio of diskstore to diskcache measured in the same run (or, for the
point operations, to the bare-SQLite floor): a latency percentile of one operation, or a
scalar metric such as bytes on disk or throughput.
Some targets also require correctness checks to pass (the ``incr`` count must be exact).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchmarks.engines import DISKCACHE, DISKSTORE, FLOOR
from benchmarks.results import RunResult, WorkloadResult
from benchmarks.stats import ratio

METRIC = "metric"


@dataclass(frozen=True)
class Target:
    """``diskstore / against`` of ``stat`` for ``measure`` must be ``<= limit`` (or ``>=``).

    ``against`` is diskcache, or the bare-SQLite floor for how close a point operation
    comes to what SQLite itself costs.
    """

    label: str
    workload: str
    measure: str
    stat: str
    limit: float
    at_least: bool = False
    requires: tuple[str, ...] = ()
    against: str = DISKCACHE

    @property
    def bound(self) -> str:
        """The target as text, e.g. ``<= 0.75``."""
        return f"{'>=' if self.at_least else '<='} {self.limit:g}"

    def ratio(self, result: WorkloadResult) -> float | None:
        """Return this target's ratio in ``result``, or None when a side is missing."""
        if self.stat == METRIC:
            values = result.metrics.get(self.measure, {})
            return ratio(values.get(DISKSTORE), values.get(self.against))
        by_engine = result.ops.get(self.measure, {})
        mine, theirs = by_engine.get(DISKSTORE), by_engine.get(self.against)
        if mine is None or theirs is None:
            return None
        return ratio(mine.value(self.stat), theirs.value(self.stat))


TARGETS = (
    Target("get (small)", "mixed", "get", "p50", 0.75),
    Target("set (small)", "mixed", "set", "p50", 0.4),
    Target("delete", "mixed", "delete", "p50", 0.5),
    Target("get, against bare SQLite", "mixed", "get", "p50", 1.25, against=FLOOR),
    Target("set, against bare SQLite", "mixed", "set", "p50", 1.6, against=FLOOR),
    Target("delete, against bare SQLite", "mixed", "delete", "p50", 1.6, against=FLOOR),
    Target("memoize hit", "memoize", "hit", "p50", 0.35),
    Target("memoize miss", "memoize", "miss", "p50", 1.0),
    Target(
        "incr, 4 processes", "incr_4proc", "incr", "p50", 0.7, requires=("exact_count[diskstore]",)
    ),
    Target("4-process mixed throughput", "mixed_4proc", "throughput_ops_per_s", METRIC, 2.0, True),
    Target("set p99 under 4 processes", "mixed_4proc", "set", "p99", 1.0),
    Target("get with LRU policy", "get_lru", "get", "p50", 0.3),
    Target("get with statistics on", "get_statistics", "get", "p50", 0.35),
    Target("cull set, 1 KB values", "cull_1kb", "set", "p50", 1.0),
    Target("100 KB value get", "value_100kb", "get", "p50", 0.9),
    Target("10 MB value set", "value_10mb", "set", "p50", 0.6),
    Target("10 MB value get", "value_10mb", "get", "p50", 0.6),
    Target("1 MB JSON-like set", "value_json_1mb", "set", "p50", 0.8),
    Target("1 MB JSON-like get", "value_json_1mb", "get", "p50", 0.8),
    Target("small signed pickle get", "signed_small", "get", "p50", 1.0),
    Target("small signed pickle get, FanoutCache", "fanout_signed_small", "get", "p50", 1.0),
    Target("bytes on disk, 1 MB JSON-like", "value_json_1mb", "bytes_on_disk", METRIC, 0.33),
    Target("bytes on disk, 100 KB JSON-like", "disk_json_100kb", "bytes_on_disk", METRIC, 0.33),
    Target("import time", "import", "import", "p50", 1.5),
)


@dataclass(frozen=True)
class Outcome:
    """How one target fared: its ratio, and whether it was met (None: not measured)."""

    target: Target
    ratio: float | None
    met: bool | None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "label": self.target.label,
            "workload": self.target.workload,
            "measure": self.target.measure,
            "stat": self.target.stat,
            "bound": self.target.bound,
            "ratio": None if self.ratio is None else round(self.ratio, 4),
            "met": self.met,
            "note": self.note,
        }


def judge(target: Target, result: WorkloadResult | None) -> Outcome:
    """Judge ``target`` against the workload ``result`` it names."""
    if result is None:
        return Outcome(target, None, None, "workload not run")
    if result.error:
        return Outcome(target, None, False, f"crashed: {result.error}")
    if result.skipped:
        return Outcome(target, None, None, f"skipped: {result.skipped}")
    value = target.ratio(result)
    if value is None:
        return Outcome(target, None, None, "not measured")
    failed = [name for name in target.requires if not result.checks.get(name, False)]
    within = value >= target.limit if target.at_least else value <= target.limit
    note = f"failed check: {', '.join(failed)}" if failed else ""
    return Outcome(target, value, within and not failed, note)


def evaluate(run: RunResult) -> list[Outcome]:
    """Judge every target against ``run``."""
    return [judge(target, run.workload(target.workload)) for target in TARGETS]


def slower(run: RunResult, stats: tuple[str, ...] = ("p50", "p99")) -> list[str]:
    """Every operation where diskstore is slower than diskcache in ``run``, one line each.

    The standing rule behind the targets: no workload slower than diskcache, at the median
    or at the tail.
    """
    lines = []
    for result in run.workloads:
        for op, by_engine in result.ops.items():
            mine, theirs = by_engine.get(DISKSTORE), by_engine.get(DISKCACHE)
            if mine is None or theirs is None:
                continue
            worse = [
                f"{stat} {mine.value(stat) / theirs.value(stat):.2f}x"
                for stat in stats
                if theirs.value(stat) > 0 and mine.value(stat) > theirs.value(stat)
            ]
            if worse:
                lines.append(f"{result.name} {op}: {', '.join(worse)}")
    return lines
