"""State and helpers shared by the parts of ``RedisCache`` (items, bulk walks, queues)."""

from __future__ import annotations

import warnings
from typing import Any

import redis

from .._caching._base import CacheBase
from .._common._constants import ENOVAL
from .._common._exceptions import CorruptionWarning, IntegrityError
from ._codec import Codec
from ._connection import ERRORS, Shared, translate

__all__ = ["RedisBase"]


class RedisBase:
    """The attributes every part of a ``RedisCache`` reads."""

    _codec: Codec
    _shared: Shared
    _ns_name: str

    @property
    def _client(self) -> redis.Redis:
        """The redis-py client (a ``RedisCluster`` on a cluster), opened on first use."""
        return self._shared.client  # type: ignore[no-any-return]

    def _index_add(self, indexes: list[bytes], rkey: bytes, pexpireat: Any) -> None:
        """Add ``rkey`` to tag or function sets (on a cluster, after the item's write)."""
        script = self._shared.scripts["INDEX_ADD"]
        for index in indexes:
            script(keys=[index], args=[rkey, pexpireat or ""])

    def _forget(self, rkey: bytes | None = None) -> None:
        """Drop what the near cache keeps for ``rkey`` (everything when None) after a write."""
        near = self._shared.near
        if near is not None:
            if rkey is None:
                near.flush()
            else:
                near.discard(rkey)

    def _decoded(self, rkey: bytes, blob: bytes) -> Any:
        """The stored value, or ``ENOVAL`` (with a warning) when it fails verification."""
        try:
            return self._codec.value(rkey, blob)
        except IntegrityError as exc:
            self._drop_corrupt(rkey, exc)
            return ENOVAL

    def _drop_corrupt(self, rkey: bytes, exc: Exception) -> None:
        try:
            self._client.delete(rkey)
        except ERRORS as error:
            raise translate(error, self._shared.where) from error
        finally:
            self._forget(rkey)
        warnings.warn(
            f"dropped cache entry {rkey!r} on {self._shared.where}: {exc}",
            CorruptionWarning,
            stacklevel=4,
        )


#: ``value``, or a tuple adding the expiry time and/or the tag, as ``Cache.get`` gives.
shaped = CacheBase._shaped
