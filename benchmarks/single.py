"""Single-process workloads: small-value mix, sized values, memoize, cull, read policies.

Every function takes a :class:`~benchmarks.context.Context` and returns a
:class:`~benchmarks.results.WorkloadResult`. Inputs come from seeds, so every engine sees
the same keys, values and operation order; only the engine under the clock differs.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from benchmarks import data, mix
from benchmarks.context import Context, Session, disk_usage, interleave
from benchmarks.engines import CACHE_ENGINES, ENGINES
from benchmarks.results import WorkloadResult
from benchmarks.timing import split

clock = time.perf_counter_ns


def mixed(ctx: Context) -> WorkloadResult:
    """90% get, 9% set, 1% delete over 100 keys of small byte strings, one process."""
    result = WorkloadResult("mixed", "90% get / 9% set / 1% delete, 100 keys, 16-64 B values")
    ops = mix.mixed_ops(ctx.seed, ctx.scale.mixed_ops)
    slices = split(len(ops), ctx.scale.rounds)

    def batch(session: Session, number: int) -> Mapping[str, list[int]]:
        part = slices[number]
        return mix.run_ops(session.store, ops[part.start : part.stop])

    samples, _ = interleave(
        ctx, result.name, ENGINES, batch, setup=lambda s: mix.prefill(s.store, ctx.seed + 1)
    )
    result.engines = list(ENGINES)
    result.add_samples(samples)
    return result


class _RoundValues:
    """Values for one round, built once and shared by every engine's turn in that round."""

    def __init__(self, make: Callable[[int], Any], count: int, rounds: int) -> None:
        self._make = make
        self._slices = split(count, rounds)
        self._number = -1
        self._values: list[tuple[int, Any]] = []

    def get(self, number: int) -> list[tuple[int, Any]]:
        if number != self._number:
            self._values = []  # drop the previous round's values before building the next
            self._values = [(i, self._make(i)) for i in self._slices[number]]
            self._number = number
        return self._values


def _sized(
    ctx: Context, name: str, description: str, make: Callable[[int], Any], count: int, keys: int
) -> WorkloadResult:
    """Time ``count`` set-then-get pairs of ``make(i)`` over ``keys`` keys; measure the disk."""
    result = WorkloadResult(name, description, engines=list(ENGINES))
    values = _RoundValues(make, count, ctx.scale.rounds)

    def batch(session: Session, number: int) -> Mapping[str, list[int]]:
        sets: list[int] = []
        gets: list[int] = []
        store = session.store
        for index, value in values.get(number):
            key = data.key(index % keys)
            start = clock()
            store.set(key, value)
            sets.append(clock() - start)
            start = clock()
            got = store.get(key)
            gets.append(clock() - start)
            if got != value:
                session.state["mismatches"] = session.state.get("mismatches", 0) + 1
        return {"set": sets, "get": gets}

    samples, sessions = interleave(ctx, name, ENGINES, batch)
    result.add_samples(samples)
    _measure_disk(result, sessions)
    for session in sessions:
        result.checks[f"roundtrip[{session.engine}]"] = not session.state.get("mismatches")
    result.notes.append(f"{count} set+get pairs over {min(keys, count)} keys")
    return result


def _measure_disk(result: WorkloadResult, sessions: list[Session]) -> None:
    for session in sessions:
        apparent, allocated = disk_usage(session.directory)
        result.add_metric("bytes_on_disk", session.engine, apparent)
        result.add_metric("bytes_allocated", session.engine, allocated)


def _blob_maker(seed: int, size: int) -> Callable[[int], bytes]:
    return lambda index: data.blob(random.Random(seed * 7919 + index), size)


def _json_maker(seed: int, size: int) -> Callable[[int], dict[str, Any]]:
    return lambda index: data.json_like(random.Random(seed * 7919 + index), size, first_id=index)


def value_1kb(ctx: Context) -> WorkloadResult:
    """Set then get 1 KB random values, each under its own key."""
    count = ctx.scale.value_1kb
    maker = _blob_maker(ctx.seed, data.KB)
    return _sized(ctx, "value_1kb", "set/get 1 KB random bytes", maker, count, count)


def value_100kb(ctx: Context) -> WorkloadResult:
    """Set then get 100 KB random values, each under its own key."""
    count = ctx.scale.value_100kb
    maker = _blob_maker(ctx.seed, 100 * data.KB)
    return _sized(ctx, "value_100kb", "set/get 100 KB random bytes", maker, count, count)


def value_10mb(ctx: Context) -> WorkloadResult:
    """Set then get 10 MB random values, rotating over four keys to bound disk use."""
    maker = _blob_maker(ctx.seed, 10 * data.MB)
    return _sized(ctx, "value_10mb", "set/get 10 MB random bytes", maker, ctx.scale.value_10mb, 4)


def value_json_1mb(ctx: Context) -> WorkloadResult:
    """Set then get ~1 MB JSON-like objects (lists of records), each under its own key."""
    count = ctx.scale.value_json_1mb
    maker = _json_maker(ctx.seed, data.MB)
    description = "set/get ~1 MB compressible JSON-like object"
    return _sized(ctx, "value_json_1mb", description, maker, count, count)


def disk_json_100kb(ctx: Context) -> WorkloadResult:
    """Store many ~100 KB JSON-like objects and compare what they cost on disk."""
    count = ctx.scale.disk_values
    result = WorkloadResult(
        "disk_json_100kb", f"{count} x ~100 KB JSON-like objects: bytes on disk", list(ENGINES)
    )
    values = _RoundValues(_json_maker(ctx.seed, 100 * data.KB), count, ctx.scale.rounds)

    def batch(session: Session, number: int) -> Mapping[str, list[int]]:
        sets: list[int] = []
        store = session.store
        for index, value in values.get(number):
            start = clock()
            store.set(data.key(index), value)
            sets.append(clock() - start)
        return {"set": sets}

    samples, sessions = interleave(ctx, result.name, ENGINES, batch)
    result.add_samples(samples)
    _measure_disk(result, sessions)
    return result


def _plus_one(number: int) -> int:
    return number + 1


def memoize(ctx: Context) -> WorkloadResult:
    """Call a memoized trivial function: cached arguments (hit) and new ones (miss)."""
    result = WorkloadResult("memoize", "memoize(x + 1): hit and miss path", list(CACHE_ENGINES))
    rng = random.Random(ctx.seed)
    calls = ctx.scale.memoize_calls
    hits = [rng.randrange(100) for _ in range(calls)]
    hit_slices = split(calls, ctx.scale.rounds)

    def setup(session: Session) -> None:
        function = session.store.memoize()(_plus_one)
        for number in range(100):
            function(number)
        session.state["function"] = function

    def batch(session: Session, number: int) -> Mapping[str, list[int]]:
        function = session.state["function"]
        hit_times: list[int] = []
        miss_times: list[int] = []
        wrong = 0
        for index in hit_slices[number]:
            argument = hits[index]
            start = clock()
            answer = function(argument)
            hit_times.append(clock() - start)
            wrong += answer != argument + 1
            argument = 1_000_000 + index
            start = clock()
            answer = function(argument)
            miss_times.append(clock() - start)
            wrong += answer != argument + 1
        session.state["wrong"] = session.state.get("wrong", 0) + wrong
        return {"hit": hit_times, "miss": miss_times}

    samples, sessions = interleave(ctx, result.name, CACHE_ENGINES, batch, setup=setup)
    result.add_samples(samples)
    for session in sessions:
        result.checks[f"answers[{session.engine}]"] = not session.state.get("wrong")
    return result


def _cull(ctx: Context, name: str, value_size: int, size_limit: int) -> WorkloadResult:
    result = WorkloadResult(
        name,
        f"set new keys, {value_size // data.KB} KB values, size_limit {size_limit // data.MB} MB",
        list(CACHE_ENGINES),
    )
    base = data.blob(random.Random(ctx.seed), value_size)
    prefill = 2 * size_limit // value_size
    sets = split(ctx.scale.cull_sets, ctx.scale.rounds)
    settings = {engine: {"size_limit": size_limit} for engine in CACHE_ENGINES}

    def value(index: int) -> bytes:
        return index.to_bytes(8, "big") + base[8:]

    def setup(session: Session) -> None:
        for index in range(prefill):
            session.store.set(data.key(index), value(index))

    def batch(session: Session, number: int) -> Mapping[str, list[int]]:
        times: list[int] = []
        store = session.store
        for index in sets[number]:
            payload = value(prefill + index)
            key = data.key(prefill + index)
            start = clock()
            store.set(key, payload)
            times.append(clock() - start)
        session.state["volume"] = store.volume()
        return {"set": times}

    samples, sessions = interleave(ctx, name, CACHE_ENGINES, batch, settings=settings, setup=setup)
    result.add_samples(samples)
    for session in sessions:
        result.add_metric("volume_over_limit", session.engine, session.state["volume"] / size_limit)
    result.notes.append(f"{prefill} untimed sets first, so every timed set has to cull")
    return result


def cull_1kb(ctx: Context) -> WorkloadResult:
    """Sets into a full cache of 1 KB values: every set must evict."""
    return _cull(ctx, "cull_1kb", data.KB, data.MB)


def cull_64kb(ctx: Context) -> WorkloadResult:
    """Sets into a full cache of 64 KB values: every set must evict."""
    return _cull(ctx, "cull_64kb", 64 * data.KB, 8 * data.MB)


def _gets(
    ctx: Context,
    name: str,
    description: str,
    settings: Mapping[str, Mapping[str, Any]],
    *,
    keys: int = 1000,
    total: int | None = None,
) -> WorkloadResult:
    """Time gets of random present keys among ``keys``; each engine opened with ``settings``."""
    result = WorkloadResult(name, description, list(ENGINES))
    total = ctx.scale.policy_gets if total is None else total
    rng = random.Random(ctx.seed)
    order = [data.key(rng.randrange(keys)) for _ in range(total)]
    slices = split(total, ctx.scale.rounds)

    def setup(session: Session) -> None:
        values = random.Random(ctx.seed + 1)
        for index in range(keys):
            session.store.set(data.key(index), data.small_value(values))

    def batch(session: Session, number: int) -> Mapping[str, list[int]]:
        times: list[int] = []
        get = session.store.get
        misses = 0
        for index in slices[number]:
            start = clock()
            value = get(order[index])
            times.append(clock() - start)
            misses += value is None
        session.state["misses"] = session.state.get("misses", 0) + misses
        return {"get": times}

    samples, sessions = interleave(ctx, name, ENGINES, batch, settings=settings, setup=setup)
    result.add_samples(samples)
    for session in sessions:
        result.checks[f"all_hits[{session.engine}]"] = not session.state.get("misses")
    return result


def get_lru(ctx: Context) -> WorkloadResult:
    """Gets on a cache with the least-recently-used policy (each get records an access)."""
    settings = {engine: {"eviction_policy": "least-recently-used"} for engine in CACHE_ENGINES}
    return _gets(ctx, "get_lru", "get, eviction_policy='least-recently-used'", settings)


def get_statistics(ctx: Context) -> WorkloadResult:
    """Gets with hit/miss statistics on (each get updates a counter)."""
    settings = {engine: {"statistics": True} for engine in CACHE_ENGINES}
    return _gets(ctx, "get_statistics", "get, statistics=True", settings)
