"""``AsyncRedisCache``: the async API on a Redis server, through ``redis.asyncio``.

Single-key operations (``get``, ``set``, ``add``, ``incr``, ``delete``, ``pop``, ``touch``,
``in``) are native coroutines on an asyncio client, encoded exactly as
:class:`~diskstore.redis.RedisCache` does (it shares the encoders, scripts and result
handling). Namespace-wide operations and queues, rarer and built from several steps, run
the synchronous implementation in a worker thread. ``get_or_set`` and ``memoize``
deduplicate concurrent misses across tasks, processes and machines with the server's
per-key lock (:class:`~diskstore.redis.RedisLock`). ``near_items`` gives it the near cache
of ``RedisCache`` (a hit is answered without awaiting anything).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from typing import Any

import redis.asyncio
import redis.exceptions as rex
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff

from .._common._constants import ENOVAL
from .._common._forwarding import Awaiting
from .._memo._hashing import stable_hash
from .._memo._memoize import DEFAULT_LOCK_TIMEOUT, memoize
from .._memo._singleflight import SingleFlight, produce
from . import _scripts
from ._bulk import glob_escape
from ._connection import DEFAULT_MAX_BULK, ERRORS, is_cluster, translate
from .cache import RedisCache, _incr_result, incr_fast_path

__all__ = ["AsyncRedisCache"]

_TOKEN_PREFIX = "diskstore.redis.get_or_set"

#: RedisCache's methods, awaited: run by the synchronous cache in a worker thread.
_threaded = Awaiting(RedisCache, "_thread")


class _AsyncState:
    """The asyncio client of an ``AsyncRedisCache`` and its views, opened on first use."""

    def __init__(self) -> None:
        self.client: Any = None
        self.scripts: dict[str, Any] = {}
        self.max_bulk: int | None = None


class AsyncRedisCache:
    """The :class:`~diskstore.AsyncCache` API on a Redis server.

    Takes the arguments of :class:`~diskstore.redis.RedisCache`. Nothing is sent to the
    server before the first operation.

    >>> AsyncRedisCache("redis://localhost:6379/0", namespace="docs")
    AsyncRedisCache('redis://localhost:6379/0', namespace='docs')
    """

    def __init__(
        self,
        url: str = "redis://localhost:6379/0",
        *,
        lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
        **options: Any,
    ) -> None:
        self._sync = RedisCache(url, **options)
        self._state = _AsyncState()  # shared with namespace views
        self._flight = SingleFlight(self._sync.flight_lock, timeout=lock_timeout)

    @property
    def cache(self) -> RedisCache:
        """The synchronous cache on the same server and namespace."""
        return self._sync

    @property
    def namespace_name(self) -> str:
        """This cache's namespace."""
        return self._sync.namespace_name

    def namespace(self, name: str) -> AsyncRedisCache:
        """A view on another namespace, sharing this cache's connections."""
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view._sync = self._sync.namespace(name)
        return view

    def _error(self, exc: BaseException) -> Exception:
        return translate(exc, self._sync._shared.where)

    async def _open(self) -> Any:
        """Open the asyncio client: of the same kind as the sync cache's (which is opened,
        in a worker thread, first: it finds out whether the server is a cluster)."""
        sync_client = await asyncio.to_thread(lambda: self._sync._client)
        if self._state.client is None:
            aclient = _async_client(sync_client, self._sync._shared.url, self._sync.timeout)
            self._state.scripts = {
                name: aclient.register_script(getattr(_scripts, name))
                for name in ("SET", "TOUCH", "INCR", "INDEX_ADD")
            }
            self._state.client = aclient
        return self._state.client

    async def _limit(self) -> int:
        if self._state.max_bulk is None:
            aclient = self._state.client or await self._open()
            try:
                found: Any = await aclient.config_get("proto-max-bulk-len")
                self._state.max_bulk = int(found.get("proto-max-bulk-len") or DEFAULT_MAX_BULK)
            except rex.ResponseError:
                self._state.max_bulk = DEFAULT_MAX_BULK
            except ERRORS as exc:
                raise self._error(exc) from exc
        return self._state.max_bulk

    async def _thread(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(getattr(self._sync, method), *args, **kwargs)

    # -- single keys -----------------------------------------------------------------------
    async def get(
        self,
        key: Any,
        default: Any = None,
        read: bool = False,
        expire_time: bool = False,
        tag: bool = False,
        retry: bool = False,
    ) -> Any:
        """Return the value for *key*, or *default*; see ``RedisCache.get``."""
        sync = self._sync
        rkey = sync._codec.item_key(key)
        aclient = self._state.client or await self._open()
        near = sync._shared.near
        try:
            if near is not None and near.ready:
                blob: Any = near.lookup(rkey)
                if blob is None:
                    generation = near.generation
                    blob = await aclient.get(rkey)
                    sync._near_keep(near, rkey, blob, generation)
            else:
                blob = await aclient.get(rkey)
            value = ENOVAL if blob is None else sync._decoded(rkey, blob)
            if sync._shared.statistics:
                counter = "hits" if value is not ENOVAL else "misses"
                await aclient.hincrby(sync._codec.prefix + b"stats", counter, 1)
        except ERRORS as exc:
            raise self._error(exc) from exc
        if expire_time or tag:
            return sync._shape_read(value, blob, default, expire_time, tag)
        return default if value is ENOVAL else value

    async def _write(
        self, key: Any, value: Any, expire: float | None, read: bool, tag: Any,
        only_if_missing: bool,
    ) -> bool:  # fmt: skip
        sync = self._sync
        rkey = sync._codec.item_key(key)
        item = sync._item(rkey, value, expire, read, tag, limit=await self._limit())
        aclient = self._state.client
        try:
            if not item.indexes:  # one native SET
                return bool(await aclient.set(rkey, item.blob, pxat=item.pxat, nx=only_if_missing))
            pxat = "" if item.pxat is None else item.pxat
            flag = "1" if only_if_missing else ""
            script = self._state.scripts["SET"]
            if not is_cluster(aclient):
                keys = [rkey, *item.indexes]
                return bool(await script(keys=keys, args=[item.blob, pxat, flag]))
            # A cluster: the tag's set is in another slot, added to after the write.
            stored = bool(await script(keys=[rkey], args=[item.blob, pxat, flag]))
            if stored:
                for index in item.indexes:
                    await self._state.scripts["INDEX_ADD"](keys=[index], args=[rkey, pxat])
            return stored
        except ERRORS as exc:
            raise self._error(exc) from exc
        finally:
            sync._forget(rkey)

    async def set(
        self,
        key: Any,
        value: Any,
        expire: float | None = None,
        read: bool = False,
        tag: Any = None,
        retry: bool = False,
    ) -> bool:
        """Store *value* under *key*; return True."""
        return await self._write(key, value, expire, read, tag, False)

    async def add(
        self,
        key: Any,
        value: Any,
        expire: float | None = None,
        read: bool = False,
        tag: Any = None,
        retry: bool = False,
    ) -> bool:
        """Store *value* only if *key* is missing; return whether it was stored."""
        return await self._write(key, value, expire, read, tag, True)

    async def incr(self, key: Any, delta: int = 1, default: Any = 0, retry: bool = False) -> Any:
        """Atomically add *delta* to the value of *key*; see ``RedisCache.incr``."""
        if incr_fast_path(delta, default):
            rkey = self._sync._codec.item_key(key)
            if self._state.client is None:
                await self._open()
            try:
                status, result = await self._state.scripts["INCR"](
                    keys=[rkey], args=[delta, "" if default is None else default]
                )
            except ERRORS as exc:
                raise self._error(exc) from exc
            finally:
                self._sync._forget(rkey)
            value = _incr_result(key, status, result)
            if value is not ENOVAL:
                return value
        return await self._thread("incr", key, delta, default)

    async def decr(self, key: Any, delta: int = 1, default: Any = 0, retry: bool = False) -> Any:
        """Atomically subtract *delta*; see :meth:`incr`."""
        return await self.incr(key, -delta, default, retry)

    async def delete(self, key: Any, retry: bool = False) -> bool:
        """Remove *key*; return whether it was there."""
        aclient = self._state.client or await self._open()
        rkey = self._sync._codec.item_key(key)
        try:
            return bool(await aclient.delete(rkey))
        except ERRORS as exc:
            raise self._error(exc) from exc
        finally:
            self._sync._forget(rkey)

    async def contains(self, key: Any) -> bool:
        """Whether *key* is stored (``in`` cannot be awaited)."""
        aclient = self._state.client or await self._open()
        try:
            return bool(await aclient.exists(self._sync._codec.item_key(key)))
        except ERRORS as exc:
            raise self._error(exc) from exc

    async def pop(
        self,
        key: Any,
        default: Any = None,
        expire_time: bool = False,
        tag: bool = False,
        retry: bool = False,
    ) -> Any:
        """Remove *key* and return its value atomically (``GETDEL``), or *default*."""
        sync = self._sync
        rkey = sync._codec.item_key(key)
        aclient = self._state.client or await self._open()
        try:
            blob: Any = await aclient.getdel(rkey)
        except ERRORS as exc:
            raise self._error(exc) from exc
        finally:
            sync._forget(rkey)
        value = ENOVAL if blob is None else sync._decoded(rkey, blob)
        return sync._shape_read(value, blob, default, expire_time, tag)

    # -- the rest, RedisCache's methods awaited in a worker thread --------------------------
    # Each takes the parameters and docstring of the RedisCache method it runs (see
    # diskstore._common._forwarding): namespace-wide work and queues, built from several
    # steps, and touch, whose script is registered on the sync client.
    touch = _threaded(RedisCache.touch)
    clear = _threaded(RedisCache.clear)
    evict = _threaded(RedisCache.evict)
    push = _threaded(RedisCache.push)
    pull = _threaded(RedisCache.pull)
    peek = _threaded(RedisCache.peek)
    stats = _threaded(RedisCache.stats)
    volume = _threaded(RedisCache.volume)
    check = _threaded(RedisCache.check)

    async def expire(self, now: float | None = None, retry: bool = False) -> int:
        """Return 0: the server expires items itself."""
        return 0

    async def cull(self, retry: bool = False) -> int:
        """Return 0: the server evicts by its ``maxmemory-policy``."""
        return 0

    async def peekitem(
        self, last: bool = True, expire_time: bool = False, tag: bool = False, retry: bool = False
    ) -> Any:
        """Not offered; raises ``UnsupportedError`` (see ``RedisCache.peekitem``)."""
        return self._sync.peekitem(last, expire_time, tag)

    async def length(self) -> int:
        """The number of items (``len`` cannot be awaited)."""
        return int(await self._thread("__len__"))

    async def __aiter__(self) -> AsyncIterator[Any]:
        """Iterate over the keys (``SCAN`` batches, bounded memory)."""
        codec = self._sync._codec
        pattern = glob_escape(codec.item_prefix) + b"*"
        aclient = self._state.client or await self._open()
        try:
            async for rkey in aclient.scan_iter(match=pattern, count=500):
                yield codec.user_key(rkey)
        except ERRORS as exc:
            raise self._error(exc) from exc

    # -- computing once --------------------------------------------------------------------
    async def get_or_set(
        self,
        key: Any,
        factory: Callable[[], Any],
        expire: float | None = None,
        *,
        tag: Any = None,
        retry: bool = False,
    ) -> Any:
        """Return the value of *key*, or compute it once (across machines) and store it.

        ``factory`` takes no arguments: a coroutine function is awaited on the loop, a
        plain callable runs in a worker thread, as in ``AsyncCache``. Concurrent callers
        of one missing key, in this loop or on any machine using the server, wait for one
        computation.
        """
        if not callable(factory):
            raise TypeError(f"factory must be a callable taking no arguments, not {factory!r}")
        value = await self.get(key, ENOVAL)
        if value is not ENOVAL:
            return value

        async def compute() -> Any:
            result = await produce(factory)
            await self.set(key, result, expire, tag=tag)
            return result

        try:
            token = stable_hash((_TOKEN_PREFIX, self._sync.namespace_name, key))
        except TypeError:
            return await compute()
        lookup = functools.partial(self._sync.get, key, ENOVAL, retry=True)
        value, _ = await self._flight.run_async(token, lookup, compute)
        return value

    def memoize(self, *args: Any, **kwargs: Any) -> Any:
        """Memoize a function here, as ``RedisCache.memoize`` does; an ``async def``
        function's lookups and stores run in worker threads."""
        return memoize(self._sync, *args, **kwargs)

    # -- lifecycle -------------------------------------------------------------------------
    async def close(self) -> None:
        """Close both clients."""
        if self._state.client is not None:
            await self._state.client.aclose()
            self._state.client = None
        self._sync.close()

    async def __aenter__(self) -> AsyncRedisCache:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        where = f", namespace={self.namespace_name!r}" if self.namespace_name else ""
        return f"{type(self).__name__}({self._sync._shared.where!r}{where})"


def _async_client(client: Any, url: str, timeout: float) -> Any:
    """A ``redis.asyncio`` client for the server(s) that the sync ``client`` talks to."""
    if is_cluster(client):
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        node = client.get_primaries()[0]
        options = _connection_options(node.redis_connection.connection_pool)
        options.pop("host", None)
        options.pop("port", None)
        options.pop("db", None)
        return RedisCluster(
            startup_nodes=[ClusterNode(n.host, n.port) for n in client.get_primaries()],
            retry=Retry(ExponentialBackoff(cap=0.4, base=0.05), 4),
            **options,
        )
    pool = client.connection_pool
    options = _connection_options(pool)
    return redis.asyncio.Redis(
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[rex.ConnectionError, rex.TimeoutError],
        **options,
    )


#: The connection options a sync client's pool and an asyncio client share.
_SHARED_OPTIONS = (
    "host", "port", "db", "path", "username", "password", "client_name",
    "socket_timeout", "socket_connect_timeout", "ssl_keyfile", "ssl_certfile",
    "ssl_cert_reqs", "ssl_ca_certs", "ssl_check_hostname",
)  # fmt: skip


def _connection_options(pool: Any) -> dict[str, Any]:
    given = pool.connection_kwargs
    options = {name: given[name] for name in _SHARED_OPTIONS if name in given}
    if "path" in options:
        options["unix_socket_path"] = options.pop("path")
        options.pop("host", None)
        options.pop("port", None)
    if "SSL" in getattr(pool.connection_class, "__name__", ""):
        options["ssl"] = True
    return options
