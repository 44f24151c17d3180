"""The small-value operation mix: 90% get, 9% set, 1% delete over 100 keys.

Both the single-process workload and the worker processes of the four-process workload
build their operations here, so every engine (and every process) runs an identical,
seeded sequence and times it the same way.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

from benchmarks import data

GET = "get"
SET = "set"
DELETE = "delete"
MIX_KEYS = 100
WEIGHTS = ((GET, 90), (SET, 9), (DELETE, 1))

Op = tuple[str, str, bytes | None]


def mixed_ops(seed: int, count: int, *, keys: int = MIX_KEYS) -> list[Op]:
    """Return ``count`` seeded operations drawn from the 90/9/1 mix over ``keys`` keys."""
    rng = random.Random(seed)
    kinds = rng.choices([k for k, _ in WEIGHTS], weights=[w for _, w in WEIGHTS], k=count)
    ops: list[Op] = []
    for kind in kinds:
        name = data.key(rng.randrange(keys))
        ops.append((kind, name, data.small_value(rng) if kind == SET else None))
    return ops


def prefill(store: Any, seed: int, *, keys: int = MIX_KEYS) -> None:
    """Store a small value under every key of the mix, so gets start out as hits."""
    rng = random.Random(seed)
    for index in range(keys):
        store.set(data.key(index), data.small_value(rng))


def run_ops(store: Any, ops: Sequence[Op]) -> dict[str, list[int]]:
    """Run ``ops`` against ``store``; return each kind's per-operation latencies in ns."""
    samples: dict[str, list[int]] = {GET: [], SET: [], DELETE: []}
    get_times, set_times, delete_times = samples[GET], samples[SET], samples[DELETE]
    clock = time.perf_counter_ns
    get, set_, delete = store.get, store.set, store.delete
    for kind, name, value in ops:
        if kind == GET:
            start = clock()
            get(name)
            get_times.append(clock() - start)
        elif kind == SET:
            start = clock()
            set_(name, value)
            set_times.append(clock() - start)
        else:
            start = clock()
            delete(name)
            delete_times.append(clock() - start)
    return samples
