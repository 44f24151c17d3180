"""Tests for diskstore._aio._async: AsyncCache, the asyncio facade over Cache."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import doctest
import inspect
import multiprocessing
import os
import random
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import filelock
import pytest

import diskstore
import diskstore._aio._async
import diskstore._storage._store
from diskstore._aio._async import DEFAULT_MAX_WORKERS, AsyncCache
from diskstore._common._exceptions import CacheClosedError

pytestmark = pytest.mark.timeout(120)

SPAWN = multiprocessing.get_context("spawn")
DOCS = Path(__file__).resolve().parent.parent.parent / "docs" / "async.md"

T = TypeVar("T")

#: Methods that AsyncCache mirrors from Cache with identical parameters, as coroutines.
MIRRORED = [
    "add", "check", "clear", "create_tag_index", "cull", "decr", "delete", "drop_tag_index",
    "evict", "expire", "get", "incr", "namespace", "peek", "peekitem", "pop", "pull", "push",
    "read", "reset", "set", "stats", "touch", "volume", "close",
]  # fmt: skip


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture
def acache(cache_dir: str) -> Iterator[AsyncCache]:
    opened = AsyncCache(cache_dir)
    yield opened
    asyncio.run(opened.close())


class ThreadLog:
    """Records which threads run SQL statements and open files while installed."""

    def __init__(self) -> None:
        self.sql: set[int] = set()
        self.files: set[int] = set()


@pytest.fixture
def thread_log(monkeypatch: pytest.MonkeyPatch) -> ThreadLog:
    log = ThreadLog()
    connect = diskstore._storage._store.Store._connect

    def traced_connect(store: diskstore._storage._store.Store) -> sqlite3.Connection:
        con = connect(store)
        con.set_trace_callback(lambda _sql: log.sql.add(threading.get_ident()))
        return con

    real_open = os.open

    def recording_open(*args: Any, **kwargs: Any) -> int:
        log.files.add(threading.get_ident())
        return real_open(*args, **kwargs)

    monkeypatch.setattr(diskstore._storage._store.Store, "_connect", traced_connect)
    monkeypatch.setattr(os, "open", recording_open)
    return log


# -- the API's shape -----------------------------------------------------------------------


@pytest.mark.parametrize("name", MIRRORED)
def test_mirrored_methods_are_coroutines_with_cache_signatures(name: str) -> None:
    mine = getattr(AsyncCache, name)
    theirs = getattr(diskstore.Cache, name)
    assert inspect.iscoroutinefunction(mine), name

    def shape(func: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
        params = list(inspect.signature(func).parameters.values())[1:]
        return [(p.name, p.kind, p.default) for p in params]

    assert shape(mine) == shape(theirs)


def test_iterkeys_signature_matches_cache() -> None:
    mine = inspect.signature(AsyncCache.iterkeys).parameters
    theirs = inspect.signature(diskstore.Cache.iterkeys).parameters
    assert [(p.name, p.default) for p in mine.values()] == [
        (p.name, p.default) for p in theirs.values()
    ]


def test_exported_from_the_package() -> None:
    assert getattr(diskstore, "AsyncCache", None) is AsyncCache
    assert "AsyncCache" in diskstore.__all__


def test_docstring_example_runs() -> None:
    result = doctest.testmod(diskstore._aio._async)
    assert result.attempted > 0
    assert result.failed == 0


def test_docs_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    # Independent of the package export, which test_exported_from_the_package checks.
    monkeypatch.setattr(diskstore, "AsyncCache", AsyncCache, raising=False)
    namespace: dict[str, Any] = {"__name__": "docs_async"}
    for number, block in enumerate(blocks, 1):
        code = compile(block, f"{DOCS.name}[block {number}]", "exec")
        exec(code, namespace)


# -- construction and validation -------------------------------------------------------------


def test_opens_a_cache_with_settings(cache_dir: str) -> None:
    async def main() -> None:
        async with AsyncCache(cache_dir, timeout=5, size_limit=2**20) as acache:
            assert await acache.set("k", "v") is True
            assert acache.directory == os.path.abspath(cache_dir)
            assert acache.cache.timeout == 5
            assert acache.cache.size_limit == 2**20
        with diskstore.Cache(cache_dir) as cache:
            assert cache["k"] == "v"

    run(main())


def test_first_operation_opens_the_cache_in_a_worker(cache_dir: str, thread_log: ThreadLog) -> None:
    async def main() -> None:
        acache = AsyncCache(cache_dir)
        assert not os.path.exists(cache_dir)
        assert "not yet opened" in repr(acache)
        assert await acache.get("k") is None
        assert os.path.isdir(cache_dir)
        assert repr(acache.cache) in repr(acache)
        await acache.close()

    run(main())
    assert thread_log.sql and threading.get_ident() not in thread_log.sql
    assert thread_log.files and threading.get_ident() not in thread_log.files


def test_bad_settings_fail_the_first_operation(cache_dir: str) -> None:
    async def main() -> None:
        acache = AsyncCache(cache_dir, size_limit="big")
        for _ in range(2):
            with pytest.raises(ValueError, match="size_limit"):
                await acache.set("k", 1)
        await acache.close()

    run(main())


def test_cache_property_opens_on_first_access(cache_dir: str) -> None:
    acache = AsyncCache(cache_dir)
    assert isinstance(acache.cache, diskstore.Cache)
    assert acache.cache is acache.cache
    assert os.path.isdir(cache_dir)
    run(acache.close())


def test_closing_an_unopened_cache_creates_nothing(cache_dir: str) -> None:
    acache = AsyncCache(cache_dir)
    run(acache.close())
    assert acache.closed
    assert not os.path.exists(cache_dir)
    with pytest.raises(CacheClosedError):
        run(acache.set("k", 1))


def test_bad_arguments_are_rejected(cache_dir: str, cache: diskstore.Cache) -> None:
    with pytest.raises(TypeError, match=r"cache must be a diskstore\.Cache"):
        AsyncCache(cache={})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="directory"):
        AsyncCache(cache_dir, cache=cache)
    with pytest.raises(TypeError, match="size_limit"):
        AsyncCache(cache=cache, size_limit=10)
    with pytest.raises(TypeError, match="executor must be"):
        AsyncCache(cache=cache, executor=concurrent.futures.ProcessPoolExecutor)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="directory must be a path"):
        AsyncCache(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="lock_timeout"):
        AsyncCache(cache=cache, lock_timeout="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lock_timeout"):
        AsyncCache(cache=cache, lock_timeout=0)
    with pytest.raises(ValueError, match="lock_timeout"):
        AsyncCache(cache=cache, lock_timeout=float("nan"))
    with pytest.raises(TypeError, match="reverse must be a bool"):
        AsyncCache(cache=cache).iterkeys(reverse="yes")  # type: ignore[arg-type]


def test_cache_errors_propagate(acache: AsyncCache) -> None:
    async def main() -> None:
        with pytest.raises(KeyError):
            await acache.incr("missing", default=None)
        with pytest.raises(KeyError):
            await acache.read("missing")
        with pytest.raises(KeyError):
            await acache.peekitem()
        with pytest.raises(TypeError, match="tag"):
            await acache.set("k", 1, tag=[1])
        with pytest.raises(ValueError, match="side"):
            await acache.push(1, side="middle")

    run(main())


# -- operations ------------------------------------------------------------------------------


def _script(
    call: Callable[..., Any], *, file_value: bytes
) -> Iterator[tuple[str, Callable[[], Any]]]:
    """Operations as (label, thunk); each thunk returns the call's result or awaitable."""
    yield "set", lambda: call("set", "a", 1, expire=600, tag="t1")
    yield "set file", lambda: call("set", "big", file_value, tag="t2")
    yield "get", lambda: call("get", "a", expire_time=False, tag=True)
    yield "get missing", lambda: call("get", "nope", default="dflt")
    yield "add existing", lambda: call("add", "a", 2)
    yield "add new", lambda: call("add", "b", [1, 2, 3], tag="t1")
    yield "incr", lambda: call("incr", "n", 5)
    yield "decr", lambda: call("decr", "n", 2, 0)
    yield "touch", lambda: call("touch", "b", None)
    yield "touch missing", lambda: call("touch", "zzz", 10)
    yield "push", lambda: call("push", "x", prefix="q")
    yield "push front", lambda: call("push", "y", "q", "front")
    yield "peek", lambda: call("peek", "q")
    yield "pull back", lambda: call("pull", "q", side="back")
    yield "peekitem", lambda: call("peekitem", last=False)
    yield "pop", lambda: call("pop", "b", tag=True)
    yield "pop missing", lambda: call("pop", "b", default=0)
    yield "delete", lambda: call("delete", "n")
    yield "delete missing", lambda: call("delete", "n")
    yield "get big", lambda: call("get", "big")
    yield "evict", lambda: call("evict", "t2")
    yield "expire", lambda: call("expire", time.time() + 3600)
    yield "set again", lambda: call("set", "c", {"x": 1})
    yield "cull", lambda: call("cull")
    yield "reset", lambda: call("reset", "cull_limit", 7)
    yield "reset read", lambda: call("reset", "cull_limit")
    yield "stats", lambda: call("stats", True, False)
    yield "clear", lambda: call("clear")
    yield "get after clear", lambda: call("get", "c")


def test_results_match_the_sync_cache(tmp_path: Path, thread_log: ThreadLog) -> None:
    file_value = os.urandom(200_000)
    with diskstore.Cache(str(tmp_path / "sync")) as model:
        expected = [
            (label, thunk())
            for label, thunk in _script(
                lambda name, *a, **k: getattr(model, name)(*a, **k), file_value=file_value
            )
        ]
    thread_log.sql.clear()
    thread_log.files.clear()

    async def main() -> list[tuple[str, Any]]:
        async with AsyncCache(str(tmp_path / "async")) as acache:
            results = []
            for label, thunk in _script(
                lambda name, *a, **k: getattr(acache, name)(*a, **k), file_value=file_value
            ):
                results.append((label, await thunk()))
            return results

    loop_thread = threading.get_ident()
    assert run(main()) == expected
    # Every statement and file of the async cache ran in a worker thread.
    assert thread_log.sql and loop_thread not in thread_log.sql
    assert thread_log.files and loop_thread not in thread_log.files


def test_read_returns_a_file(acache: AsyncCache) -> None:
    payload = os.urandom(100_000)

    async def main() -> bytes:
        await acache.set("blob", payload)
        handle = await acache.read("blob")
        with handle:
            return await acache.run(handle.read)

    assert run(main()) == payload


def test_volume_and_check(acache: AsyncCache) -> None:
    async def main() -> tuple[int, int, list[Any]]:
        before = await acache.volume()
        await acache.set("file", os.urandom(300_000))
        return before, await acache.volume(), await acache.check()

    before, after, problems = run(main())
    assert after >= before + 300_000
    assert problems == []


def test_tag_index_methods(acache: AsyncCache) -> None:
    async def main() -> None:
        await acache.create_tag_index()
        assert acache.cache.tag_index is True
        await acache.drop_tag_index()
        assert acache.cache.tag_index is False

    run(main())


def test_async_for_yields_every_key_in_insertion_order(acache: AsyncCache) -> None:
    keys = [f"key-{n}" for n in random.Random(3).sample(range(10_000), 700)]

    async def main() -> tuple[list[Any], list[Any]]:
        for key in keys:
            await acache.set(key, 0)
        forward = [key async for key in acache]
        backward = [key async for key in acache.iterkeys(reverse=True)]
        return forward, backward

    forward, backward = run(main())
    assert forward == keys
    assert backward == sorted(keys, reverse=True)


def test_async_for_on_an_empty_cache(acache: AsyncCache) -> None:
    async def main() -> list[Any]:
        return [key async for key in acache]

    assert run(main()) == []


def test_namespace_views_are_isolated(acache: AsyncCache) -> None:
    async def main() -> None:
        left = await acache.namespace("left")
        right = await acache.namespace("right")
        await left.set("k", "L")
        await right.set("k", "R")
        assert await acache.get("k") is None
        assert (await left.get("k"), await right.get("k")) == ("L", "R")
        assert [k async for k in left] == ["k"]
        assert await left.get_or_set("g", lambda: "left") == "left"
        assert await right.get_or_set("g", lambda: "right") == "right"
        assert await left.clear() == 2
        assert await right.get("k") == "R"
        assert left.executor is acache.executor

    run(main())


def test_run_uses_a_worker_thread_and_the_callers_context(acache: AsyncCache) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    def probe(suffix: str) -> tuple[int, str]:
        return threading.get_ident(), var.get() + suffix

    async def main() -> tuple[int, str]:
        var.set("caller")
        return await acache.run(probe, suffix="!")

    ident, seen = run(main())
    assert ident != threading.get_ident()
    assert seen == "caller!"


def test_run_hosts_a_transaction(acache: AsyncCache) -> None:
    def transfer(cache: diskstore.Cache) -> int:
        with cache.transact():
            cache.incr("from", -5, default=100)
            return int(cache.incr("to", 5))

    async def main() -> tuple[int, Any, Any]:
        moved = await acache.run(transfer, acache.cache)
        return moved, await acache.get("from"), await acache.get("to")

    assert run(main()) == (5, 95, 5)


def test_works_across_event_loops(acache: AsyncCache) -> None:
    run(acache.set("k", 1))
    assert run(acache.incr("k")) == 2
    assert run(acache.get_or_set("g", lambda: "first")) == "first"
    assert run(acache.get_or_set("g", lambda: "second")) == "first"


# -- concurrency -----------------------------------------------------------------------------


def test_200_tasks_mixing_operations_match_a_model(acache: AsyncCache) -> None:
    tasks_count, steps = 200, 25

    async def worker(number: int) -> tuple[dict[Any, Any], list[int], list[Any], int]:
        rng = random.Random(number)
        model: dict[Any, Any] = {}
        pushed: list[int] = []
        pulled: list[Any] = []
        added = 0
        for step in range(steps):
            key = (number, rng.randrange(4))
            op = rng.choice(["set", "get", "add", "delete", "pop", "incr", "touch", "queue"])
            if op == "set":
                value = rng.choice([step, f"s{step}", b"b" * step, [number, step]])
                assert await acache.set(key, value) is True
                model[key] = value
            elif op == "get":
                assert await acache.get(key, default="miss") == model.get(key, "miss")
            elif op == "add":
                assert await acache.add(key, step) is (key not in model)
                model.setdefault(key, step)
            elif op == "delete":
                assert await acache.delete(key) is (key in model)
                model.pop(key, None)
            elif op == "pop":
                assert await acache.pop(key, default="miss") == model.pop(key, "miss")
            elif op == "incr":
                if isinstance(model.get(key, 0), int):
                    assert await acache.incr(key, step) == model.get(key, 0) + step
                    model[key] = model.get(key, 0) + step
            elif op == "touch":
                assert await acache.touch(key, 3600) is (key in model)
            else:
                if rng.random() < 0.6:
                    item = number * 1000 + step
                    await acache.push(item, prefix="queue")
                    pushed.append(item)
                else:
                    got = await acache.pull(prefix="queue")
                    if got != (None, None):
                        pulled.append(got[1])
            await acache.incr("shared-counter", number)
            added += number
        return model, pushed, pulled, added

    async def main() -> None:
        results = await asyncio.gather(*(worker(n) for n in range(tasks_count)))
        union: dict[Any, Any] = {}
        pushed: list[int] = []
        pulled: list[Any] = []
        for model, task_pushed, task_pulled, _ in results:
            union.update(model)
            pushed += task_pushed
            pulled += task_pulled
        for key, value in union.items():
            assert await acache.get(key) == value
        remaining = []
        while (item := await acache.pull(prefix="queue")) != (None, None):
            remaining.append(item[1])
        assert sorted(pulled + remaining) == sorted(pushed)
        expected_counter = sum(added for *_, added in results)
        assert await acache.get("shared-counter") == expected_counter
        stored = {key async for key in acache} - {"shared-counter"}
        assert stored == set(union)

    run(main())


def test_burst_of_gets_queues_in_the_bounded_pool(
    acache: AsyncCache, thread_log: ThreadLog
) -> None:
    async def main() -> list[Any]:
        await asyncio.gather(*(acache.set(n, n * n) for n in range(50)))
        thread_log.sql.clear()
        return await asyncio.gather(*(acache.get(n % 50) for n in range(1000)))

    assert run(main()) == [(n % 50) ** 2 for n in range(1000)]
    assert 1 <= len(thread_log.sql) <= DEFAULT_MAX_WORKERS
    assert threading.get_ident() not in thread_log.sql


def test_loop_keeps_running_while_a_burst_waits_for_the_pool(cache: diskstore.Cache) -> None:
    """Gets queue in the executor: with its only worker held, none completes, yet ticks go on."""
    gate = threading.Event()
    cache.set("k", "v")

    async def main() -> None:
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            acache = AsyncCache(cache=cache, executor=pool)
            holder = asyncio.ensure_future(acache.run(gate.wait, 60))
            done = 0

            async def get() -> Any:
                nonlocal done
                value = await acache.get("k")
                done += 1
                return value

            burst = asyncio.gather(*(get() for _ in range(1000)))
            ticks = 0
            while ticks < 20:
                await asyncio.sleep(0.001)
                assert done == 0
                ticks += 1
            gate.set()
            assert await burst == ["v"] * 1000
            assert await holder is True
            await acache.close()

    run(main())


def test_ticker_keeps_ticking_during_a_burst(acache: AsyncCache) -> None:
    async def main() -> int:
        await acache.set("k", "v" * 100)
        finished = False
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while not finished:
                await asyncio.sleep(0)
                ticks += 1

        ticking = asyncio.ensure_future(ticker())
        await asyncio.sleep(0)
        ticks = 0
        values = await asyncio.gather(*(acache.get("k") for _ in range(1000)))
        finished = True
        during = ticks
        await ticking
        assert values == ["v" * 100] * 1000
        return during

    # Gets run on the loop thread would finish the burst within three loop iterations.
    assert run(main()) >= 10


def test_a_failing_or_cancelled_get_leaves_its_batch_alone(acache: AsyncCache) -> None:
    async def main() -> None:
        await acache.set("k", "v")
        unpicklable = threading.Lock()
        gets = [asyncio.ensure_future(acache.get("k")) for _ in range(40)]
        bad = asyncio.ensure_future(acache.get(unpicklable))
        gets[7].cancel()
        results = await asyncio.gather(*gets, bad, return_exceptions=True)
        assert isinstance(results[7], asyncio.CancelledError)
        assert results[:7] + results[8:40] == ["v"] * 39
        assert isinstance(results[40], TypeError)
        assert await acache.get("k") == "v"

    run(main())


def test_gets_queued_when_the_cache_closes_are_served(acache: AsyncCache) -> None:
    async def main() -> None:
        await acache.set("k", "v")
        gets = [asyncio.ensure_future(acache.get("k")) for _ in range(10)]
        await asyncio.sleep(0)  # queued, not yet handed to a worker
        await acache.close()
        assert await asyncio.gather(*gets) == ["v"] * 10
        with pytest.raises(CacheClosedError):
            await acache.get("k")

    run(main())


# -- get_or_set --------------------------------------------------------------------------


def test_get_or_set_computes_stores_and_reuses(acache: AsyncCache) -> None:
    calls: list[int] = []

    async def factory() -> dict[str, int]:
        calls.append(1)
        return {"answer": 42}

    async def main() -> None:
        assert await acache.get_or_set("k", factory, expire=600, tag="t") == {"answer": 42}
        assert await acache.get_or_set("k", factory) == {"answer": 42}
        value, expire_time, tag = await acache.get("k", expire_time=True, tag=True)
        assert value == {"answer": 42} and tag == "t"
        assert time.time() < expire_time <= time.time() + 600

    run(main())
    assert calls == [1]


def test_get_or_set_returns_a_stored_none_without_computing(acache: AsyncCache) -> None:
    async def main() -> Any:
        await acache.set("k", None)
        return await acache.get_or_set("k", lambda: pytest.fail("factory ran"))

    assert run(main()) is None


def test_get_or_set_runs_plain_factories_in_a_thread(acache: AsyncCache) -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []

    def factory() -> str:
        seen.append(threading.get_ident())
        return "plain"

    async def coroutine_value() -> str:
        return "awaited"

    async def main() -> tuple[Any, Any]:
        plain = await acache.get_or_set("plain", factory)
        awaited = await acache.get_or_set("awaitable", lambda: coroutine_value())
        return plain, awaited

    assert run(main()) == ("plain", "awaited")
    assert seen and loop_thread not in seen
    assert acache.cache.get("awaitable") == "awaited"


def test_get_or_set_factory_error_stores_nothing(acache: AsyncCache) -> None:
    async def failing() -> int:
        raise RuntimeError("boom")

    async def main() -> None:
        with pytest.raises(RuntimeError, match="boom"):
            await acache.get_or_set("k", failing)
        assert await acache.get("k", default="missing") == "missing"
        assert await acache.get_or_set("k", lambda: 7) == 7

    run(main())


def test_get_or_set_failure_releases_every_waiter(acache: AsyncCache) -> None:
    attempts: list[int] = []

    async def flaky() -> str:
        attempts.append(1)
        await asyncio.sleep(0.05)
        if len(attempts) == 1:
            raise RuntimeError("first attempt fails")
        return "second"

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(acache.get_or_set("k", flaky) for _ in range(5)), return_exceptions=True
        )

    results = run(main())
    errors = [r for r in results if isinstance(r, RuntimeError)]
    assert len(errors) == 1
    assert [r for r in results if not isinstance(r, RuntimeError)] == ["second"] * 4
    assert len(attempts) == 2


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"factory": 3}, TypeError, "factory must be a callable"),
        ({"expire": "soon"}, TypeError, "expire must be a number"),
        ({"expire": -1}, ValueError, "expire must be a non-negative"),
        ({"expire": float("nan")}, ValueError, "expire"),
        ({"tag": ["list"]}, TypeError, "tag must be"),
        ({"tag": float("nan")}, ValueError, "tag"),
    ],
)
def test_get_or_set_rejects_bad_arguments_before_computing(
    acache: AsyncCache, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    arguments: dict[str, Any] = {"factory": lambda: pytest.fail("factory ran"), **kwargs}
    with pytest.raises(error, match=match):
        run(acache.get_or_set("k", **arguments))
    assert acache.cache.get("k", default="missing") == "missing"


def test_concurrent_get_or_set_computes_once(acache: AsyncCache) -> None:
    calls: list[int] = []

    async def factory() -> str:
        calls.append(1)
        await asyncio.sleep(0.1)
        return "shared"

    async def main() -> list[Any]:
        return await asyncio.gather(*(acache.get_or_set("k", factory) for _ in range(50)))

    assert run(main()) == ["shared"] * 50
    assert len(calls) == 1


def test_get_or_set_with_an_expired_store_still_serves_waiters(acache: AsyncCache) -> None:
    calls: list[int] = []

    async def factory() -> str:
        calls.append(1)
        await asyncio.sleep(0.05)
        return "fresh"

    async def main() -> list[Any]:
        return await asyncio.gather(*(acache.get_or_set("k", factory, 0) for _ in range(10)))

    assert run(main()) == ["fresh"] * 10
    assert len(calls) == 1


class _Gate:
    """A factory that blocks until released, and counts its runs."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.runs = 0

    async def __call__(self) -> str:
        self.runs += 1
        self.started.set()
        await self.release.wait()
        return "computed"


def _count_joins(acache: AsyncCache, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count callers that reached the single-flight wait of ``acache``."""
    joined: list[int] = []
    flight = acache._runner.flight()
    original = flight.run_async

    async def counting(*args: Any) -> Any:
        joined.append(1)
        return await original(*args)

    monkeypatch.setattr(flight, "run_async", counting)
    return joined


async def until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``condition`` on the loop until it holds; fail after ``timeout`` seconds."""

    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.002)

    await asyncio.wait_for(poll(), timeout)


def _no_lock_held(directory: str) -> bool:
    locks = Path(directory, "cache.db-locks")
    for path in locks.glob("*.lock") if locks.exists() else []:
        lock = filelock.FileLock(str(path), thread_local=False)
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            return False
        lock.release()
    return True


def test_cancelled_waiter_does_not_cancel_the_computation(
    acache: AsyncCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    joined = _count_joins(acache, monkeypatch)

    async def main() -> None:
        gate = _Gate()
        tasks = [asyncio.ensure_future(acache.get_or_set("k", gate)) for _ in range(3)]
        await asyncio.wait_for(gate.started.wait(), 30)
        await until(lambda: len(joined) == 3)
        tasks[0].cancel()  # the first caller, whose turn started the computation
        await asyncio.sleep(0)
        gate.release.set()
        assert [await tasks[1], await tasks[2]] == ["computed", "computed"]
        with pytest.raises(asyncio.CancelledError):
            await tasks[0]
        assert gate.runs == 1
        assert await acache.get("k") == "computed"
        assert _no_lock_held(acache.directory)
        # Nothing left held: a new computation of the key starts and ends at once.
        await acache.delete("k")
        again = _Gate()
        again.release.set()
        assert await asyncio.wait_for(acache.get_or_set("k", again), 10) == "computed"
        assert again.runs == 1

    run(main())


def test_cancelling_every_waiter_still_stores_the_result(
    acache: AsyncCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    joined = _count_joins(acache, monkeypatch)

    async def main() -> None:
        gate = _Gate()
        tasks = [asyncio.ensure_future(acache.get_or_set("k", gate)) for _ in range(4)]
        await asyncio.wait_for(gate.started.wait(), 30)
        await until(lambda: len(joined) == 4)
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results)
        gate.release.set()
        await until(lambda: acache.cache.get("k") == "computed")
        assert gate.runs == 1
        # The flight ends after its value is stored (its lock is released in a worker
        # thread); a call made before then joins it, so wait for it to be forgotten.
        flights = acache._runner.flight()._loop_flights
        loop = asyncio.get_running_loop()
        await until(lambda: not flights.get(loop))
        late = _Gate()
        late.release.set()
        assert await asyncio.wait_for(acache.get_or_set("k", late), 10) == "computed"
        assert late.runs == 0
        await acache.delete("k")
        assert await asyncio.wait_for(acache.get_or_set("k", late), 10) == "computed"
        assert late.runs == 1
        assert _no_lock_held(acache.directory)

    run(main())


def _get_or_set_in_process(
    directory: str, log: str, coroutine: bool, barrier: Any, results: Any
) -> None:
    def record() -> None:
        with open(log, "a") as handle:
            handle.write(f"{os.getpid()}\n")

    def plain() -> str:
        record()
        time.sleep(1.0)
        return "cross-process"

    async def awaited() -> str:
        record()
        await asyncio.sleep(1.0)
        return "cross-process"

    async def main() -> Any:
        async with AsyncCache(directory, lock_timeout=100) as acache:
            await asyncio.to_thread(barrier.wait, 60)
            return await acache.get_or_set("shared", awaited if coroutine else plain)

    results.put(asyncio.run(main()))


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_get_or_set_across_processes_runs_the_factory_once(tmp_path: Path) -> None:
    directory, log = str(tmp_path / "cache"), tmp_path / "runs.log"
    diskstore.Cache(directory).close()
    count = 3
    barrier, results = SPAWN.Barrier(count), SPAWN.Queue()
    processes = [
        SPAWN.Process(
            target=_get_or_set_in_process,
            args=(directory, str(log), n % 2 == 0, barrier, results),
        )
        for n in range(count)
    ]
    try:
        for process in processes:
            process.start()
        values = [results.get(timeout=120) for _ in processes]
        for process in processes:
            process.join(30)
            assert process.exitcode == 0
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
            process.join(10)
    assert values == ["cross-process"] * count
    assert len(log.read_text().split()) == 1


# -- memoize -----------------------------------------------------------------------------


def test_memoized_coroutine_gathered_50_times_runs_once(acache: AsyncCache) -> None:
    calls: list[int] = []

    @acache.memoize(name="slow-double")
    async def double(x: int) -> int:
        calls.append(x)
        await asyncio.sleep(0.1)
        return 2 * x

    async def main() -> list[int]:
        return await asyncio.gather(*(double(21) for _ in range(50)))

    assert run(main()) == [42] * 50
    assert calls == [21]
    info = double.cache_info()
    assert (info.hits, info.misses, info.currsize) == (49, 1, 1)
    assert run(double(21)) == 42 and calls == [21]


def test_memoize_on_async_and_plain_functions(acache: AsyncCache) -> None:
    @acache.memoize()
    async def square(x: int) -> int:
        return x * x

    @acache.memoize(expire=60)
    def cube(x: int) -> int:
        return x**3

    assert run(square(4)) == 16
    assert square.cache_info().currsize == 1
    assert cube(2) == 8 and cube.cache_info().misses == 1
    assert cube(2) == 8 and cube.cache_info().hits == 1


# -- closing -----------------------------------------------------------------------------


def test_close_closes_what_it_opened(cache_dir: str) -> None:
    acache = AsyncCache(cache_dir)

    async def main() -> None:
        await acache.set("k", 1)
        await acache.close()
        await acache.close()  # idempotent
        assert acache.closed
        with pytest.raises(CacheClosedError):
            await acache.get("k")
        with pytest.raises(CacheClosedError):
            await acache.get_or_set("other", lambda: 1)
        with pytest.raises(CacheClosedError):
            [key async for key in acache]

    run(main())
    assert acache.cache.get("k") == 1  # the Cache underneath reopens on use, as in diskcache
    with pytest.raises(RuntimeError, match="shutdown"):
        acache.executor.submit(int)
    assert "closed" in repr(acache)


def test_close_leaves_a_given_cache_and_executor_open(cache: diskstore.Cache) -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:

        async def main() -> None:
            async with AsyncCache(cache=cache, executor=pool) as acache:
                await acache.set("k", "v")
            with pytest.raises(CacheClosedError):
                await acache.set("k", "w")

        run(main())
        assert cache.get("k") == "v"
        assert pool.submit(lambda: "still running").result(10) == "still running"


def test_close_waits_for_calls_in_flight(cache_dir: str) -> None:
    gate = threading.Event()

    async def main() -> None:
        acache = AsyncCache(cache_dir)
        await acache.set("k", 1)
        held = asyncio.ensure_future(acache.run(gate.wait, 60))
        await asyncio.sleep(0)
        closing = asyncio.ensure_future(acache.close())
        for _ in range(20):
            await asyncio.sleep(0.001)
            assert not closing.done()
        with pytest.raises(CacheClosedError):
            await acache.get("k")
        gate.set()
        await asyncio.wait_for(closing, 30)
        assert await held is True

    run(main())


def test_closing_a_view_closes_the_whole(cache_dir: str) -> None:
    async def main() -> None:
        acache = AsyncCache(cache_dir)
        view = await acache.namespace("ns")
        await view.close()
        assert acache.closed
        with pytest.raises(CacheClosedError):
            await acache.get("k")

    run(main())
