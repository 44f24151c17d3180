"""The ``memoize`` decorator: persistent results, computed once even under concurrency.

diskcache's semantics (``name``, ``typed``, ``expire``, ``tag``, ``ignore``,
``__wrapped__``, ``__cache_key__``) plus:

- arguments are bound to the signature before keying (see :mod:`diskstore._memo._funckey`);
- ``version=``, ``hash_source=`` (see :mod:`diskstore._values._sourcehash`), ``key=`` and
  ``store_if=`` refine what is keyed and what is stored;
- concurrent misses of one key run the function once (see :mod:`diskstore._memo._singleflight`;
  on a cache directory the cross-process lock is one byte of a shared file, see
  :mod:`diskstore._memo._rangelock`);
- plain results are returned from memory while the cache is unchanged, so such a hit reads
  no row (see :mod:`diskstore._memo._recent`);
- ``async def`` functions get an async wrapper whose I/O and lock waits run in threads;
- the wrapper follows :func:`functools.lru_cache`'s protocol: ``cache_info()``,
  ``cache_clear()``, ``cache_parameters()``, plus ``uncached``, ``cache_set`` and
  ``cache_delete``.

Results are ordinary items of the cache, under the keys ``f.__cache_key__(...)`` returns,
as in diskcache: ``len``, iteration, ``clear()`` and ``evict(tag)`` see them. On a diskstore
cache each row also records the function that stored it (see :mod:`diskstore._caching._functions`),
so ``cache_clear()`` and ``cache_info().currsize`` go through an index; on another cache
(``diskcache.Cache``, say) those two look at every key.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import math
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass, field
from numbers import Real
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast, overload

from .._common import _clock
from .._common._constants import ENOVAL
from .._common._hooks import Reporter
from .._values._keys import args_to_key
from .._values._sourcehash import source_hash
from . import _refresh
from ._backend import flight_locks
from ._funckey import KeyBuilder
from ._hashing import stable_hash
from ._memoize_extras import Extras, MemoizeExtras, check_extras, check_seconds
from ._memoize_types import (
    AsyncMemoizedFunction,
    BoundMemoizedFunction,
    CacheInfo,
    MemoizedFunction,
    SupportsMemoize,
)
from ._recent import RecentResults, keepable
from ._singleflight import SingleFlight

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "AsyncMemoizedFunction",
    "BoundMemoizedFunction",
    "CacheInfo",
    "MemoizeDecorator",
    "MemoizedFunction",
    "memoize",
]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

#: Seconds a caller waits for another caller's computation of the same key before computing
#: itself.
DEFAULT_LOCK_TIMEOUT = 60.0

#: Key parts whose ``repr`` is the same in every process (see ``_Memo.token``).
_PLAIN = frozenset({str, int, float, bytes, bool, type(None)})


@dataclass(frozen=True)
class _Options:
    """Validated decorator options."""

    name: str | None
    typed: bool
    expire: float | None
    tag: str | bytes | int | float | None
    ignore: frozenset[str | int]
    version: str | int | None
    hash_source: bool
    key: Callable[..., Any] | None
    store_if: Callable[[Any], object] | None
    single_flight: bool
    lock_timeout: float | None
    extras: Extras = field(default_factory=Extras)

    @property
    def stores(self) -> bool:
        """``expire=0`` means look up but never store (diskcache's convention)."""
        return self.expire is None or self.expire > 0


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return value


def _check_seconds(name: str, value: object, *, zero_ok: bool) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number of seconds or None, got {value!r}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not zero_ok):
        bound = ">= 0" if zero_ok else "> 0"
        raise ValueError(
            f"{name} must be a finite number of seconds {bound} or None, got {value!r}"
        )
    return seconds


def _check_ignore(ignore: object) -> frozenset[str | int]:
    if isinstance(ignore, (str, bytes)):
        raise TypeError(
            f"ignore must be a collection of parameter names or positions, not a single "
            f"{type(ignore).__name__}: write ignore=({ignore!r},)"
        )
    try:
        items = frozenset(cast(Collection[Any], ignore))
    except TypeError as exc:
        raise TypeError(
            f"ignore must be a collection of names or positions, got {ignore!r}"
        ) from exc
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise TypeError(
                f"ignore must hold parameter names (str) or positions (int), got {item!r}"
            )
    return items


def _options(
    name: object,
    typed: object,
    expire: object,
    tag: object,
    ignore: object,
    version: object,
    hash_source: object,
    key: object,
    store_if: object,
    single_flight: object,
    lock_timeout: object,
    extras: Extras,
) -> _Options:
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a non-empty str or None, got {name!r}")
    if name == "":
        raise ValueError("name must be a non-empty str or None, got ''")
    if tag is not None and (isinstance(tag, bool) or not isinstance(tag, (str, bytes, int, float))):
        raise TypeError(f"tag must be a str, bytes, int, float or None, got {tag!r}")
    if version is not None and (isinstance(version, bool) or not isinstance(version, (str, int))):
        raise TypeError(f"version must be a str, an int or None, got {version!r}")
    if key is not None and not callable(key):
        raise TypeError(f"key must be a callable returning the key part, or None, got {key!r}")
    if store_if is not None and not callable(store_if):
        raise TypeError(f"store_if must be a predicate on the result, or None, got {store_if!r}")
    return _Options(
        name=name,
        typed=_check_bool("typed", typed),
        expire=_check_seconds("expire", expire, zero_ok=True),
        tag=tag,
        ignore=_check_ignore(ignore),
        version=version,
        hash_source=_check_bool("hash_source", hash_source),
        key=key,
        store_if=store_if,
        single_flight=_check_bool("single_flight", single_flight),
        lock_timeout=_check_seconds("lock_timeout", lock_timeout, zero_ok=False),
        extras=extras,
    )


class MemoizeDecorator:
    """The decorator ``memoize(cache, ...)`` returns; apply it to a function."""

    __slots__ = ("_cache", "_options")

    def __init__(self, cache: SupportsMemoize, options: _Options) -> None:
        self._cache = cache
        self._options = options

    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, func: Callable[P, Coroutine[Any, Any, T]]
    ) -> AsyncMemoizedFunction[P, T]: ...

    @overload
    def __call__(self, func: Callable[P, R]) -> MemoizedFunction[P, R]: ...

    def __call__(self, func: Callable[..., Any]) -> Any:
        return _memoized(self._cache, func, self._options)


def memoize(
    cache: SupportsMemoize,
    name: str | None = None,
    typed: bool = False,
    expire: float | None = None,
    tag: str | bytes | int | float | None = None,
    ignore: Collection[str | int] = (),
    *,
    version: str | int | None = None,
    hash_source: bool = False,
    key: Callable[..., Any] | None = None,
    store_if: Callable[[Any], object] | None = None,
    single_flight: bool = True,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    **extras: Unpack[MemoizeExtras],
) -> MemoizeDecorator:
    """Memoize a function in ``cache``: return a decorator, or the memoized function.

    ``name`` (default: the function's ``module.qualname``) identifies the function's
    entries; ``typed=True`` keys ``f(3)`` and ``f(3.0)`` apart; ``expire`` is in seconds,
    and ``expire=0`` looks results up but never stores them; ``tag`` is stored with each
    entry; ``ignore`` lists parameter names or positions left out of the key.

    Keyword-only: ``version`` is part of the key (bump it when the function's meaning
    changes); ``hash_source=True`` adds a hash of the function's normalised source, so
    editing the body starts afresh while comment and formatting edits do not; ``key`` is a
    callable ``(*args, **kwargs) -> key part`` replacing the argument-derived part;
    ``store_if`` is a predicate on the result, which is returned but not stored when it
    says no; ``single_flight`` (on by default) makes concurrent misses of one key, in
    threads or processes, run the function once while the others wait up to
    ``lock_timeout`` seconds (``None``: no limit) before computing themselves.

    For heavy results (keyword-only, see :mod:`diskstore._memo._refresh`): ``refresh_after``
    returns a result older than that many seconds at once and recomputes it once in the
    background; ``round_trip=True`` returns what the cache gives back even on a miss, so
    every call returns the same kind of object; ``mmap_mode='r'`` (or ``'c'``) returns
    numpy arrays memory-mapped from their value files; ``on_hit(key)`` and
    ``on_miss(key, seconds)`` are called after each hit and each computation.

    As in diskcache, passing the function itself as ``name`` (``@cache.memoize`` without
    parentheses) raises ``TypeError``, which here says to write ``@cache.memoize()``.
    Generator functions are refused: a generator cannot be stored.

    The key of a lambda, or of a function defined inside another function, also holds the
    hash of its code and the values of its closure variables, so that closures made with
    different values, and different lambdas, never share results; ``ignore`` may name a
    closure variable to leave out. A method of a class defined in ``__main__`` keys
    ``self`` by its class's name and its state (see :mod:`diskstore._values._identity`).

    >>> import tempfile, diskstore
    >>> cache = diskstore.Cache(tempfile.mkdtemp())
    >>> @memoize(cache, version=1)
    ... def add(a, b=1):
    ...     return a + b
    >>> add(2), add(2, b=1), add.cache_info()
    (3, 3, CacheInfo(hits=1, misses=1, maxsize=None, currsize=1))
    >>> cache.close()
    """
    if callable(name) and not isinstance(name, str):
        # As in diskcache: ``@cache.memoize`` without parentheses is a mistake.
        raise TypeError(
            "name cannot be callable: write @cache.memoize(), with parentheses, to "
            f"memoize {getattr(name, '__qualname__', name)!s}"
        )
    options = _options(
        name,
        typed,
        expire,
        tag,
        ignore,
        version,
        hash_source,
        key,
        store_if,
        single_flight,
        lock_timeout,
        check_extras(extras),
    )
    if not callable(getattr(cache, "get", None)) or not callable(getattr(cache, "set", None)):
        raise TypeError(f"cache must provide get() and set() like diskstore.Cache, got {cache!r}")
    return MemoizeDecorator(cache, options)


# -- building the wrapper ------------------------------------------------------------------


def _full_name(func: Callable[..., Any]) -> str:
    qualname = getattr(func, "__qualname__", None)
    if not isinstance(qualname, str):
        raise TypeError(f"{func!r} has no __qualname__ to name its entries; pass name= to memoize")
    module = getattr(func, "__module__", None)
    return f"{module}.{qualname}" if module else qualname


class _Memo:
    """Everything a memoized function's wrappers share; the hot path reads it via closures."""

    def __init__(self, cache: Any, func: Callable[..., Any], options: _Options) -> None:
        self.func = func
        self.options = options
        self.name = options.name if options.name is not None else _full_name(func)
        digest = source_hash(func) if options.hash_source else None
        self.keys = KeyBuilder(
            func,
            (self.name, options.version, digest),
            typed=options.typed,
            ignore=options.ignore,
            key=options.key,
            named=options.name is not None,
        )
        self.cache = cache
        #: A diskstore cache records which function stored each result (indexed clearing).
        self.native = callable(getattr(cache, "_memo_store", None))
        extras = options.extras
        self._mmap = {"mmap_mode": extras.mmap_mode} if extras.mmap_mode else {}
        #: The second look of a single flight, which a diskstore cache leaves out of stats().
        self.recheck: Callable[[tuple[Any, ...]], Any] = (
            functools.partial(cache._memo_lookup, **self._mmap) if self.native else self.lookup
        )
        # A diskstore cache writes the counts back, adding up every process's calls.
        calls_of = getattr(cache, "_memo_calls", None)
        counts = calls_of(self.name) if callable(calls_of) else None
        self.report = Reporter(self.name, extras.on_hit, extras.on_miss, counts)
        self.round_trip = extras.round_trip
        if extras.refresh_after is not None and not callable(getattr(cache, "stored_at", None)):
            raise TypeError(
                f"refresh_after needs a cache that records store times (diskstore.Cache), "
                f"got {cache!r}"
            )
        self.refresher = (
            _refresh.Refresher(self, extras.refresh_after)
            if extras.refresh_after is not None
            else None
        )
        self.flight: SingleFlight | None = None
        if options.single_flight:
            self.flight = SingleFlight(flight_locks(cache), timeout=options.lock_timeout)
        #: Plain results returned from memory while the cache is unchanged (see _recent).
        self.recent: RecentResults | None = None
        version = getattr(cache, "_memo_version", None)
        if self.native and callable(version) and not self._mmap:
            self.recent = RecentResults(version)
        #: Where the wrappers look first: the kept results (None when none are kept).
        self.remembered: Callable[[tuple[Any, ...]], Any] | None = (
            None if self.recent is None else self.recent.get
        )
        self._stamp: Callable[[], int | None] | None = version if callable(version) else None

    def stamp(self) -> int | None:
        """The cache's change number while no write is under way, else None: equal before
        a lookup and after it, nothing could have been stored meanwhile (see Call)."""
        return None if self._stamp is None or self.flight is None else self._stamp()

    def look(self, key: tuple[Any, ...]) -> tuple[Any, int | None]:
        """:meth:`lookup`, with the :meth:`stamp` taken before it (``Call.since``)."""
        since = self.stamp()
        return self.lookup(key), since

    def lookup(self, key: tuple[Any, ...]) -> Any:
        recent = self.recent
        if recent is None:
            return self.cache.get(key, default=ENOVAL, retry=True, **self._mmap)
        before = recent.version() if recent.keeps(key) else None
        if before is None:
            value = self.cache.get(key, default=ENOVAL, retry=True)
            if not recent.plain and keepable(value):
                recent.plain = True  # worth the expiry time from the next read on
            return value
        value, expire_at = self.cache.get(key, default=ENOVAL, expire_time=True, retry=True)
        if value is not ENOVAL:
            recent.read(key, value, expire_at, before)
        return value

    def adopted(self, key: tuple[Any, ...], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The result diskcache's ``memoize`` stored for this call, if the cache adopted
        diskcache's data: moved to *key* and returned; ``ENOVAL`` otherwise.

        Only a miss asks, and only a cache whose adoption found such results looks.
        """
        adopted = getattr(self.cache, "_memo_legacy", None)
        if adopted is None or not adopted():
            return ENOVAL
        options = self.options
        old = args_to_key((self.name,), args, kwargs, options.typed, options.ignore)
        value = self.cache.get(old, default=ENOVAL, retry=True)
        if value is not ENOVAL:
            self.save(key, value)
            self.cache.delete(old, retry=True)
        return value

    def should_store(self, value: object) -> bool:
        store_if = self.options.store_if
        return self.options.stores and (store_if is None or bool(store_if(value)))

    def save(self, key: tuple[Any, ...], value: object) -> None:
        options = self.options
        if self.native:
            recent = self.recent
            if recent is None:
                self.cache._memo_store(self.name, key, value, options.expire, options.tag)
                return
            before = recent.version()
            # Taken before the store, so never later than the expiry the store records.
            expire_at = None if options.expire is None else _clock.now() + options.expire
            self.cache._memo_store(self.name, key, value, options.expire, options.tag)
            recent.stored(key, value, expire_at, before)
        else:
            self.cache.set(key, value, expire=options.expire, tag=options.tag, retry=True)

    def token(self, key: tuple[Any, ...]) -> str | None:
        """The key's single-flight token, stable across processes; None if it has none.

        A key of plain values (the common case) is hashed through its ``repr``, which is
        the same in every process for these types and costs half of :func:`stable_hash`.
        """
        for part in key:
            if type(part) not in _PLAIN:
                break
        else:
            text = repr(key).encode("utf-8", "surrogatepass")
            return hashlib.blake2b(text, digest_size=20, person=b"memo-token").hexdigest()
        try:
            return stable_hash(key)
        except TypeError:
            return None  # such a key cannot be stored either; let the store report it

    # -- lru_cache-style management --------------------------------------------------------

    def _own_keys(self) -> list[Any]:
        # Only for caches that do not record functions: every key has to be looked at.
        name = self.name
        return [
            k for k in list(self.cache) if isinstance(k, tuple) and len(k) >= 3 and k[0] == name
        ]

    def info(self) -> CacheInfo:
        currsize = self.cache._memo_count(self.name) if self.native else len(self._own_keys())
        report = self.report
        with report.lock:
            return CacheInfo(report.hits, report.misses, None, currsize, report.saved_seconds)

    def clear(self) -> int:
        # The counts go first, so that none counted before the clear is written back after
        # the cache has zeroed the function's recorded calls.
        self.report.reset()
        if self.native:
            return int(self.cache._memo_clear(self.name))
        return sum(1 for k in self._own_keys() if self.cache.delete(k, retry=True))

    def set_result(self, value: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if self.options.stores:
            self.save(self.keys.build(args, kwargs), value)

    def delete_result(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        return bool(self.cache.delete(self.keys.build(args, kwargs), retry=True))

    def parameters(self) -> dict[str, Any]:
        options = self.options
        return {
            "maxsize": None,
            "name": self.name,
            "typed": options.typed,
            "expire": options.expire,
            "tag": options.tag,
            "ignore": options.ignore,
            "version": options.version,
            "hash_source": options.hash_source,
            "single_flight": options.single_flight,
            "lock_timeout": options.lock_timeout,
            "refresh_after": options.extras.refresh_after,
            "round_trip": options.extras.round_trip,
            "mmap_mode": options.extras.mmap_mode,
        }


def _memoized(cache: Any, func: Callable[..., Any], options: _Options) -> Any:
    if not callable(func):
        raise TypeError(f"memoize decorates callables, got {func!r}")
    _refuse_generators(func)
    memo = _Memo(cache, func, options)
    is_async = inspect.iscoroutinefunction(func)
    wrapper = _async_wrapper(memo) if is_async else _sync_wrapper(memo)
    functools.update_wrapper(wrapper, func)
    build = memo.keys.build

    def __cache_key__(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        return build(args, kwargs)

    def cache_set(value: Any, /, *args: Any, **kwargs: Any) -> None:
        memo.set_result(value, args, kwargs)

    def cache_delete(*args: Any, **kwargs: Any) -> bool:
        return memo.delete_result(args, kwargs)

    attributes: dict[str, Callable[..., Any]] = {
        "__cache_key__": __cache_key__,
        "uncached": func,
        "refresh": _caller(memo, None, is_async),
        "max_age": functools.partial(_max_age, memo, is_async),
        "cache_set": cache_set,
        "cache_delete": cache_delete,
        "cache_info": memo.info,
        "cache_clear": memo.clear,
        "cache_parameters": memo.parameters,
    }
    for attribute, value in attributes.items():
        setattr(wrapper, attribute, value)
    return wrapper


def _refuse_generators(func: Callable[..., Any]) -> None:
    if inspect.isasyncgenfunction(func):
        kind, fix = "an async generator", "an async def function that collects the items"
    elif inspect.isgeneratorfunction(func):
        kind, fix = "a generator", "a function that returns list(...) of the items"
    else:
        return
    name = getattr(func, "__qualname__", repr(func))
    raise TypeError(
        f"memoize cannot store the results of {name}, {kind} function: calling it returns "
        f"{kind}, which runs as it is iterated and cannot be stored. Memoize {fix} instead"
    )


def _caller(memo: _Memo, max_age: float | None, is_async: bool) -> Callable[..., Any]:
    """A call accepting stored results at most *max_age* seconds old (None: none at all)."""
    build = memo.keys.build
    if is_async:

        async def call_async(*args: Any, **kwargs: Any) -> Any:
            return await _refresh.Call(memo, build(args, kwargs), args, kwargs, max_age).run_async()

        return call_async

    def call(*args: Any, **kwargs: Any) -> Any:
        return _refresh.Call(memo, build(args, kwargs), args, kwargs, max_age).run()

    return call


def _max_age(memo: _Memo, is_async: bool, seconds: float, /) -> Callable[..., Any]:
    """``f.max_age(seconds)``: the function, taking stored results at most that old."""
    return _caller(memo, check_seconds("seconds", seconds), is_async)


def _sync_wrapper(memo: _Memo) -> Callable[..., Any]:
    build = memo.keys.build
    report = memo.report
    refresher = memo.refresher
    remembered = memo.remembered
    look = memo.look

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = build(args, kwargs)
        value = ENOVAL if remembered is None else remembered(key)
        since = None
        if value is ENOVAL:
            value, since = look(key)
        if value is ENOVAL:
            return _refresh.Call(memo, key, args, kwargs, math.inf, since=since).run(looked=True)
        if refresher is not None and refresher.stale(key):
            refresher.start(key, args, kwargs)
        report.hit(key)
        return value

    return wrapper


def _async_wrapper(memo: _Memo) -> Callable[..., Any]:
    build = memo.keys.build
    report = memo.report
    refresher = memo.refresher
    remembered = memo.remembered

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        import asyncio  # loaded by then: asyncio is running this coroutine

        key = build(args, kwargs)
        value = ENOVAL if remembered is None else remembered(key)
        since = None
        if value is ENOVAL:
            value, since = await asyncio.to_thread(memo.look, key)
        if value is ENOVAL:
            call = _refresh.Call(memo, key, args, kwargs, math.inf, since=since)
            return await call.run_async(looked=True)
        if refresher is not None and await asyncio.to_thread(refresher.stale, key):
            refresher.start_async(key, args, kwargs)
        report.hit(key)
        return value

    return wrapper
