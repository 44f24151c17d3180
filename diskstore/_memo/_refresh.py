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


def _stored(memo: Memo, key: tuple[Any, ...], value: Any, overwrite: bool) -> Any:
    """Store *value* if it should be; with ``round_trip``, return it as it reads back.

    *overwrite* says a stored result is likely replaced (a refresh, or one too old).
    """
    if not memo.should_store(value):
        return value
    memo.save(key, value)
    stored_at = getattr(memo.cache, "stored_at", None)
    if overwrite and stored_at is not None:
        # An overwrite's store time is written lazily; reading it writes it, so other
        # processes judge the new result's age right once the single-flight lock is free.
        stored_at(key, retry=True)
    if memo.round_trip:
        reloaded = memo.recheck(key)
        if reloaded is not ENOVAL:
            return reloaded
    return value


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


def call(
    memo: Memo,
    key: tuple[Any, ...],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    max_age: float | None,
    *,
    looked: bool = False,
    refresh: bool = False,
) -> Any:
    """Return a result at most *max_age* seconds old, computing it if needed (see above).

    *looked* says the caller already looked the key up (and will not use what it found);
    *refresh* counts a computation as a refresh rather than a miss.
    """
    report = memo.report
    if max_age is not None and not looked:
        value = fresh_lookup(memo, key, max_age)()
        if value is not ENOVAL:
            report.hit(key)
            return value

    def compute() -> Any:
        value = memo.adopted(key, args, kwargs)
        if value is not ENOVAL:
            report.hit(key)
            return value
        start = time.perf_counter()
        value = memo.func(*args, **kwargs)
        seconds = time.perf_counter() - start
        if type(value) not in _PLAIN:
            _not_awaitable(memo, value)
        (report.refreshed if refresh else report.miss)(key, seconds)
        return _stored(memo, key, value, refresh or max_age != math.inf)

    flight = memo.flight
    token = memo.token(key) if flight is not None else None
    if flight is None or token is None:
        return compute()
    value, computed = flight.run(token, fresh_lookup(memo, key, max_age, again=True), compute)
    if not computed and not refresh:
        report.hit(key)
    return value


async def call_async(
    memo: Memo,
    key: tuple[Any, ...],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    max_age: float | None,
    *,
    looked: bool = False,
    refresh: bool = False,
) -> Any:
    """``call`` for ``async def`` functions; cache I/O runs in threads."""
    report = memo.report
    if max_age is not None and not looked:
        value = await asyncio.to_thread(fresh_lookup(memo, key, max_age))
        if value is not ENOVAL:
            report.hit(key)
            return value

    async def compute() -> Any:
        value = await asyncio.to_thread(memo.adopted, key, args, kwargs)
        if value is not ENOVAL:
            report.hit(key)
            return value
        start = time.perf_counter()
        value = await memo.func(*args, **kwargs)
        seconds = time.perf_counter() - start
        (report.refreshed if refresh else report.miss)(key, seconds)
        return await asyncio.to_thread(_stored, memo, key, value, refresh or max_age != math.inf)

    flight = memo.flight
    token = memo.token(key) if flight is not None else None
    if flight is None or token is None:
        return await compute()
    lookup = fresh_lookup(memo, key, max_age, again=True)
    value, computed = await flight.run_async(token, lookup, compute)
    if not computed and not refresh:
        report.hit(key)
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
        call(self.memo, key, args, kwargs, self.after, looked=True, refresh=True)

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
            await call_async(memo, key, args, kwargs, self.after, looked=True, refresh=True)
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
