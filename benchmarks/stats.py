"""Latency summaries: nearest-rank percentiles of per-operation timings.

Timings are collected as integer nanoseconds from ``time.perf_counter_ns`` and reported
in microseconds, the unit the results table and the targets speak.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

PERCENTILES = (50, 90, 99)


def percentile(sorted_ns: Sequence[int], pct: float) -> float:
    """Return the nearest-rank ``pct`` percentile of already sorted samples.

    Nearest rank (rather than interpolation) keeps every reported value an actually
    observed latency, which is what a tail percentile should mean.
    """
    if not sorted_ns:
        raise ValueError("sorted_ns must not be empty")
    if not 0 < pct <= 100:
        raise ValueError(f"pct must be in (0, 100], got {pct!r}")
    rank = max(1, math.ceil(pct / 100 * len(sorted_ns)))
    return float(sorted_ns[rank - 1])


@dataclass(frozen=True)
class OpStats:
    """Summary of one operation's latencies for one engine, in microseconds."""

    n: int
    p50_us: float
    p90_us: float
    p99_us: float
    mean_us: float

    @classmethod
    def from_ns(cls, samples_ns: Sequence[int]) -> OpStats:
        """Summarize raw nanosecond samples; there must be at least one."""
        if not samples_ns:
            raise ValueError("samples_ns must not be empty")
        ordered = sorted(samples_ns)
        p50, p90, p99 = (percentile(ordered, p) / 1000 for p in PERCENTILES)
        return cls(
            n=len(ordered),
            p50_us=round(p50, 3),
            p90_us=round(p90, 3),
            p99_us=round(p99, 3),
            mean_us=round(sum(ordered) / len(ordered) / 1000, 3),
        )

    def value(self, metric: str) -> float:
        """Return the summary named ``metric`` (``"p50"``, ``"p90"``, ``"p99"``, ``"mean"``)."""
        if metric not in ("p50", "p90", "p99", "mean"):
            raise ValueError(f"metric must be p50, p90, p99 or mean, got {metric!r}")
        return float(getattr(self, f"{metric}_us"))


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """Return ``numerator / denominator``, or None when either side is missing or zero."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator
