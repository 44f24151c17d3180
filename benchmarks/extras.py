"""Workloads for diskstore features diskcache lacks: signing, the memory tier, asyncio.

Each compares the feature against what a diskcache user does today. A workload whose
feature the candidate does not have is reported as skipped, with the reason, rather
than silently left out.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import time
from collections.abc import Mapping
from typing import Any

from benchmarks import data, engines
from benchmarks.context import Context, Samples, Session, interleave
from benchmarks.engines import DISKCACHE, DISKSTORE, ENGINES
from benchmarks.results import WorkloadResult
from benchmarks.timing import quiet_gc, split, turns

clock = time.perf_counter_ns
SIGNED_KEYS = 100
HOT_KEYS = 10
LAG_INTERVAL_S = 0.0005


def _small_record(rng: random.Random, index: int) -> dict[str, Any]:
    """A small object that has to be pickled, so diskstore signs it."""
    return {"id": index, "name": f"user-{rng.randrange(10_000)}", "score": rng.random()}


def _small_objects(
    ctx: Context, name: str, description: str, signed: bool, *, fanout: bool = False
) -> WorkloadResult:
    """Alternate get and set of small pickled objects over 100 keys."""
    result = WorkloadResult(name, description, list(ENGINES))
    settings: dict[str, dict[str, Any]] = {}
    if not signed:
        if not engines.accepts_setting(engines.load_class(ctx.candidate), "secret", False):
            result.skipped = "the candidate Cache has no secret option"
            return result
        settings[DISKSTORE] = {"secret": False}
    rng = random.Random(ctx.seed)
    count = ctx.scale.signed_ops
    plan = [
        (data.key(rng.randrange(SIGNED_KEYS)), _small_record(rng, i) if i % 2 else None)
        for i in range(count)
    ]
    slices = split(count, ctx.scale.rounds)

    def setup(session: Session) -> None:
        values = random.Random(ctx.seed + 1)
        for index in range(SIGNED_KEYS):
            session.store.set(data.key(index), _small_record(values, index))

    def batch(session: Session, number: int) -> Mapping[str, list[int]]:
        gets: list[int] = []
        sets: list[int] = []
        store = session.store
        misses = 0
        for index in slices[number]:
            key, value = plan[index]
            if value is None:
                start = clock()
                found = store.get(key)
                gets.append(clock() - start)
                misses += found is None
            else:
                start = clock()
                store.set(key, value)
                sets.append(clock() - start)
        session.state["misses"] = session.state.get("misses", 0) + misses
        return {"get": gets, "set": sets}

    samples, sessions = interleave(
        ctx, name, ENGINES, batch, settings=settings, setup=setup, fanout=fanout
    )
    result.add_samples(samples)
    for session in sessions:
        result.checks[f"all_hits[{session.engine}]"] = not session.state.get("misses")
    return result


def signed_small(ctx: Context) -> WorkloadResult:
    """Small pickled objects with diskstore's default signing on."""
    result = _small_objects(
        ctx, "signed_small", "50% get / 50% set of small pickled objects, signing on", True
    )
    result.notes.append("diskstore signs with its default secret; the floor pickles unsigned")
    return result


def fanout_signed_small(ctx: Context) -> WorkloadResult:
    """:func:`signed_small` on each engine's ``FanoutCache`` (8 shards), the shape that
    Django's cache and many LLM-response caches use."""
    result = _small_objects(
        ctx,
        "fanout_signed_small",
        "as signed_small, on FanoutCache (8 shards); the floor is one table",
        True,
        fanout=True,
    )
    result.notes.append("diskstore signs with its default secret; the floor pickles unsigned")
    return result


def unsigned_small(ctx: Context) -> WorkloadResult:
    """The same as :func:`signed_small` with diskstore's signing off, to show its cost."""
    return _small_objects(
        ctx, "unsigned_small", "as signed_small, diskstore with secret=False", False
    )


def hot_get(ctx: Context) -> WorkloadResult:
    """Gets of a few hot keys; diskstore with ``memory_items=1000``, others as they are."""
    result = WorkloadResult(
        "hot_get", f"get over {HOT_KEYS} hot keys; diskstore memory_items=1000", list(ENGINES)
    )
    if not engines.accepts_setting(engines.load_class(ctx.candidate), "memory_items", 1000):
        result.skipped = "the candidate Cache has no memory_items setting"
        return result
    rng = random.Random(ctx.seed)
    total = ctx.scale.hot_gets
    order = [data.key(rng.randrange(HOT_KEYS)) for _ in range(total)]
    slices = split(total, ctx.scale.rounds)

    def setup(session: Session) -> None:
        values = random.Random(ctx.seed + 1)
        for index in range(HOT_KEYS):
            session.store.set(data.key(index), data.small_value(values))

    def batch(session: Session, number: int) -> Mapping[str, list[int]]:
        times: list[int] = []
        get = session.store.get
        for index in slices[number]:
            start = clock()
            get(order[index])
            times.append(clock() - start)
        return {"get": times}

    settings = {DISKSTORE: {"memory_items": 1000}}
    samples, _ = interleave(ctx, result.name, ENGINES, batch, settings=settings, setup=setup)
    result.add_samples(samples)
    return result


async def _ticker(lags: list[int], stop: asyncio.Event) -> None:
    """Sleep in short steps and record how late each wake-up is: the event loop's lag."""
    interval_ns = int(LAG_INTERVAL_S * 1e9)
    while not stop.is_set():
        start = clock()
        await asyncio.sleep(LAG_INTERVAL_S)
        lags.append(max(0, clock() - start - interval_ns))


async def _burst(get: Any, keys: list[str], samples: Samples, engine: str) -> None:
    lags: list[int] = []
    stop = asyncio.Event()
    ticker = asyncio.create_task(_ticker(lags, stop))
    await asyncio.sleep(LAG_INTERVAL_S * 4)  # let the ticker settle before the burst
    lags.clear()
    start = clock()
    await asyncio.gather(*(get(key) for key in keys))
    elapsed = clock() - start
    stop.set()
    await ticker
    samples.setdefault("burst", {}).setdefault(engine, []).append(elapsed)
    samples.setdefault("loop_lag", {}).setdefault(engine, []).extend(lags or [0])


async def _close(store: Any) -> None:
    closer = getattr(store, "aclose", None) or store.close
    outcome = closer()
    if inspect.isawaitable(outcome):
        await outcome


async def _async_run(ctx: Context, async_class: Any, result: WorkloadResult) -> Samples:
    loop = asyncio.get_running_loop()
    stores: dict[str, Any] = {}
    samples: Samples = {}
    keys = [data.key(i % 100) for i in range(ctx.scale.async_burst_size)]
    try:
        stores[DISKSTORE] = async_class(str(ctx.directory(result.name, DISKSTORE)))
        stores[DISKCACHE] = ctx.open(DISKCACHE, ctx.directory(result.name, DISKCACHE))
        values = random.Random(ctx.seed)
        for index in range(100):
            value = data.small_value(values)
            await stores[DISKSTORE].set(data.key(index), value)
            stores[DISKCACHE].set(data.key(index), value)

        def threaded_get(key: str) -> Any:
            return loop.run_in_executor(None, stores[DISKCACHE].get, key)

        getters = {DISKSTORE: stores[DISKSTORE].get, DISKCACHE: threaded_get}
        for _number, engine in turns(result.engines, ctx.scale.async_bursts):
            with quiet_gc():
                await _burst(getters[engine], keys, samples, engine)
    finally:
        for store in stores.values():
            await _close(store)
    return samples


def async_burst(ctx: Context) -> WorkloadResult:
    """Event-loop lag while 1,000 gets run concurrently: AsyncCache vs diskcache in threads."""
    result = WorkloadResult(
        "async_burst",
        f"event-loop lag during {ctx.scale.async_burst_size} concurrent gets",
        [DISKSTORE, DISKCACHE],
    )
    async_class = getattr(engines.candidate_module(ctx.candidate), "AsyncCache", None)
    if async_class is None:
        result.skipped = "the candidate package has no AsyncCache"
        return result
    result.add_samples(asyncio.run(_async_run(ctx, async_class, result)))
    result.notes.append(
        "diskcache has no asyncio API: its gets run via loop.run_in_executor (default pool)"
    )
    return result
