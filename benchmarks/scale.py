"""How much work each run mode does: ``full`` (``make bench``), ``quick`` and ``smoke``.

``quick`` stays under a minute on two cores; ``smoke`` only proves that every workload
still runs end to end and is what the test suite uses.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    """Operation counts per engine for one run mode."""

    name: str
    rounds: int
    mixed_ops: int
    mp_ops_per_worker: int
    incr_per_worker: int
    value_1kb: int
    value_100kb: int
    value_10mb: int
    value_json_1mb: int
    memoize_calls: int
    cull_sets: int
    policy_gets: int
    disk_values: int
    signed_ops: int
    hot_gets: int
    async_bursts: int
    async_burst_size: int
    large_mb: tuple[int, ...]  # value sizes of large_values (1000: one GiB, full run only)
    large_rounds: int
    heavy_array_mb: int  # the array result of memoize_heavy
    #: Cache sizes the growth workload (``python -m benchmarks.growth``) measures.
    growth_sizes: tuple[int, ...]


FULL = Scale(
    name="full",
    rounds=10,
    mixed_ops=200_000,
    mp_ops_per_worker=30_000,
    incr_per_worker=1000,
    value_1kb=10_000,
    value_100kb=2000,
    value_10mb=40,
    value_json_1mb=40,
    memoize_calls=30_000,
    cull_sets=20_000,
    policy_gets=100_000,
    disk_values=1000,
    signed_ops=100_000,
    hot_gets=100_000,
    async_bursts=20,
    async_burst_size=1000,
    large_mb=(10, 100, 1000),
    large_rounds=5,
    heavy_array_mb=100,
    growth_sizes=(10_000, 100_000, 1_000_000),
)

QUICK = Scale(
    name="quick",
    rounds=6,
    mixed_ops=30_000,
    mp_ops_per_worker=6000,
    incr_per_worker=1000,
    value_1kb=2000,
    value_100kb=300,
    value_10mb=12,
    value_json_1mb=12,
    memoize_calls=6000,
    cull_sets=3000,
    policy_gets=20_000,
    disk_values=300,
    signed_ops=20_000,
    hot_gets=20_000,
    async_bursts=6,
    async_burst_size=1000,
    large_mb=(10, 100),
    large_rounds=3,
    heavy_array_mb=100,
    growth_sizes=(10_000, 100_000),
)

SMOKE = Scale(
    name="smoke",
    rounds=2,
    mixed_ops=600,
    mp_ops_per_worker=200,
    incr_per_worker=50,
    value_1kb=10,
    value_100kb=4,
    value_10mb=2,
    value_json_1mb=2,
    memoize_calls=50,
    cull_sets=50,
    policy_gets=100,
    disk_values=10,
    signed_ops=100,
    hot_gets=100,
    async_bursts=2,
    async_burst_size=50,
    large_mb=(1,),
    large_rounds=2,
    heavy_array_mb=2,
    growth_sizes=(200, 2000),
)

SCALES = {scale.name: scale for scale in (FULL, QUICK, SMOKE)}
