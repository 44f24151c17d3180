"""``RedisCache``: the ``Cache`` API on a Redis (or Valkey) server.

An item is one Redis string (see :mod:`._codec`): a read is one ``GET``, a plain write
(with or without an expiry, ``add`` too) one ``SET``. A write that must also record the item
in its tag's or memoized function's set is one Lua script on a single server (see
:mod:`._scripts`), and on a cluster the ``SET`` then the set's update. Bulk operations
(``len``, iteration, ``clear``, ``evict``, ``check``, ``volume``) walk the namespace with
``SCAN``/``SSCAN`` in batches, so their memory stays bounded whatever the number of keys.
See ``docs/redis.md`` for what differs from the SQLite :class:`~diskstore.Cache`.
"""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import redis
import redis.exceptions as rex

from .._caching._base import _check_expire, _check_tag
from .._common._constants import ENOVAL
from .._common._exceptions import IntegrityError, SettingsError, UnsupportedError
from .._storage._settings import DEFAULT_SETTINGS
from .._values._disk import Disk
from .._values._signing import SecretArg, Signer, resolve_secret
from ._base import shaped
from ._codec import Codec, Extras, decode_tag, encode_tag, namespace_prefix
from ._connection import ERRORS, Shared, describe, is_cluster, server_noun, translate
from ._functions import FunctionsMixin
from ._lock import RedisLock
from ._near import NearCache
from ._queue import QueueMixin

__all__ = ["RedisCache"]

_NO_EXTRAS: Extras = (None, None, None)


class Item(NamedTuple):
    """An item ready to write: its string, its expiry (``PXAT`` ms) and the sets it joins."""

    blob: bytes
    pxat: int | None
    indexes: list[bytes]


#: Settings of the SQLite cache that a Redis server does with its own configuration.
_SERVER_SETTINGS = {
    "size_limit": "the server's maxmemory",
    "eviction_policy": "the server's maxmemory-policy",
    "cull_limit": "the server's maxmemory-policy",
    "tag_index": "tag sets, which RedisCache always keeps",
}
_DISK_SETTINGS = ("disk_pickle_protocol", "disk_compress_threshold", "disk_compress_level")
#: Seconds a single-flight lock lives unless its holder renews it.
DEFAULT_LOCK_EXPIRE = 30.0
#: Never write value files: a Redis value is one bulk string.
_NO_FILES = 2**62


def _check_namespace(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"namespace must be a str, got {name!r}")
    if "{" in name or "}" in name:
        raise ValueError(f"namespace must not contain '{{' or '}}', got {name!r}")
    return name


def _settings(settings: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    """Validate ``**settings``; return ``(statistics, Disk options)``."""
    statistics = False
    disk_options: dict[str, Any] = {}
    for name, value in settings.items():
        if name in _SERVER_SETTINGS:
            raise SettingsError(
                f"setting {name!r} is not honoured by RedisCache (got {value!r}): "
                f"Redis does this with {_SERVER_SETTINGS[name]}; see docs/redis.md"
            )
        if name == "statistics":
            if not isinstance(value, bool):
                raise SettingsError(f"statistics must be a bool, got {value!r}")
            statistics = value
        elif name in _DISK_SETTINGS:
            if type(value) is not int or value < 0:
                raise SettingsError(f"{name} must be a non-negative int, got {value!r}")
            disk_options[name[len("disk_") :]] = value
        elif name in DEFAULT_SETTINGS:
            pass  # SQLite storage settings have no meaning on a server
        else:
            raise SettingsError(f"unknown setting {name!r} (got {value!r})")
    return statistics, disk_options


class RedisCache(QueueMixin, FunctionsMixin):
    """A cache on a Redis server, with the API and storage format of :class:`~diskstore.Cache`.

    ``url`` is a redis-py URL (``redis://[user:password@]host:port/db``, ``rediss://`` for
    TLS, ``unix://``); on a Redis Cluster, the URL of any node (``cluster=None``, the
    default, asks the server at first use whether it is a cluster node; ``True`` or
    ``False`` says so without asking). ``namespace`` keeps this cache's keys apart from
    other caches on the same server (``clear()`` touches only them). ``timeout`` bounds
    every wait for the server, in seconds. Values are signed with ``secret`` (see
    ``Cache``): every machine sharing a namespace needs the same secret. ``client`` uses an
    existing ``redis.Redis`` or ``redis.cluster.RedisCluster`` instead of opening one.
    ``near_items`` > 0 keeps up to that many recently read items (and at most
    ``near_bytes``) in this process, kept coherent by the server's invalidation messages
    (see :mod:`._near`). ``**settings`` takes the ``statistics`` and ``disk_*`` settings
    of ``Cache``; the size and eviction settings are the server's (``maxmemory``).

    Nothing is sent to the server until the first operation, so a server that is down is
    reported there, as :class:`~diskstore.ServerUnavailableError`.
    """

    def __init__(
        self,
        url: str = "redis://localhost:6379/0",
        *,
        namespace: str = "",
        timeout: float = 10.0,
        secret: SecretArg = None,
        disk: type[Disk] = Disk,
        client: Any = None,
        near_items: int = 0,
        near_bytes: int = 64 * 2**20,
        cluster: bool | None = None,
        **settings: Any,
    ) -> None:
        if not isinstance(url, str):
            raise TypeError(f"url must be a str, got {url!r}")
        if type(timeout) not in (int, float) or math.isnan(timeout) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if not (isinstance(disk, type) and issubclass(disk, Disk)):
            raise TypeError(f"disk must be a subclass of diskstore.Disk, not {disk!r}")
        if disk.hooked:
            raise TypeError(
                f"disk {disk.__name__} overrides diskcache's store/fetch/filename/remove "
                "hooks, which work with value files; RedisCache takes Disk subclasses that "
                "override dumps/loads"
            )
        for name, limit in (("near_items", near_items), ("near_bytes", near_bytes)):
            if type(limit) is not int or limit < 0:
                raise ValueError(f"{name} must be a non-negative int, got {limit!r}")
        if cluster not in (None, True, False):
            raise TypeError(f"cluster must be None, True or False, got {cluster!r}")
        if client is not None and not (isinstance(client, redis.Redis) or is_cluster(client)):
            raise TypeError(
                f"client must be a redis.Redis or redis.cluster.RedisCluster, got {client!r}"
            )
        statistics, disk_options = _settings(settings)
        where = _where(url) if client is None else describe(client)
        self._url = url if client is None else where
        self._timeout = float(timeout)
        self._shared = Shared(client, url, float(timeout), cluster, where)
        self._shared.statistics = statistics
        signer = Signer(resolve_secret(secret) if disk.signed else None)
        options = {"compress_threshold": 1024, "compress_level": 3, **disk_options}
        self._disk = disk("", min_file_size=_NO_FILES, signer=signer, **options)
        self._bind(_check_namespace(namespace))
        if near_items:
            # Tracks every view below this namespace too: their keys share the prefix.
            root = namespace_prefix(namespace)[:-1]
            near = NearCache(self._shared, root, items=near_items, max_bytes=near_bytes)
            self._shared.near = near
            # A cache dropped without close() must not leave the thread and its two
            # connections behind: stop them when the last view of the cache is collected.
            weakref.finalize(self._shared, near.stop)

    def _bind(self, namespace: str) -> None:
        self._ns_name = namespace
        self._codec = Codec(namespace_prefix(namespace), self._disk)

    # -- properties ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The server's URL (for a ``client=``, the server or cluster it talks to)."""
        return self._url

    @property
    def timeout(self) -> float:
        """Seconds to wait for the server before raising ``ServerUnavailableError``."""
        return self._timeout

    @property
    def disk(self) -> Disk:
        """The serializer (a :class:`~diskstore.Disk` instance)."""
        return self._disk

    @property
    def client(self) -> Any:
        """The redis-py client: a ``redis.Redis``, or a ``RedisCluster`` on a cluster."""
        return self._client

    @property
    def cluster(self) -> bool:
        """Whether the server is a Redis Cluster (asks the server when not yet known)."""
        return is_cluster(self._client)

    @property
    def namespace_name(self) -> str:
        """This cache's namespace (``''`` for the default one)."""
        return self._ns_name

    def namespace(self, name: str) -> RedisCache:
        """Return a view on the same server whose keys are apart from every other namespace."""
        if _check_namespace(name) == "":
            raise ValueError("namespace name must be a non-empty str, got ''")
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view._bind(f"{self._ns_name}/{name}" if self._ns_name else name)
        return view

    def memoize(self, *args: Any, **kwargs: Any) -> Any:
        """Memoizing decorator storing results in this cache; see :func:`diskstore.memoize`.

        Concurrent misses of one key compute once across every machine using the server
        (a :class:`RedisLock` per key).
        """
        from .._memo._memoize import memoize

        return memoize(self, *args, **kwargs)

    def flight_lock(self, token: str) -> RedisLock:
        """The server-wide lock of one single-flight token (see :mod:`._lock`)."""
        return RedisLock(self._client, self._codec.prefix + b"lock:" + token.encode())

    # -- reads -----------------------------------------------------------------------------
    def get(
        self,
        key: Any,
        default: Any = None,
        read: bool = False,
        expire_time: bool = False,
        tag: bool = False,
        retry: bool = False,
    ) -> Any:
        """Return the value for *key*, or *default* if it is missing or expired.

        With ``expire_time`` and/or ``tag``, return a tuple that adds them. ``read`` is
        accepted for compatibility: values always come back whole.
        """
        rkey = self._codec.item_key(key)
        blob = self._fetch(rkey)
        value = ENOVAL if blob is None else self._decoded(rkey, blob)
        if self._shared.statistics:
            self._count(value is not ENOVAL)
        if expire_time or tag:
            return self._shape_read(value, blob, default, expire_time, tag)
        return default if value is ENOVAL else value

    def _fetch(self, rkey: bytes) -> bytes | None:
        """The item's string (one ``GET``), or None."""
        near = self._shared.near
        if near is not None and near.ready:
            return self._near_blob(near, rkey)
        try:
            return self._client.get(rkey)  # type: ignore[return-value]
        except ERRORS as exc:
            raise translate(exc, self._shared.where) from exc

    def _near_blob(self, near: NearCache, rkey: bytes) -> bytes | None:
        """The item's string from the near cache, else from the server (then kept)."""
        kept = near.lookup(rkey)
        if kept is not None:
            return kept
        generation = near.generation
        try:
            blob: Any = self._client.get(rkey)
        except ERRORS as exc:
            raise translate(exc, self._shared.where) from exc
        self._near_keep(near, rkey, blob, generation)
        return blob  # type: ignore[no-any-return]

    def _near_keep(self, near: NearCache, rkey: bytes, blob: Any, generation: int) -> None:
        """Keep a string read from the server, unless an invalidation came meanwhile."""
        if blob is not None:
            try:
                expire = self._codec.extras(blob)[0]
            except IntegrityError:
                return  # not kept: the reader drops it
            near.put(rkey, (blob, expire), generation)

    def _shape_read(
        self, value: Any, blob: bytes | None, default: Any, expire_time: bool, tag: bool
    ) -> Any:
        if value is ENOVAL or blob is None:
            return shaped(default, None, None, expire_time, tag)
        expire, encoded_tag, _ = self._codec.extras(blob)
        return shaped(value, expire, decode_tag(encoded_tag), expire_time, tag)

    def _count(self, hit: bool) -> None:
        try:
            self._client.hincrby(self._codec.prefix + b"stats", "hits" if hit else "misses", 1)
        except ERRORS as exc:
            raise translate(exc, self._shared.where) from exc

    def read(self, key: Any, retry: bool = False) -> Any:
        """Return the value for *key*; ``KeyError`` if it is missing."""
        return self[key]

    def __getitem__(self, key: Any) -> Any:
        value = self.get(key, default=ENOVAL, retry=True)
        if value is ENOVAL:
            raise KeyError(key)
        return value

    def __contains__(self, key: Any) -> bool:
        try:
            return bool(self._client.exists(self._codec.item_key(key)))
        except ERRORS as exc:
            raise translate(exc, self._shared.where) from exc

    # -- writes ----------------------------------------------------------------------------
    def set(
        self,
        key: Any,
        value: Any,
        expire: float | None = None,
        read: bool = False,
        tag: Any = None,
        retry: bool = False,
    ) -> bool:
        """Store *value* under *key*; return True.

        ``expire`` is seconds until Redis expires the item; ``read`` stores a binary file's
        contents; ``tag`` labels the item for :meth:`evict`. Inside :meth:`transact` the
        write is queued and applied when the block ends.
        """
        self._write_item(key, value, expire, read, tag, only_if_missing=False)
        return True

    def __setitem__(self, key: Any, value: Any) -> None:
        self.set(key, value, retry=True)

    def add(
        self,
        key: Any,
        value: Any,
        expire: float | None = None,
        read: bool = False,
        tag: Any = None,
        retry: bool = False,
    ) -> bool:
        """Store *value* only if *key* is missing (or expired); return whether it was stored."""
        self._no_transaction("add")
        return self._write_item(key, value, expire, read, tag, only_if_missing=True)

    def _item(
        self, rkey: bytes, value: Any, expire: float | None, read: bool, tag: Any,
        function: str | None = None, limit: int | None = None,
    ) -> Item:  # fmt: skip
        """What to store for an item: its string, its PXAT (or None) and the sets it joins.

        ``limit`` is the server's largest accepted value (asked for when not given).
        """
        expire_time = None if expire is None else _check_expire(expire, time.time())
        tag = None if tag is None else _check_tag(tag)
        encoded_tag = None if tag is None else encode_tag(tag)
        name = None if function is None else function.encode("utf-8", "surrogatepass")
        blob = self._codec.encode(rkey, value, read, expire_time, encoded_tag, name)
        if limit is None:
            limit = self._shared.max_value_size()
        if len(blob) > limit - 64:
            raise ValueError(
                f"value of {len(blob)} bytes is larger than the {server_noun(self._shared.where)}"
                f" accepts (proto-max-bulk-len={limit})"
            )
        indexes: list[bytes] = []
        if encoded_tag is not None:
            indexes.append(self._codec.tag_key(encoded_tag))
        if function is not None:
            indexes.append(self._function_key(function))
        pxat = None if expire_time is None else math.ceil(expire_time * 1000)
        return Item(blob, pxat, indexes)

    def _write_item(
        self, key: Any, value: Any, expire: float | None, read: bool, tag: Any, *,
        only_if_missing: bool, function: str | None = None,
    ) -> bool:  # fmt: skip
        rkey = self._codec.item_key(key)
        item = self._item(rkey, value, expire, read, tag, function)
        shared = self._shared
        batch = shared.pipeline()
        if batch is not None:
            batch.append((rkey, item))
            return True
        try:
            client = self._client  # opened: shared.cluster is known after
            if not item.indexes:  # one native SET
                stored = client.set(rkey, item.blob, pxat=item.pxat, nx=only_if_missing)
                return bool(stored)
            pxat = "" if item.pxat is None else item.pxat
            flag = "1" if only_if_missing else ""
            script = shared.scripts["SET"]
            if not shared.cluster:  # one script: the item and its sets, atomically
                return bool(script(keys=[rkey, *item.indexes], args=[item.blob, pxat, flag]))
            # A cluster: the sets live in other slots. The item first, so that an evict
            # running meanwhile cannot drop the set's entry of an item it did not delete.
            stored = bool(script(keys=[rkey], args=[item.blob, pxat, flag]))
            if stored:
                self._index_add(item.indexes, rkey, pxat)
            return stored
        except ERRORS as exc:
            raise translate(exc, shared.where) from exc
        finally:
            self._forget(rkey)

    def touch(self, key: Any, expire: float | None = None, retry: bool = False) -> bool:
        """Set a new expiry for *key* (None: never); return False if it is missing."""
        self._no_transaction("touch")
        expire_time = None if expire is None else _check_expire(expire, time.time())
        args = ["", ""]
        if expire_time is not None:
            args = [repr(expire_time), str(math.ceil(expire_time * 1000))]
        rkey = self._codec.item_key(key)
        try:
            return bool(self._shared.scripts["TOUCH"](keys=[rkey], args=args))
        except ERRORS as exc:
            raise translate(exc, self._shared.where) from exc
        finally:
            self._forget(rkey)

    def incr(self, key: Any, delta: int | float = 1, default: Any = 0, retry: bool = False) -> Any:
        """Atomically add *delta* to the value of *key* and return the result.

        A missing key starts from *default*; with ``default=None`` it raises ``KeyError``.
        Integers are added by the server (``INCRBY``); other numbers, and integers stored
        with an expiry or a tag, by an optimistic ``WATCH``/``MULTI`` retry loop.
        """
        self._no_transaction("incr")
        rkey = self._codec.item_key(key)
        try:
            return self._incr(key, rkey, delta, default)
        finally:
            self._forget(rkey)

    def _incr(self, key: Any, rkey: bytes, delta: Any, default: Any) -> Any:
        if incr_fast_path(delta, default):
            try:
                status, result = self._shared.scripts["INCR"](
                    keys=[rkey], args=[delta, "" if default is None else default]
                )
            except ERRORS as exc:
                raise translate(exc, self._shared.where) from exc
            value = _incr_result(key, status, result)
            if value is not ENOVAL:
                return value
        return self._incr_watched(key, rkey, delta, default)

    def _incr_watched(self, key: Any, rkey: bytes, delta: Any, default: Any) -> Any:
        codec = self._codec
        try:
            with self._client.pipeline(transaction=True) as pipe:
                while True:
                    try:
                        pipe.watch(rkey)  # type: ignore[no-untyped-call]
                        blob: Any = pipe.get(rkey)
                        if blob is None:
                            if default is None:
                                raise KeyError(key)
                            current, extras = default, _NO_EXTRAS
                        else:
                            current, extras = codec.value(rkey, blob), codec.extras(blob)
                        result = current + delta
                        expire, tag, function = extras
                        updated = codec.encode(rkey, result, False, expire, tag, function)
                        pipe.multi()
                        pipe.set(rkey, updated, keepttl=blob is not None)
                        pipe.execute()
                        return result
                    except rex.WatchError:
                        continue
        except ERRORS as exc:
            raise translate(exc, self._shared.where) from exc

    def decr(self, key: Any, delta: int | float = 1, default: Any = 0, retry: bool = False) -> Any:
        """Atomically subtract *delta* from the value of *key*; see :meth:`incr`."""
        return self.incr(key, -delta, default, retry)

    def delete(self, key: Any, retry: bool = False) -> bool:
        """Remove *key*; return True if a live item was removed."""
        self._no_transaction("delete")
        rkey = self._codec.item_key(key)
        try:
            return bool(self._client.delete(rkey))
        except ERRORS as exc:
            raise translate(exc, self._shared.where) from exc
        finally:
            self._forget(rkey)

    def __delitem__(self, key: Any, retry: bool = True) -> None:
        if not self.delete(key, retry=retry):
            raise KeyError(key)

    def pop(
        self,
        key: Any,
        default: Any = None,
        expire_time: bool = False,
        tag: bool = False,
        retry: bool = False,
    ) -> Any:
        """Remove *key* and return its value (atomically, ``GETDEL``), or *default*."""
        self._no_transaction("pop")
        rkey = self._codec.item_key(key)
        try:
            blob: Any = self._client.getdel(rkey)
        except ERRORS as exc:
            raise translate(exc, self._shared.where) from exc
        finally:
            self._forget(rkey)
        value = ENOVAL if blob is None else self._decoded(rkey, blob)
        return self._shape_read(value, blob, default, expire_time, tag)

    # -- transactions ----------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[None]:
        shared = self._shared
        if shared.pipeline() is not None:
            yield  # nested: part of the outer block
            return
        batch: list[tuple[bytes, Item]] = []
        shared.local.pipe = batch
        try:
            yield
        finally:
            shared.local.pipe = None
        if not batch:
            return
        try:
            self._commit(batch)
        except ERRORS as exc:
            raise translate(exc, shared.where) from exc
        finally:
            self._forget()

    def _commit(self, batch: list[tuple[bytes, Item]]) -> None:
        """Apply a ``transact()`` block's writes: one ``MULTI``/``EXEC`` of ``SET``s per hash
        slot (one in all on a single server), then add the items to their tag and function
        sets."""
        client: Any = self._client
        groups: dict[int, list[tuple[bytes, Item]]] = {}
        for rkey, item in batch:
            slot = client.keyslot(rkey) if is_cluster(client) else 0
            groups.setdefault(slot, []).append((rkey, item))
        for writes in groups.values():
            with client.pipeline(transaction=True) as pipe:
                for rkey, item in writes:
                    pipe.set(rkey, item.blob, pxat=item.pxat)
                pipe.execute()
        for rkey, item in batch:
            if item.indexes:
                self._index_add(item.indexes, rkey, "" if item.pxat is None else item.pxat)

    def transact(self, retry: bool = False) -> Any:
        """Apply the block's writes atomically: ``with cache.transact(): cache.set(...)``.

        The writes of the block (``set``, in every namespace view of this cache) are queued
        and sent as one ``MULTI``/``EXEC`` when the block ends, so other clients see all of
        them or none; an exception in the block discards them. On a Redis Cluster that holds
        per hash slot: each slot's writes are one ``MULTI``/``EXEC``, sent one slot after
        another. Reads inside the block see
        the server as it was before the block. Writes whose result depends on the current
        value (``add``, ``incr``, ``pop``, ``delete``, ...) raise ``UnsupportedError`` there.
        """
        return self._transaction()

    def _no_transaction(self, operation: str) -> None:
        if self._shared.pipeline() is not None:
            raise UnsupportedError(
                f"{operation}() inside RedisCache.transact() cannot return its result: the "
                "block's writes are applied when it ends (MULTI/EXEC); call it outside"
            )

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connections this cache opened (a client passed in stays open)."""
        if self._shared.near is not None:
            self._shared.near.close()
        if self._shared.owns_client and self._shared.opened:
            self._client.close()

    def __enter__(self) -> RedisCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = f", namespace={self._ns_name!r}" if self._ns_name else ""
        return f"{type(self).__name__}({self._shared.where!r}{where})"


def _incr_result(key: Any, status: int, result: Any) -> Any:
    """The INCR script's answer: the new value, ``KeyError``, or ``ENOVAL`` when the value
    is not a native int (then the caller adds in Python under WATCH)."""
    if status == 1:
        return int(result)
    if status == 0:
        raise KeyError(key)
    return ENOVAL


def incr_fast_path(delta: Any, default: Any) -> bool:
    """Whether the server can add: an int delta onto an int (or no) default."""
    return type(delta) is int and (default is None or type(default) is int)


def _where(url: str) -> str:
    """The URL without its password, for messages."""
    head, sep, tail = url.rpartition("@")
    if not sep:
        return url
    scheme, _, _ = head.partition("://")
    return f"{scheme}://***@{tail}"
