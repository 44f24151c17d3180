"""Tests for diskstore.djangocache.DjangoCache, through a real Django configuration.

Django is configured once for the test process (``settings.configure``); every test points
``CACHES`` at a fresh directory with ``override_settings`` and reaches the backend the way
a Django project does, through ``django.core.cache.caches``.
"""

from __future__ import annotations

import asyncio
import doctest
import io
import os
import pickle
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import django
import pytest
from django.conf import settings

if not settings.configured:
    settings.configure(
        SECRET_KEY="diskstore-tests-not-secret",
        ALLOWED_HOSTS=["testserver"],
        USE_TZ=True,
        INSTALLED_APPS=[],
        DATABASES={},
        MIDDLEWARE=[],
        CACHE_MIDDLEWARE_SECONDS=60,
    )
    django.setup()

from _cache_support import Clock, install_clock
from django.core.cache import CacheKeyWarning, caches
from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponse
from django.middleware.cache import (
    FetchFromCacheMiddleware,
    UpdateCacheMiddleware,
)
from django.test import RequestFactory, override_settings
from django.views.decorators.cache import cache_page

import diskstore
import diskstore.djangocache
from diskstore.djangocache import DjangoCache

BACKEND = "diskstore.djangocache.DjangoCache"


def custom_key(key: Any, key_prefix: str, version: int) -> str:
    """A KEY_FUNCTION that differs from Django's default."""
    return f"custom|{key_prefix}|{version}|{key}"


CacheFactory = Callable[..., Any]


@pytest.fixture
def configure(tmp_path: Any) -> Iterator[CacheFactory]:
    """Return ``configure(**aliases)``: install CACHES, every alias in one directory.

    Each alias maps to extra parameters for the backend (``{"VERSION": 2}``...). The
    backends Django opened are closed when the test ends.
    """
    location = str(tmp_path / "django-cache")
    overrides: list[Any] = []

    def configure(**aliases: dict[str, Any]) -> Any:
        config = {
            alias: {"BACKEND": BACKEND, "LOCATION": location, "SHARDS": 4, **params}
            for alias, params in {"default": {}, **aliases}.items()
        }
        override = override_settings(CACHES=config)
        override.enable()
        overrides.append(override)
        return caches

    yield configure
    for backend in caches.all(initialized_only=True):
        backend.close()
    for override in reversed(overrides):
        override.disable()


@pytest.fixture
def cache(configure: CacheFactory) -> Any:
    return configure()["default"]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return install_clock(monkeypatch)


# -- configuration --------------------------------------------------------------------------


def test_caches_build_the_backend_from_settings(configure: CacheFactory, tmp_path: Any) -> None:
    handler = configure()
    backend = handler["default"]
    assert type(backend) is DjangoCache
    assert backend.directory == str(tmp_path / "django-cache")
    assert sorted(os.listdir(backend.directory)) == ["000", "001", "002", "003"]


def test_lazy_package_attribute() -> None:
    assert diskstore.DjangoCache is DjangoCache
    assert "DjangoCache" not in vars(diskstore)
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        _ = diskstore.NoSuchThing  # type: ignore[attr-defined]


def test_importing_diskstore_does_not_import_django() -> None:
    code = "import sys, diskstore; print('django' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_diskcache_names_resolve_after_install_as_diskcache() -> None:
    code = (
        "import diskstore; diskstore.install_as_diskcache()\n"
        "from django.utils.module_loading import import_string\n"
        "from diskstore.djangocache import DjangoCache\n"
        "assert import_string('diskcache.DjangoCache') is DjangoCache\n"
        "assert import_string('diskcache.djangocache.DjangoCache') is DjangoCache\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_keeps_the_signatures_of_diskcaches_backend() -> None:
    """Every public method of diskcache's DjangoCache exists, its parameters a prefix of ours."""
    import inspect

    from diskcache.djangocache import DjangoCache as Original  # type: ignore[import-untyped]

    def parameters(function: Any) -> list[tuple[str, Any, Any]]:
        found = inspect.signature(function).parameters.values()
        return [(p.name, p.kind, p.default) for p in found]

    for name in sorted(n for n in dir(Original) if not n.startswith("_")):
        theirs = getattr(Original, name)
        ours = getattr(DjangoCache, name, None)
        assert ours is not None, name
        if callable(theirs) and not isinstance(theirs, property):
            expected = parameters(theirs)
            assert parameters(ours)[: len(expected)] == expected, name


def test_options_are_diskstore_settings(configure: CacheFactory) -> None:
    options = {"size_limit": 2**24, "eviction_policy": "least-frequently-used"}
    backend = configure(default={"OPTIONS": options})["default"]
    fanout = backend._cache
    assert fanout.eviction_policy == "least-frequently-used"
    assert fanout.size_limit == 2**24 // 4  # the total is shared out among the shards
    backend.set("key", "value")
    backend.close()
    with diskstore.Cache(os.path.join(backend.directory, "002")) as shard:
        assert shard.eviction_policy == "least-frequently-used"


def test_options_take_a_disk_and_cache_options(tmp_path: Any) -> None:
    options = {"disk": diskstore.JSONDisk, "memory_items": 100, "tag_index": True}
    backend = DjangoCache(str(tmp_path), {"OPTIONS": options})
    try:
        backend.set("key", {"a": [1, 2]})
        assert backend.get("key") == {"a": [1, 2]}
        assert type(backend._cache.disk) is diskstore.JSONDisk
        assert backend._cache.tag_index
    finally:
        backend.close()


def test_shards_and_database_timeout_inside_options(tmp_path: Any) -> None:
    params = {"OPTIONS": {"SHARDS": 2, "DATABASE_TIMEOUT": 0.5, "MAX_ENTRIES": 10}}
    backend = DjangoCache(str(tmp_path), params)
    try:
        assert sorted(os.listdir(tmp_path)) == ["000", "001"]
        assert backend._cache.timeout == 0.5
    finally:
        backend.close()


def test_shards_given_twice_must_agree(tmp_path: Any) -> None:
    with pytest.raises(diskstore.SettingsError, match=r"SHARDS is given twice.*2.*3"):
        DjangoCache(str(tmp_path), {"SHARDS": 2, "OPTIONS": {"SHARDS": 3}})


def test_unknown_option_is_refused(tmp_path: Any) -> None:
    with pytest.raises(diskstore.SettingsError, match=r"'size_limt'.*did you mean 'size_limit'"):
        DjangoCache(str(tmp_path), {"OPTIONS": {"size_limt": 10}})


def test_location_may_be_a_path(tmp_path: Any) -> None:
    backend = DjangoCache(tmp_path / "cache", {})  # BASE_DIR / "cache", as settings often say
    try:
        assert backend.directory == str(tmp_path / "cache")
    finally:
        backend.close()


@pytest.mark.parametrize("location", ["", None])
def test_location_is_required(location: Any) -> None:
    with pytest.raises(diskstore.SettingsError, match="LOCATION must name the cache directory"):
        DjangoCache(location, {})


def test_options_must_be_a_mapping(tmp_path: Any) -> None:
    with pytest.raises(TypeError, match=r"OPTIONS must be a dict, got \['size_limit'\]"):
        DjangoCache(str(tmp_path), {"OPTIONS": ["size_limit"]})


def test_module_doctests() -> None:
    results = doctest.testmod(diskstore.djangocache)
    assert results.attempted > 0
    assert results.failed == 0


# -- Django's cache API ---------------------------------------------------------------------


def test_get_set_add_delete(cache: Any) -> None:
    assert cache.get("missing") is None
    assert cache.get("missing", "fallback") == "fallback"
    assert cache.set("key", "value") is True
    assert cache.get("key") == "value"
    assert cache.add("key", "other") is False
    assert cache.add("new", "other") is True
    assert cache.get("new") == "other"
    assert cache.delete("key") is True
    assert cache.delete("key") is False
    assert cache.get("key") is None


def test_none_is_a_value(cache: Any) -> None:
    cache.set("nothing", None)
    assert cache.get("nothing", "fallback") is None
    assert cache.has_key("nothing")
    assert "nothing" in cache
    assert "absent" not in cache


def test_many(cache: Any) -> None:
    assert cache.set_many({"a": 1, "b": 2, "c": None}) == []
    assert cache.get_many(["a", "c", "z"]) == {"a": 1, "c": None}
    assert cache.get_many(iter(["b"])) == {"b": 2}
    cache.delete_many(["a", "b"])
    assert cache.get_many(["a", "b", "c"]) == {"c": None}


def test_set_many_reports_the_keys_it_could_not_store(
    cache: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fanout = cache._cache
    real_set = fanout.set
    monkeypatch.setattr(fanout, "set", lambda key, *args: real_set(key, *args) and "b" not in key)
    assert cache.set_many({"a": 1, "b": 2}) == ["b"]


def test_incr_decr(cache: Any) -> None:
    cache.set("answer", 41)
    assert cache.incr("answer") == 42
    assert cache.incr("answer", 10) == 52
    assert cache.decr("answer", 10) == 42
    assert cache.decr("answer", -1) == 43
    assert cache.get("answer") == 43
    with pytest.raises(ValueError, match="Key 'missing' not found"):
        cache.incr("missing")
    with pytest.raises(ValueError, match="Key 'missing' not found"):
        cache.decr("missing")
    assert cache.incr("counter", default=10) == 11
    cache.set("text", None)
    with pytest.raises(TypeError):
        cache.incr("text")


def test_get_or_set(cache: Any) -> None:
    calls: list[int] = []

    def compute() -> str:
        calls.append(1)
        return "computed"

    assert cache.get_or_set("key", compute) == "computed"
    assert cache.get_or_set("key", compute) == "computed"
    assert calls == [1]
    assert cache.get_or_set("key", "other", version=2) == "other"
    assert cache.get_or_set("none", None) is None
    assert cache.has_key("none")
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'default'"):
        cache.get_or_set("key")


def test_clear_removes_every_prefix_and_version(configure: CacheFactory) -> None:
    handler = configure(other={"KEY_PREFIX": "other"})
    handler["default"].set("a", 1)
    handler["default"].set("a", 1, version=5)
    handler["other"].set("b", 2)
    assert handler["default"].clear() == 3
    assert handler["other"].get("b") is None
    assert os.path.isdir(handler["default"].directory)


def test_values_round_trip_through_pickle(cache: Any) -> None:
    import datetime
    import decimal
    import fractions

    value = {
        "text": "Iñtërnâtiônàlizætiøn",
        "bytes": b"\x00\xff" * 10,
        "list": [1, 2.5, (3, 4), {5}],
        "when": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
        "decimal": decimal.Decimal("1.10"),
        "fraction": fractions.Fraction(1, 3),
        "function": custom_key,
        "class": DjangoCache,
        "lambda": lambda x: x + 1,
        "response": HttpResponse("body", status=201),
    }
    cache.set("stuff", value)
    got = cache.get("stuff")
    assert got["lambda"](1) == 2
    assert got["response"].content == b"body" and got["response"].status_code == 201
    for name in ("text", "bytes", "list", "when", "decimal", "fraction", "function", "class"):
        assert got[name] == value[name], name


class _Unpicklable:
    def __reduce__(self) -> Any:
        raise pickle.PicklingError("refuses to be pickled")


def test_unpicklable_values_raise(cache: Any) -> None:
    with pytest.raises(pickle.PicklingError, match="refuses"):
        cache.set("key", _Unpicklable())
    with pytest.raises(pickle.PicklingError, match="refuses"):
        cache.add("key", _Unpicklable())
    assert cache.get("key") is None


def test_async_methods(cache: Any) -> None:
    async def scenario() -> tuple[Any, ...]:
        await cache.aset("key", "value")
        added = await cache.aadd("key", "other")
        got = await cache.aget("key")
        many = await cache.aget_many(["key", "missing"])
        await cache.adelete("key")
        return added, got, many, await cache.ahas_key("key")

    assert asyncio.run(scenario()) == (False, "value", {"key": "value"}, False)


def test_close_then_reuse_as_after_a_request(cache: Any) -> None:
    cache.set("key", "value")
    request_finished.send(sender=None)  # Django closes every cache after each request
    assert cache.get("key") == "value"
    cache.close()
    cache.close()
    assert cache.set("other", 1) is True
    assert cache.get_many(["key", "other"]) == {"key": "value", "other": 1}


def test_workers_share_one_directory(configure: CacheFactory) -> None:
    """Each thread gets its own backend from Django; all of them see the same entries."""
    import threading

    handler = configure()
    handler["default"].set("hits", 0)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            backend = caches["default"]  # this thread's own backend object
            for _ in range(50):
                backend.incr("hits")
            backend.close()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert handler["default"].get("hits") == 200


def test_sessions_in_the_cache(configure: CacheFactory) -> None:
    from django.contrib.sessions.backends.cache import SessionStore

    configure()
    with override_settings(SESSION_CACHE_ALIAS="default"):
        session = SessionStore()
        session["cart"] = ["apple", "pear"]
        session.save()
        loaded = SessionStore(session_key=session.session_key)
        assert loaded["cart"] == ["apple", "pear"]
        loaded.flush()
        assert SessionStore(session_key=session.session_key).get("cart") is None


# -- timeouts -------------------------------------------------------------------------------


def test_default_timeout_comes_from_settings(configure: CacheFactory, clock: Clock) -> None:
    handler = configure(default={"TIMEOUT": 60}, forever={"TIMEOUT": None})
    handler["default"].set("short", 1)
    handler["forever"].set("long", 2)
    clock.advance(59)
    assert handler["default"].get("short") == 1
    clock.advance(2)
    assert handler["default"].get("short") is None
    clock.advance(10**9)
    assert handler["forever"].get("long") == 2


def test_explicit_timeouts(cache: Any, clock: Clock) -> None:
    cache.set("none", "kept", timeout=None)
    cache.set("float", "soon", timeout=1.5)
    cache.add("added", "soon", timeout=1.5)
    cache.set_many({"m1": 1, "m2": 2}, timeout=1.5)
    cache.set("long", "month", timeout=60 * 60 * 24 * 30 + 1)  # relative, not a timestamp
    clock.advance(1)
    assert cache.get_many(["float", "added", "m1", "m2"]) == {
        "float": "soon",
        "added": "soon",
        "m1": 1,
        "m2": 2,
    }
    clock.advance(1)
    assert cache.get_many(["float", "added", "m1", "m2"]) == {}
    assert cache.add("added", "again") is True
    assert cache.get("long") == "month"
    clock.advance(10**9)
    assert cache.get("none") == "kept"


@pytest.mark.parametrize("timeout", [0, -1, -0.5])
def test_zero_or_negative_timeout_expires_at_once(cache: Any, timeout: float) -> None:
    cache.set("key", "old")
    assert cache.set("key", "new", timeout=timeout) is True
    assert cache.get("key") is None
    assert cache.add("added", "value", timeout=timeout) is True
    assert cache.get("added") is None
    cache.set("present", 1)
    assert cache.add("present", 2, timeout=timeout) is False
    assert cache.get("present") == 1
    assert cache.set_many({"a": 1, "b": 2}, timeout=timeout) == []
    assert cache.get_many(["a", "b"]) == {}
    cache.set("touched", "value")
    assert cache.touch("touched", timeout=timeout) is True
    assert cache.get("touched") is None
    assert cache.touch("touched", timeout=timeout) is False


def test_touch(cache: Any, clock: Clock) -> None:
    cache.set("key", "value", timeout=1)
    assert cache.touch("key", timeout=10) is True
    clock.advance(5)
    assert cache.get("key") == "value"
    assert cache.touch("key", timeout=None) is True
    clock.advance(10**9)
    assert cache.get("key") == "value"
    assert cache.touch("missing") is False


def test_timeout_must_be_a_number(cache: Any) -> None:
    with pytest.raises(TypeError, match="timeout must be a number of seconds or None, got '5'"):
        cache.set("key", "value", timeout="5")


# -- keys -----------------------------------------------------------------------------------


def test_versions(configure: CacheFactory) -> None:
    handler = configure(v2={"VERSION": 2})
    cache, v2 = handler["default"], handler["v2"]
    cache.set("answer", 42)
    assert v2.get("answer") is None
    assert v2.get("answer", version=1) == 42
    v2.set("answer", 37)
    assert cache.get("answer", version=2) == 37
    assert cache.get("answer") == 42
    assert v2.delete("answer", version=1) is True
    assert cache.get("answer") is None
    assert v2.get_many(["answer"]) == {"answer": 37}


def test_incr_and_decr_version(cache: Any) -> None:
    cache.set("answer", 42, version=2)
    assert cache.incr_version("answer", version=2) == 3
    assert cache.get("answer", version=2) is None
    assert cache.get("answer", version=3) == 42
    assert cache.decr_version("answer", version=3, delta=2) == 1
    assert cache.get("answer") == 42
    assert cache.incr_version("answer") == 2
    assert cache.get("answer", version=2) == 42
    assert cache.incr_version("answer", delta=0, version=2) == 2
    assert cache.get("answer", version=2) == 42
    with pytest.raises(ValueError, match="Key 'missing' not found"):
        cache.incr_version("missing")
    cache.set("null", None)
    assert cache.incr_version("null") == 2
    assert cache.has_key("null", version=2)


def test_incr_version_keeps_expiry_and_tag(cache: Any, clock: Clock) -> None:
    cache.set("key", "value", timeout=100, tag="group")
    clock.advance(40)
    assert cache.incr_version("key") == 2
    value, expire_time, tag = cache.get("key", version=2, expire_time=True, tag=True)
    assert (value, tag) == ("value", "group")
    assert expire_time == pytest.approx(clock.now + 60)
    assert cache.evict("group") == 1


def test_key_prefix_and_key_functions(configure: CacheFactory) -> None:
    handler = configure(
        prefixed={"KEY_PREFIX": "site2"},
        custom={"KEY_FUNCTION": custom_key},
        dotted={"KEY_FUNCTION": f"{__name__}.custom_key"},
    )
    handler["default"].set("key", "plain")
    assert handler["prefixed"].get("key") is None
    handler["prefixed"].set("key", "prefixed")
    assert handler["default"].get("key") == "plain"
    handler["custom"].set("key", "custom")
    assert handler["dotted"].get("key") == "custom"
    assert handler["default"].get("key") == "plain"
    fanout = handler["default"]._cache
    assert sorted(fanout) == [":1:key", "custom||1|key", "site2:1:key"]


def test_keys_need_not_be_strings(cache: Any) -> None:
    cache.set(7, "seven")
    cache.set(b"raw", "bytes")
    cache.set(("a", 1), "tuple")
    assert cache.get(7) == "seven"
    assert cache.get(b"raw") == "bytes"
    assert cache.get(("a", 1)) == "tuple"


_OPERATIONS: list[tuple[str, Callable[[Any, Any], Any]]] = [
    ("add", lambda cache, key: cache.add(key, 1)),
    ("get", lambda cache, key: cache.get(key)),
    ("set", lambda cache, key: cache.set(key, 1)),
    ("incr", lambda cache, key: cache.incr(key)),
    ("decr", lambda cache, key: cache.decr(key)),
    ("touch", lambda cache, key: cache.touch(key)),
    ("has_key", lambda cache, key: cache.has_key(key)),
    ("pop", lambda cache, key: cache.pop(key)),
    ("delete", lambda cache, key: cache.delete(key)),
    ("get_many", lambda cache, key: cache.get_many([key, "b"])),
    ("set_many", lambda cache, key: cache.set_many({key: 1, "b": 2})),
    ("delete_many", lambda cache, key: cache.delete_many([key, "b"])),
    ("get_or_set", lambda cache, key: cache.get_or_set(key, 1)),
]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (
            "key with spaces",
            "Cache key contains characters that will cause errors if used with memcached",
        ),
        ("a" * 251, "Cache key will cause errors if used with memcached"),
    ],
)
def test_unportable_keys_warn(cache: Any, key: str, message: str) -> None:
    for name, operation in _OPERATIONS:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            operation(cache, key)
        found = [w for w in caught if issubclass(w.category, CacheKeyWarning)]
        assert found, f"{name} did not warn"
        assert all(str(w.message).startswith(message) for w in found), name


def test_portable_keys_do_not_warn(cache: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _, operation in _OPERATIONS:
            operation(cache, "portable-key")


# -- culling --------------------------------------------------------------------------------


def _fill(cache: Any, count: int) -> int:
    for number in range(1, count):
        cache.set(f"cull{number}", "value", 1000)
    return sum(cache.has_key(f"cull{number}") for number in range(1, count))


def test_max_entries_culls_a_third(configure: CacheFactory) -> None:
    handler = configure(default={"OPTIONS": {"MAX_ENTRIES": 30}})
    assert _fill(handler["default"], 50) == 29  # the numbers Django's own tests expect


def test_cull_frequency_zero_clears(configure: CacheFactory) -> None:
    handler = configure(default={"OPTIONS": {"MAX_ENTRIES": 30, "CULL_FREQUENCY": 0}})
    assert _fill(handler["default"], 50) == 19


def test_cull_takes_the_oldest_of_every_shard(configure: CacheFactory) -> None:
    from diskstore.fanout import shard_index

    cache = configure(default={"OPTIONS": {"MAX_ENTRIES": 30}})["default"]
    names = [f"key{number}" for number in range(30)]
    for name in names:
        cache.set(name, 1)
    cache.set("one-more", 1)
    removed = {name for name in names if not cache.has_key(name)}
    assert len(removed) == 10
    by_shard: dict[int, list[str]] = {}
    for name in names:
        by_shard.setdefault(shard_index(cache.make_key(name), 4), []).append(name)
    lost = {number: [n for n in keys if n in removed] for number, keys in by_shard.items()}
    for number, keys in by_shard.items():
        assert lost[number] == keys[: len(lost[number])], "not the shard's oldest"
    assert max(map(len, lost.values())) - min(map(len, lost.values())) <= 1


def test_cull_removes_expired_entries_first(configure: CacheFactory, clock: Clock) -> None:
    cache = configure(default={"OPTIONS": {"MAX_ENTRIES": 10}})["default"]
    for number in range(5):
        cache.set(f"short{number}", number, timeout=1)
    for number in range(5):
        cache.set(f"long{number}", number)
    clock.advance(2)
    cache.set("one-more", 1)
    assert len(cache._cache) == 6
    assert cache.get_many([f"long{number}" for number in range(5)]) == {
        f"long{number}": number for number in range(5)
    }


def test_without_max_entries_only_size_limit_bounds(cache: Any) -> None:
    assert cache._max_entries == 300  # Django's default is not applied
    assert _fill(cache, 400) == 399


def test_max_entries_below_zero_still_stores(configure: CacheFactory) -> None:
    cache = configure(default={"OPTIONS": {"MAX_ENTRIES": 30}})["default"]
    cache._max_entries = -1
    cache.set("force", "value", 1000)
    assert cache.has_key("force")


# -- the cache middleware and cache_page ----------------------------------------------------


def test_cache_middleware(cache: Any) -> None:
    calls: list[str] = []

    def view(request: HttpRequest) -> HttpResponse:
        calls.append(request.path)
        response = HttpResponse(f"page {len(calls)}")
        response.set_cookie("flavour", "oat")
        return response

    factory = RequestFactory()
    fetch = FetchFromCacheMiddleware(view)
    update = UpdateCacheMiddleware(view)
    request = factory.get("/page")
    assert fetch.process_request(request) is None
    first = update(request)
    cached = fetch.process_request(factory.get("/page"))
    assert cached is not None
    assert cached.content == first.content == b"page 1"
    assert cached.cookies["flavour"].value == "oat"
    assert calls == ["/page"]
    assert fetch.process_request(factory.get("/other")) is None


def test_cache_page(configure: CacheFactory) -> None:
    handler = configure(pages={"KEY_PREFIX": "pages"})
    calls: list[int] = []

    @cache_page(60, cache="pages")
    def view(request: HttpRequest) -> HttpResponse:
        calls.append(1)
        return HttpResponse(f"rendered {len(calls)}")

    factory = RequestFactory()
    assert view(factory.get("/a")).content == b"rendered 1"
    assert view(factory.get("/a")).content == b"rendered 1"
    assert view(factory.get("/b")).content == b"rendered 2"
    assert handler["pages"].clear() > 0
    assert view(factory.get("/a")).content == b"rendered 3"


_PAGE_CALLS: list[str] = []


def _page(request: HttpRequest) -> HttpResponse:
    _PAGE_CALLS.append(request.path)
    return HttpResponse(f"rendered {len(_PAGE_CALLS)}")


def _urlpatterns() -> list[Any]:
    from django.urls import path

    return [path("page/", _page)]


urlpatterns = _urlpatterns()  # ROOT_URLCONF for the request cycle test below


def test_site_wide_cache_through_the_request_cycle(
    configure: CacheFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whole requests through Django's handler: each ends by closing the caches."""
    from django.test import Client

    closed: list[int] = []
    real_close = DjangoCache.close

    def counting_close(self: DjangoCache, **kwargs: Any) -> None:
        closed.append(1)
        real_close(self, **kwargs)

    monkeypatch.setattr(DjangoCache, "close", counting_close)
    handler = configure()
    middleware = [
        "django.middleware.cache.UpdateCacheMiddleware",
        "django.middleware.cache.FetchFromCacheMiddleware",
    ]
    _PAGE_CALLS.clear()
    with override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=middleware):
        client = Client()
        first = client.get("/page/")
        second = client.get("/page/")
        assert first.status_code == second.status_code == 200
        assert first.content == second.content == b"rendered 1"
        assert _PAGE_CALLS == ["/page/"]
        assert len(closed) >= 2  # the backend served the second request after a close
        handler["default"].clear()
        assert client.get("/page/").content == b"rendered 2"


# -- diskcache's extras ---------------------------------------------------------------------


def test_read_and_file_values(cache: Any) -> None:
    data = b"abcd" * 2**18
    assert cache.set("blob", io.BytesIO(data), read=True) is True
    with cache.read("blob") as reader:
        assert reader.read() == data
    handle = cache.get("blob", read=True)
    with handle:
        assert handle.read() == data
    with pytest.raises(KeyError):
        cache.read("missing")


def test_tags_expire_time_and_evict(cache: Any, clock: Clock) -> None:
    for number in range(20):
        cache.set(number, number, timeout=None if number % 2 else 50, tag=f"t{number % 4}")
    assert cache.get(0, expire_time=True, tag=True) == (0, clock.now + 50, "t0")
    assert cache.get(1, tag=True) == (1, "t1")
    assert cache.evict("t1") == 5
    cache.create_tag_index()
    assert cache.evict("t2") == 5
    cache.drop_tag_index()
    assert sorted(cache.get_many(range(20))) == [0, 3, 4, 7, 8, 11, 12, 15, 16, 19]
    clock.advance(60)
    assert cache.expire() == 5
    assert sorted(cache.get_many(range(20))) == [3, 7, 11, 15, 19]
    assert cache.cull() == 0


def test_pop(cache: Any) -> None:
    cache.set("key", "value", timeout=None, tag="t")
    cache.set("other", "value", version=2)
    assert cache.pop("key", expire_time=True, tag=True) == ("value", None, "t")
    assert cache.pop("key") is None
    assert cache.pop("key", "fallback") == "fallback"
    assert cache.pop("other") is None
    assert cache.pop("other", version=2) == "value"


def test_stats(cache: Any) -> None:
    cache.stats(enable=True, reset=True)
    cache.set("key", 1)
    cache.get("key")
    cache.get("missing")
    assert cache.stats() == (1, 1)
    assert cache.stats(reset=True) == (1, 1)
    assert cache.stats() == (0, 0)


def test_sub_collections(cache: Any) -> None:
    directory = cache.directory
    deque = cache.deque("jobs")
    deque.extend([1, 2, 3])
    index = cache.index("users")
    index["ada"] = {"id": 1}
    named = cache.cache("named")
    named["k"] = "v"
    assert deque.directory == os.path.join(directory, "deque", "jobs")
    assert index.directory == os.path.join(directory, "index", "users")
    assert named.directory == os.path.join(directory, "cache", "named")
    assert cache.deque("jobs") is deque
    cache.close()
    assert list(cache.deque("jobs")) == [1, 2, 3]
    assert cache.index("users")["ada"] == {"id": 1}
    assert cache.cache("named")["k"] == "v"
    assert cache.deque("bounded", maxlen=2).maxlen == 2


# -- memoize --------------------------------------------------------------------------------


def test_memoize_stores_ordinary_entries(cache: Any) -> None:
    calls: list[int] = []

    @cache.memoize(tag="fib")
    def fib(number: int) -> int:
        calls.append(number)
        return number if number < 2 else fib(number - 1) + fib(number - 2)

    assert fib(30) == 832040
    assert len(calls) == 31
    assert fib(30) == 832040
    assert len(calls) == 31
    key = fib.__cache_key__(30)
    assert cache.get(key) == 832040
    assert cache.evict("fib") == 31
    assert cache.get(key) is None
    assert fib(3) == 2
    assert cache.clear() == 4


def test_memoize_counts_hits_in_stats(cache: Any) -> None:
    @cache.memoize()
    def square(number: int) -> int:
        return number * number

    for number in range(10):
        square(number)
    hits, misses = cache.stats()
    for number in range(10):
        square(number)
    assert cache.stats() == (hits + 10, misses)


def test_memoize_timeout_and_version(cache: Any, clock: Clock) -> None:
    calls: list[int] = []

    @cache.memoize(timeout=10, version=3)
    def double(number: int) -> int:
        calls.append(number)
        return 2 * number

    assert double(2) == 4
    key = double.__cache_key__(2)
    assert cache.get(key) is None
    assert cache.get(key, version=3) == 4
    clock.advance(11)
    assert double(2) == 4
    assert calls == [2, 2]


def test_memoize_timeout_zero_never_stores(cache: Any) -> None:
    calls: list[int] = []

    @cache.memoize(timeout=0)
    def identity(number: int) -> int:
        calls.append(number)
        return number

    identity(1)
    identity(1)
    assert calls == [1, 1]
    assert len(cache._cache) == 0


def test_memoize_needs_parentheses(cache: Any) -> None:
    with pytest.raises(TypeError, match=r"@cache.memoize\(\), with parentheses"):

        @cache.memoize
        def function() -> None:
            """Never memoized."""


def test_memoize_cache_info_and_cache_clear(configure: CacheFactory) -> None:
    handler = configure(other={"KEY_PREFIX": "other"})
    cache, other = handler["default"], handler["other"]

    @cache.memoize()
    def function(number: int) -> int:
        return number

    @other.memoize(version=2)
    def function_elsewhere(number: int) -> int:
        return -number

    for number in range(3):
        function(number)
        function(number)
        function_elsewhere(number)
    cache.set("plain", "kept")
    assert function.cache_info() == (3, 3, None, 3)
    assert function.cache_clear() == 3
    assert function.cache_info() == (0, 0, None, 0)
    assert cache.get("plain") == "kept"
    assert function_elsewhere.cache_info().currsize == 3
