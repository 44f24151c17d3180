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
from redis.backoff import NoBackoff
from redis.retry import Retry

from .._exceptions import (
    ReadOnlyError,
    ServerUnavailableError,
    StorageError,
    StorageFullError,
)

__all__ = ["Shared", "make_client", "translated"]

#: Redis's own default for ``proto-max-bulk-len``, used when CONFIG GET is not allowed.
DEFAULT_MAX_BULK = 512 * 2**20


def make_client(url: str, timeout: float) -> redis.Redis:
    """A client for ``url`` whose every wait is bounded by ``timeout`` seconds."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[rex.ConnectionError, rex.TimeoutError],
        health_check_interval=0,
    )


def translate(exc: rex.RedisError, where: str) -> Exception:
    """The diskstore error for a redis-py error (raise it ``from exc``)."""
    if isinstance(exc, (rex.ConnectionError, rex.TimeoutError)):
        return ServerUnavailableError(f"Redis server at {where} is unavailable: {exc}")
    if isinstance(exc, rex.OutOfMemoryError):
        return StorageFullError(
            errno.ENOSPC, f"Redis server at {where} is out of memory (maxmemory): {exc}"
        )
    if isinstance(exc, rex.ReadOnlyError):
        return ReadOnlyError(f"Redis server at {where} is a read-only replica: {exc}")
    return StorageError(errno.EIO, f"Redis server at {where} refused the command: {exc}")


@contextmanager
def translated(where: str) -> Iterator[None]:
    """Turn redis-py errors raised in the block into diskstore errors."""
    try:
        yield
    except rex.RedisError as exc:
        raise translate(exc, where) from exc


class Shared:
    """State shared by a cache and its namespace views: the client, scripts, transactions."""

    def __init__(self, client: redis.Redis, where: str, owns_client: bool) -> None:
        from . import _scripts

        self.client = client
        self.where = where
        self.owns_client = owns_client
        self.local = threading.local()
        self.statistics = False
        self.near: Any = None  # a NearCache when enabled
        self._max_bulk: int | None = None
        self.scripts = {
            name: client.register_script(getattr(_scripts, name)) for name in _scripts.__all__
        }

    def pipeline(self) -> Any:
        """This thread's open ``transact()`` pipeline, or ``None``."""
        return getattr(self.local, "pipe", None)

    def max_value_size(self) -> int:
        """The largest argument the server accepts (``proto-max-bulk-len``), asked once."""
        if self._max_bulk is None:
            try:
                found: Any = self.client.config_get("proto-max-bulk-len")
                self._max_bulk = int(found.get("proto-max-bulk-len") or DEFAULT_MAX_BULK)
            except rex.ResponseError:
                self._max_bulk = DEFAULT_MAX_BULK  # CONFIG is often denied by ACLs
            except rex.RedisError as exc:
                raise translate(exc, self.where) from exc
        return self._max_bulk
