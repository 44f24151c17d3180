"""The types a memoized function presents: its protocols and ``CacheInfo``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Concatenate, NamedTuple, ParamSpec, Protocol, TypeVar, overload

from ._backend import Backend

P = ParamSpec("P")
P2 = ParamSpec("P2")
R = TypeVar("R")
T = TypeVar("T")
S = TypeVar("S")
R_co = TypeVar("R_co", covariant=True)
M = TypeVar("M", bound="_Binds[Any, Any]")


class _CacheCounts(NamedTuple):
    hits: int
    misses: int
    maxsize: int | None
    currsize: int


class CacheInfo(_CacheCounts):
    """Statistics of one memoized function, shaped like :func:`functools.lru_cache`'s.

    ``hits`` and ``misses`` count this process's calls since the last ``cache_clear()``: a
    miss is a call that ran the function, a hit one answered without running it (from the
    cache, or by waiting for a concurrent call that ran it). A diskstore cache also records
    them for every process together (``Cache.function_stats()``). ``currsize`` is the number of
    entries stored for the function, by every process. ``maxsize`` is always ``None``: the
    cache's own size limit and eviction policy bound the entries.

    Beyond the tuple, ``time_saved`` is the compute time (seconds) this process's hits
    avoided: a result's compute time when this process computed it, else the mean of
    this process's misses (see :mod:`diskstore._common._hooks`).
    """

    time_saved: float = 0.0

    def __new__(
        cls,
        hits: int,
        misses: int,
        maxsize: int | None,
        currsize: int,
        time_saved: float = 0.0,
    ) -> CacheInfo:
        info = super().__new__(cls, hits, misses, maxsize, currsize)
        info.time_saved = time_saved
        return info


#: What memoize needs from a cache (see :mod:`diskstore._memo._backend`).
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


class _Binds(Protocol[P, R_co]):
    """How a memoized function binds, as a method does: reached through its class it is
    itself; through an instance, a :class:`BoundMemoizedFunction` returning ``R_co``."""

    @overload
    def __get__(self: M, instance: None, owner: type[Any] | None = None, /) -> M: ...

    @overload
    def __get__(
        self: _Binds[Concatenate[S, P2], R_co], instance: S, owner: type[Any] | None = None, /
    ) -> BoundMemoizedFunction[P2, R_co]: ...


class MemoizedFunction(_Binds[P, R], Protocol[P, R]):
    """A memoized function: call it like the original, plus the cache-management methods.

    For a method memoized in its class body, the methods below that take the call's
    arguments take ``self`` too: ``Class.method.cache_delete(obj, 1)``.
    """

    __wrapped__: Callable[P, R]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    def __cache_key__(self, *args: P.args, **kwargs: P.kwargs) -> tuple[Any, ...]:
        """Return the key the call with these arguments reads and writes."""
        ...

    def uncached(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call the function without reading or writing the cache."""
        ...

    def refresh(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Compute the result of the call now, store it and return it."""
        ...

    def max_age(self, seconds: float, /) -> Callable[P, R]:
        """Return the function, accepting stored results at most *seconds* old."""
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
        """Remove every stored result of this function, zero its counts; return how many.

        The counts are this process's (``cache_info()``) and those the cache records for
        every process (``Cache.function_stats()``).
        """
        ...

    def cache_parameters(self) -> dict[str, Any]:
        """Return the options the function was memoized with."""
        ...


class AsyncMemoizedFunction(_Binds[P, Coroutine[Any, Any, T]], Protocol[P, T]):
    """A memoized ``async def`` function; the management methods are synchronous."""

    __wrapped__: Callable[P, Awaitable[T]]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, T]: ...

    def __cache_key__(self, *args: P.args, **kwargs: P.kwargs) -> tuple[Any, ...]: ...

    def uncached(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[T]: ...

    def refresh(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, T]: ...

    def max_age(self, seconds: float, /) -> Callable[P, Coroutine[Any, Any, T]]: ...

    def cache_set(self, value: T, /, *args: P.args, **kwargs: P.kwargs) -> None: ...

    def cache_delete(self, *args: P.args, **kwargs: P.kwargs) -> bool: ...

    def cache_info(self) -> CacheInfo: ...

    def cache_clear(self) -> int: ...

    def cache_parameters(self) -> dict[str, Any]: ...
