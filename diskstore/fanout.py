"""FanoutCache: one logical cache spread over several independent shards.

Each shard is a complete :class:`~diskstore.Cache` with its own database in a numbered
subdirectory (``000``, ``001``, ...). A key always lands on the same shard, chosen by a hash of
its canonical encoding, so writers that touch different keys usually lock different databases
and do not wait for each other. The price is that an operation on a busy shard gives up after
a short ``timeout``: writes then report failure and reads report a miss, unless the caller asks
to ``retry``. That trade suits caches, where a lost write only costs a recomputation.

Sub-collections that need one ordered store (a named :class:`~diskstore.Cache`,
:class:`~diskstore.Deque` or :class:`~diskstore.Index`) live unsharded in ``cache/<name>``,
``deque/<name>`` and ``index/<name>`` under the same directory.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from ._caching._cache import Cache, expand_directory
from ._caching._functions import FunctionStats, combine_function_stats
from ._common import _clock
from ._common._constants import ENOVAL
from ._common._exceptions import Timeout
from ._storage import _sql
from ._storage._settings import DEFAULT_SETTINGS, NAMES
from ._values._disk import Disk
from ._values._keys import INT64_MAX as _INT64_MAX
from ._values._keys import INT64_MIN as _INT64_MIN
from ._values._keys import encode_key, key_hash
from .persistent import Deque, Index

if TYPE_CHECKING:
    from ._common._hooks import CallCounts

#: Seconds to keep retrying when a shard cannot be opened because its database is locked.
_OPEN_PATIENCE = 60.0

#: Attributes read from the first shard; every shard is opened with the same values.
_SHARD_ATTRIBUTES = frozenset(NAMES)


def _integral(key: Any) -> Any:
    if type(key) is float and key.is_integer() and _INT64_MIN <= key <= _INT64_MAX:
        # The Cache finds an integer key by an equal float (1 and 1.0 are one key), so
        # both must route to the same shard.
        return int(key)
    return key


def shard_index(key: Any, shards: int) -> int:
    """Return the shard, in ``range(shards)``, that holds ``key``, as diskcache routes it.

    By :func:`diskstore._values._keys.key_hash` (``Disk.hash``), never ``hash()``, so every process
    and every Python run (whatever ``PYTHONHASHSEED``) routes a key the same way, and a
    string, bytes, integer or float key goes to the shard diskcache 5 puts it in.
    """
    return key_hash(key) % shards


def legacy_shard_index(key: Any, shards: int) -> int:
    """Where diskstore releases before schema 4 put ``key``: CRC-32 of its canonical bytes.

    A FanoutCache directory those releases made keeps this routing (see ``ROUTING``).
    """
    return zlib.crc32(encode_key(_integral(key))) % shards


#: Recorded in the first shard's ``diskstore_settings`` when a FanoutCache directory made by
#: an earlier diskstore is upgraded, so its keys keep being found where they are.
ROUTING = "fanout_routing"


_P = ParamSpec("_P")
_T = TypeVar("_T")
_F = TypeVar("_F")


def _unless_locked(
    fallback: _F, call: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs
) -> _T | _F:
    """``call(*args, **kwargs)`` on a shard, or *fallback* if the shard stayed locked."""
    try:
        return call(*args, **kwargs)
    except Timeout:
        return fallback


def _check_shards(shards: object) -> int:
    if isinstance(shards, bool) or not isinstance(shards, int):
        raise TypeError(f"shards must be an int, got {shards!r}")
    if shards < 1:
        raise ValueError(f"shards must be at least 1, got {shards!r}")
    return shards


def _check_name(name: object) -> list[str]:
    """Split a sub-collection ``name`` into path parts that stay inside the directory."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {name!r}")
    parts = name.split("/")
    for part in parts:
        unsafe = (
            part in ("", ".", "..")
            or "\\" in part
            or "\x00" in part
            or (os.altsep is not None and os.altsep in part)
            or os.path.splitdrive(part)[0] != ""
        )
        if unsafe:
            raise ValueError(
                f"name must be '/'-separated non-empty parts other than '.' and '..', got {name!r}"
            )
    return parts


def _split_size_limit(size_limit: object, shards: int) -> object:
    """Give each shard an equal share of the total ``size_limit``."""
    if isinstance(size_limit, bool) or not isinstance(size_limit, (int, float)):
        raise TypeError(f"size_limit must be a number, got {size_limit!r}")
    if isinstance(size_limit, int):
        return size_limit // shards
    share = size_limit / shards
    return int(share) if math.isfinite(share) else share


def _open_shard(
    directory: str, timeout: float, disk: type[Disk], settings: dict[str, Any]
) -> Cache:
    """Open one shard, waiting out other processes that are creating or migrating it.

    A shard's ``timeout`` is meant for item operations and is typically milliseconds; the
    first open of a directory by several processes at once can take longer than that, and
    must not fail because of it.
    """
    deadline = time.monotonic() + _OPEN_PATIENCE
    pause = 0.001
    while True:
        try:
            return Cache(directory, timeout, disk, **settings)
        except Timeout:
            if time.monotonic() >= deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)


_LEGACY_DB = "diskstore.db"


def _routing(directory: str, first: Cache, legacy: bool) -> Callable[[Any, int], int]:
    """The routing of this directory's keys: diskcache's, unless an earlier diskstore made it."""
    store = first._store
    if legacy and not first._read_only:
        with store.write(retry=True) as conn:
            assert conn.con is not None
            conn.con.execute(_sql.INSERT_SETTING_IF_ABSENT, (ROUTING, "crc32"))
    rows = store.run(_sql.SELECT_SETTING, (ROUTING,), retry=True)
    return legacy_shard_index if rows and rows[0][0] == "crc32" else shard_index


class FanoutCache:
    """A cache whose keys are spread over ``shards`` independent databases.

    It offers the same methods as :class:`~diskstore.Cache` except the queue operations
    (``push``, ``pull``, ``peek``, ``peekitem``), whose generated keys could not be routed.
    ``size_limit`` is the total for the whole cache; each shard gets an equal share.

    When a shard stays locked for longer than ``timeout`` seconds, writes (``set``, ``add``,
    ``touch``, ``delete``) return ``False``, ``incr``/``decr`` return ``None`` and reads
    (``get``, ``pop``) return the default, unless called with ``retry=True``. The mapping
    operators (``cache[key]``, ``cache[key] = value``, ``del cache[key]``) always retry.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     with FanoutCache(directory, shards=4) as cache:
    ...         cache.set("answer", 42)
    ...         cache.get("answer")
    ...         len(cache)
    True
    42
    1
    """

    _directory: str
    _count: int
    _timeout: float
    _disk: type[Disk]
    _options: dict[str, Any]
    _shards: tuple[Cache, ...]
    _namespace: str
    _children: _Children

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        shards: int = 8,
        timeout: float = 0.010,
        disk: type[Disk] = Disk,
        **settings: Any,
    ) -> None:
        """Open (creating if needed) a sharded cache in ``directory``.

        ``directory=None`` creates a new temporary directory, which is not removed
        automatically. ``shards`` must stay the same every time a directory is opened, or keys
        will be looked up in the wrong shard. ``disk`` and ``settings`` (including Cache
        options such as ``secret``) are handed to every shard, except that ``size_limit`` is
        the total over all shards.
        """
        count = _check_shards(shards)
        if "size_limit" in settings:
            settings["size_limit"] = _split_size_limit(settings["size_limit"], count)
        else:
            settings["size_limit"] = int(DEFAULT_SETTINGS["size_limit"]) // count
        if directory is None:
            directory = tempfile.mkdtemp(prefix="diskstore-")
        path = expand_directory(directory)
        self._open(path, count, timeout, disk, settings, namespace="")

    def _open(
        self,
        directory: str,
        count: int,
        timeout: float,
        disk: type[Disk],
        settings: dict[str, Any],
        *,
        namespace: str,
    ) -> None:
        self._directory = directory
        self._count = count
        self._timeout = timeout
        self._disk = disk
        # Options that are not persisted settings (``secret``, ``read_only``, ...) must be
        # given again whenever a shard or sub-collection is opened, so they are kept.
        self._options = {name: value for name, value in settings.items() if name not in NAMES}
        self._children = _Children()
        legacy = os.path.isfile(os.path.join(directory, "000", _LEGACY_DB))
        shards: list[Cache] = []
        try:
            for number in range(count):
                shard_directory = os.path.join(directory, f"{number:03d}")
                shards.append(_open_shard(shard_directory, timeout, disk, settings))
        except BaseException:
            for shard in shards:
                shard.close()
            raise
        if namespace:
            shards = [shard.namespace(namespace) for shard in shards]
        self._shards = tuple(shards)
        self._namespace = namespace
        serializer = self._shards[0].disk
        # A Disk subclass that defines hash() routes keys, as in diskcache.
        self._route: Callable[[Any], int] | None = (
            serializer.hash if type(serializer).hash is not Disk.hash else None
        )
        self._index = _routing(directory, self._shards[0], legacy)

    # -- attributes ---------------------------------------------------------------------

    @property
    def directory(self) -> str:
        """Directory holding the shards and the named sub-collections."""
        return self._directory

    @property
    def shards(self) -> int:
        """Number of shards keys are spread over."""
        return self._count

    @property
    def timeout(self) -> float:
        """Seconds an operation waits for a locked shard before giving up."""
        return float(self._shards[0].timeout)

    @property
    def disk(self) -> Disk:
        """Serializer of the first shard (every shard uses the same class)."""
        return self._shards[0].disk

    def __getattr__(self, name: str) -> Any:
        """Read a setting such as ``size_limit`` from the first shard, as diskcache does."""
        if name in _SHARD_ATTRIBUTES:
            return getattr(self._shards[0], name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def namespace_name(self) -> str:
        """Name of this view's namespace (``''`` for the plain cache)."""
        return self._namespace

    def _shard_number(self, key: Any) -> int:
        if self._route is not None:
            return self._route(key) % self._count
        return self._index(key, self._count)

    def _shard(self, key: Any) -> Cache:
        return self._shards[self._shard_number(key)]

    def __repr__(self) -> str:
        where = f", namespace={self._namespace!r}" if self._namespace else ""
        return f"{type(self).__name__}({self._directory!r}, shards={self._count}{where})"

    # -- single-key operations ----------------------------------------------------------

    def set(
        self,
        key: Any,
        value: Any,
        expire: float | None = None,
        read: bool = False,
        tag: str | None = None,
        retry: bool = False,
    ) -> bool:
        """Store ``value`` under ``key``; ``False`` if the shard stayed locked."""
        return bool(
            _unless_locked(False, self._shard(key).set, key, value, expire, read, tag, retry)
        )

    def import_diskcache(
        self,
        source: str | os.PathLike[str],
        *,
        trust: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Copy every item of a diskcache directory in, spread over this cache's shards.

        As :meth:`Cache.import_diskcache`; *source* may be a diskcache ``FanoutCache`` (any
        number of shards) or a single ``Cache`` directory.
        """
        from ._storage._migrate import import_diskcache

        return import_diskcache(self, source, trust=trust, progress=progress)

    def __setitem__(self, key: Any, value: Any) -> None:
        """Store ``value`` under ``key``, waiting for the shard however long it is locked."""
        self._shard(key)[key] = value

    def touch(self, key: Any, expire: float | None = None, retry: bool = False) -> bool:
        """Give ``key`` a new expiry; ``False`` if it is missing or the shard stayed locked."""
        return bool(_unless_locked(False, self._shard(key).touch, key, expire, retry))

    def add(
        self,
        key: Any,
        value: Any,
        expire: float | None = None,
        read: bool = False,
        tag: str | None = None,
        retry: bool = False,
    ) -> bool:
        """Store ``value`` only if ``key`` is absent; atomic across threads and processes."""
        return bool(
            _unless_locked(False, self._shard(key).add, key, value, expire, read, tag, retry)
        )

    def incr(self, key: Any, delta: int = 1, default: int | None = 0, retry: bool = False) -> Any:
        """Atomically add ``delta`` to the number under ``key``.

        Returns the new value, or ``None`` if the shard stayed locked. A missing key starts
        from ``default``; with ``default=None`` a missing key raises :class:`KeyError`.
        """
        return _unless_locked(None, self._shard(key).incr, key, delta, default, retry)

    def decr(self, key: Any, delta: int = 1, default: int | None = 0, retry: bool = False) -> Any:
        """Atomically subtract ``delta``; see :meth:`incr`."""
        return _unless_locked(None, self._shard(key).decr, key, delta, default, retry)

    def get(
        self,
        key: Any,
        default: Any = None,
        read: bool = False,
        expire_time: bool = False,
        tag: bool = False,
        retry: bool = False,
        *,
        mmap_mode: str | None = None,
    ) -> Any:
        """Return the value for ``key``, or ``default`` if missing or the shard stayed locked.

        ``expire_time``, ``tag`` and ``mmap_mode`` work as in Cache.get.
        """
        # Not through _unless_locked: one call more is a measurable part of a small get.
        try:
            if mmap_mode is not None:
                return self._shard(key).get(
                    key, default, read, expire_time, tag, retry, mmap_mode=mmap_mode
                )
            return self._shard(key).get(key, default, read, expire_time, tag, retry)
        except Timeout:
            return default

    def __getitem__(self, key: Any) -> Any:
        """Return the value for ``key``; :class:`KeyError` if missing."""
        return self._shard(key)[key]

    def read(self, key: Any) -> Any:
        """Return a binary file object for the value of ``key``; :class:`KeyError` if missing."""
        handle = self.get(key, default=ENOVAL, read=True, retry=True)
        if handle is ENOVAL:
            raise KeyError(key)
        return handle

    def __contains__(self, key: object) -> bool:
        """Whether an unexpired item for ``key`` exists."""
        return key in self._shard(key)

    def stored_at(self, key: Any, retry: bool = False) -> float | None:
        """When the value of ``key`` was stored, or None if missing; see Cache.stored_at."""
        stored: float | None = self._shard(key).stored_at(key, retry)
        return stored

    def pop(
        self,
        key: Any,
        default: Any = None,
        expire_time: bool = False,
        tag: bool = False,
        retry: bool = False,
    ) -> Any:
        """Remove ``key`` and return its value; ``default`` if missing or the shard is locked."""
        return _unless_locked(default, self._shard(key).pop, key, default, expire_time, tag, retry)

    def delete(self, key: Any, retry: bool = False) -> bool:
        """Remove ``key``; ``False`` if it was missing or the shard stayed locked."""
        return bool(_unless_locked(False, self._shard(key).delete, key, retry))

    def __delitem__(self, key: Any) -> None:
        """Remove ``key``; :class:`KeyError` if missing."""
        del self._shard(key)[key]

    # -- whole-cache operations ---------------------------------------------------------

    @contextlib.contextmanager
    def transact(self, retry: bool = True) -> Iterator[None]:
        """Hold the write lock of every shard for the duration of the block.

        Shards are always locked in the same order, so two transactions cannot deadlock.
        Because the block must own every shard, it always waits (``retry`` must be true).
        """
        if not retry:
            raise ValueError(f"retry must be True for FanoutCache.transact, got {retry!r}")
        with contextlib.ExitStack() as stack:
            for shard in self._shards:
                stack.enter_context(shard.transact(retry=True))
            yield

    def check(self, fix: bool = False, retry: bool = False) -> list[Any]:
        """Check every shard's consistency and return all warnings found."""
        found: list[Any] = []
        for shard in self._shards:
            found.extend(shard.check(fix, retry))
        return found

    def _remove(self, method: str, args: tuple[Any, ...], retry: bool) -> int:
        """Run a bulk removal on every shard until each finishes; return the total removed.

        A shard that times out part-way reports how many items it had already removed in
        ``Timeout.args[0]``; the removal is then resumed, so the work is never lost.
        """
        total = 0
        for shard in self._shards:
            while True:
                try:
                    total += int(getattr(shard, method)(*args, retry=retry))
                except Timeout as exc:
                    done = exc.args[0] if exc.args else 0
                    if isinstance(done, int) and not isinstance(done, bool):
                        total += done
                else:
                    break
        return total

    def expire(self, retry: bool = False) -> int:
        """Remove expired items from every shard; return how many were removed."""
        return self._remove("expire", (_clock.now(),), retry)

    def evict(self, tag: str, retry: bool = False) -> int:
        """Remove items tagged ``tag`` from every shard; return how many were removed."""
        return self._remove("evict", (tag,), retry)

    def cull(self, retry: bool = False) -> int:
        """Remove items until every shard is within its size limit; return the count."""
        return self._remove("cull", (), retry)

    def clear(self, retry: bool = False) -> int:
        """Remove every item from every shard; return how many were removed."""
        return self._remove("clear", (), retry)

    def create_tag_index(self) -> None:
        """Create the tag index in every shard, making :meth:`evict` fast."""
        for shard in self._shards:
            shard.create_tag_index()

    def drop_tag_index(self) -> None:
        """Drop the tag index from every shard."""
        for shard in self._shards:
            shard.drop_tag_index()

    def stats(self, enable: bool = True, reset: bool = False) -> tuple[int, int]:
        """Return ``(hits, misses)`` summed over the shards; see Cache.stats."""
        hits = misses = 0
        for shard in self._shards:
            shard_hits, shard_misses = shard.stats(enable, reset)
            hits += shard_hits
            misses += shard_misses
        return hits, misses

    def volume(self) -> int:
        """Return the estimated bytes used on disk by all shards."""
        return sum(int(shard.volume()) for shard in self._shards)

    def reset(self, key: str, value: Any = ENOVAL) -> Any:
        """Reload (or, given ``value``, update) setting ``key`` in every shard.

        The value is applied to each shard as is: ``reset('size_limit', n)`` gives every
        shard a limit of ``n``, exactly as diskcache does.
        """
        args = (key,) if value is ENOVAL else (key, value)
        result: Any = None
        for shard in self._shards:
            while True:
                try:
                    result = shard.reset(*args)
                except Timeout:
                    continue
                break
        return result

    def __iter__(self) -> Iterator[Any]:
        """Iterate over the keys of every shard in turn (expired items included)."""
        return itertools.chain.from_iterable(iter(shard) for shard in self._shards)

    def __reversed__(self) -> Iterator[Any]:
        """Iterate over the keys in the reverse of :meth:`__iter__` order."""
        return itertools.chain.from_iterable(reversed(shard) for shard in reversed(self._shards))

    def __len__(self) -> int:
        """Number of items over all shards (expired items included)."""
        return sum(len(shard) for shard in self._shards)

    # -- namespaces and memoization -----------------------------------------------------

    def namespace(self, name: str) -> FanoutCache:
        """Return a view whose keys are isolated from every other namespace.

        The view is sharded like this cache and uses the same connections (so closing
        either closes both); ``clear()``, ``len()`` and iteration on it only see its own
        items. As with Cache views, ``view.namespace(other)`` is simply namespace ``other``.
        """
        shards = tuple(shard.namespace(name) for shard in self._shards)
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view._shards = shards
        view._namespace = name
        return view

    # What memoize asks of a cache (see diskstore._caching._functions): routed like any key.
    def _memo_store(
        self, function: str, key: Any, value: Any, expire: float | None, tag: Any
    ) -> None:
        self._shard(key)._memo_store(function, key, value, expire, tag)

    def _memo_lookup(self, key: Any, mmap_mode: str | None = None) -> Any:
        return self._shard(key)._memo_lookup(key, mmap_mode)

    def _memo_calls(self, function: str) -> CallCounts | None:
        # One shard keeps a function's calls: a hit need not know its key's shard to count.
        return self._shards[0]._memo_calls(function)

    def _memo_count(self, function: str) -> int:
        return sum(shard._memo_count(function) for shard in self._shards)

    def _memo_clear(self, function: str, retry: bool = True) -> int:
        return sum(shard._memo_clear(function, retry) for shard in self._shards)

    def memoized_functions(self) -> dict[str, tuple[int, int]]:
        """Each memoized function with results here: ``{name: (items, file bytes)}``."""
        found: dict[str, tuple[int, int]] = {}
        for shard in self._shards:
            for name, (items, size) in shard.memoized_functions().items():
                total = found.get(name, (0, 0))
                found[name] = (total[0] + items, total[1] + size)
        return found

    def function_stats(self) -> dict[str, FunctionStats]:
        """Each memoized function with results or calls in any shard, by name, sorted."""
        return combine_function_stats(shard.function_stats() for shard in self._shards)

    def memoize(self, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        """Memoizing decorator storing results in this cache; see :func:`diskstore.memoize`.

        Accepts the same arguments as Cache.memoize (``name``, ``typed``, ``expire``,
        ``tag``, ``ignore`` and the keyword-only options).
        """
        from ._memo._memoize import memoize

        decorator: Callable[..., Any] = memoize(self, *args, **kwargs)
        return decorator

    # -- named sub-collections ----------------------------------------------------------

    def cache(
        self, name: str, timeout: float = 60, disk: type[Disk] | None = None, **settings: Any
    ) -> Cache:
        """Return the unsharded Cache stored in ``cache/<name>`` under this directory.

        ``name`` may contain ``/`` to nest directories but cannot leave this directory. The
        same object is returned for the same name until :meth:`close`. ``disk`` defaults to
        this cache's serialization class.
        """
        parts = _check_name(name)
        with self._children.lock:
            found = self._children.caches.get(name)
            if found is None:
                path = os.path.join(self._directory, "cache", *parts)
                chosen = self._disk if disk is None else disk
                found = Cache(path, timeout, chosen, **{**self._options, **settings})
                self._children.caches[name] = found
            return found

    def deque(self, name: str, maxlen: int | None = None) -> Deque:
        """Return the :class:`Deque` stored in ``deque/<name>`` under this directory.

        The same object is returned for the same name until :meth:`close`; ``maxlen`` only
        applies when the object is first created.
        """
        parts = _check_name(name)
        with self._children.lock:
            found = self._children.deques.get(name)
            if found is None:
                path = os.path.join(self._directory, "deque", *parts)
                found = Deque.fromcache(self._unsharded(path), maxlen=maxlen)
                self._children.deques[name] = found
            return found

    def index(self, name: str) -> Index:
        """Return the :class:`Index` stored in ``index/<name>`` under this directory.

        The same object is returned for the same name until :meth:`close`.
        """
        parts = _check_name(name)
        with self._children.lock:
            found = self._children.indexes.get(name)
            if found is None:
                path = os.path.join(self._directory, "index", *parts)
                found = Index.fromcache(self._unsharded(path))
                self._children.indexes[name] = found
            return found

    def _unsharded(self, path: str) -> Cache:
        return Cache(path, disk=self._disk, **self._options, eviction_policy="none")

    # -- lifetime -----------------------------------------------------------------------

    def close(self) -> None:
        """Close every shard and every sub-collection opened through this cache.

        Namespace views share the connections, so closing a view closes the cache too.
        """
        for shard in self._shards:
            shard.close()
        self._children.close()

    def __enter__(self) -> FanoutCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {
            "directory": self._directory,
            "shards": self._count,
            "timeout": self._timeout,
            "disk": self._disk,
            "options": self._options,
            "namespace": self._namespace,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Reopen with the settings stored in the shards rather than defaults, so unpickling
        # never changes a size limit the cache was created with.
        self._open(
            state["directory"],
            state["shards"],
            state["timeout"],
            state["disk"],
            dict(state["options"]),
            namespace=state["namespace"],
        )


class _Children:
    """Named sub-collections opened through one FanoutCache (shared by its views)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.caches: dict[str, Any] = {}
        self.deques: dict[str, Deque] = {}
        self.indexes: dict[str, Index] = {}

    def close(self) -> None:
        with self.lock:
            for cache in self.caches.values():
                cache.close()
            for deque in self.deques.values():
                deque.cache.close()
            for index in self.indexes.values():
                index.cache.close()
            self.caches.clear()
            self.deques.clear()
            self.indexes.clear()
