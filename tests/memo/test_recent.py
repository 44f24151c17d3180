"""Tests for diskstore._memo._recent: plain memoized results returned from memory, never stale."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import diskstore
from diskstore._memo._recent import MAX_LENGTH, keepable
from tests._cache_support import install_clock


class Counter:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    def __call__(self, *args: Any) -> None:
        self.calls.append(args)


def _no_reads(cache: diskstore.Cache, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any read of the database fail the test."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("read the database")

    monkeypatch.setattr(cache, "get", refuse)


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        (1, True),
        (2**80, True),
        (-0.0, True),
        (True, True),
        (None, True),
        ("x" * MAX_LENGTH, True),
        (b"y", True),
        ("x" * (MAX_LENGTH + 1), False),
        ([1], False),
        ((1,), False),
        ({"a": 1}, False),
    ],
)
def test_only_plain_values_are_kept(value: Any, kept: bool) -> None:
    assert keepable(value) is kept


def test_a_hit_after_this_process_stored_reads_no_row(
    cache: diskstore.Cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    @cache.memoize()
    def plus_one(x: int) -> int:
        return x + 1

    assert plus_one(0) == 1  # the first store also records the function: two writes
    assert plus_one(1) == 2
    _no_reads(cache, monkeypatch)
    assert plus_one(1) == 2
    assert plus_one.cache_info().hits == 1


def test_a_result_read_from_the_database_is_kept(
    cache: diskstore.Cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    @cache.memoize(name="shared")
    def first(x: int) -> str:
        return f"v{x}"

    first(1)

    @cache.memoize(name="shared")
    def second(x: int) -> str:  # another function object: nothing kept yet
        return "never"

    assert second(1) == "v1"  # read from the database, kept
    _no_reads(cache, monkeypatch)
    assert second(1) == "v1"


def test_any_write_makes_the_next_call_read_again(cache: diskstore.Cache) -> None:
    body = Counter()

    @cache.memoize(ignore={"body"})
    def square(x: int, body: Any = body) -> int:
        body(x)
        return x * x

    assert square(3) == 9
    cache.set(square.__cache_key__(3), 10)  # overwritten under the function's feet
    assert square(3) == 10
    square.cache_delete(3)
    assert square(3) == 9
    assert len(body.calls) == 2
    cache.clear()
    assert square(3) == 9
    assert len(body.calls) == 3


def test_another_process_writing_is_seen(cache: diskstore.Cache) -> None:
    @cache.memoize(name="answer")
    def answer(x: int) -> int:
        return 42

    assert answer(1) == 42
    key = answer.__cache_key__(1)
    code = (
        "import sys, diskstore\n"
        "with diskstore.Cache(sys.argv[1]) as cache:\n"
        f"    cache.set({key!r}, 7)\n"
    )
    subprocess.run([sys.executable, "-c", code, cache.directory], check=True)
    assert answer(1) == 7


def test_expiry_is_checked_on_every_hit(
    cache: diskstore.Cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = install_clock(monkeypatch)
    body = Counter()

    @cache.memoize(expire=10, ignore={"body"})
    def stamp(x: int, body: Any = body) -> int:
        body(x)
        return len(body.calls)

    assert stamp(1) == 1
    clock.advance(5)
    assert stamp(1) == 1
    clock.advance(6)
    assert stamp(1) == 2  # expired: computed again


def test_mutable_results_are_fresh_objects_on_every_hit(cache: diskstore.Cache) -> None:
    @cache.memoize()
    def items(n: int) -> list[int]:
        return list(range(n))

    items(3).append(99)
    first = items(3)
    first.append(100)
    assert items(3) == [0, 1, 2]


def test_types_come_back_as_the_database_gives_them(cache: diskstore.Cache) -> None:
    @cache.memoize(typed=True)
    def same(x: Any) -> Any:
        return x

    for value in (True, 1, 1.0, -0.0, "s", b"b", None):
        same(value)
        again = same(value)
        assert type(again) is type(value) and repr(again) == repr(value)


def test_nothing_is_kept_when_reads_are_counted(tmp_path: Path) -> None:
    with diskstore.Cache(str(tmp_path), statistics=True) as cache:

        @cache.memoize()
        def one(x: int) -> int:
            return 1

        one(1)
        one(1)
        one(1)
        assert cache.stats() == (2, 1)  # both hits were counted by the cache


def test_keys_equal_in_python_are_told_apart_as_the_cache_does(
    cache: diskstore.Cache, tmp_path: Path
) -> None:
    values = (1, True, 1.0, 0.0, -0.0, "1", b"1")

    def calls(target: diskstore.Cache) -> list[list[str]]:
        @target.memoize(name="show")
        def show(x: Any) -> str:
            return repr(x)

        return [[show(v) for v in values] for _ in range(3)]

    # A cache that counts reads keeps nothing in memory: it answers from the database only.
    with diskstore.Cache(str(tmp_path / "counted"), statistics=True) as counted:
        expected = calls(counted)
    assert calls(cache) == expected
    assert expected[0][:3] == ["1", "True", "1.0"]


def test_keys_with_nested_parts_are_read_from_the_database(
    cache: diskstore.Cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    @cache.memoize()
    def total(*xs: int) -> int:
        return sum(xs)

    assert total(1, 2) == 3
    assert total(1, 2) == 3
    _no_reads(cache, monkeypatch)
    with pytest.raises(AssertionError, match="read the database"):
        total(1, 2)
