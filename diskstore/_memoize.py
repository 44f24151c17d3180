"""The ``memoize`` decorator: persistent results, computed once even under concurrency.

diskcache's semantics (``name``, ``typed``, ``expire``, ``tag``, ``ignore``,
``__wrapped__``, ``__cache_key__``) plus:

- arguments are bound to the signature before keying (see :mod:`diskstore._funckey`);
- ``version=``, ``hash_source=`` (see :mod:`diskstore._sourcehash`), ``key=`` and
  ``store_if=`` refine what is keyed and what is stored;
- concurrent misses of one key run the function once (see :mod:`diskstore._singleflight`);
- ``async def`` functions get an async wrapper whose I/O and lock waits run in threads;
- the wrapper follows :func:`functools.lru_cache`'s protocol: ``cache_info()``,
  ``cache_clear()``, ``cache_parameters()``, plus ``uncached``, ``cache_set`` and
  ``cache_delete``.

Results are ordinary items of the cache, under the keys ``f.__cache_key__(...)`` returns,
as in diskcache: ``len``, iteration, ``clear()`` and ``evict(tag)`` see them. On a diskstore
cache each row also records the function that stored it (see :mod:`diskstore._functions`),
so ``cache_clear()`` and ``cache_info().currsize`` go through an index; on another cache
(``diskcache.Cache``, say) those two look at every key.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
import threading
from collections.abc import Awaitable, Callable, Collection, Coroutine
from dataclasses import dataclass
from numbers import Real
from typing import Any, Concatenate, NamedTuple, ParamSpec, Protocol, TypeVar, cast, overload

from ._backend import Backend, flight_locks
from ._constants import ENOVAL
from ._funckey import KeyBuilder
from ._hashing import stable_hash
from ._singleflight import SingleFlight
from ._sourcehash import source_hash

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
P2 = ParamSpec("P2")
R = TypeVar("R")
T = TypeVar("T")
S = TypeVar("S")
R_co = TypeVar("R_co", covariant=True)

#: Seconds a caller waits for another caller's computation of the same key before computing
#: itself.
DEFAULT_LOCK_TIMEOUT = 60.0


class CacheInfo(NamedTuple):
    """Statistics of one memoized function, shaped like :func:`functools.lru_cache`'s.

    ``hits`` and ``misses`` count this process's calls since the last ``cache_clear()``: a
    miss is a call that ran the function, a hit one answered without running it (from the
    cache, or by waiting for a concurrent call that ran it). ``currsize`` is the number of
    entries stored for the function, by every process. ``maxsize`` is always ``None``: the
    cache's own size limit and eviction policy bound the entries.
    """

    hits: int
    misses: int
    maxsize: int | None
    currsize: int


#: What memoize needs from a cache (see :mod:`diskstore._backend`).
SupportsMemoize = Backend


class BoundMemoizedFunction(Protocol[P, R_co]):
    """A memoized function reached through an instance (``obj.method``).

    Calls bind the instance; of the management methods only those that take no call
    arguments are offered here, since the others are not bound (see MemoizedFunction).
    """

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    def cache_info(self) -> CacheInfo: ...

    def cache_clear(self) -> int: ...

    def cache_parameters(self) -> dict[str, Any]: ...


class MemoizedFunction(Protocol[P, R]):
    """A memoized function: call it like the original, plus the cache-management methods.

    For a method memoized in its class body, the methods below that take the call's
    arguments take ``self`` too: ``Class.method.cache_delete(obj, 1)``.
    """

    __wrapped__: Callable[P, R]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    @overload
    def __get__(
        self, instance: None, owner: type[Any] | None = None, /
    ) -> MemoizedFunction[P, R]: ...

    @overload
    def __get__(
        self: MemoizedFunction[Concatenate[S, P2], R],
        instance: S,
        owner: type[Any] | None = None,
        /,
    ) -> BoundMemoizedFunction[P2, R]: ...

    def __cache_key__(self, *args: P.args, **kwargs: P.kwargs) -> tuple[Any, ...]:
        """Return the key the call with these arguments reads and writes."""
        ...

    def uncached(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call the function without reading or writing the cache."""
        ...

    def cache_set(self, value: R, /, *args: P.args, **kwargs: P.kwargs) -> None:
        """Store ``value`` as the result of the call with these arguments."""
        ...

    def cache_delete(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Remove the stored result of the call with these arguments; True if there was one."""
        ...

    def cache_info(self) -> CacheInfo:
        """Return hit/miss counts of this process and the number of stored entries."""
        ...

    def cache_clear(self) -> int:
        """Remove every stored result of this function, reset the counts; return how many."""
        ...

    def cache_parameters(self) -> dict[str, Any]:
        """Return the options the function was memoized with."""
        ...


class AsyncMemoizedFunction(Protocol[P, T]):
    """A memoized ``async def`` function; the management methods are synchronous."""

    __wrapped__: Callable[P, Awaitable[T]]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, T]: ...

    @overload
    def __get__(
        self, instance: None, owner: type[Any] | None = None, /
    ) -> AsyncMemoizedFunction[P, T]: ...

    @overload
    def __get__(
        self: AsyncMemoizedFunction[Concatenate[S, P2], T],
        instance: S,
        owner: type[Any] | None = None,
        /,
    ) -> BoundMemoizedFunction[P2, Coroutine[Any, Any, T]]: ...

    def __cache_key__(self, *args: P.args, **kwargs: P.kwargs) -> tuple[Any, ...]: ...

    def uncached(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[T]: ...

    def cache_set(self, value: T, /, *args: P.args, **kwargs: P.kwargs) -> None: ...

    def cache_delete(self, *args: P.args, **kwargs: P.kwargs) -> bool: ...

    def cache_info(self) -> CacheInfo: ...

    def cache_clear(self) -> int: ...

    def cache_parameters(self) -> dict[str, Any]: ...


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

    As in diskcache, passing the function itself as ``name`` (``@cache.memoize`` without
    parentheses) raises ``TypeError``.

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
        raise TypeError("name cannot be callable")
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
    )
    if not callable(getattr(cache, "get", None)) or not callable(getattr(cache, "set", None)):
        raise TypeError(f"cache must provide get() and set() like diskstore.Cache, got {cache!r}")
    return MemoizeDecorator(cache, options)


# -- building the wrapper ------------------------------------------------------------------


class _Stats:
    """Per-process hit and miss counters; a lock keeps concurrent increments exact."""

    __slots__ = ("hits", "lock", "misses")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def hit(self) -> None:
        with self.lock:
            self.hits += 1

    def miss(self) -> None:
        with self.lock:
            self.misses += 1

    def reset(self) -> None:
        with self.lock:
            self.hits = self.misses = 0


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
        )
        self.cache = cache
        #: A diskstore cache records which function stored each result (indexed clearing).
        self.native = callable(getattr(cache, "_memo_store", None))
        self.recheck = cache._memo_lookup if self.native else self.lookup
        self.stats = _Stats()
        self.flight: SingleFlight | None = None
        if options.single_flight:
            self.flight = SingleFlight(flight_locks(cache), timeout=options.lock_timeout)

    def lookup(self, key: tuple[Any, ...]) -> Any:
        return self.cache.get(key, default=ENOVAL, retry=True)

    def should_store(self, value: object) -> bool:
        store_if = self.options.store_if
        return self.options.stores and (store_if is None or bool(store_if(value)))

    def save(self, key: tuple[Any, ...], value: object) -> None:
        options = self.options
        if self.native:
            self.cache._memo_store(self.name, key, value, options.expire, options.tag)
        else:
            self.cache.set(key, value, expire=options.expire, tag=options.tag, retry=True)

    def token(self, key: tuple[Any, ...]) -> str | None:
        """The key's single-flight token, stable across processes; None if it has none."""
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
        with self.stats.lock:
            return CacheInfo(self.stats.hits, self.stats.misses, None, currsize)

    def clear(self) -> int:
        if self.native:
            removed = int(self.cache._memo_clear(self.name))
        else:
            removed = sum(1 for k in self._own_keys() if self.cache.delete(k, retry=True))
        self.stats.reset()
        return removed

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
        }


def _memoized(cache: Any, func: Callable[..., Any], options: _Options) -> Any:
    if not callable(func):
        raise TypeError(f"memoize decorates callables, got {func!r}")
    memo = _Memo(cache, func, options)
    wrapper = _async_wrapper(memo) if inspect.iscoroutinefunction(func) else _sync_wrapper(memo)
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
        "cache_set": cache_set,
        "cache_delete": cache_delete,
        "cache_info": memo.info,
        "cache_clear": memo.clear,
        "cache_parameters": memo.parameters,
    }
    for attribute, value in attributes.items():
        setattr(wrapper, attribute, value)
    return wrapper


def _sync_wrapper(memo: _Memo) -> Callable[..., Any]:
    func = memo.func
    build = memo.keys.build
    lookup = memo.lookup
    stats = memo.stats
    flight = memo.flight

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = build(args, kwargs)
        value = lookup(key)
        if value is not ENOVAL:
            stats.hit()
            return value
        return missed(key, args, kwargs)

    def missed(key: tuple[Any, ...], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        def compute() -> Any:
            stats.miss()
            value = func(*args, **kwargs)
            if inspect.isawaitable(value):
                if inspect.iscoroutine(value):
                    value.close()
                raise TypeError(
                    f"{memo.name} returned an awaitable; memoize async functions defined "
                    "with 'async def' so that the result, not the awaitable, is stored"
                )
            if memo.should_store(value):
                memo.save(key, value)
            return value

        token = memo.token(key) if flight is not None else None
        if flight is None or token is None:
            return compute()
        value, computed = flight.run(token, functools.partial(memo.recheck, key), compute)
        if not computed:
            stats.hit()
        return value

    return wrapper


def _async_wrapper(memo: _Memo) -> Callable[..., Any]:
    func = memo.func
    build = memo.keys.build
    stats = memo.stats
    flight = memo.flight

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = build(args, kwargs)
        value = await asyncio.to_thread(memo.lookup, key)
        if value is not ENOVAL:
            stats.hit()
            return value

        async def compute() -> Any:
            stats.miss()
            value = await func(*args, **kwargs)
            if memo.should_store(value):
                await asyncio.to_thread(memo.save, key, value)
            return value

        token = memo.token(key) if flight is not None else None
        if flight is None or token is None:
            return await compute()
        value, computed = await flight.run_async(
            token, functools.partial(memo.recheck, key), compute
        )
        if not computed:
            stats.hit()
        return value

    return wrapper
