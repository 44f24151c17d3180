"""A Django cache backend that stores entries in a :class:`~diskstore.FanoutCache`.

Configure it in ``settings.CACHES`` with ``"BACKEND": "diskstore.djangocache.DjangoCache"``
and ``"LOCATION"`` set to the cache directory. Every process and thread that names the same
directory shares the same entries, so one disk cache serves all of a site's workers.

Beyond Django's cache API (``BaseCache``), the backend offers diskcache's extras: ``read``,
``tag``, ``expire_time`` and ``retry`` keywords, ``pop``, ``evict``, ``expire``, ``cull``,
``stats``, the tag index, ``memoize`` and named sub-collections (``cache``, ``deque``,
``index``). Importing this module imports Django; ``import diskstore`` alone does not.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache

from ._caching._cache import Cache
from ._common import _clock
from ._common._constants import ENOVAL
from ._common._exceptions import SettingsError
from ._memo._memoize import memoize as _memoize
from .fanout import FanoutCache
from .persistent import Deque, Index

__all__ = ["DjangoCache"]

#: Defaults for the options Django does not define, the same as diskcache's backend.
DEFAULT_SHARDS = 8
DEFAULT_DATABASE_TIMEOUT = 0.010

#: OPTIONS entries Django's BaseCache reads itself; they are not FanoutCache settings.
_DJANGO_OPTIONS = ("MAX_ENTRIES", "CULL_FREQUENCY")

#: Stands for "expire at once", which Django asks for with a timeout of zero or less.
_NOW = 0.0


def _backend_options(params: Mapping[str, Any]) -> tuple[int, float, dict[str, Any]]:
    """Split Django's cache ``params`` into FanoutCache's ``shards``, ``timeout`` and settings.

    ``SHARDS`` and ``DATABASE_TIMEOUT`` may be given beside ``OPTIONS`` (where diskcache reads
    them) or inside it; every other ``OPTIONS`` entry except Django's own ``MAX_ENTRIES`` and
    ``CULL_FREQUENCY`` is a diskstore setting, checked by the cache when it opens.
    """
    raw = params.get("OPTIONS") or {}
    if not isinstance(raw, Mapping):
        raise TypeError(f"OPTIONS must be a dict, got {raw!r}")
    options = {name: value for name, value in raw.items() if name not in _DJANGO_OPTIONS}
    chosen: dict[str, Any] = {}
    defaults = {"SHARDS": DEFAULT_SHARDS, "DATABASE_TIMEOUT": DEFAULT_DATABASE_TIMEOUT}
    for name, default in defaults.items():
        outer = params.get(name, ENOVAL)
        inner = options.pop(name, ENOVAL)
        if outer is not ENOVAL and inner is not ENOVAL and outer != inner:
            raise SettingsError(
                f"{name} is given twice with different values: {outer!r} beside OPTIONS "
                f"and {inner!r} inside it"
            )
        chosen[name] = next((v for v in (outer, inner) if v is not ENOVAL), default)
    return chosen["SHARDS"], chosen["DATABASE_TIMEOUT"], options


def _oldest_first(fanout: FanoutCache) -> Iterator[Any]:
    """Yield the keys of ``fanout``, the oldest of every shard first, shard after shard.

    Each shard iterates in insertion order, so taking one key from each in turn removes
    about the same share of every shard and, within a shard, the oldest keys.
    """
    shards: list[list[Any]] = [[] for _ in range(fanout.shards)]
    for key in fanout:
        shards[fanout._shard_number(key)].append(key)
    for row in itertools.zip_longest(*shards, fillvalue=ENOVAL):
        yield from (key for key in row if key is not ENOVAL)


class DjangoCache(BaseCache):  # type: ignore[misc]  # Django ships no type information
    """Django cache backend on a sharded, persistent diskstore cache.

    ``TIMEOUT`` (and every ``timeout`` argument) follows Django: ``None`` keeps an entry
    forever and zero or less expires it at once. ``KEY_PREFIX``, ``VERSION`` and
    ``KEY_FUNCTION`` shape keys as in every Django backend, and string keys that memcached would
    refuse raise :class:`~django.core.cache.CacheKeyWarning`. The directory's size is bounded
    by the ``size_limit`` setting (1 GB by default, culled by the eviction policy); setting
    ``OPTIONS["MAX_ENTRIES"]`` also bounds the number of entries, culled as Django's local
    memory backend does.

    After :meth:`close`, which Django calls at the end of every request, the next call opens
    the cache again.

    >>> import tempfile
    >>> cache = DjangoCache(tempfile.mkdtemp(), {"SHARDS": 2, "TIMEOUT": 60})
    >>> cache.set("greeting", "hello")
    True
    >>> cache.get("greeting"), cache.get("greeting", version=2)
    ('hello', None)
    >>> cache.close()
    """

    def __init__(self, location: str | os.PathLike[str], params: Mapping[str, Any]) -> None:
        """Open the cache in directory ``location`` with Django's ``params`` (see the class)."""
        if not isinstance(location, (str, os.PathLike)) or not os.fspath(location):
            raise SettingsError(f"LOCATION must name the cache directory, got {location!r}")
        self._shards, self._database_timeout, self._options = _backend_options(params)
        super().__init__(params)
        options = params.get("OPTIONS") or {}
        #: Whether ``MAX_ENTRIES`` was configured; without it only ``size_limit`` applies.
        self._limit_entries = "max_entries" in params or "MAX_ENTRIES" in options
        self._cache = FanoutCache(location, self._shards, self._database_timeout, **self._options)

    # -- keys and timeouts --------------------------------------------------------------

    def _key(self, key: Any, version: int | None) -> Any:
        """Make the stored key, warning (as Django's backends do) about unportable ones.

        Only string keys are checked: other keys (ints, bytes, tuples, memoized calls' keys)
        are this backend's extension, unportable by choice, and would only add noise.
        """
        made = self.make_key(key, version=version)
        if isinstance(key, str) and isinstance(made, str):
            self.validate_key(made)
        return made

    def _expire(self, timeout: Any) -> float | None:
        """Seconds until expiry for a Django ``timeout``: ``None`` for never, ``_NOW`` for now."""
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        if timeout is None:
            return None
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(f"timeout must be a number of seconds or None, got {timeout!r}")
        return float(timeout) if timeout > 0 else _NOW

    # -- Django's cache API -------------------------------------------------------------

    def add(
        self,
        key: Any,
        value: Any,
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
        read: bool = False,
        tag: str | None = None,
        retry: bool = True,
    ) -> bool:
        """Store ``value`` only if ``key`` has no live entry; return whether it was stored."""
        return self._write(key, value, timeout, version, read, tag, retry, only_if_missing=True)

    def get(
        self,
        key: Any,
        default: Any = None,
        version: int | None = None,
        read: bool = False,
        expire_time: bool = False,
        tag: bool = False,
        retry: bool = False,
    ) -> Any:
        """Return the value of ``key``, or ``default`` if it is missing or expired.

        ``read`` returns a value stored from a file as an open binary file; ``expire_time``
        and ``tag`` return a tuple that adds them, as diskcache does.
        """
        made = self._key(key, version)
        return self._cache.get(made, default, read, expire_time, tag, retry)

    def read(self, key: Any, version: int | None = None) -> Any:
        """Return an open binary file with the value of ``key``; :class:`KeyError` if missing."""
        return self._cache.read(self._key(key, version))

    def set(
        self,
        key: Any,
        value: Any,
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
        read: bool = False,
        tag: str | None = None,
        retry: bool = True,
    ) -> bool:
        """Store ``value`` under ``key``; ``False`` only if the shard stayed locked.

        ``read=True`` stores the contents of the binary file ``value``; ``tag`` labels the
        entry for :meth:`evict`. A timeout of zero or less removes the key instead.
        """
        return self._write(key, value, timeout, version, read, tag, retry, only_if_missing=False)

    def _write(
        self,
        key: Any,
        value: Any,
        timeout: Any,
        version: int | None,
        read: bool,
        tag: str | None,
        retry: bool,
        *,
        only_if_missing: bool,
    ) -> bool:
        made = self._key(key, version)
        expire = self._expire(timeout)
        fanout = self._cache
        if expire == _NOW:
            # Stored and expired at once: nothing to write, but an older value must go.
            if only_if_missing:
                return made not in fanout
            fanout.delete(made, retry)
            return True
        self._make_room(fanout)
        if only_if_missing:
            return fanout.add(made, value, expire, read, tag, retry)
        return fanout.set(made, value, expire, read, tag, retry)

    def touch(
        self,
        key: Any,
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
        retry: bool = True,
    ) -> bool:
        """Give ``key`` a new timeout; return whether it had a live entry."""
        made = self._key(key, version)
        expire = self._expire(timeout)
        if expire == _NOW:
            return self._cache.delete(made, retry)
        return self._cache.touch(made, expire, retry)

    def pop(
        self,
        key: Any,
        default: Any = None,
        version: int | None = None,
        expire_time: bool = False,
        tag: bool = False,
        retry: bool = True,
    ) -> Any:
        """Remove ``key`` and return its value (``default`` if missing), atomically."""
        made = self._key(key, version)
        return self._cache.pop(made, default, expire_time, tag, retry)

    def delete(self, key: Any, version: int | None = None, retry: bool = True) -> bool:
        """Remove ``key``; return whether it had a live entry."""
        return self._cache.delete(self._key(key, version), retry)

    def set_many(
        self,
        data: Mapping[Any, Any],
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
        retry: bool = True,
    ) -> list[Any]:
        """Store every item of ``data``; return the keys that could not be stored."""
        return [
            key
            for key, value in data.items()
            if not self.set(key, value, timeout, version, retry=retry)
        ]

    def delete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        """Remove every key in ``keys``."""
        for key in keys:
            self.delete(key, version)

    def has_key(self, key: Any, version: int | None = None) -> bool:
        """Whether ``key`` has a live entry."""
        return self._key(key, version) in self._cache

    def incr(
        self,
        key: Any,
        delta: int = 1,
        version: int | None = None,
        default: int | None = None,
        retry: bool = True,
    ) -> Any:
        """Atomically add ``delta`` to the number under ``key`` and return the result.

        A missing key raises :class:`ValueError`, as in Django, unless ``default`` gives
        the number to start from. A value that is not a number raises :class:`TypeError`.
        """
        made = self._key(key, version)
        try:
            return self._cache.incr(made, delta, default, retry)
        except KeyError:
            raise ValueError(f"Key {key!r} not found") from None

    def decr(
        self,
        key: Any,
        delta: int = 1,
        version: int | None = None,
        default: int | None = None,
        retry: bool = True,
    ) -> Any:
        """Atomically subtract ``delta``; see :meth:`incr`."""
        return self.incr(key, -delta, version, default, retry)

    def incr_version(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Move ``key`` from ``version`` to ``version + delta``; return the new version.

        Unlike Django's default, the entry keeps its expiry and tag. A missing key raises
        :class:`ValueError`.
        """
        if version is None:
            version = self.version
        fanout = self._cache
        old = self._key(key, version)
        value, expire_time, tag = fanout.get(old, ENOVAL, expire_time=True, tag=True, retry=True)
        if value is ENOVAL:
            raise ValueError(f"Key {key!r} not found")
        new_version: int = version + delta
        if new_version == version:
            return new_version  # moving onto itself must not delete it
        expire = None if expire_time is None else max(expire_time - _clock.now(), 0.0)
        fanout.set(self._key(key, new_version), value, expire, tag=tag, retry=True)
        fanout.delete(old, retry=True)
        return new_version

    def decr_version(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Move ``key`` to ``version - delta``; see :meth:`incr_version`."""
        return self.incr_version(key, -delta, version)

    def clear(self, retry: bool = True) -> int:
        """Remove every entry in the directory (of every prefix and version); return the count."""
        return self._cache.clear(retry)

    def close(self, **kwargs: Any) -> None:
        """Close the cache's connections; the next call opens them again.

        Django calls this at the end of every request (``kwargs`` are its signal's).
        """
        self._cache.close()

    # -- culling by entry count ---------------------------------------------------------

    def _make_room(self, fanout: FanoutCache) -> None:
        """Cull before a write when ``MAX_ENTRIES`` is configured and reached.

        As in Django's local-memory backend: expired entries go first; then, when the count
        is still at the limit, ``1/CULL_FREQUENCY`` of the entries (all when it is 0): the
        oldest of each shard, taken from the shards in turn.
        """
        if not self._limit_entries or len(fanout) < self._max_entries:
            return
        fanout.expire(retry=True)
        count = len(fanout)
        if count < self._max_entries:
            return
        if self._cull_frequency <= 0:
            fanout.clear(retry=True)
            return
        for key in itertools.islice(_oldest_first(fanout), count // self._cull_frequency):
            fanout.delete(key, retry=True)

    # -- diskcache's extras -------------------------------------------------------------

    @property
    def directory(self) -> str:
        """The cache directory (``LOCATION``, made absolute)."""
        return self._cache.directory

    def expire(self, retry: bool = True) -> int:
        """Remove expired entries; return how many were removed."""
        return self._cache.expire(retry)

    def evict(self, tag: str, retry: bool = True) -> int:
        """Remove the entries stored with ``tag``; return how many were removed."""
        return self._cache.evict(tag, retry)

    def cull(self, retry: bool = True) -> int:
        """Remove entries until the directory is within ``size_limit``; return the count."""
        return self._cache.cull(retry)

    def stats(self, enable: bool = True, reset: bool = False) -> tuple[int, int]:
        """Return ``(hits, misses)``; ``enable`` turns counting on or off, ``reset`` zeroes."""
        return self._cache.stats(enable=enable, reset=reset)

    def create_tag_index(self) -> None:
        """Index entries by tag, making :meth:`evict` fast on a large cache."""
        self._cache.create_tag_index()

    def drop_tag_index(self) -> None:
        """Drop the tag index."""
        self._cache.drop_tag_index()

    def cache(self, name: str, **settings: Any) -> Cache:
        """Return the unsharded :class:`~diskstore.Cache` in ``<directory>/cache/<name>``."""
        return self._cache.cache(name, **settings)

    def deque(self, name: str, maxlen: int | None = None) -> Deque:
        """Return the :class:`~diskstore.Deque` in ``<directory>/deque/<name>``."""
        return self._cache.deque(name, maxlen=maxlen)

    def index(self, name: str) -> Index:
        """Return the :class:`~diskstore.Index` in ``<directory>/index/<name>``."""
        return self._cache.index(name)

    def memoize(
        self,
        name: str | None = None,
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
        typed: bool = False,
        tag: str | None = None,
        ignore: Collection[str | int] = (),
        **options: Any,
    ) -> Callable[[Callable[..., Any]], Any]:
        """Return a decorator that memoizes a function in this cache.

        Results are ordinary entries of the cache under the Django key made from
        ``f.__cache_key__(*args)`` with ``version``, so ``cache.get(f.__cache_key__(x))``,
        :meth:`clear` and :meth:`evict` see them. ``timeout`` follows Django (zero: look
        results up but never store them). ``options`` are :func:`diskstore.memoize`'s
        keyword-only options (``hash_source``, ``single_flight``, ...). The wrapper's
        ``cache_clear()`` removes the function's results of every version and key prefix.
        """
        if callable(name):
            raise TypeError(
                f"name must be a str or None, got the callable {name!r}: "
                "decorate with @cache.memoize(), with parentheses"
            )
        expire = self._expire(timeout)
        store = _MemoStore(self, version)
        decorator: Callable[[Callable[..., Any]], Any] = _memoize(
            store, name, typed, expire, tag, ignore, **options
        )
        return decorator


class _MemoStore:
    """What memoize sees of a DjangoCache: the cache, with keys made by Django's key function.

    It speaks the cache's memoize protocol (see :mod:`diskstore._caching._functions`), so each
    result records its function and ``cache_clear()`` stays an indexed delete. Keys are made but not
    validated: a memoized call's key is built by diskstore, and a portability warning about
    it would only be noise.
    """

    def __init__(self, backend: DjangoCache, version: int | None) -> None:
        self._backend = backend
        self._version = version

    @property
    def directory(self) -> str:
        return self._backend.directory

    def _made(self, key: Any) -> Any:
        return self._backend.make_key(key, version=self._version)

    def get(
        self, key: Any, default: Any = None, *, retry: bool = False, mmap_mode: str | None = None
    ) -> Any:
        return self._backend._cache.get(self._made(key), default, retry=retry, mmap_mode=mmap_mode)

    def stored_at(self, key: Any, retry: bool = False) -> float | None:
        stored: float | None = self._backend._cache.stored_at(self._made(key), retry)
        return stored

    def set(
        self,
        key: Any,
        value: Any,
        *,
        expire: float | None = None,
        tag: Any = None,
        retry: bool = False,
    ) -> bool:
        fanout = self._backend._cache
        self._backend._make_room(fanout)
        return fanout.set(self._made(key), value, expire, tag=tag, retry=retry)

    def delete(self, key: Any, *, retry: bool = False) -> bool:
        return self._backend._cache.delete(self._made(key), retry=retry)

    def _memo_store(
        self, function: str, key: Any, value: Any, expire: float | None, tag: Any
    ) -> None:
        fanout = self._backend._cache
        self._backend._make_room(fanout)
        fanout._memo_store(function, self._made(key), value, expire, tag)

    def _memo_lookup(self, key: Any, mmap_mode: str | None = None) -> Any:
        return self._backend._cache._memo_lookup(self._made(key), mmap_mode)

    def _memo_calls(self, function: str) -> Any:
        return self._backend._cache._memo_calls(function)

    def _memo_count(self, function: str) -> int:
        return self._backend._cache._memo_count(function)

    def _memo_clear(self, function: str, retry: bool = True) -> int:
        return self._backend._cache._memo_clear(function, retry)
