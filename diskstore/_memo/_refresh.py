"""How a memoized call gets its result: by age, on demand, and by revalidating in background.

Three ways a stored result can be judged too old, all built on one computation path
(call, time, store unless ``store_if`` says no, optionally reload):

- ``f.max_age(seconds)(*args)`` accepts a stored result at most that old and otherwise
  computes, as a miss, under single flight;
- ``f.refresh(*args)`` always computes and stores;
- ``memoize(refresh_after=S)``: a hit older than ``S`` seconds (and not expired) is returned
  at once, and one background computation replaces it: a thread per refreshed key for plain
  functions, a task on the running loop for ``async def`` ones. Within a process a key has at
  most one refresh in flight; across processes the single-flight lock serializes them, and
  each one first looks at the stored result again, so a result another process just
  refreshed is not computed twice. A refresh that raises keeps the stored result and logs
  the error (see :mod:`diskstore._common._hooks`). The interpreter waits for running refresh
  threads at exit, so a short-lived process does not lose the result it started computing.

The age of a result is read from the row's store time (``Cache.stored_at``), so it is the
same for every process.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .._common import _clock
from .._common._constants import ENOVAL
from .._common._hooks import Reporter
from ._singleflight import SingleFlight


class Memo(Protocol):
    """What these helpers need from a memoized function's shared state."""

    func: Callable[..., Any]
    name: str
    report: Reporter
    flight: SingleFlight | None
    round_trip: bool

    cache: Any

    def lookup(self, key: tuple[Any, ...]) -> Any: ...

    def recheck(self, key: tuple[Any, ...]) -> Any: ...

    def should_store(self, value: object) -> bool: ...

    def save(self, key: tuple[Any, ...], value: object) -> None: ...

    def token(self, key: tuple[Any, ...]) -> str | None: ...

    def stamp(self) -> int | None: ...

    def adopted(
        self, key: tuple[Any, ...], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any: ...


def age(memo: Memo, key: tuple[Any, ...]) -> float | None:
    """Seconds since the stored result of *key* was stored; None when there is none."""
    stored = memo.cache.stored_at(key, retry=True)
    return None if stored is None else max(0.0, _clock.now() - stored)


def fresh_lookup(
    memo: Memo, key: tuple[Any, ...], max_age: float | None, *, again: bool = False
) -> Callable[[], Any]:
    """A lookup that finds the stored result only when at most *max_age* seconds old.

    ``math.inf`` accepts any age; ``None`` accepts nothing (a forced refresh). The age is
    read before the value, so a result replaced in between is judged by the older time.
    *again* marks the second look of a single flight, which cache statistics leave out.
    """
    read = memo.recheck if again else memo.lookup
    if max_age is None:
        return lambda: ENOVAL
    if max_age == math.inf:
        return lambda: read(key)

    def lookup() -> Any:
        seconds = age(memo, key)
        if seconds is None or seconds > max_age:
            return ENOVAL
        return read(key)

    return lookup


#: Result types that are certainly neither generators nor awaitables.
_PLAIN = frozenset({int, float, bool, str, bytes, type(None), tuple, list, dict})


def _not_awaitable(memo: Memo, value: Any) -> None:
    if inspect.isgenerator(value):
        value.close()
        raise TypeError(
            f"{memo.name} returned a generator, which runs as it is iterated and cannot be "
            "stored; memoize a function that returns list(...) of the items instead"
        )
    if inspect.isawaitable(value):
        if inspect.iscoroutine(value):
            value.close()
        raise TypeError(
            f"{memo.name} returned an awaitable; memoize async functions defined "
            "with 'async def' so that the result, not the awaitable, is stored"
        )


@dataclass(frozen=True, slots=True)
class Call:
    """One call of a memoized function, answered with a result at most *max_age* seconds old.

    ``math.inf`` accepts any age, ``None`` none (see :func:`fresh_lookup`). :meth:`run` looks
    the key up, then computes under single flight, storing the result unless ``store_if``
    says no; :meth:`run_async` takes the same steps for ``async def`` functions, with the
    cache I/O in threads. *refresh* counts a computation as a refresh rather than a miss.
    """

    memo: Memo
    key: tuple[Any, ...]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    max_age: float | None
    refresh: bool = False
    #: With *looked*: the cache's :meth:`Memo.stamp` taken before the caller looked.
    since: int | None = None

    def run(self, *, looked: bool = False) -> Any:
        """The result; *looked* says the caller already looked the key up (and will not use
        what it found)."""
        since = self.since
        lookup = self._first_lookup(looked)
        if lookup is not None:
            since = self.memo.stamp()
            value = lookup()
            if self._hit(value):
                return value
        flight = self._flight()
        if flight is None:
            return self._compute()
        unchanged = self._unchanged(since)
        value, computed = flight[0].run(flight[1], self._second_lookup(), self._compute, unchanged)
        return self._shared(value, computed)

    async def run_async(self, *, looked: bool = False) -> Any:
        """:meth:`run` for ``async def`` functions."""
        since = self.since
        lookup = self._first_lookup(looked)
        if lookup is not None:
            since = self.memo.stamp()
            found = await asyncio.to_thread(lookup)
            if self._hit(found):
                return found
        flight = self._flight()
        if flight is None:
            return await self._compute_async()
        lookup, unchanged = self._second_lookup(), self._unchanged(since)
        value, computed = await flight[0].run_async(
            flight[1], lookup, self._compute_async, unchanged
        )
        return self._shared(value, computed)

    def _compute(self) -> Any:
        memo = self.memo
        value = memo.adopted(self.key, self.args, self.kwargs)
        if self._hit(value):
            return value
        start = time.perf_counter()
        value = memo.func(*self.args, **self.kwargs)
        seconds = time.perf_counter() - start
        if type(value) not in _PLAIN:
            _not_awaitable(memo, value)
        self._computed(seconds)
        return self._store(value)

    async def _compute_async(self) -> Any:
        memo = self.memo
        value = await asyncio.to_thread(memo.adopted, self.key, self.args, self.kwargs)
        if self._hit(value):
            return value
        start = time.perf_counter()
        value = await memo.func(*self.args, **self.kwargs)
        self._computed(time.perf_counter() - start)
        return await asyncio.to_thread(self._store, value)

    def _first_lookup(self, looked: bool) -> Callable[[], Any] | None:
        """The lookup before computing: none if the caller looked, or no age is accepted."""
        if looked or self.max_age is None:
            return None
        return fresh_lookup(self.memo, self.key, self.max_age)

    def _unchanged(self, since: int | None) -> Callable[[], bool] | None:
        """Whether nothing was written to the cache since the stamp *since* (None: unknown),
        so that a leader which got its lock at once need not look the key up again."""
        if since is None:
            return None
        stamp = self.memo.stamp
        return lambda: stamp() == since

    def _second_lookup(self) -> Callable[[], Any]:
        """The look a single flight takes again once it holds the key's lock."""
        return fresh_lookup(self.memo, self.key, self.max_age, again=True)

    def _flight(self) -> tuple[SingleFlight, str] | None:
        """The single flight and the key's token, or None when the call computes alone."""
        flight = self.memo.flight
        if flight is None:
            return None
        token = self.memo.token(self.key)
        return None if token is None else (flight, token)

    def _hit(self, value: Any) -> bool:
        """Whether *value* is a result found (counted as a hit); False for ``ENOVAL``."""
        if value is ENOVAL:
            return False
        self.memo.report.hit(self.key)
        return True

    def _computed(self, seconds: float) -> None:
        report = self.memo.report
        (report.refreshed if self.refresh else report.miss)(self.key, seconds)

    def _shared(self, value: Any, computed: bool) -> Any:
        """A single flight's *value*: a hit when another call computed it."""
        if not computed and not self.refresh:
            self.memo.report.hit(self.key)
        return value

    def _store(self, value: Any) -> Any:
        """Store *value* if it should be; with ``round_trip``, return it as it reads back."""
        memo = self.memo
        if not memo.should_store(value):
            return value
        key = self.key
        memo.save(key, value)
        stored_at = getattr(memo.cache, "stored_at", None)
        if stored_at is not None and (self.refresh or self.max_age != math.inf):
            # An overwrite (likely when refreshing, or replacing a result too old) has its
            # store time written lazily; reading it writes it, so other processes judge the
            # new result's age right once the single-flight lock is free.
            stored_at(key, retry=True)
        if memo.round_trip:
            reloaded = memo.recheck(key)
            if reloaded is not ENOVAL:
                return reloaded
        return value


_refreshers: weakref.WeakSet[Refresher] = weakref.WeakSet()


class Refresher:
    """Stale-while-revalidate for one memoized function: at most one refresh per key here."""

    def __init__(self, memo: Memo, after: float) -> None:
        self.memo = memo
        self.after = after
        self._lock = threading.Lock()
        self._running: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        _refreshers.add(self)

    def stale(self, key: tuple[Any, ...]) -> bool:
        seconds = age(self.memo, key)
        return seconds is not None and seconds >= self.after

    def _claim(self, key: tuple[Any, ...]) -> str | None:
        token = self.memo.token(key)
        if token is None:
            return None
        with self._lock:
            if token in self._running:
                return None
            self._running.add(token)
        return token

    def _release(self, token: str) -> None:
        with self._lock:
            self._running.discard(token)

    def start(self, key: tuple[Any, ...], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Begin refreshing *key* in a thread, unless a refresh of it is already running."""
        token = self._claim(key)
        if token is None:
            return
        thread = threading.Thread(
            target=self._run, args=(token, key, args, kwargs), name="diskstore-refresh"
        )
        try:
            thread.start()
        except BaseException:
            self._release(token)
            raise

    def _run(
        self, token: str, key: tuple[Any, ...], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        try:
            self._refresh(key, args, kwargs)
        except Exception:
            self.memo.report.refresh_failed(key)
        finally:
            self._release(token)

    def _refresh(self, key: tuple[Any, ...], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        Call(self.memo, key, args, kwargs, self.after, refresh=True).run(looked=True)

    def start_async(
        self, key: tuple[Any, ...], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """Begin refreshing *key* in a task on the running loop."""
        token = self._claim(key)
        if token is None:
            return
        try:
            task = asyncio.get_running_loop().create_task(self._run_async(token, key, args, kwargs))
        except BaseException:
            self._release(token)
            raise
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_async(
        self, token: str, key: tuple[Any, ...], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        memo = self.memo
        try:
            await Call(memo, key, args, kwargs, self.after, refresh=True).run_async(looked=True)
        except Exception:
            memo.report.refresh_failed(key)
        finally:
            self._release(token)

    def _forget_after_fork(self) -> None:
        self._lock = threading.Lock()
        self._running = set()
        self._tasks = set()


def _reset_after_fork() -> None:
    for refresher in list(_refreshers):
        refresher._forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
