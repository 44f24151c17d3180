"""The Redis client a cache uses, and the one place redis-py's errors become diskstore's.

Connecting is lazy: constructing a cache never touches the network, so a server that is
down at start is reported by the first operation, as :class:`ServerUnavailableError`
(a ``ConnectionError``). Every socket operation is bounded by the cache's ``timeout``; a
dropped connection (a restarted server) is retried once on a fresh one, so an operation
either succeeds on the restarted server or raises within about twice the timeout.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
import redis.exceptions as rex
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

from .._common._exceptions import (
    ReadOnlyError,
    ServerUnavailableError,
    StorageError,
    StorageFullError,
)

__all__ = ["ERRORS", "Shared", "describe", "is_cluster", "make_client", "translated"]

#: Redis's own default for ``proto-max-bulk-len``, used when CONFIG GET is not allowed.
DEFAULT_MAX_BULK = 512 * 2**20

#: What redis-py raises: its errors, and the cluster client's, some of which are not
#: ``RedisError`` subclasses (a cluster none of whose nodes answer, an uncovered slot).
ERRORS: tuple[type[Exception], ...] = (rex.RedisError, rex.RedisClusterException)

#: Errors that mean "no server can answer now" (a node down, a failover in progress).
_UNAVAILABLE = (
    rex.ConnectionError,
    rex.TimeoutError,
    rex.ClusterError,
    rex.TryAgainError,
    rex.RedisClusterException,
)


def cluster_retry() -> Retry:
    """How a cluster client retries a command that met a moving or failing node.

    Each retry first refreshes the slot map, so a command caught by a failover goes to the
    promoted replica once the cluster has one; the backoff (50 ms doubling up to 0.4 s,
    four retries, about a second in all) bounds how long a command waits for that.
    """
    return Retry(ExponentialBackoff(cap=0.4, base=0.05), 4)


def make_client(url: str, timeout: float, cluster: bool) -> Any:
    """A client for ``url`` whose every wait is bounded by ``timeout`` seconds.

    ``cluster`` opens a ``RedisCluster`` client, which asks the node at ``url`` for the
    others (and connects doing so).
    """
    if cluster:
        from redis.cluster import RedisCluster

        return RedisCluster.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=cluster_retry(),
            health_check_interval=0,
        )
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[rex.ConnectionError, rex.TimeoutError],
        health_check_interval=0,
    )


def is_cluster(client: Any) -> bool:
    """Whether ``client`` is redis-py's cluster client (sync or asyncio)."""
    return hasattr(client, "get_primaries")


def describe(client: Any) -> str:
    """The server(s) ``client`` talks to, for messages: ``redis://host:port/db`` or, for a
    cluster, ``redis-cluster://host:port,host:port,...`` (its masters, else its startup
    nodes). Passwords are never shown."""
    if is_cluster(client):
        try:
            nodes = client.get_primaries() or client.get_nodes()
            names = sorted({f"{node.host}:{node.port}" for node in nodes})
        except Exception:  # a client that never connected: fall back to what it was given
            names = []
        if not names:
            startup = getattr(getattr(client, "nodes_manager", None), "startup_nodes", {})
            names = sorted(startup) or ["?"]
        return "redis-cluster://" + ",".join(names)
    pool = getattr(client, "connection_pool", None)
    options: dict[str, Any] = dict(getattr(pool, "connection_kwargs", None) or {})
    if "path" in options:
        return f"unix://{options['path']}?db={options.get('db', 0)}"
    if not options:
        return repr(client)
    connection_class = getattr(pool, "connection_class", None)
    scheme = "rediss" if "SSL" in getattr(connection_class, "__name__", "") else "redis"
    host, port = options.get("host", "localhost"), options.get("port", 6379)
    return f"{scheme}://{host}:{port}/{options.get('db', 0)}"


def server_noun(where: str) -> str:
    """``Redis server at <where>`` or ``Redis cluster at <where>``."""
    kind = "cluster" if where.startswith("redis-cluster://") else "server"
    return f"Redis {kind} at {where}"


def translate(exc: BaseException, where: str) -> Exception:
    """The diskstore error for a redis-py error (raise it ``from exc``)."""
    server = server_noun(where)
    if isinstance(exc, (rex.AskError, rex.ClusterCrossSlotError)):
        return StorageError(
            errno.EIO,
            f"{server} is a Redis Cluster node, not a single server ({exc}): open the cache "
            "with cluster=True, or pass client=redis.cluster.RedisCluster(...)",
        )
    if isinstance(exc, _UNAVAILABLE) and not isinstance(exc, rex.CrossSlotTransactionError):
        if isinstance(exc, (rex.AuthenticationError, rex.AuthorizationError)):
            return StorageError(errno.EACCES, f"{server} refused the credentials: {exc}")
        return ServerUnavailableError(f"{server} is unavailable: {exc}")
    if isinstance(exc, rex.OutOfMemoryError):
        return StorageFullError(errno.ENOSPC, f"{server} is out of memory (maxmemory): {exc}")
    if isinstance(exc, rex.ReadOnlyError):
        return ReadOnlyError(f"{server} is a read-only replica: {exc}")
    return StorageError(errno.EIO, f"{server} refused the command: {exc}")


@contextmanager
def translated(where: str) -> Iterator[None]:
    """Turn redis-py errors raised in the block into diskstore errors."""
    try:
        yield
    except ERRORS as exc:
        raise translate(exc, where) from exc


def _detect_cluster(url: str, timeout: float) -> bool:
    """Whether the server at ``url`` is a cluster node (``INFO cluster``); False when the
    server's ACL refuses INFO (then a cluster shows itself by its MOVED replies)."""
    probe = make_client(url, timeout, cluster=False)
    try:
        return bool(probe.info("cluster").get("cluster_enabled"))
    except rex.ResponseError:
        return False
    finally:
        probe.close()


class Shared:
    """State shared by a cache and its namespace views: the client, scripts, transactions.

    The client is opened on first use (``client`` is then a plain attribute): with
    ``cluster=None`` that first use also asks the server whether it is a cluster node.
    """

    client: Any
    scripts: dict[str, Any]

    def __init__(
        self, client: Any, url: str, timeout: float, cluster: bool | None, where: str
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.cluster = cluster if client is None else is_cluster(client)
        self.where = where
        self.owns_client = client is None
        self.local = threading.local()
        self.statistics = False
        self.near: Any = None  # a NearCache when enabled
        self._max_bulk: int | None = None
        self._opening = threading.Lock()
        if client is not None:
            self._adopt(client)

    def __getattr__(self, name: str) -> Any:
        if name not in ("client", "scripts"):
            raise AttributeError(name)
        with self._opening:
            if "client" not in self.__dict__:
                self._adopt(self._open())
        return self.__dict__[name]

    def _open(self) -> Any:
        try:
            if self.cluster is None:
                self.cluster = _detect_cluster(self.url, self.timeout)
            client = make_client(self.url, self.timeout, self.cluster)
        except ERRORS as exc:
            raise translate(exc, self.where) from exc
        if self.cluster:
            self.where = describe(client)
        return client

    def _adopt(self, client: Any) -> None:
        from . import _scripts

        self.scripts = {
            name: client.register_script(getattr(_scripts, name)) for name in _scripts.__all__
        }
        self.client = client

    @property
    def opened(self) -> bool:
        """Whether the client exists (so closing has something to close)."""
        return "client" in self.__dict__

    def pipeline(self) -> Any:
        """This thread's open ``transact()`` batch (a list of writes), or ``None``."""
        return getattr(self.local, "pipe", None)

    def max_value_size(self) -> int:
        """The largest argument the server accepts (``proto-max-bulk-len``), asked once."""
        if self._max_bulk is None:
            try:
                found: Any = self.client.config_get("proto-max-bulk-len")
                self._max_bulk = int(found.get("proto-max-bulk-len") or DEFAULT_MAX_BULK)
            except rex.ResponseError:
                self._max_bulk = DEFAULT_MAX_BULK  # CONFIG is often denied by ACLs
            except ERRORS as exc:
                raise translate(exc, self.where) from exc
        return self._max_bulk
