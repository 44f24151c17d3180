"""Single flight: when many callers miss the same key at once, compute it once.

Within a process, callers of one key meet at a :class:`threading.Event` (made only when a
second caller comes) or, in async code, at one shared task per event loop: the first
becomes the *leader*, the rest wait for it and then read what it stored. Across processes,
the leader also holds a per-key lock from the backend (see :mod:`diskstore._memo._backend`): one
byte of ``cache.db-flight`` held with a POSIX record lock for a cache on disk (see
:mod:`diskstore._memo._rangelock`; two system calls when nobody else computes the key), a lock
file ``<lock_dir>/<token>.lock`` through :class:`filelock.FileLock` where record locks are
not available, or a Redis lock for ``RedisCache``; only leaders take locks, so a crowd of
threads costs one lock, not one each. A leader that had to wait for its lock looks the key
up again, since the process it waited for has probably stored it. One that got its lock at
once looks again too unless the cache's change number shows that nothing was written since
it looked: the process that computed the key may have stored it and let go of its lock in
between (lock files and Redis locks cannot tell whether they waited, so their leaders
always look again).

Failure and crash handling:

- a leader that raises releases everyone; waiters then take their own turn (one becomes
  the next leader), so every caller gets either a value or an exception it caused itself;
- a waiter gives up after ``timeout`` seconds and computes without waiting any longer;
- a leader process that dies (even by SIGKILL) loses its lock with it: the kernel drops
  record locks and ``flock`` locks when the process's file descriptors close, so waiters
  proceed;
- a leader that calls itself with the same key (recursion, even through another wrapper
  of the same function) computes directly instead of waiting for itself.

Lock files, where used, stay bounded: the leader deletes its lock file while still holding the lock,
after the result is stored. A process that was already waiting on that file and gets the
lock afterwards either sees the file is gone and retries on the new one (filelock checks
this) or finds the stored result; at worst, when nothing was stored, it computes at the same
time as a newcomer, which only costs time. A file left by a killed process is reused and
removed by the next computation of the same key. On Windows, filelock deletes lock files
itself.
"""

from __future__ import annotations

import functools
import os
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .._common._constants import ENOVAL
from ._backend import FlightLock, LockFactory

if TYPE_CHECKING:
    # asyncio and filelock load on first use: a plain ``import diskstore`` needs neither.
    import asyncio

    import filelock

__all__ = ["SingleFlight"]

T = TypeVar("T")

#: File mode of lock files: other users have no business locking our computations.
_LOCK_FILE_MODE = 0o600
_LOCK_DIR_MODE = 0o700

_instances: weakref.WeakSet[SingleFlight] = weakref.WeakSet()


_thread_state = threading.local()


def _held_by_this_thread() -> set[str]:
    """Paths of the lock files the current thread holds (synchronous path only)."""
    held: set[str] | None = getattr(_thread_state, "held", None)
    if held is None:
        held = _thread_state.held = set()
    return held


class _Flight:
    """One in-process computation of one key, shared by every thread that wants it.

    The event waiters wait on is made by the first waiter (under the registry's mutex), so
    a computation nobody waits for allocates none.
    """

    __slots__ = ("done", "ok", "owner", "value")

    def __init__(self, owner: int) -> None:
        self.done: threading.Event | None = None
        self.owner = owner
        self.ok = False
        self.value: Any = None


class _Handoff:
    """Who releases a file lock acquired in a worker thread whose awaiter was cancelled."""

    __slots__ = ("abandoned", "lock", "mutex")

    def __init__(self) -> None:
        self.mutex = threading.Lock()
        self.abandoned = False
        self.lock: FlightLock | None = None


class FileFlightLock:
    """A single-flight lock backed by a lock file, ``<lock_dir>/<token>.lock``."""

    __slots__ = ("_lock", "ident", "lock_dir")

    def __init__(self, lock_dir: str, token: str) -> None:
        self.lock_dir = lock_dir
        self.ident = os.path.join(lock_dir, token + ".lock")
        self._lock: filelock.BaseFileLock | None = None

    def acquire(self, timeout: float | None) -> bool:
        """Take the lock file; False when waiting timed out or the directory is unusable."""
        import filelock

        try:
            os.makedirs(self.lock_dir, mode=_LOCK_DIR_MODE, exist_ok=True)
            lock = filelock.FileLock(self.ident, mode=_LOCK_FILE_MODE, thread_local=False)
            lock.acquire(timeout=-1 if timeout is None else timeout)
        except filelock.Timeout:
            return False
        except OSError:
            # An unwritable directory only costs deduplication across processes.
            return False
        self._lock = lock
        return True

    def release(self) -> None:
        """Delete the lock file while still holding it (keeps lock files bounded), release."""
        lock, self._lock = self._lock, None
        if lock is None:
            return
        if os.name == "posix":
            try:
                os.unlink(lock.lock_file)
            except OSError:
                pass
        lock.release()


class SingleFlight:
    """Deduplicate concurrent computations of the same key across threads and processes.

    ``locks`` is where cross-process locks come from: a directory for per-key lock files
    (created on first use, mode 0700), a factory of :class:`~diskstore._memo._backend.FlightLock`
    (a Redis lock, say), or ``None`` to deduplicate only threads of this process.
    ``timeout`` bounds every wait, ``None`` meaning no bound.

    ``lookup`` returns the stored value or ``ENOVAL``; ``compute`` computes *and stores* it
    (storing inside ``compute`` is what lets waiters find the value afterwards). Both ``run``
    and ``run_async`` return ``(value, computed)`` where ``computed`` says whether this call
    ran ``compute``.
    """

    def __init__(self, locks: str | LockFactory | None, *, timeout: float | None) -> None:
        if isinstance(locks, str):
            lock_dir = locks
            self._locks: LockFactory | None = functools.partial(FileFlightLock, lock_dir)
        else:
            self._locks = locks
        self._timeout = timeout
        self._reset()
        _instances.add(self)

    def _reset(self) -> None:
        self._mutex = threading.Lock()
        self._flights: dict[str, _Flight] = {}
        self._loop_flights: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, asyncio.Task[tuple[Any, bool]]]
        ] = weakref.WeakKeyDictionary()

    # -- threads ---------------------------------------------------------------------------

    def run(
        self,
        token: str,
        lookup: Callable[[], Any],
        compute: Callable[[], T],
        unchanged: Callable[[], bool] | None = None,
    ) -> tuple[Any, bool]:
        """Return ``(value, computed)``, running ``compute`` at most once per concurrent crowd.

        *unchanged* says whether nothing was stored since the caller looked the key up (see
        :func:`_may_be_stored`); without it, a leader always looks again.
        """
        me = threading.get_ident()
        while True:
            with self._mutex:
                flight = self._flights.get(token)
                leading = flight is None
                if flight is None:
                    flight = self._flights[token] = _Flight(me)
                    done = None
                else:
                    done = flight.done
                    if done is None and flight.owner != me:
                        done = flight.done = threading.Event()
            if leading:
                return self._lead(token, flight, lookup, compute, unchanged)
            if done is None:  # our own computation: a recursive call with the same key
                return compute(), True
            if not done.wait(self._timeout):
                return compute(), True
            if flight.ok:
                value = lookup()
                # Not stored (store_if said no, expire=0, or already evicted): share the
                # leader's object rather than compute again.
                return (flight.value if value is ENOVAL else value), False
            # The leader failed: loop and take a turn (possibly as the next leader).

    def _lead(
        self,
        token: str,
        flight: _Flight,
        lookup: Callable[[], Any],
        compute: Callable[[], T],
        unchanged: Callable[[], bool] | None,
    ) -> tuple[Any, bool]:
        try:
            held = _held_by_this_thread()
            # Already held by this thread (a nested call of the same key through another
            # memoized wrapper): the key is ours, and waiting would wait for ourselves.
            lock = None if self._locks is None else self._locks(token)
            if lock is not None and (
                (held and lock.ident in held) or not lock.acquire(self._timeout)
            ):
                lock = None
            if lock is not None:
                held.add(lock.ident)
            try:
                # Look again only if the value may have been stored since the caller looked.
                may_be_stored = lock is not None and _may_be_stored(lock, unchanged)
                value: Any = lookup() if may_be_stored else ENOVAL
                computed = value is ENOVAL
                if computed:
                    value = compute()
            finally:
                if lock is not None:
                    held.discard(lock.ident)
                    lock.release()
            flight.value = value
            flight.ok = True
            return value, computed
        finally:
            with self._mutex:
                if self._flights.get(token) is flight:
                    del self._flights[token]
                done = flight.done
            if done is not None:
                done.set()

    # -- asyncio ---------------------------------------------------------------------------

    async def run_async(
        self,
        token: str,
        lookup: Callable[[], Any],
        compute: Callable[[], Awaitable[T]],
        unchanged: Callable[[], bool] | None = None,
    ) -> tuple[Any, bool]:
        """Async ``run``: one shared task per key per event loop; ``lookup`` runs in a thread.

        The shared task is shielded, so cancelling one caller neither cancels the
        computation the others wait for nor leaks its lock.
        """
        import asyncio

        loop = asyncio.get_running_loop()
        with self._mutex:
            flights = self._loop_flights.get(loop)
            if flights is None:
                flights = self._loop_flights[loop] = {}
        while True:
            task = flights.get(token)
            leading = task is None or task.done()
            if task is None or task.done():
                task = loop.create_task(self._lead_async(token, lookup, compute, unchanged))
                flights[token] = task
                task.add_done_callback(functools.partial(self._forget, flights, token))
            elif task is asyncio.current_task():
                return await compute(), True
            try:
                value, computed = await asyncio.shield(task)
            except asyncio.CancelledError:
                if task.cancelled() and not leading:
                    continue  # the shared task was cancelled (loop shutdown), not this caller
                raise
            except Exception:
                if leading:
                    raise
                continue  # the leader failed: take a turn
            if leading:
                return value, computed
            fresh = await asyncio.to_thread(lookup)
            return (value if fresh is ENOVAL else fresh), False

    @staticmethod
    def _forget(
        flights: dict[str, asyncio.Task[tuple[Any, bool]]],
        token: str,
        task: asyncio.Task[tuple[Any, bool]],
    ) -> None:
        if flights.get(token) is task:
            del flights[token]
        if not task.cancelled():
            task.exception()  # mark as retrieved even when every awaiter was cancelled

    async def _lead_async(
        self,
        token: str,
        lookup: Callable[[], Any],
        compute: Callable[[], Awaitable[T]],
        unchanged: Callable[[], bool] | None,
    ) -> tuple[Any, bool]:
        import asyncio

        lock = await self._acquire_async(token)
        try:
            if lock is not None and _may_be_stored(lock, unchanged):
                value = await asyncio.to_thread(lookup)
                if value is not ENOVAL:
                    return value, False
            return await compute(), True
        finally:
            if lock is not None:
                # Shielded so that a second cancellation cannot drop the release job.
                release = asyncio.get_running_loop().run_in_executor(None, lock.release)
                await asyncio.shield(release)

    async def _acquire_async(self, token: str) -> FlightLock | None:
        """Wait for the key's lock in a worker thread, never blocking the event loop."""
        import asyncio

        if self._locks is None:
            return None
        candidate = self._locks(token)
        try_now = getattr(candidate, "try_acquire", None)
        if try_now is not None and try_now():
            return candidate  # free: taken without a worker thread
        handoff = _Handoff()

        def acquire() -> FlightLock | None:
            lock = candidate if candidate.acquire(self._timeout) else None
            with handoff.mutex:
                if handoff.abandoned:
                    if lock is not None:
                        lock.release()
                    return None
                handoff.lock = lock
            return lock

        waiting = asyncio.get_running_loop().run_in_executor(None, acquire)
        try:
            return await asyncio.shield(waiting)
        except asyncio.CancelledError:
            with handoff.mutex:
                handoff.abandoned = True
                lock, handoff.lock = handoff.lock, None
            if lock is not None:
                lock.release()
            raise


def _may_be_stored(lock: FlightLock, unchanged: Callable[[], bool] | None) -> bool:
    """Whether the value may have been stored since the caller looked.

    It may if the lock had to be waited for, or cannot tell (a lock file or a Redis lock),
    but also if it was free: the process that computed the key may have stored it and let
    go of the lock between the caller's lookup and its taking the lock (a descheduled
    caller, on a loaded machine). Only the cache's change number, unchanged since before
    the lookup (*unchanged*), shows that nothing was stored.
    """
    if getattr(lock, "waited", True):
        return True
    return unchanged is None or not unchanged()


def _reset_after_fork() -> None:
    # A child must not wait for flights (or hold locks) whose threads did not survive the fork.
    for instance in list(_instances):
        instance._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


async def produce(factory: Callable[[], Any]) -> Any:
    """Call a ``get_or_set`` factory: coroutine functions on the loop, anything else in a
    worker thread (a slow plain function must not stall the loop), awaiting what it returns.
    """
    import asyncio
    import inspect

    if inspect.iscoroutinefunction(factory):
        result = factory()
    else:
        result = await asyncio.to_thread(factory)
    if inspect.isawaitable(result):
        result = await result
    return result
