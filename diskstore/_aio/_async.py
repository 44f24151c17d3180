"""The async API: :class:`AsyncCache`, an awaitable facade over a :class:`~diskstore.Cache`.

SQLite calls and file I/O block, so none of them runs on the event loop's thread, not even
opening the cache: every operation is handed to a small dedicated thread pool (4 workers
unless another executor is given), and the first one opens the cache there. Each worker
thread has its own SQLite connection, which the core opens lazily per thread.

Concurrent ``get`` calls are batched: those started during one iteration of the loop run
back to back in one worker job, and their results return in small groups. A burst of a
thousand gets thus costs the loop a future per get instead of an executor hand-off per
get, and only one worker contends with the loop thread for the GIL, so other tasks keep
running during the burst. Writes go one job each.

``get_or_set`` deduplicates concurrent computations of one missing key through
:class:`~diskstore._memo._singleflight.SingleFlight`, the mechanism behind ``memoize``: tasks of
one event loop share one computation, and other processes wait on a per-key lock file in
``<directory>/locks``. The shared computation is shielded, so cancelling a waiting task
never cancels it nor leaks its lock.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import functools
import os
from collections.abc import AsyncIterator, Callable, Collection
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from .._caching._base import _check_expire, _check_tag
from .._caching._cache import Cache
from .._common._constants import ENOVAL
from .._common._forwarding import Awaiting
from .._memo._hashing import stable_hash
from .._memo._memoize import DEFAULT_LOCK_TIMEOUT, MemoizeDecorator, memoize
from .._memo._memoize_extras import MemoizeExtras
from .._memo._singleflight import produce
from ._async_runner import _TOKEN_PREFIX, DEFAULT_MAX_WORKERS, _invoke, _KeyIterator, _Runner

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["DEFAULT_MAX_WORKERS", "AsyncCache"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


#: The Cache's methods, awaited: one worker-thread job per call, or (for gets and reads)
#: queued with the loop iteration's other reads.
_threaded = Awaiting(Cache, "_call")
_batched = Awaiting(Cache, "_read")


class AsyncCache:
    """An asyncio facade over :class:`~diskstore.Cache`: the same methods, awaited.

    >>> import asyncio, tempfile
    >>> async def main():
    ...     async with AsyncCache(tempfile.mkdtemp()) as cache:
    ...         await cache.set("answer", 42)
    ...         hits = await cache.incr("hits")
    ...         value = await cache.get_or_set("computed", lambda: 6 * 7)
    ...         return await cache.get("answer"), hits, value, [k async for k in cache]
    >>> asyncio.run(main())
    (42, 1, 42, ['answer', 'hits', 'computed'])

    ``AsyncCache(directory, **settings)`` opens a :class:`Cache` with those arguments (the
    same as ``Cache``'s, ``timeout`` and ``disk`` included); ``AsyncCache(cache=cache)``
    wraps one already open. Blocking work runs in ``executor``, a
    :class:`~concurrent.futures.ThreadPoolExecutor` (by default a private one with
    :data:`DEFAULT_MAX_WORKERS` threads), never on the event loop's thread.

    :meth:`close` (or leaving ``async with``) waits for calls in flight, then closes the
    cache and shuts the executor down, but only those the AsyncCache created itself: a
    cache or executor passed in stays open for its owner to close.

    ``lock_timeout`` bounds how long :meth:`get_or_set` waits for another task's or
    process's computation of the same key before computing itself (``None``: no bound).

    Cancelling a task that awaits an operation stops the wait; an operation a worker has
    already started still completes.
    """

    _view: Cache | None  # a namespace view; None for the cache itself
    _runner: _Runner

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        cache: Cache | None = None,
        executor: concurrent.futures.ThreadPoolExecutor | None = None,
        lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
        **settings: Any,
    ) -> None:
        if cache is not None:
            if not isinstance(cache, Cache):
                raise TypeError(f"cache must be a diskstore.Cache or None, not {cache!r}")
            if directory is not None or settings:
                given = ["directory"] if directory is not None else []
                raise TypeError(
                    "pass either cache= or a directory and settings, not both (got cache= "
                    f"and {', '.join(given + sorted(settings))})"
                )
        if directory is not None and not isinstance(directory, (str, os.PathLike)):
            raise TypeError(f"directory must be a path or None, not {directory!r}")
        if executor is not None and not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            raise TypeError(
                f"executor must be a concurrent.futures.ThreadPoolExecutor or None, not "
                f"{executor!r}"
            )
        if lock_timeout is not None:
            if type(lock_timeout) not in (int, float):
                raise TypeError(
                    f"lock_timeout must be a number of seconds or None, not {lock_timeout!r}"
                )
            if not lock_timeout > 0:
                raise ValueError(f"lock_timeout must be positive seconds, not {lock_timeout!r}")
        opener = None if cache is not None else functools.partial(Cache, directory, **settings)
        owns_executor = executor is None
        if executor is None:
            executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=DEFAULT_MAX_WORKERS, thread_name_prefix="diskstore-async"
            )
        self._view = None
        self._runner = _Runner(
            cache, opener, executor, owns_executor=owns_executor, lock_timeout=lock_timeout
        )

    def _target(self) -> Cache:
        """The Cache this object operates on, opening it (on the calling thread) if needed."""
        view = self._view
        return view if view is not None else self._runner.root()

    async def _call(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        """Await ``<the cache>.method(*args, **kwargs)``, run in a worker thread."""
        return await self._runner.call(_invoke, self._target, method, args, kwargs)

    async def _read(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        """As :meth:`_call`, for a read: queued for the next batch of reads."""
        target = self._target
        return await self._runner.read(lambda: getattr(target(), method)(*args, **kwargs))

    # -- properties -------------------------------------------------------------------------
    @property
    def cache(self) -> Cache:
        """The synchronous :class:`Cache` (or namespace view) this facade operates on.

        For what does not block, such as reading settings (``acache.cache.size_limit``).
        The first operation opens the cache in a worker thread; reading this property
        before any operation opens it on the calling thread instead.
        """
        return self._target()

    @property
    def directory(self) -> str:
        """The cache directory (opens the cache, like :attr:`cache`, if not yet open)."""
        return self._target().directory

    @property
    def executor(self) -> concurrent.futures.ThreadPoolExecutor:
        """The thread pool that runs every blocking call."""
        return self._runner.executor

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called (on this object or a namespace view of it)."""
        return self._runner.closed

    def __repr__(self) -> str:
        cache = self._view if self._view is not None else self._runner.opened
        where = repr(cache) if cache is not None else "not yet opened"
        state = ", closed" if self._runner.closed else ""
        return f"<{type(self).__name__} {where}{state}>"

    # -- running blocking code --------------------------------------------------------------
    async def run(self, func: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``func(*args, **kwargs)`` in the cache's executor and return its result.

        For what has no awaitable method, such as a transaction that must run in one
        thread: ``await acache.run(transfer, acache.cache)``. The caller's context
        variables are visible to ``func``.
        """
        context = contextvars.copy_context()
        return await self._runner.call(context.run, func, *args, **kwargs)

    # -- the Cache's methods, awaited -------------------------------------------------------
    # Each runs the Cache method of the same name in a worker thread and takes its
    # parameters and docstring (see diskstore._common._forwarding). Gets and reads are
    # batched with the other reads of the loop iteration; everything else is one job each.
    get = _batched(Cache.get)
    read = _batched(Cache.read)
    peekitem = _threaded(Cache.peekitem)
    set = _threaded(Cache.set)
    add = _threaded(Cache.add)
    touch = _threaded(Cache.touch)
    incr = _threaded(Cache.incr)
    decr = _threaded(Cache.decr)
    delete = _threaded(Cache.delete)
    pop = _threaded(Cache.pop)
    clear = _threaded(Cache.clear)
    evict = _threaded(Cache.evict)
    expire = _threaded(Cache.expire)
    cull = _threaded(Cache.cull)
    push = _threaded(Cache.push)
    pull = _threaded(Cache.pull)
    peek = _threaded(Cache.peek)
    stats = _threaded(Cache.stats)
    volume = _threaded(Cache.volume)
    check = _threaded(Cache.check)
    reset = _threaded(Cache.reset)
    create_tag_index = _threaded(Cache.create_tag_index)
    drop_tag_index = _threaded(Cache.drop_tag_index)

    # -- iteration and maintenance ----------------------------------------------------------
    def __aiter__(self) -> AsyncIterator[Any]:
        """Iterate keys in insertion order, like ``iter(cache)``, a chunk per thread trip."""
        target = self._target
        return _KeyIterator(self._runner, lambda: iter(target()))

    def iterkeys(self, reverse: bool = False) -> AsyncIterator[Any]:
        """Iterate keys in database sort order (``async for``); see :meth:`Cache.iterkeys`."""
        if reverse not in (True, False):
            raise TypeError(f"reverse must be a bool, not {reverse!r}")
        target = self._target
        return _KeyIterator(self._runner, lambda: target().iterkeys(reverse))

    async def namespace(self, name: str) -> AsyncCache:
        """Return an async view of the namespace *name*; see :meth:`Cache.namespace`.

        The view shares this object's executor and open state: closing either closes both.
        """
        view_cache: Cache = await self._call("namespace", name)
        view = object.__new__(type(self))
        view._view = view_cache
        view._runner = self._runner
        return view

    # -- get_or_set -------------------------------------------------------------------------
    async def get_or_set(
        self,
        key: Any,
        factory: Callable[[], Any],
        expire: float | None = None,
        *,
        tag: Any = None,
        retry: bool = False,
    ) -> Any:
        """Return the value of *key*; if it is missing, compute it with *factory* and store it.

        ``factory`` takes no arguments; it may be a coroutine function (awaited on the
        loop) or a plain callable (run in a worker thread; an awaitable it returns is
        awaited). Concurrent callers of one missing key, in this event loop or in other
        processes using the directory, wait for a single computation and return its
        result. A caller that is cancelled stops waiting; the computation goes on, stores
        its result and serves the others. If the computation raises, its caller gets the
        exception and the waiters take their own turn.

        ``expire`` and ``tag`` are stored with the value, as by :meth:`set`.
        """
        if not callable(factory):
            raise TypeError(f"factory must be a callable taking no arguments, not {factory!r}")
        _check_expire(expire, 0.0)  # the core's checks: arguments refused before computing
        _check_tag(tag)
        value = await self.get(key, ENOVAL, retry=retry)
        if value is not ENOVAL:
            return value
        call = self._call

        async def compute() -> Any:
            result = await produce(factory)
            await call("set", key, result, expire, tag=tag, retry=retry)
            return result

        cache = self._target()  # opened by the get above: no I/O here
        try:
            token = stable_hash((_TOKEN_PREFIX, cache.namespace_name, key))
        except TypeError:
            # No stable encoding: deduplication is impossible, storing may still work.
            return await compute()
        lookup = functools.partial(cache.get, key, ENOVAL, retry=True)
        value, _ = await self._runner.flight().run_async(token, lookup, compute)
        return value

    # -- memoize ----------------------------------------------------------------------------

    def memoize(
        self,
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
        """Memoize a function in this cache, as :meth:`Cache.memoize` does.

        Meant for ``async def`` functions: their wrapper awaits lookups and stores run in
        threads, and concurrent calls with the same arguments await one run of the body.
        A plain function gets the synchronous wrapper, which blocks its caller. Decorating
        opens the cache on the calling thread if no operation has opened it yet.
        """
        return memoize(
            self._target(),
            cast(Any, name),
            typed,
            expire,
            tag,
            ignore,
            version=version,
            hash_source=hash_source,
            key=key,
            store_if=store_if,
            single_flight=single_flight,
            lock_timeout=lock_timeout,
            **extras,
        )

    # -- lifecycle --------------------------------------------------------------------------
    async def close(self) -> None:
        """Wait for calls in flight, then close what this object opened; idempotent.

        Later calls raise :class:`~diskstore.CacheClosedError`. A cache or executor passed
        to the constructor is left open.
        """
        await self._runner.close()

    async def __aenter__(self) -> AsyncCache:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
