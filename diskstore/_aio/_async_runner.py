"""The worker pool behind :class:`~diskstore.AsyncCache`, and how it batches reads.

Every blocking call runs in a small dedicated thread pool. ``get`` calls started during one
iteration of the event loop are queued per loop and run back to back in one worker job;
their results return to the loop in small groups, so a burst of reads costs the loop one
future per read rather than one executor hand-off per read. ``async for`` fetches keys in
chunks the same way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

from .._caching._cache import Cache
from .._common._exceptions import CacheClosedError
from .._memo._singleflight import SingleFlight

T = TypeVar("T")

#: Worker threads of the executor an AsyncCache creates for itself. SQLite serializes
#: writers anyway, and a few readers saturate a disk; more threads only add contention.
DEFAULT_MAX_WORKERS = 4
#: Keys fetched per trip to the executor while iterating with ``async for``.
_KEYS_PER_TRIP = 256
#: Results of a batch of reads handed back to the event loop at a time.
_READS_PER_DELIVERY = 16
#: Prefix of single-flight tokens, so they never collide with memoize's tokens.
_TOKEN_PREFIX = "diskstore.AsyncCache.get_or_set"


class _Runner:
    """What an AsyncCache and its namespace views share: the executor, the cache, the state.

    The cache is opened lazily, by the first operation and so in a worker thread, unless
    one was given already open.
    """

    def __init__(
        self,
        cache: Cache | None,
        opener: Callable[[], Cache] | None,
        executor: concurrent.futures.ThreadPoolExecutor,
        *,
        owns_executor: bool,
        lock_timeout: float | None,
    ) -> None:
        self.executor = executor
        self.owns_cache = cache is None
        self.owns_executor = owns_executor
        self.closed = False
        self._cache = cache
        self._opener = opener
        self._lock_timeout = lock_timeout
        self._flight: SingleFlight | None = None
        self._open_lock = threading.Lock()
        self._lock = threading.Lock()
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._reads: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[_Read]] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def opened(self) -> Cache | None:
        """The cache if it is open already, else None (never opens it)."""
        return self._cache

    def root(self) -> Cache:
        """The cache, opened on the calling thread if no operation has opened it yet."""
        cache = self._cache
        if cache is None:
            with self._open_lock:
                if self._cache is None:
                    assert self._opener is not None  # set whenever no cache was given
                    self._cache = self._opener()
                cache = self._cache
        return cache

    def flight(self) -> SingleFlight:
        """The single-flight registry of ``get_or_set``, one per cache directory."""
        flight = self._flight
        if flight is None:
            directory = self.root().directory
            with self._lock:
                if self._flight is None:
                    lock_dir = os.path.join(directory, "cache.db-locks")
                    self._flight = SingleFlight(lock_dir, timeout=self._lock_timeout)
                flight = self._flight
        return flight

    def submit(
        self, func: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        with self._lock:
            if self.closed:
                raise CacheClosedError("the AsyncCache was closed")
            future = self.executor.submit(func, *args, **kwargs)
            self._pending.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)

    async def call(self, func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``func(*args, **kwargs)`` in the executor and await its result."""
        return await asyncio.wrap_future(self.submit(func, *args, **kwargs))

    # Reads are batched (see the module docstring). Writes are not: one that waits for a
    # busy database would hold up every read queued behind it.

    def read(self, func: Callable[[], Any]) -> asyncio.Future[Any]:
        """Queue ``func()`` (a read) for the next batch; return the future of its result."""
        loop = asyncio.get_running_loop()
        if self.closed:
            raise CacheClosedError("the AsyncCache was closed")
        with self._lock:
            queue = self._reads.get(loop)
            if queue is None:
                queue = self._reads[loop] = []
        future = loop.create_future()
        queue.append((future, func))
        if len(queue) == 1:
            loop.call_soon(self._flush_reads, loop, queue)
        return future

    def _flush_reads(self, loop: asyncio.AbstractEventLoop, queue: list[_Read]) -> None:
        batch = queue[:]
        queue.clear()
        if not batch:
            return  # close() flushed it already
        try:
            self.submit(_run_reads, loop, batch)
        except (CacheClosedError, RuntimeError) as exc:  # closed, or executor shut down
            for future, _ in batch:
                if not future.done():
                    future.set_exception(type(exc)(*exc.args))

    async def close(self) -> None:
        if self.closed:
            return
        # Reads this loop queued before close() are calls in flight too: send them now.
        loop = asyncio.get_running_loop()
        with self._lock:
            queue = self._reads.get(loop)
        if queue:
            self._flush_reads(loop, queue)
        with self._lock:
            if self.closed:
                return
            self.closed = True
            pending = list(self._pending)

        def finish() -> None:
            # Every pending call was queued before this one and the pool takes work in
            # order, so each has started on some worker by now: waiting cannot deadlock.
            concurrent.futures.wait(pending)
            if self.owns_cache and self._cache is not None:
                self._cache.close()

        try:
            await asyncio.shield(asyncio.wrap_future(self.executor.submit(finish)))
        finally:
            if self.owns_executor:
                # The workers exit once the queue (ending with ``finish``) is drained.
                self.executor.shutdown(wait=False)


_Read = tuple["asyncio.Future[Any]", Callable[[], Any]]


def _invoke(target: Callable[[], Cache], method: str, args: Any, kwargs: Any) -> Any:
    """Call ``target().method(*args, **kwargs)``: runs in a worker thread."""
    return getattr(target(), method)(*args, **kwargs)


def _run_reads(loop: asyncio.AbstractEventLoop, batch: list[_Read]) -> None:
    """Run a batch of reads in a worker thread, handing results back as they come."""
    done: list[tuple[asyncio.Future[Any], bool, Any]] = []
    try:
        for future, func in batch:
            if future.cancelled():  # a stale answer only costs running the read
                continue
            try:
                done.append((future, True, func()))
            except BaseException as exc:
                done.append((future, False, exc))
            if len(done) >= _READS_PER_DELIVERY:
                loop.call_soon_threadsafe(_deliver, done)
                done = []
                # Let the loop thread take the GIL now if it is waiting for it, rather
                # than after the interpreter's switch interval.
                time.sleep(0)
        if done:
            loop.call_soon_threadsafe(_deliver, done)
    except RuntimeError:
        pass  # the event loop was closed: nobody is waiting any more


def _deliver(done: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in done:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class _KeyIterator:
    """``async for`` over a cache's keys, fetched in chunks in the executor."""

    def __init__(self, runner: _Runner, source: Callable[[], Iterator[Any]]) -> None:
        self._runner = runner
        self._source = source
        self._keys: Iterator[Any] | None = None
        self._buffer: deque[Any] = deque()
        self._exhausted = False
        # Two concurrent __anext__ calls must not resume the generator in two threads.
        self._lock = threading.Lock()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        if not self._buffer:
            if self._exhausted:
                raise StopAsyncIteration
            chunk = await self._runner.call(self._fetch)
            if not chunk:
                self._exhausted = True
                raise StopAsyncIteration
            self._buffer.extend(chunk)
        return self._buffer.popleft()

    def _fetch(self) -> list[Any]:
        with self._lock:
            if self._keys is None:
                self._keys = self._source()
            return list(itertools.islice(self._keys, _KEYS_PER_TRIP))
