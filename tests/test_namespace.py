"""Namespace views: ``cache.namespace(name)`` isolates keys and shares settings and connections."""

from __future__ import annotations

import os
import pickle

import pytest
from _cache_support import Clock, install_clock, value_files_once_durable

import diskstore

START = 500_000_000_000_000


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return install_clock(monkeypatch)


@pytest.fixture
def views(cache: diskstore.Cache) -> tuple[diskstore.Cache, diskstore.Cache, diskstore.Cache]:
    """The plain cache and two views, each holding 'shared' and a few keys of its own."""
    first, second = cache.namespace("first"), cache.namespace("second")
    for view, label in ((cache, "plain"), (first, "first"), (second, "second")):
        view["shared"] = label
        for number in range(3):
            view[f"{label}-{number}"] = number
    return cache, first, second


def test_view_has_the_cache_api(cache: diskstore.Cache) -> None:
    view = cache.namespace("ns")
    assert isinstance(view, diskstore.Cache)
    assert view.namespace_name == "ns"
    assert cache.namespace_name == ""
    assert view.directory == cache.directory
    assert "ns" in repr(view)


def test_keys_are_isolated(views: tuple[diskstore.Cache, ...]) -> None:
    cache, first, second = views
    assert (cache["shared"], first["shared"], second["shared"]) == ("plain", "first", "second")
    assert "first-0" in first
    assert "first-0" not in cache
    assert "first-0" not in second
    assert second.get("first-0") is None
    assert first.delete("shared") is True
    assert "shared" not in first
    assert cache["shared"] == "plain"
    assert second["shared"] == "second"


def test_len_iteration_and_iterkeys_are_per_namespace(views: tuple[diskstore.Cache, ...]) -> None:
    cache, first, second = views
    assert (len(cache), len(first), len(second)) == (4, 4, 4)
    assert list(first) == ["shared", "first-0", "first-1", "first-2"]
    assert list(reversed(second)) == ["second-2", "second-1", "second-0", "shared"]
    assert list(cache) == ["shared", "plain-0", "plain-1", "plain-2"]
    assert list(first.iterkeys()) == ["first-0", "first-1", "first-2", "shared"]
    assert list(first.iterkeys(reverse=True)) == ["shared", "first-2", "first-1", "first-0"]


def test_clear_touches_only_its_namespace(views: tuple[diskstore.Cache, ...]) -> None:
    cache, first, second = views
    first["file"] = os.urandom(100_000)
    second["file"] = os.urandom(100_000)
    assert first.clear() == 5
    assert (len(cache), len(first), len(second)) == (4, 0, 5)
    assert list(first) == []
    assert len(value_files_once_durable(cache)) == 1
    assert cache.clear() == 4
    assert (len(cache), len(first), len(second)) == (0, 0, 5)
    assert second["file"]


def test_evict_touches_only_its_namespace(cache: diskstore.Cache) -> None:
    view = cache.namespace("ns")
    for target in (cache, view):
        for number in range(4):
            target.set(number, number, tag="t")
    assert view.evict("t") == 4
    assert len(view) == 0
    assert len(cache) == 4
    assert cache.evict("t") == 4


def test_pop_incr_add_touch_per_namespace(cache: diskstore.Cache, clock: Clock) -> None:
    view = cache.namespace("ns")
    cache["key"] = 10
    assert view.pop("key") is None
    assert view.incr("key") == 1
    assert view.incr("key", 5) == 6
    assert cache.incr("key") == 11
    assert view.add("key", 0) is False
    assert cache.decr("key", default=None) == 10
    assert view.touch("key", expire=1) is True
    clock.advance(2)
    assert "key" not in view
    assert cache["key"] == 10
    assert view.pop("key") is None
    assert cache.pop("key") == 10


def test_queues_are_per_namespace(cache: diskstore.Cache) -> None:
    view = cache.namespace("ns")
    assert cache.push("plain") == START
    assert view.push("view") == START
    assert view.push("view-front", side="front") == START - 1
    assert view.push("prefixed", prefix="p") == "p-500000000000000"
    assert cache.peek() == (START, "plain")
    assert view.pull() == (START - 1, "view-front")
    assert view.pull() == (START, "view")
    assert view.pull() == (None, None)
    assert cache.pull(prefix="p") == (None, None)
    assert view.pull(prefix="p") == ("p-500000000000000", "prefixed")
    assert cache.pull() == (START, "plain")


def test_peekitem_per_namespace(cache: diskstore.Cache) -> None:
    view = cache.namespace("ns")
    cache["a"] = 1
    view["b"] = 2
    view["c"] = 3
    cache["d"] = 4
    assert view.peekitem() == ("c", 3)
    assert view.peekitem(last=False) == ("b", 2)
    assert cache.peekitem() == ("d", 4)
    assert cache.peekitem(last=False) == ("a", 1)
    view.clear()
    with pytest.raises(KeyError):
        view.peekitem()


def test_same_name_is_the_same_namespace(cache: diskstore.Cache, cache_dir: str) -> None:
    cache.namespace("ns")["key"] = "value"
    assert cache.namespace("ns")["key"] == "value"
    with diskstore.Cache(cache_dir) as other:
        assert other.namespace("ns")["key"] == "value"
        assert "key" not in other.namespace("NS")
    cache.close()
    with diskstore.Cache(cache_dir) as reopened:
        view = reopened.namespace("ns")
        assert list(view) == ["key"]
        assert len(view) == 1


def test_views_share_settings(cache: diskstore.Cache) -> None:
    view = cache.namespace("ns")
    assert view.size_limit == cache.size_limit
    cache.reset("cull_limit", 3)
    assert view.cull_limit == 3
    view.reset("size_limit", 12_345)
    assert cache.size_limit == 12_345
    view.stats(enable=True)
    assert cache.statistics is True


def test_statistics_count_view_lookups(cache: diskstore.Cache) -> None:
    view = cache.namespace("ns")
    cache.stats(enable=True)
    view["key"] = 1
    view.get("key")
    view.get("missing")
    cache.get("key")
    assert cache.stats() == (1, 2)


def test_transaction_spans_namespaces(cache: diskstore.Cache) -> None:
    view = cache.namespace("ns")

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with cache.transact():
            cache["plain"] = 1
            view["view"] = 1
            raise Boom
    assert len(cache) == 0
    assert len(view) == 0
    with view.transact():
        cache["plain"] = 1
        view["view"] = 1
    assert (cache["plain"], view["view"]) == (1, 1)


def test_expire_and_cull_apply_to_the_whole_directory(cache: diskstore.Cache, clock: Clock) -> None:
    view = cache.namespace("ns")
    cache.set("plain", 1, expire=1)
    view.set("view", 1, expire=1)
    view["stays"] = 1
    clock.advance(2)
    assert view.expire() == 2
    assert (len(cache), len(view)) == (0, 1)


def test_len_stays_exact_in_views(cache: diskstore.Cache, clock: Clock) -> None:
    view = cache.namespace("ns")
    for number in range(20):
        view.set(f"k{number}", number, tag="odd" if number % 2 else None)
    view["k0"] = "overwrite"
    view.delete("k1")
    view.pop("k2")
    view.push("x")
    view.pull()
    assert len(view) == 18
    assert view.evict("odd") == 9
    view.set("short", 1, expire=1)
    clock.advance(2)
    view.expire()
    assert len(view) == 9 == sum(1 for _ in view)
    assert len(cache) == 0


def test_pickled_view_reopens_as_the_same_view(cache: diskstore.Cache) -> None:
    view = cache.namespace("ns")
    view["key"] = "view value"
    cache["key"] = "plain value"
    clone = pickle.loads(pickle.dumps(view))
    try:
        assert clone.namespace_name == "ns"
        assert clone["key"] == "view value"
        assert list(clone) == ["key"]
        clone["new"] = 1
        assert "new" in view
        assert "new" not in cache
    finally:
        clone.close()


@pytest.mark.parametrize(
    ("name", "error"), [(5, TypeError), (b"ns", TypeError), (None, TypeError), ("", ValueError)]
)
def test_bad_names(cache: diskstore.Cache, name: object, error: type) -> None:
    with pytest.raises(error, match="name"):
        cache.namespace(name)  # type: ignore[arg-type]


def test_many_namespaces(cache: diskstore.Cache) -> None:
    for number in range(50):
        cache.namespace(f"ns{number}")["key"] = number
    assert [cache.namespace(f"ns{number}")["key"] for number in range(50)] == list(range(50))
    assert len(cache) == 0
