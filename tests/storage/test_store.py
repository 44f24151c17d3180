"""Transactions, locking and connections (``diskstore._storage._store``) as seen through the
Cache."""

from __future__ import annotations

import faulthandler
import os
import threading
import time

import pytest
from _cache_support import FORK, SPAWN, hold_transaction_worker, value_files

import diskstore


class Boom(Exception):
    pass


def run_threads(count: int, target, timeout: float = 60) -> list[BaseException]:  # type: ignore[no-untyped-def]
    errors: list[BaseException] = []

    def guarded(number: int) -> None:
        try:
            target(number)
        except BaseException as exc:  # collected and reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(n,), daemon=True) for n in range(count)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), "a thread did not finish"
    return errors


class Holder:
    """Holds ``cache.transact()`` in another thread until released."""

    def __init__(self, cache: diskstore.Cache) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(cache,), daemon=True)

    def _run(self, cache: diskstore.Cache) -> None:
        with cache.transact():
            cache["held"] = "by holder"
            self.started.set()
            self.release.wait(30)

    def __enter__(self) -> Holder:
        self.thread.start()
        assert self.started.wait(30)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release.set()
        self.thread.join(30)
        assert not self.thread.is_alive()


class TestTransact:
    def test_commits_a_block(self, cache: diskstore.Cache) -> None:
        with cache.transact() as entered:
            assert entered is None
            total = cache.incr("total", 123.45)
            count = cache.incr("count")
        assert (total, count) == (123.45, 1)
        with cache.transact():
            total = cache.get("total")
            count = cache.get("count")
        assert total / count == 123.45

    def test_exception_rolls_everything_back(self, cache: diskstore.Cache) -> None:
        cache["keep"] = "old"
        cache["drop"] = 1
        with pytest.raises(Boom):
            with cache.transact():
                cache["keep"] = "new"
                del cache["drop"]
                cache.incr("counter")
                cache.push("queued")
                cache["file"] = os.urandom(100_000)
                assert cache["keep"] == "new"  # a transaction sees its own writes
                raise Boom
        assert cache["keep"] == "old"
        assert cache["drop"] == 1
        assert "counter" not in cache
        assert list(cache) == ["keep", "drop"]
        assert len(cache) == 2
        assert value_files(cache.directory) == []

    def test_rollback_keeps_the_files_of_surviving_rows(self, cache: diskstore.Cache) -> None:
        data = os.urandom(100_000)
        cache["file"] = data
        with pytest.raises(Boom):
            with cache.transact():
                cache["file"] = os.urandom(100_000)
                del cache["file"]
                raise Boom
        assert cache["file"] == data
        assert len(value_files(cache.directory)) == 1

    def test_nested_inner_failure_rolls_back_only_itself(self, cache: diskstore.Cache) -> None:
        with cache.transact():
            cache["outer"] = 1
            try:
                with cache.transact():
                    cache["inner"] = 1
                    cache["outer"] = "changed"
                    cache["inner file"] = os.urandom(100_000)
                    raise Boom
            except Boom:
                pass
            assert "inner" not in cache
            assert cache["outer"] == 1
            cache["after"] = 1
        assert list(cache) == ["outer", "after"]
        assert value_files(cache.directory) == []

    def test_nested_three_levels(self, cache: diskstore.Cache) -> None:
        with cache.transact():
            cache["a"] = 1
            with cache.transact():
                cache["b"] = 1
                try:
                    with cache.transact():
                        cache["c"] = 1
                        raise Boom
                except Boom:
                    pass
                with cache.transact():
                    cache["d"] = 1
        assert list(cache) == ["a", "b", "d"]

    def test_nested_success_commits_with_the_outer_block(self, cache: diskstore.Cache) -> None:
        with pytest.raises(Boom):
            with cache.transact():
                with cache.transact():
                    cache["inner"] = 1
                raise Boom
        assert "inner" not in cache

    def test_other_threads_read_committed_data(self, cache: diskstore.Cache) -> None:
        cache["key"] = "old"
        seen: list[object] = []
        with cache.transact():
            cache["key"] = "new"
            errors = run_threads(1, lambda _: seen.append(cache.get("key")))
        assert errors == []
        assert seen == ["old"]
        assert cache["key"] == "new"

    @pytest.mark.timeout(60)
    def test_another_threads_write_waits(self, cache: diskstore.Cache) -> None:
        done = threading.Event()

        def write() -> None:
            cache.set("key", "writer", retry=True)
            done.set()

        with Holder(cache):
            writer = threading.Thread(target=write, daemon=True)
            writer.start()
            assert not done.wait(0.3)  # it cannot commit while the block is open
            assert cache.get("key") is None
        writer.join(30)
        assert done.is_set()
        assert cache["key"] == "writer"
        assert cache["held"] == "by holder"

    @pytest.mark.timeout(60)
    def test_timeout_when_another_connection_holds_the_lock(self, cache_dir: str) -> None:
        with (
            diskstore.Cache(cache_dir) as holder_cache,
            diskstore.Cache(cache_dir, timeout=0.05) as cache,
        ):
            cache["key"] = "before"
            with Holder(holder_cache):
                for operation in (
                    lambda: cache.set("key", 1),
                    lambda: cache.add("new", 1),
                    lambda: cache.delete("key"),
                    lambda: cache.incr("n"),
                    lambda: cache.pop("key"),
                    lambda: cache.push(1),
                    lambda: cache.pull(),
                    lambda: cache.touch("key"),
                    lambda: cache.clear(),
                    lambda: cache.evict("t"),
                    lambda: cache.transact().__enter__(),
                ):
                    with pytest.raises(diskstore.Timeout):
                        operation()
                assert cache["key"] == "before"  # readers are never blocked
                assert len(cache) == 1
            assert cache["held"] == "by holder"
            assert cache.set("key", "after") is True
        assert issubclass(diskstore.Timeout, diskstore.DiskStoreError)

    @pytest.mark.timeout(60)
    def test_retry_waits_past_the_timeout(self, cache_dir: str) -> None:
        with (
            diskstore.Cache(cache_dir) as holder_cache,
            diskstore.Cache(cache_dir, timeout=0.01) as cache,
        ):
            holder = Holder(holder_cache)
            with holder:
                releaser = threading.Timer(0.3, holder.release.set)
                releaser.start()
                assert cache.set("key", "value", retry=True) is True
                cache["other"] = 1  # the mapping operators retry too
                releaser.join()
            assert cache["key"] == "value"

    @pytest.mark.timeout(120)
    def test_timeout_when_another_process_holds_the_lock(self, cache_dir: str) -> None:
        with diskstore.Cache(cache_dir, timeout=0.05) as cache:
            started, release = SPAWN.Event(), SPAWN.Event()
            process = SPAWN.Process(
                target=hold_transaction_worker, args=(cache_dir, started, release)
            )
            process.start()
            try:
                assert started.wait(90)
                with pytest.raises(diskstore.Timeout):
                    cache.set("key", 1)
                with pytest.raises(diskstore.Timeout):
                    with cache.transact():
                        pass
            finally:
                release.set()
                process.join(60)
                if process.is_alive():
                    process.kill()
                    process.join(5)
            assert process.exitcode == 0
            assert cache.set("key", 1) is True
            assert isinstance(cache["held"], int)


class TestConnections:
    def test_each_thread_has_its_own_connection(self, cache: diskstore.Cache) -> None:
        main = cache._store.connect_thread()
        others: list[object] = []
        errors = run_threads(2, lambda _: others.append(cache._store.connect_thread()))
        assert errors == []
        assert len({id(main), *(id(conn) for conn in others)}) == 3

    def test_close_from_another_thread(self, cache: diskstore.Cache) -> None:
        errors = run_threads(1, lambda _: cache.set("key", 1))
        assert errors == []
        cache.close()
        assert cache._store.closed
        assert cache.get("key") == 1  # reopened on this thread

    @pytest.mark.timeout(120)
    def test_threads_do_not_lose_updates(self, cache: diskstore.Cache) -> None:
        threads, rounds = 8, 500

        def work(number: int) -> None:
            for index in range(rounds):
                step = index % 4
                if step == 0:
                    cache.incr("shared", retry=True)
                elif step == 1:
                    cache.set((number, index), index, retry=True)
                elif step == 2:
                    assert cache.get((number, index - 1), retry=True) == index - 1
                elif (index // 4) % 2 == 0:
                    assert cache.delete((number, index - 2), retry=True) is True
                else:
                    with cache.transact(retry=True):
                        cache.incr(("mine", number), retry=True)
                        assert cache[(number, index - 2)] == index - 2

        errors = run_threads(threads, work, timeout=110)
        assert errors == []
        assert cache["shared"] == threads * rounds // 4
        per_thread_sets = rounds // 4
        deleted = len([i for i in range(rounds) if i % 4 == 3 and (i // 4) % 2 == 0])
        for number in range(threads):
            assert cache[("mine", number)] == per_thread_sets - deleted
        expected = 1 + threads * (per_thread_sets - deleted) + threads
        assert len(cache) == expected
        assert sum(1 for _ in cache) == expected

    @pytest.mark.skipif(FORK is None, reason="needs os.fork")
    @pytest.mark.timeout(120)
    @pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
    def test_forked_child_uses_the_inherited_cache(self, cache: diskstore.Cache) -> None:
        assert FORK is not None
        cache["parent"] = 1
        assert cache.get("parent") == 1  # the parent has open connections when it forks

        def child() -> None:
            faulthandler.dump_traceback_later(60, exit=True)  # a hang shows its stacks
            assert cache["parent"] == 1
            cache["child"] = os.getpid()
            cache.incr("counter")

        process = FORK.Process(target=child)
        process.start()
        process.join(90)
        if process.is_alive():
            process.kill()
            process.join(5)
        assert process.exitcode == 0
        assert cache["child"] == process.pid
        assert cache.incr("counter") == 2

    @pytest.mark.skipif(FORK is None, reason="needs os.fork")
    @pytest.mark.timeout(120)
    @pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
    def test_fork_while_another_thread_writes(self, cache: diskstore.Cache) -> None:
        assert FORK is not None
        stop = threading.Event()

        def writer(_: int) -> None:
            number = 0
            while not stop.is_set():
                cache.set("busy", number, retry=True)
                number += 1

        thread = threading.Thread(target=writer, args=(0,), daemon=True)
        thread.start()
        try:
            for _ in range(3):

                def child() -> None:
                    faulthandler.dump_traceback_later(45, exit=True)  # a hang shows its stacks
                    cache.incr("forks", retry=True)

                process = FORK.Process(target=child)
                process.start()
                process.join(60)
                if process.is_alive():
                    process.kill()
                    process.join(5)
                assert process.exitcode == 0
        finally:
            stop.set()
            thread.join(30)
        assert cache["forks"] == 3
        assert isinstance(cache["busy"], int)

    @pytest.mark.skipif(FORK is None, reason="needs os.fork")
    @pytest.mark.timeout(60)
    @pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
    def test_fork_while_another_thread_records_a_read(self, cache_dir: str) -> None:
        # A reader thread holds the bookkeeping lock for an instant after each hit; a fork
        # in that instant must not leave the child's copy of the lock held forever. The
        # thread holds it here for longer, to make that instant certain.
        assert FORK is not None
        with diskstore.Cache(cache_dir, statistics=True) as cache:
            cache["key"] = 1
            lock = cache._shared.bookkeeper._lock
            held, release = threading.Event(), threading.Event()

            def hold() -> None:
                with lock:
                    held.set()
                    release.wait(30)

            holder = threading.Thread(target=hold, daemon=True)
            holder.start()
            assert held.wait(10)

            def child() -> None:
                faulthandler.dump_traceback_later(10, exit=True)  # a hang shows its stacks
                assert cache.get("key") == 1
                assert cache.stats() == (1, 0)

            try:
                process = FORK.Process(target=child)
                process.start()
                process.join(30)
                if process.is_alive():
                    process.kill()
                    process.join(5)
            finally:
                release.set()
                holder.join(10)
            assert process.exitcode == 0
            assert cache.get("key") == 1
