"""Tests for diskstore._memo._memoize: diskcache's memoize semantics, the lru_cache protocol,
single flight across threads, tasks and processes, and misuse."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import diskcache
import pytest

import diskstore
from diskstore._memo._memoize import CacheInfo, memoize
from diskstore.fanout import FanoutCache

pytestmark = pytest.mark.timeout(120)

SPAWN = multiprocessing.get_context("spawn")


SCALE_CALLS: list[tuple[int, int]] = []


@dataclasses.dataclass(frozen=True)
class Scaler:
    """Importable, hashable and picklable, so an instance can be part of a key."""

    factor: int

    def scale(self, x: int) -> int:
        SCALE_CALLS.append((self.factor, x))
        return self.factor * x


class Counter:
    """Counts calls of a memoized body, safe from many threads."""

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.lock = threading.Lock()

    def __call__(self, *args: Any) -> None:
        with self.lock:
            self.calls.append(args)

    def __len__(self) -> int:
        return len(self.calls)


class RecordingCache:
    """Delegates to a cache and records which threads called it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.directory = inner.directory
        self.calls: set[int] = set()

    def get(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.add(threading.get_ident())
        return self.inner.get(*args, **kwargs)

    def set(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.add(threading.get_ident())
        return self.inner.set(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.delete(*args, **kwargs)


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition never became true")
        time.sleep(0.01)


# -- diskcache semantics ---------------------------------------------------------------------


class TestBasics:
    def test_second_call_is_served_from_the_cache(self, cache: diskstore.Cache) -> None:
        body = Counter()

        @memoize(cache, ignore={"body"})
        def add(a: int, b: int = 2) -> int:
            body(a, b)
            return a + b

        assert add(1) == 3
        assert add(1, 2) == 3
        assert add(1, b=2) == 3
        assert add(b=2, a=1) == 3
        assert body.calls == [(1, 2)]
        assert add.cache_info() == CacheInfo(hits=3, misses=1, maxsize=None, currsize=1)

    def test_results_persist_across_cache_objects(self, tmp_path: Path) -> None:
        body = Counter()

        def square(x: int) -> int:
            body(x)
            return x * x

        with diskstore.Cache(str(tmp_path)) as first:
            assert memoize(first, name="square", ignore={"body"})(square)(4) == 16
        with diskstore.Cache(str(tmp_path)) as second:
            assert memoize(second, name="square", ignore={"body"})(square)(4) == 16
        assert len(body) == 1

    def test_none_is_a_cached_result(self, cache: diskstore.Cache) -> None:
        body = Counter()

        @memoize(cache, ignore={"body"})
        def nothing() -> None:
            body()

        nothing()
        nothing()
        assert len(body) == 1

    def test_without_parentheses_is_a_type_error_as_in_diskcache(
        self, cache: diskstore.Cache
    ) -> None:
        def triple(x: int) -> int:
            return 3 * x

        with pytest.raises(TypeError, match="name cannot be callable"):
            memoize(cache, triple)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="name cannot be callable"):
            cache.memoize(triple)  # type: ignore[arg-type]
        assert len(cache) == 0

    def test_default_name_is_the_qualified_name(self, cache: diskstore.Cache) -> None:
        @memoize(cache)
        def named() -> int:
            return 1

        assert named.__cache_key__()[0] == f"{__name__}.{named.__qualname__}"

    def test_functions_with_the_same_arguments_do_not_share_entries(
        self, cache: diskstore.Cache
    ) -> None:
        @memoize(cache)
        def double(x: int) -> int:
            return 2 * x

        @memoize(cache)
        def negate(x: int) -> int:
            return -x

        assert (double(5), negate(5)) == (10, -5)
        assert (double(5), negate(5)) == (10, -5)

    def test_typed(self, cache: diskstore.Cache) -> None:
        body = Counter()

        @memoize(cache, typed=True, ignore={"body"})
        def kind(x: float) -> str:
            body(x)
            return type(x).__name__

        assert kind(3) == "int"
        assert kind(3.0) == "float"
        assert len(body) == 2

    def test_expire_zero_looks_up_but_never_stores(self, cache: diskstore.Cache) -> None:
        body = Counter()

        @memoize(cache, expire=0, ignore={"body"})
        def landing(page: str) -> str:
            body(page)
            return f"<{page}>"

        assert landing("home") == landing("home") == "<home>"
        assert len(body) == 2
        assert landing.cache_info().currsize == 0
        # An entry stored by other means is still read.
        cache.set(landing.__cache_key__("home"), "<stored>")
        assert landing("home") == "<stored>"

    def test_expire_and_tag_are_stored_with_the_entry(self, cache: diskstore.Cache) -> None:
        @memoize(cache, expire=60, tag="pages")
        def page(n: int) -> int:
            return n

        page(1)
        value, expire_time, tag = cache.get(page.__cache_key__(1), expire_time=True, tag=True)
        assert value == 1
        assert tag == "pages"
        assert expire_time is not None and 0 < expire_time - time.time() <= 60

    def test_version_is_part_of_the_key(self, cache: diskstore.Cache) -> None:
        body = Counter()

        def compute(x: int) -> int:
            body(x)
            return x

        first = memoize(cache, name="compute", version=1, ignore={"body"})(compute)
        again = memoize(cache, name="compute", version=1, ignore={"body"})(compute)
        bumped = memoize(cache, name="compute", version="2", ignore={"body"})(compute)
        first(1)
        again(1)
        assert len(body) == 1
        bumped(1)
        assert len(body) == 2

    def test_key_callable_replaces_the_argument_part(self, cache: diskstore.Cache) -> None:
        body = Counter()

        @memoize(cache, key=lambda path, verbose=False: os.path.normcase(path), ignore={"body"})
        def load(path: str, verbose: bool = False) -> str:
            body(path)
            return path.upper()

        assert load("a/b") == "A/B"
        assert load("a/b", verbose=True) == "A/B"
        assert len(body) == 1

    def test_store_if_decides_what_is_stored(self, cache: diskstore.Cache) -> None:
        body = Counter()

        @memoize(cache, store_if=lambda result: result is not None, ignore={"body"})
        def find(x: int) -> int | None:
            body(x)
            return x if x > 0 else None

        assert find(-1) is None
        assert find(-1) is None
        assert find(2) == find(2) == 2
        assert body.calls == [(-1,), (-1,), (2,)]

    def test_exceptions_are_not_cached(self, cache: diskstore.Cache) -> None:
        body = Counter()

        @memoize(cache, ignore={"body"})
        def flaky(x: int) -> int:
            body(x)
            if len(body) == 1:
                raise ValueError("first call fails")
            return x

        with pytest.raises(ValueError, match="first call fails"):
            flaky(1)
        assert flaky.cache_info().currsize == 0
        assert flaky(1) == flaky(1) == 1
        assert len(body) == 2


class TestIgnoreAndMethods:
    def test_ignore_by_name_and_by_position(self, cache: diskstore.Cache) -> None:
        body = Counter()

        def fetch(url: str, timeout: float = 1.0) -> str:
            body(url, timeout)
            return url

        by_name = memoize(cache, name="fetch", ignore={"timeout", "body"})(fetch)
        by_position = memoize(cache, name="fetch", ignore=(1, "body"))(fetch)
        by_name("u", 1.0)
        by_name("u", timeout=5.0)
        by_position("u", 9.0)
        assert len(body) == 1

    @pytest.mark.parametrize("ignore", [{"self"}, {0}])
    def test_methods_with_self_ignored(self, cache: diskstore.Cache, ignore: set[Any]) -> None:
        body = Counter()

        class Client:
            def __init__(self) -> None:
                self.lock = threading.Lock()  # unpicklable: self cannot be part of a key

            @memoize(cache, ignore={*ignore, "body"})
            def get(self, path: str) -> str:
                body(path)
                return path * 2

        assert Client().get("x") == "xx"
        assert Client().get("x") == "xx"
        assert len(body) == 1
        assert Client.get.cache_info().hits == 1

    def test_methods_with_self_in_the_key(
        self, cache: diskstore.Cache, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        memoized = memoize(cache, name="Scaler.scale")(Scaler.scale)
        monkeypatch.setattr(Scaler, "cached_scale", memoized, raising=False)
        assert Scaler(2).cached_scale(3) == 6
        assert Scaler(2).cached_scale(3) == 6
        assert Scaler(3).cached_scale(3) == 9
        assert SCALE_CALLS == [(2, 3), (3, 3)]
        assert memoized.__cache_key__(Scaler(2), 3) == ("Scaler.scale", None, None, Scaler(2), 3)
        # Bound-method access reaches the management methods.
        assert Scaler(2).cached_scale.cache_info().misses == 2

    def test_static_and_class_methods(self, cache: diskstore.Cache) -> None:
        class Maths:
            @staticmethod
            @memoize(cache)
            def inc(x: int) -> int:
                return x + 1

            @classmethod
            @memoize(cache, ignore={"cls"})
            def dec(cls, x: int) -> int:
                return x - 1

        assert Maths.inc(1) == Maths().inc(1) == 2
        assert Maths.dec(1) == Maths().dec(1) == 0


class TestWrapperProtocol:
    def test_functools_attributes(self, cache: diskstore.Cache) -> None:
        def documented(x: int) -> int:
            """Doubles."""
            return 2 * x

        memoized = memoize(cache)(documented)
        assert memoized.__wrapped__ is documented
        assert memoized.__name__ == "documented"
        assert memoized.__doc__ == "Doubles."
        assert inspect.signature(memoized) == inspect.signature(documented)

    def test_uncached_bypasses_the_cache(self, cache: diskstore.Cache) -> None:
        body = Counter()

        @memoize(cache, ignore={"body"})
        def work(x: int) -> int:
            body(x)
            return x

        work.uncached(1)
        work.uncached(1)
        assert len(body) == 2
        assert work.cache_info() == CacheInfo(0, 0, None, 0)

    def test_cache_set_and_cache_delete(self, cache: diskstore.Cache) -> None:
        body = Counter()

        @memoize(cache, ignore={"body"})
        def value(x: int, y: int = 0) -> int:
            body(x)
            return x + y

        value.cache_set(100, 1)
        assert value(1, y=0) == 100
        assert len(body) == 0
        assert value.cache_delete(1) is True
        assert value.cache_delete(1) is False
        assert value(1) == 1
        assert len(body) == 1

    def test_cache_key_matches_the_stored_entry(self, cache: diskstore.Cache) -> None:
        @memoize(cache, name="keyed", version=3)
        def keyed(a: int, *rest: int, **options: int) -> int:
            return a

        keyed(1, 2, z=1, y=2)
        key = keyed.__cache_key__(1, 2, y=2, z=1)
        assert key == ("keyed", 3, None, 1, (2,), (("y", 2), ("z", 1)))
        assert cache[key] == 1 and list(cache) == [key]  # an ordinary item, as in diskcache

    def test_cache_clear_removes_only_this_functions_entries(self, cache: diskstore.Cache) -> None:
        @memoize(cache)
        def first(x: int) -> int:
            return x

        @memoize(cache)
        def second(x: int) -> int:
            return -x

        cache.set("plain", "kept")
        for x in range(5):
            first(x)
            second(x)
        assert first.cache_clear() == 5
        assert first.cache_info() == CacheInfo(0, 0, None, 0)
        assert second.cache_info().currsize == 5
        assert cache.get("plain") == "kept"
        assert second(3) == -3
        assert second.cache_info().hits == 1  # the other function's counts are untouched

    def test_cache_info_counts(self, cache: diskstore.Cache) -> None:
        @memoize(cache)
        def ident(x: int) -> int:
            return x

        for x in (1, 2, 1, 1, 3, 2):
            ident(x)
        assert ident.cache_info() == CacheInfo(hits=3, misses=3, maxsize=None, currsize=3)

    def test_cache_parameters(self, cache: diskstore.Cache) -> None:
        @memoize(cache, "p", True, 5, "t", ("b",), version="v")
        def p(a: int, b: int) -> int:
            return a

        parameters = p.cache_parameters()
        assert parameters["maxsize"] is None
        assert parameters["typed"] is True
        assert parameters["name"] == "p"
        assert (parameters["expire"], parameters["tag"], parameters["version"]) == (5, "t", "v")
        assert parameters["ignore"] == frozenset({"b"})


class TestOtherCaches:
    def test_fanout_cache(self, tmp_path: Path) -> None:
        body = Counter()
        with FanoutCache(str(tmp_path), shards=3) as fanout:

            @fanout.memoize(name="sharded", ignore={"body"})
            def sharded(x: int) -> int:
                body(x)
                return x

            fanout.set("plain", 1)
            for x in range(10):
                sharded(x)
                sharded(x)
            assert len(body) == 10
            assert sharded.cache_info().currsize == 10
            assert sharded.cache_clear() == 10
            assert fanout.get("plain") == 1

    def test_decorating_does_not_touch_the_cache(self, cache: diskstore.Cache) -> None:
        calls: list[str] = []

        class Spy:
            directory = cache.directory

            def get(self, *args: Any, **kwargs: Any) -> Any:
                calls.append("get")
                return cache.get(*args, **kwargs)

            def set(self, *args: Any, **kwargs: Any) -> Any:
                calls.append("set")
                return cache.set(*args, **kwargs)

        @memoize(Spy(), name="lazy")
        def lazy(x: int) -> int:
            return x

        assert calls == []
        assert lazy(1) == 1 and lazy(1) == 1
        assert calls[0] == "get" and calls.count("set") == 1
        assert cache[lazy.__cache_key__(1)] == 1

    def test_memoizing_through_a_view_keeps_entries_apart(self, cache: diskstore.Cache) -> None:
        def work(x: int) -> str:
            return "result"

        plain = memoize(cache, name="work")(work)
        viewed = memoize(cache.namespace("tenant-a"), name="work")(work)
        plain(1)
        viewed(1)
        assert plain.cache_info().misses == viewed.cache_info().misses == 1
        assert viewed.cache_clear() == 1
        assert plain.cache_info().currsize == 1

    def test_a_cache_without_namespaces(self, tmp_path: Path) -> None:
        # diskcache.Cache has no namespaces: entries carry the name in their key instead.
        body = Counter()
        with diskcache.Cache(str(tmp_path)) as plain:

            @memoize(plain, name="legacy", ignore={"body"})
            def legacy(x: int) -> int:
                body(x)
                return x

            plain.set(("legacy-looking", None, None), "not ours")
            plain.set("other", 1)
            legacy(1)
            legacy(1)
            legacy(2)
            assert len(body) == 2
            assert plain[legacy.__cache_key__(1)] == 1
            assert legacy.cache_info().currsize == 2
            assert legacy.cache_clear() == 2
            assert plain.get("other") == 1
            assert plain.get(("legacy-looking", None, None)) == "not ours"


class TestMisuse:
    @pytest.mark.parametrize(
        ("kwargs", "error", "message"),
        [
            ({"name": 123}, TypeError, "name must be a non-empty str or None, got 123"),
            ({"name": ""}, ValueError, "name must be a non-empty str or None, got ''"),
            ({"typed": "yes"}, TypeError, "typed must be a bool, got 'yes'"),
            ({"expire": -1}, ValueError, "expire .* got -1"),
            ({"expire": "soon"}, TypeError, "expire .* got 'soon'"),
            ({"expire": float("nan")}, ValueError, "expire"),
            ({"tag": object()}, TypeError, "tag must be"),
            ({"ignore": "self"}, TypeError, r"ignore=\('self',\)"),
            ({"ignore": 3}, TypeError, "ignore must be a collection"),
            ({"ignore": {2.5}}, TypeError, "2.5"),
            ({"version": 1.5}, TypeError, "version must be a str, an int or None, got 1.5"),
            ({"version": True}, TypeError, "version"),
            ({"hash_source": 1}, TypeError, "hash_source must be a bool"),
            ({"key": "k"}, TypeError, "key must be a callable"),
            ({"store_if": 1}, TypeError, "store_if must be"),
            ({"single_flight": None}, TypeError, "single_flight must be a bool"),
            ({"lock_timeout": 0}, ValueError, "lock_timeout .* > 0"),
            ({"lock_timeout": "1"}, TypeError, "lock_timeout"),
        ],
    )
    def test_bad_options_are_rejected_at_decoration(
        self, cache: diskstore.Cache, kwargs: dict[str, Any], error: type[Exception], message: str
    ) -> None:
        with pytest.raises(error, match=message):
            memoize(cache, **kwargs)

    def test_not_a_cache(self) -> None:
        with pytest.raises(TypeError, match="cache must provide get"):
            memoize(object())

    def test_decorating_a_non_callable(self, cache: diskstore.Cache) -> None:
        with pytest.raises(TypeError, match="decorates callables, got 5"):
            memoize(cache)(5)

    def test_unknown_ignored_parameter(self, cache: diskstore.Cache) -> None:
        with pytest.raises(ValueError, match="'verbose'"):

            @memoize(cache, ignore={"verbose"})
            def f(x: int) -> int:
                return x

    def test_callable_without_a_name_needs_one(self, cache: diskstore.Cache) -> None:
        def power(base: int, exponent: int) -> int:
            return int(base**exponent)

        with pytest.raises(TypeError, match="pass name="):
            memoize(cache)(functools.partial(power, 2))
        partial = memoize(cache, name="two-to-the")(functools.partial(power, 2))
        assert partial(5) == partial(exponent=5) == 32
        assert partial.cache_info().hits == 1

    def test_sync_function_returning_a_coroutine(self, cache: diskstore.Cache) -> None:
        async def inner() -> int:
            return 1

        @memoize(cache)
        def sneaky() -> Any:
            return inner()

        with pytest.raises(TypeError, match="async def"):
            sneaky()
        assert sneaky.cache_info().currsize == 0

    def test_without_parentheses_the_error_says_how_to_write_it(
        self, cache: diskstore.Cache
    ) -> None:
        def triple(x: int) -> int:
            return 3 * x

        with pytest.raises(TypeError, match=r"write @cache.memoize\(\), with parentheses"):
            cache.memoize(triple)  # type: ignore[arg-type]

    def test_misspelled_keywords_get_a_suggestion(self, cache: diskstore.Cache) -> None:
        with pytest.raises(TypeError, match=r"\['expires'\] \(did you mean 'expire'\?\)"):
            memoize(cache, expires=5)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="'single_flight' for 'single_flght'"):
            memoize(cache, single_flght=True, colour=1)  # type: ignore[call-arg]

    def test_misspelled_ignore_names_get_a_suggestion(self, cache: diskstore.Cache) -> None:
        def fetch(url: str, timeout: float = 1.0) -> str:
            return url

        with pytest.raises(ValueError, match=r"'timout'.*\(did you mean 'timeout'\?\)"):
            memoize(cache, ignore={"timout"})(fetch)

    def test_generator_functions_are_refused_by_name(self, cache: diskstore.Cache) -> None:
        def numbers(n: int) -> Any:
            yield from range(n)

        async def stream(n: int) -> Any:
            yield n

        with pytest.raises(TypeError, match=r"numbers, a generator function.*list"):
            memoize(cache)(numbers)
        with pytest.raises(TypeError, match="stream, an async generator function"):
            memoize(cache)(stream)

    def test_a_function_returning_a_generator_is_refused(self, cache: diskstore.Cache) -> None:
        @memoize(cache)
        def lazy(n: int) -> Any:
            return (i for i in range(n))

        with pytest.raises(TypeError, match="returned a generator"):
            lazy(3)
        assert lazy.cache_info().currsize == 0

    def test_key_and_ignore_together(self, cache: diskstore.Cache) -> None:
        with pytest.raises(ValueError, match="key="):
            memoize(cache, key=str, ignore={"x"})(lambda x: x)


class TestHashSource:
    def load(self, tmp_path: Path, name: str, source: str) -> Any:
        import importlib.util

        path = tmp_path / f"{name}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.area

    def test_comment_edits_hit_and_body_edits_miss(
        self, tmp_path: Path, cache: diskstore.Cache
    ) -> None:
        source = "def area(w, h):\n    return w * h  # rectangle\n"
        commented = source.replace("# rectangle", "# edited comment")
        changed = source.replace("w * h", "w * h / 2")
        original = memoize(cache, name="area", hash_source=True)(self.load(tmp_path, "v1", source))
        edited = memoize(cache, name="area", hash_source=True)(
            self.load(tmp_path, "v1b", commented)
        )
        rewritten = memoize(cache, name="area", hash_source=True)(
            self.load(tmp_path, "v2", changed)
        )
        assert original(2, 3) == 6
        assert edited(2, 3) == 6
        assert edited.cache_info().hits == 1
        assert rewritten(2, 3) == 3
        assert rewritten.cache_info().misses == 1
        assert original.__cache_key__(2, 3) == edited.__cache_key__(2, 3)
        assert original.__cache_key__(2, 3) != rewritten.__cache_key__(2, 3)


# -- single flight: threads ----------------------------------------------------------------


class TestThreads:
    def test_threads_missing_one_key_run_the_body_once(self, cache: diskstore.Cache) -> None:
        body, gate = Counter(), threading.Event()

        @memoize(cache, ignore={"body", "gate"})
        def slow(x: int) -> int:
            body(x)
            assert gate.wait(30)
            return x * 10

        results: list[int] = []
        threads = [threading.Thread(target=lambda: results.append(slow(4))) for _ in range(8)]
        for thread in threads:
            thread.start()
        wait_until(lambda: len(body) == 1)
        time.sleep(0.1)  # let the other threads reach the wait
        gate.set()
        for thread in threads:
            thread.join(30)
        assert results == [40] * 8
        assert len(body) == 1
        info = slow.cache_info()
        assert (info.hits, info.misses) == (7, 1)

    def test_single_flight_off_runs_every_caller(self, cache: diskstore.Cache) -> None:
        body, barrier = Counter(), threading.Barrier(4)

        @memoize(cache, single_flight=False, ignore={"body", "barrier"})
        def slow(x: int) -> int:
            body(x)
            barrier.wait(30)  # all four are inside the body at once
            return x

        threads = [threading.Thread(target=slow, args=(1,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert len(body) == 4

    def test_raising_function_stores_nothing_and_releases_waiters(
        self, cache: diskstore.Cache
    ) -> None:
        body, gate = Counter(), threading.Event()

        @memoize(cache, ignore={"body", "gate"})
        def broken(x: int) -> int:
            body(x)
            assert gate.wait(30)
            raise RuntimeError("broken")

        errors: list[BaseException] = []

        def call() -> None:
            try:
                broken(1)
            except RuntimeError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=call) for _ in range(5)]
        for thread in threads:
            thread.start()
        wait_until(lambda: len(body) == 1)
        gate.set()
        for thread in threads:
            thread.join(30)
        assert not any(thread.is_alive() for thread in threads)
        assert len(errors) == 5
        assert len(body) == 5  # each waiter was released and tried for itself
        assert broken.cache_info().currsize == 0

    def test_waiter_computes_itself_after_lock_timeout(self, cache: diskstore.Cache) -> None:
        body, gate = Counter(), threading.Event()

        @memoize(cache, lock_timeout=0.2, ignore={"body", "gate"})
        def stuck(x: int) -> str:
            body(x)
            if len(body) == 1:
                assert gate.wait(30)
                return "first"
            return "second"

        holder = threading.Thread(target=stuck, args=(1,))
        holder.start()
        wait_until(lambda: len(body) == 1)
        assert stuck(1) == "second"  # did not wait for the stuck holder
        gate.set()
        holder.join(30)

    def test_recursive_function_in_parallel_threads(self, cache: diskstore.Cache) -> None:
        @memoize(cache)
        def fib(n: int) -> int:
            return n if n < 2 else fib(n - 1) + fib(n - 2)

        results: list[int] = []
        threads = [threading.Thread(target=lambda: results.append(fib(60))) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert results == [1548008755920] * 3
        assert fib.cache_info().misses == 61


# -- single flight: asyncio ----------------------------------------------------------------


class TestAsync:
    def test_wrapper_is_a_coroutine_function(self, cache: diskstore.Cache) -> None:
        @memoize(cache)
        async def fetch(x: int) -> int:
            return x

        assert inspect.iscoroutinefunction(fetch)
        assert asyncio.run(fetch(3)) == 3
        assert asyncio.run(fetch(3)) == 3
        assert fetch.cache_info() == CacheInfo(1, 1, None, 1)

    def test_fifty_concurrent_calls_run_the_body_once(self, cache: diskstore.Cache) -> None:
        body = Counter()

        @memoize(cache, ignore={"body"})
        async def fetch(x: int) -> str:
            body(x)
            await asyncio.sleep(0.2)
            return f"page {x}"

        async def main() -> list[str]:
            return await asyncio.gather(*(fetch(7) for _ in range(50)))

        assert asyncio.run(main()) == ["page 7"] * 50
        assert len(body) == 1
        info = fetch.cache_info()
        assert (info.hits, info.misses, info.currsize) == (49, 1, 1)

    def test_cache_io_runs_off_the_event_loop_thread(self, cache: diskstore.Cache) -> None:
        recording = RecordingCache(cache)

        @memoize(recording, name="fetch")
        async def fetch(x: int) -> int:
            await asyncio.sleep(0)
            return x

        async def main() -> int:
            await asyncio.gather(*(fetch(i % 3) for i in range(12)))
            return threading.get_ident()

        loop_thread = asyncio.run(main())
        assert recording.calls  # lookups and stores happened...
        assert loop_thread not in recording.calls  # ...all in worker threads

    def test_cancelling_one_caller_keeps_the_shared_computation(
        self, cache: diskstore.Cache
    ) -> None:
        body = Counter()

        @memoize(cache, ignore={"body"})
        async def fetch(x: int) -> int:
            body(x)
            await asyncio.sleep(0.3)
            return x + 1

        async def main() -> list[Any]:
            first = asyncio.ensure_future(fetch(1))
            others = [asyncio.ensure_future(fetch(1)) for _ in range(3)]
            await asyncio.sleep(0.1)
            first.cancel()
            others[0].cancel()
            return await asyncio.gather(first, *others, return_exceptions=True)

        results = asyncio.run(main())
        assert isinstance(results[0], asyncio.CancelledError)
        assert isinstance(results[1], asyncio.CancelledError)
        assert results[2:] == [2, 2]
        assert len(body) == 1
        assert fetch.cache_info().currsize == 1
        assert not list((Path(cache.directory) / "cache.db-locks").iterdir())

    def test_async_exception_is_not_cached(self, cache: diskstore.Cache) -> None:
        body = Counter()

        @memoize(cache, ignore={"body"})
        async def broken(x: int) -> int:
            body(x)
            await asyncio.sleep(0.01)
            raise KeyError(x)

        async def main() -> list[Any]:
            return await asyncio.gather(*(broken(1) for _ in range(4)), return_exceptions=True)

        results = asyncio.run(main())
        assert all(isinstance(r, KeyError) for r in results)
        assert len(body) == 4
        assert broken.cache_info().currsize == 0

    def test_async_management_methods(self, cache: diskstore.Cache) -> None:
        body = Counter()

        @memoize(cache, ignore={"body"})
        async def fetch(x: int) -> int:
            body(x)
            return x

        fetch.cache_set(10, 1)
        assert asyncio.run(fetch(1)) == 10
        assert asyncio.run(fetch.uncached(1)) == 1
        assert fetch.cache_delete(1)
        assert fetch.cache_clear() == 0


# -- single flight: processes --------------------------------------------------------------


def _body(log: str, x: int, pause: float) -> int:
    """Record the run in ``log`` (one line per run), then take ``pause`` seconds."""
    with open(log, "a") as handle:
        handle.write(f"{os.getpid()}\n")
    time.sleep(pause)
    return x * x


def _call_in_process(
    directory: str, log: str, x: int, pause: float, barrier: Any, results: Any
) -> None:
    with diskstore.Cache(directory) as cache:
        slow = memoize(cache, name="slow-square", ignore={"log", "pause"}, lock_timeout=300)(_body)
        if barrier is not None:
            barrier.wait(60)
        results.put((os.getpid(), slow(log, x, pause)))


def _runs(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def _stop(processes: list[Any]) -> None:
    for process in processes:
        if process.is_alive():
            process.kill()
        process.join(10)


@pytest.mark.slow
def test_processes_missing_one_key_run_the_body_once(tmp_path: Path) -> None:
    directory, log = str(tmp_path / "cache"), tmp_path / "runs.log"
    barrier, results = SPAWN.Barrier(4), SPAWN.Queue()
    processes = [
        SPAWN.Process(target=_call_in_process, args=(directory, str(log), 9, 1.5, barrier, results))
        for _ in range(4)
    ]
    try:
        for process in processes:
            process.start()
        values = [results.get(timeout=90) for _ in processes]
        for process in processes:
            process.join(30)
            assert process.exitcode == 0
    finally:
        _stop(processes)
    assert sorted(value for _, value in values) == [81] * 4
    assert len(_runs(log)) == 1
    assert not list((tmp_path / "cache" / "cache.db-locks").iterdir())


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_killed_holder_releases_waiters(tmp_path: Path) -> None:
    directory, log = str(tmp_path / "cache"), tmp_path / "runs.log"
    results = SPAWN.Queue()
    # The holder would compute for 10 minutes; the waiters' lock_timeout is 5 minutes. Both
    # exceed this test's timeout, so the waiters can only finish by getting the lock when
    # the kernel releases it from the killed holder.
    holder = SPAWN.Process(
        target=_call_in_process, args=(directory, str(log), 5, 600, None, results)
    )
    waiters = [
        SPAWN.Process(target=_call_in_process, args=(directory, str(log), 5, 0.5, None, results))
        for _ in range(2)
    ]
    try:
        holder.start()
        wait_until(lambda: len(_runs(log)) == 1)
        for waiter in waiters:
            waiter.start()
        time.sleep(1.5)  # give the waiters time to block on the holder's lock
        assert holder.pid is not None
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(10)
        assert holder.exitcode == -signal.SIGKILL
        values = [results.get(timeout=90) for _ in waiters]
        for waiter in waiters:
            waiter.join(30)
            assert waiter.exitcode == 0
    finally:
        _stop([holder, *waiters])
    assert [value for _, value in values] == [25, 25]
    runs = _runs(log)
    assert len(runs) == 2  # the killed holder's run, then exactly one waiter's
    assert runs[0] == str(holder.pid)
    assert runs[1] in {str(pid) for pid, _ in values}
    # The lock file the killed holder left behind was removed by the next computation.
    assert not list((tmp_path / "cache" / "cache.db-locks").iterdir())
