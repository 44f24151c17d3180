"""Cross-process coordination recipes built on a cache's atomic operations.

Every recipe stores its state under one key of a cache (a :class:`~diskstore.Cache`, a
:class:`~diskstore.FanoutCache` or a namespace view of either) and changes it with ``add``,
``incr`` or a ``transact()`` block, so threads and processes sharing the directory coordinate
through it. The state must not be evicted while in use: open the cache with
``eviction_policy='none'`` or keep it well below its size limit.

Locks accept ``expire`` (seconds): a holder that crashes can then block the others for at
most that long. Their ``acquire`` takes keyword-only ``blocking`` and ``timeout`` arguments
and, like :meth:`threading.Lock.acquire`, returns whether the lock was obtained.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from typing import Any, Generic, ParamSpec, Protocol, TypeVar

from ._common import _clock
from ._common._constants import ENOVAL
from ._common._exceptions import CacheClosedError, DiskStoreError
from ._memo._funckey import KeyBuilder

P = ParamSpec("P")
R = TypeVar("R")

#: Shortest and longest pause between two attempts to take a busy lock, in seconds.
_MIN_PAUSE = 0.001
_MAX_PAUSE = 0.025

#: Fraction of a token that a throttle treats as a whole one (absorbs float rounding).
_TOKEN_SLACK = 1e-9


def _check_number(name: str, value: object, *, positive: bool, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if math.isnan(value) or (value <= 0 if positive else value < 0):
        bound = "positive" if positive else "non-negative"
        raise ValueError(f"{name} must be {bound}, got {value!r}")


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    return value


def _full_name(func: Callable[..., Any]) -> str:
    """Name a function by module and qualified name, the default key of the decorators."""
    return f"{getattr(func, '__module__', '')}.{getattr(func, '__qualname__', repr(func))}"


def _deadline(blocking: bool, timeout: float | None) -> float | None:
    """Translate ``acquire`` arguments into a ``time.monotonic()`` deadline (None: never)."""
    if timeout == -1:
        timeout = None
    if not blocking:
        if timeout is not None:
            raise ValueError(f"timeout cannot be given with blocking=False, got {timeout!r}")
        return time.monotonic()
    _check_number("timeout", timeout, positive=False, allow_none=True)
    return None if timeout is None else time.monotonic() + timeout


def _attempts(deadline: float | None) -> Iterator[None]:
    """Yield once per attempt, pausing in between, until ``deadline`` passes.

    Pauses grow from 1 ms towards 25 ms with random jitter, so waiters neither hammer the
    database nor wake in lockstep.
    """
    pause = _MIN_PAUSE
    while True:
        yield
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            return
        wait = pause * random.uniform(0.5, 1.5)
        if deadline is not None:
            wait = min(wait, deadline - now)
        time.sleep(wait)
        pause = min(pause * 2, _MAX_PAUSE)


class Averager:
    """Running average of values added by any number of threads and processes.

    The total and count are stored as one item under ``key``.

    >>> import diskstore, tempfile
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     with diskstore.Cache(directory) as cache:
    ...         average = Averager(cache, "latency")
    ...         average.add(0.25)
    ...         average.add(0.75)
    ...         average.get()
    ...         average.pop()
    ...         print(average.get())
    0.5
    0.5
    None
    """

    def __init__(
        self, cache: Any, key: Any, expire: float | None = None, tag: str | None = None
    ) -> None:
        self._cache = cache
        self._key = key
        self._expire = expire
        self._tag = tag

    def add(self, value: float) -> None:
        """Include ``value`` in the average (atomically)."""
        cache = self._cache
        with cache.transact(retry=True):
            total, count = cache.get(self._key, default=(0.0, 0), retry=True)
            cache.set(
                self._key,
                (total + value, count + 1),
                expire=self._expire,
                tag=self._tag,
                retry=True,
            )

    def get(self) -> float | None:
        """Return the average so far, or ``None`` if nothing was added."""
        total, count = self._cache.get(self._key, default=(0.0, 0), retry=True)
        return None if count == 0 else float(total / count)

    def pop(self) -> float | None:
        """Return the average and forget every value added so far."""
        total, count = self._cache.pop(self._key, default=(0.0, 0), retry=True)
        return None if count == 0 else float(total / count)


class _Held:
    """What the locks and the semaphore share: their state under one key of a cache, with an
    expiry and a tag, and ``with`` acquiring on entry and releasing on exit."""

    def __init__(
        self, cache: Any, key: Any, expire: float | None = None, tag: str | None = None
    ) -> None:
        _check_number("expire", expire, positive=True, allow_none=True)
        self._cache = cache
        self._key = key
        self._expire = expire
        self._tag = tag

    def acquire(self, *, blocking: bool = True, timeout: float | None = None) -> bool:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class Lock(_Held):
    """Mutual exclusion between threads and processes, held as one item under ``key``.

    Any thread may release the lock, as with :class:`threading.Lock`. If the lock expired
    (see ``expire``) and someone else took it, releasing leaves the new holder's lock alone.
    Releasing a lock nobody holds does nothing.

    >>> import diskstore, tempfile
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     with diskstore.Cache(directory) as cache:
    ...         lock = Lock(cache, "report", expire=60)
    ...         with lock:
    ...             lock.locked()
    ...         lock.acquire(timeout=1.0)
    ...         lock.acquire(blocking=False)
    ...         lock.release()
    True
    True
    False
    """

    _token: str | None = None  # the holder's token, while this object holds the lock

    def acquire(self, *, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take the lock, waiting for it unless ``blocking`` is false.

        ``timeout`` bounds the wait in seconds (``None`` or ``-1``: no bound). Returns
        ``True`` once the lock is held, ``False`` if it could not be taken in time.
        """
        deadline = _deadline(blocking, timeout)
        token = f"{os.getpid()}-{threading.get_ident()}-{uuid.uuid4().hex}"
        for _ in _attempts(deadline):
            added = self._cache.add(
                self._key, token, expire=self._expire, tag=self._tag, retry=True
            )
            if added:
                self._token = token
                return True
        return False

    def release(self) -> None:
        """Release the lock (see the class documentation for the unheld cases)."""
        cache = self._cache
        with cache.transact(retry=True):
            holder = cache.get(self._key, default=ENOVAL, retry=True)
            if holder is not ENOVAL and (self._token is None or holder == self._token):
                cache.delete(self._key, retry=True)
            self._token = None

    def locked(self) -> bool:
        """Whether anyone holds the lock right now."""
        return self._key in self._cache


class RLock(_Held):
    """Re-entrant lock: the thread (of a given process) holding it may take it again.

    It must be released as many times as it was acquired. Releasing it from a thread that
    does not hold it raises :class:`RuntimeError` (as :class:`threading.RLock` does).

    >>> import diskstore, tempfile
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     with diskstore.Cache(directory) as cache:
    ...         rlock = RLock(cache, "user-42")
    ...         with rlock:
    ...             with rlock:
    ...                 pass
    ...         rlock.release()
    Traceback (most recent call last):
      ...
    RuntimeError: cannot release un-acquired lock 'user-42'
    """

    @staticmethod
    def _owner() -> str:
        return f"{os.getpid()}-{threading.get_ident()}"

    def acquire(self, *, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take the lock or, if this thread holds it, count one more acquisition.

        ``blocking`` and ``timeout`` work as in :meth:`Lock.acquire`; returns whether the
        lock is held.
        """
        deadline = _deadline(blocking, timeout)
        owner = self._owner()
        cache = self._cache
        for _ in _attempts(deadline):
            with cache.transact(retry=True):
                holder, count = cache.get(self._key, default=(None, 0), retry=True)
                if count == 0 or holder == owner:
                    cache.set(
                        self._key,
                        (owner, count + 1),
                        expire=self._expire,
                        tag=self._tag,
                        retry=True,
                    )
                    return True
        return False

    def release(self) -> None:
        """Undo one acquisition; :class:`RuntimeError` if this thread does not hold it."""
        owner = self._owner()
        cache = self._cache
        with cache.transact(retry=True):
            holder, count = cache.get(self._key, default=(None, 0), retry=True)
            if holder != owner or count < 1:
                raise RuntimeError(f"cannot release un-acquired lock {self._key!r}")
            if count == 1:
                cache.delete(self._key, retry=True)
            else:
                cache.set(
                    self._key,
                    (owner, count - 1),
                    expire=self._expire,
                    tag=self._tag,
                    retry=True,
                )


class BoundedSemaphore(_Held):
    """Admit at most ``value`` holders at once across threads and processes.

    The number of free slots is stored under ``key``. Releasing more often than acquiring
    raises :class:`ValueError`, as :class:`threading.BoundedSemaphore` does.

    >>> import diskstore, tempfile
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     with diskstore.Cache(directory) as cache:
    ...         slots = BoundedSemaphore(cache, "downloads", value=2)
    ...         slots.acquire()
    ...         slots.acquire()
    ...         slots.acquire(blocking=False)
    ...         slots.release()
    ...         slots.release()
    True
    True
    False
    """

    def __init__(
        self,
        cache: Any,
        key: Any,
        value: int = 1,
        expire: float | None = None,
        tag: str | None = None,
    ) -> None:
        self._value = _check_int("value", value, 0)
        super().__init__(cache, key, expire, tag)

    def acquire(self, *, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take a slot, waiting for one unless ``blocking`` is false.

        ``blocking`` and ``timeout`` work as in :meth:`Lock.acquire`; returns whether a slot
        was taken.
        """
        deadline = _deadline(blocking, timeout)
        cache = self._cache
        for _ in _attempts(deadline):
            with cache.transact(retry=True):
                free = cache.get(self._key, default=self._value, retry=True)
                if free > 0:
                    cache.set(self._key, free - 1, expire=self._expire, tag=self._tag, retry=True)
                    return True
        return False

    def release(self) -> None:
        """Return a slot; :class:`ValueError` if every slot is already free."""
        cache = self._cache
        with cache.transact(retry=True):
            free = cache.get(self._key, default=self._value, retry=True)
            if free >= self._value:
                raise ValueError(f"semaphore {self._key!r} released too many times")
            if free + 1 == self._value:
                cache.delete(self._key, retry=True)
            else:
                cache.set(self._key, free + 1, expire=self._expire, tag=self._tag, retry=True)


def throttle(
    cache: Any,
    count: int,
    seconds: float,
    name: str | None = None,
    expire: float | None = None,
    tag: str | None = None,
    time_func: Callable[[], float] = time.time,
    sleep_func: Callable[[float], object] = time.sleep,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator allowing at most ``count`` calls per ``seconds``, across processes.

    It is a token bucket stored under ``name`` (the function's full name by default): the
    bucket holds up to ``count`` tokens, refills at ``count / seconds`` per second and each
    call takes one, sleeping with ``sleep_func`` until one is available. So any interval of
    length ``t`` admits at most ``count + t * count / seconds`` calls. ``time_func`` must be a
    clock shared by all callers (wall time by default) and is read once per attempt.

    >>> import diskstore, tempfile
    >>> now = [0.0]
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     with diskstore.Cache(directory) as cache:
    ...         @throttle(cache, 2, 1.0, time_func=lambda: now[0],
    ...                   sleep_func=lambda delay: now.__setitem__(0, now[0] + delay))
    ...         def ping():
    ...             return now[0]
    ...         [ping() for _ in range(5)]
    [0.0, 0.0, 0.5, 1.0, 1.5]
    """
    limit = _check_int("count", count, 1)
    _check_number("seconds", seconds, positive=True, allow_none=False)
    if math.isinf(seconds):
        raise ValueError(f"seconds must be finite, got {seconds!r}")
    rate = limit / seconds

    def decorator(func: Callable[P, R]) -> Callable[P, R]:
        key = _full_name(func) if name is None else name
        cache.add(key, (time_func(), float(limit)), expire=expire, tag=tag, retry=True)

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            while True:
                with cache.transact(retry=True):
                    now = time_func()
                    last, tokens = cache.get(key, default=(now, float(limit)), retry=True)
                    tokens = min(float(limit), tokens + max(now - last, 0.0) * rate)
                    # Rounding can leave a refill a hair short of one token; waiting for
                    # that hair could be shorter than the clock's resolution, forever.
                    if tokens >= 1.0 - _TOKEN_SLACK:
                        tokens = max(tokens - 1.0, 0.0)
                        delay = 0.0
                    else:
                        delay = (1.0 - tokens) / rate
                    cache.set(key, (now, tokens), expire=expire, tag=tag, retry=True)
                if not delay:
                    return func(*args, **kwargs)
                sleep_func(delay)

        return wrapper

    return decorator


def barrier(
    cache: Any,
    lock_factory: Callable[..., Any],
    name: str | None = None,
    expire: float | None = None,
    tag: str | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator running the function only while holding a lock made by ``lock_factory``.

    ``lock_factory`` is :class:`Lock`, :class:`RLock`, :class:`BoundedSemaphore` or any
    callable with their ``(cache, key, expire=, tag=)`` signature; the key is ``name`` or the
    function's full name. With ``Lock``, calls from all processes run one at a time.

    >>> import diskstore, tempfile
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     with diskstore.Cache(directory) as cache:
    ...         @barrier(cache, Lock)
    ...         def report():
    ...             return "one at a time"
    ...         report()
    'one at a time'
    """

    def decorator(func: Callable[P, R]) -> Callable[P, R]:
        key = _full_name(func) if name is None else name
        lock = lock_factory(cache, key, expire=expire, tag=tag)

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with lock:
                return func(*args, **kwargs)

        return wrapper

    return decorator


class StampedeFunction(Protocol, Generic[P, R]):
    """A function wrapped by :func:`memoize_stampede`."""

    __wrapped__: Callable[P, R]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    def __cache_key__(self, *args: P.args, **kwargs: P.kwargs) -> Any: ...


#: Name prefix of the background threads that refresh results early.
REFRESH_THREAD_PREFIX = "diskstore memoize_stampede refresh: "

#: First element of the key that marks a recomputation in progress.
_RECOMPUTING = "diskstore.recipes.memoize_stampede:recomputing"


def memoize_stampede(
    cache: Any,
    expire: float,
    name: str | None = None,
    typed: bool = False,
    tag: str | None = None,
    beta: float = 1,
    ignore: Collection[str | int] = (),
) -> Callable[[Callable[P, R]], StampedeFunction[P, R]]:
    """Memoizing decorator that refreshes results before they expire, avoiding stampedes.

    When a cached result expires, every caller would otherwise recompute it at once. Here
    each hit may, with a probability that grows as expiry nears and with how long the
    function took (scaled by ``beta``; ``0`` disables it), start one recomputation in a
    background thread while callers keep getting the stored result. This is the "optimal
    probabilistic early expiration" scheme of Vattani, Chierichetti and Lowenstein
    (VLDB 2015). Only one refresh per key starts until it has had time to finish.

    ``name``, ``typed`` and ``ignore`` shape the key as in Cache.memoize; ``__cache_key__``
    returns the key for given arguments. Results are stored as ``(result, seconds taken)``.

    >>> import diskstore, tempfile
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     with diskstore.Cache(directory) as cache:
    ...         @memoize_stampede(cache, expire=60)
    ...         def square(number):
    ...             return number * number
    ...         square(12)
    ...         cache[square.__cache_key__(12)][0]
    144
    144
    """
    _check_number("expire", expire, positive=True, allow_none=False)
    _check_number("beta", beta, positive=False, allow_none=False)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a str or None, got {name!r}")

    def decorator(func: Callable[P, R]) -> StampedeFunction[P, R]:
        base = _full_name(func) if name is None else name
        builder = KeyBuilder(func, (base,), typed=typed, ignore=ignore, named=name is not None)

        def cache_key(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
            return builder.build(args, kwargs)

        def timed(*args: P.args, **kwargs: P.kwargs) -> tuple[R, float]:
            start = time.monotonic()
            result = func(*args, **kwargs)
            return result, time.monotonic() - start

        def store(key: Any, pair: tuple[R, float]) -> None:
            cache.set(key, pair, expire=expire, tag=tag, retry=True)

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            key = cache_key(*args, **kwargs)
            pair, expire_time = cache.get(key, default=ENOVAL, expire_time=True, retry=True)
            if pair is ENOVAL:
                pair = timed(*args, **kwargs)
                store(key, pair)
                return pair[0]
            result, delta = pair
            remaining = math.inf if expire_time is None else expire_time - _clock.now()
            # 1 - random() lies in (0, 1], so the logarithm is finite and non-positive.
            if -delta * beta * math.log(1.0 - random.random()) < remaining:
                return result  # type: ignore[no-any-return]
            marker = (_RECOMPUTING, key)
            if cache.add(marker, None, expire=max(delta, 0.001), retry=True):

                def refresh() -> None:
                    pair = timed(*args, **kwargs)
                    # Best effort: the owner may close an AsyncCache or remove the cache
                    # directory while this runs, which simply ends the refresh.
                    with contextlib.suppress(CacheClosedError, DiskStoreError, OSError):
                        store(key, pair)

                thread_name = f"{REFRESH_THREAD_PREFIX}{base}"
                threading.Thread(target=refresh, name=thread_name, daemon=True).start()
            return result  # type: ignore[no-any-return]

        wrapper.__cache_key__ = cache_key  # type: ignore[attr-defined]
        stampede: StampedeFunction[P, R] = wrapper  # type: ignore[assignment]
        return stampede

    return decorator
