"""Tests for diskstore._memo._singleflight: one computation per key among threads, tasks,
processes."""

from __future__ import annotations

import asyncio
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _cache_support import (
    async_square,
    memoized_async_calls_worker,
    memoized_calls_worker,
    run_processes,
    square,
)

import diskstore
from diskstore._common._constants import ENOVAL
from diskstore._memo._memoize import _Memo
from diskstore._memo._singleflight import SingleFlight

pytestmark = pytest.mark.timeout(60)


class Store:
    """A dict with the lookup/compute protocol SingleFlight expects, counting computations."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.runs = 0
        self.lock = threading.Lock()

    def lookup(self, token: str) -> Callable[[], Any]:
        return lambda: self.values.get(token, ENOVAL)

    def compute(
        self, token: str, value: Any, *, gate: threading.Event | None = None, store: bool = True
    ) -> Callable[[], Any]:
        def run() -> Any:
            with self.lock:
                self.runs += 1
            if gate is not None:
                assert gate.wait(30), "test gate never opened"
            if store:
                self.values[token] = value
            return value

        return run


def start_threads(
    count: int, target: Callable[[], Any]
) -> tuple[list[threading.Thread], list[Any]]:
    results: list[Any] = []

    def call() -> None:
        try:
            results.append(target())
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=call) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, results


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    event = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        event.wait(0.01)
    raise AssertionError("condition never became true")


@pytest.fixture(params=["threads-only", "with-lock-files"])
def flight(request: pytest.FixtureRequest, tmp_path: Path) -> SingleFlight:
    lock_dir = None if request.param == "threads-only" else str(tmp_path / "locks")
    return SingleFlight(lock_dir, timeout=30)


class TestThreads:
    def test_crowd_of_threads_computes_once(self, flight: SingleFlight) -> None:
        store, gate = Store(), threading.Event()
        threads, results = start_threads(
            8, lambda: flight.run("k", store.lookup("k"), store.compute("k", 42, gate=gate))
        )
        wait_until(lambda: store.runs == 1)
        gate.set()
        for thread in threads:
            thread.join()
        assert store.runs == 1
        assert sorted(results) == [(42, False)] * 7 + [(42, True)]

    def test_different_keys_run_concurrently(self, flight: SingleFlight) -> None:
        store, gate = Store(), threading.Event()
        threads = []
        for token in ("a", "b"):
            more, _ = start_threads(
                1, lambda t=token: flight.run(t, store.lookup(t), store.compute(t, t, gate=gate))
            )
            threads += more
        wait_until(lambda: store.runs == 2)  # both started although neither finished
        gate.set()
        for thread in threads:
            thread.join()

    def test_waiters_get_the_value_even_when_it_is_not_stored(self, flight: SingleFlight) -> None:
        store, gate = Store(), threading.Event()
        threads, results = start_threads(
            4,
            lambda: flight.run(
                "k", store.lookup("k"), store.compute("k", 7, gate=gate, store=False)
            ),
        )
        wait_until(lambda: store.runs == 1)
        gate.set()
        for thread in threads:
            thread.join()
        assert store.runs == 1
        assert sorted(results) == [(7, False)] * 3 + [(7, True)]

    def test_failing_leader_releases_waiters_who_take_their_own_turn(
        self, flight: SingleFlight
    ) -> None:
        gate = threading.Event()
        runs: list[int] = []

        def fail() -> Any:
            runs.append(1)
            assert gate.wait(30)
            raise RuntimeError("boom")

        threads, results = start_threads(4, lambda: flight.run("k", lambda: ENOVAL, fail))
        wait_until(lambda: len(runs) == 1)
        gate.set()
        for thread in threads:
            thread.join()
        # Every caller ran the function itself, one at a time, and saw its own exception.
        assert len(runs) == 4
        assert len(results) == 4
        assert all(isinstance(r, RuntimeError) for r in results)

    def test_recursion_on_the_same_key_does_not_wait_for_itself(self, flight: SingleFlight) -> None:
        depth: list[int] = []

        def compute() -> Any:
            depth.append(1)
            if len(depth) < 3:
                return flight.run("k", lambda: ENOVAL, compute)[0]
            return "bottom"

        assert flight.run("k", lambda: ENOVAL, compute) == ("bottom", True)
        assert len(depth) == 3

    @pytest.mark.timeout(15)
    def test_nested_same_key_through_another_instance(self, tmp_path: Path) -> None:
        # Two wrappers of one function share lock files; the inner call must not wait for
        # the lock its own thread holds (the flights' timeout exceeds this test's).
        lock_dir = str(tmp_path / "locks")
        outer, inner = SingleFlight(lock_dir, timeout=60), SingleFlight(lock_dir, timeout=60)

        def compute() -> Any:
            return inner.run("k", lambda: ENOVAL, lambda: "inner")[0] + "+outer"

        assert outer.run("k", lambda: ENOVAL, compute) == ("inner+outer", True)

    def test_waiter_gives_up_after_the_timeout_and_computes(self, tmp_path: Path) -> None:
        flight = SingleFlight(str(tmp_path / "locks"), timeout=0.2)
        store, gate = Store(), threading.Event()
        holder, _ = start_threads(
            1, lambda: flight.run("k", store.lookup("k"), store.compute("k", 1, gate=gate))
        )
        wait_until(lambda: store.runs == 1)
        # The holder is stuck; this caller waits 0.2 s, then computes on its own.
        assert flight.run("k", store.lookup("k"), store.compute("k", 2)) == (2, True)
        assert store.runs == 2
        gate.set()
        holder[0].join()


class TestLockFiles:
    def test_lock_files_are_removed_and_the_directory_is_private(self, tmp_path: Path) -> None:
        lock_dir = tmp_path / "locks"
        flight = SingleFlight(str(lock_dir), timeout=5)
        store = Store()
        for token in ("a", "b", "c"):
            assert flight.run(token, store.lookup(token), store.compute(token, token))[1]
        assert list(lock_dir.iterdir()) == []
        assert stat.S_IMODE(lock_dir.stat().st_mode) & 0o077 == 0

    def test_lock_file_is_held_while_computing(self, tmp_path: Path) -> None:
        import filelock

        lock_dir = tmp_path / "locks"
        flight = SingleFlight(str(lock_dir), timeout=5)
        seen: list[bool] = []

        def compute() -> Any:
            probe = filelock.FileLock(str(lock_dir / "tok.lock"), thread_local=False)
            try:
                probe.acquire(timeout=0)
            except filelock.Timeout:
                seen.append(True)
            else:
                probe.release()
                seen.append(False)
            return 1

        flight.run("tok", lambda: ENOVAL, compute)
        assert seen == [True]

    def test_leader_rechecks_after_taking_the_lock(self, tmp_path: Path) -> None:
        # Another process stored the value while this one waited for the lock.
        flight = SingleFlight(str(tmp_path / "locks"), timeout=5)
        assert flight.run("k", lambda: "stored", lambda: "computed") == ("stored", False)

    def test_missing_parent_directory_still_computes(self, tmp_path: Path) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("not a directory")
        flight = SingleFlight(str(blocker / "locks"), timeout=5)
        assert flight.run("k", lambda: ENOVAL, lambda: 3) == (3, True)


class TestAsync:
    def test_concurrent_awaits_share_one_computation(self, flight: SingleFlight) -> None:
        runs: list[int] = []

        async def compute() -> str:
            runs.append(1)
            await asyncio.sleep(0.05)
            return "v"

        async def main() -> list[tuple[Any, bool]]:
            calls = [flight.run_async("k", lambda: ENOVAL, compute) for _ in range(20)]
            return await asyncio.gather(*calls)

        results = asyncio.run(main())
        assert len(runs) == 1
        assert sorted(results) == [("v", False)] * 19 + [("v", True)]

    def test_cancelling_callers_does_not_cancel_the_computation(self, tmp_path: Path) -> None:
        lock_dir = tmp_path / "locks"
        flight = SingleFlight(str(lock_dir), timeout=5)
        store: dict[str, str] = {}

        async def main() -> tuple[Any, ...]:
            started = asyncio.Event()
            release = asyncio.Event()

            async def compute() -> str:
                started.set()
                await release.wait()
                store["k"] = "v"
                return "v"

            def lookup() -> Any:
                return store.get("k", ENOVAL)

            leader = asyncio.ensure_future(flight.run_async("k", lookup, compute))
            await started.wait()
            waiter = asyncio.ensure_future(flight.run_async("k", lookup, compute))
            survivor = asyncio.ensure_future(flight.run_async("k", lookup, compute))
            await asyncio.sleep(0.01)
            leader.cancel()
            waiter.cancel()
            await asyncio.sleep(0.01)
            release.set()
            result = await survivor
            return leader.cancelled(), waiter.cancelled(), result

        leader_cancelled, waiter_cancelled, result = asyncio.run(main())
        assert leader_cancelled and waiter_cancelled
        assert result == ("v", False)
        assert store == {"k": "v"}
        assert list(lock_dir.iterdir()) == []  # the shared computation released its lock

    def test_failure_is_raised_to_the_leader_and_waiters_retry(self, flight: SingleFlight) -> None:
        runs: list[int] = []

        async def compute() -> str:
            runs.append(1)
            await asyncio.sleep(0.01)
            if len(runs) == 1:
                raise RuntimeError("first attempt fails")
            return "ok"

        async def main() -> list[Any]:
            calls = [flight.run_async("k", lambda: ENOVAL, compute) for _ in range(5)]
            return await asyncio.gather(*calls, return_exceptions=True)

        results = asyncio.run(main())
        assert isinstance(results[0], RuntimeError)
        assert len(runs) == 2  # the failed attempt, then one retry shared by the others
        assert sorted(results[1:]) == [("ok", False)] * 3 + [("ok", True)]

    def test_abandoned_lock_wait_hands_the_lock_back(self, tmp_path: Path) -> None:
        import filelock

        lock_dir = tmp_path / "locks"
        lock_dir.mkdir()
        holder = filelock.FileLock(str(lock_dir / "k.lock"), thread_local=False)
        holder.acquire()
        flight = SingleFlight(str(lock_dir), timeout=20)
        pending: list[asyncio.Future[Any]] = []

        async def main() -> None:
            # Left running: asyncio.run cancels it, and the shared computation, at shutdown,
            # while a worker thread is still waiting for the lock.
            pending.append(
                asyncio.ensure_future(flight.run_async("k", lambda: ENOVAL, _value("x")))
            )
            await asyncio.sleep(0.2)
            threading.Timer(0.3, holder.release).start()

        asyncio.run(main())
        assert pending[0].cancelled()
        assert not (lock_dir / "k.lock").exists()  # released through SingleFlight, file removed
        probe = filelock.FileLock(str(lock_dir / "k.lock"), thread_local=False)
        probe.acquire(timeout=0)  # raises filelock.Timeout if the abandoned wait kept the lock
        probe.release()


def _value(value: Any) -> Callable[[], Any]:
    async def compute() -> Any:
        return value

    return compute


# -- a result stored between a caller's lookup and its lock ---------------------------------
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_result_stored_after_the_lookup_is_not_computed_again(
    cache_dir: str, monkeypatch: pytest.MonkeyPatch, is_async: bool
) -> None:
    """Another process computes and stores the key, and lets go of its lock, after this
    caller looked it up and before it takes the lock (a descheduled caller on a loaded
    machine): the lock is free, yet the result must be read, not computed a second time."""
    real = _Memo.lookup
    raced: list[object] = []
    worker = memoized_async_calls_worker if is_async else memoized_calls_worker

    def lookup(self: _Memo, key: tuple[Any, ...]) -> Any:
        value = real(self, key)
        if value is ENOVAL and not raced:
            raced.append(key)
            run_processes(worker, [(cache_dir, "shared", [7])])
        return value

    monkeypatch.setattr(_Memo, "lookup", lookup)
    with diskstore.Cache(cache_dir) as cache:
        if is_async:
            assert asyncio.run(cache.memoize(name="shared")(async_square)(7)) == 49
        else:
            assert cache.memoize(name="shared")(square)(7) == 49
        assert raced
        stats = cache.function_stats()["shared"]
    assert (stats.misses, stats.hits) == (1, 1)  # computed once, by the other process
