"""Queues on a Redis server: ``push``, ``pull`` and ``peek`` with prefixes and sides.

Keys are the ones ``Cache`` generates (integers from 500000000000000, or
``"prefix-%015d"``), and the items are ordinary items of the namespace. Each queue also has
an index, a sorted set scored by the key's number, so the ends are found in O(log n). The
index and the items share the queue's hash tag (see ``_codec``), so on a Redis Cluster a
queue lives on one master and its scripts touch one slot. A push
reads the end it grows from, then a script adds the item only if that end has not moved
meanwhile (else it retries): two clients never take the same key. A pull is one script
that skips index entries whose items Redis expired or evicted.
"""

from __future__ import annotations

from typing import Any

from .._caching._queue import QueueMethods, check_prefix, check_side
from .._common._constants import ENOVAL, QUEUE_START
from .._common._exceptions import IntegrityError, UnsupportedError
from ._base import RedisBase, shaped
from ._codec import QUEUE_RANGE, decode_tag
from ._connection import ERRORS, translate

__all__ = ["QueueMixin"]


class QueueMixin(QueueMethods, RedisBase):
    """Queue operations of :class:`~diskstore.redis.RedisCache`."""

    def _item(self, rkey: bytes, value: Any, expire: float | None, read: bool, tag: Any) -> Any:
        raise NotImplementedError  # provided by RedisCache

    def _index(self, prefix: str | None) -> bytes:
        name = b"n" if prefix is None else b"s" + prefix.encode("utf-8", "surrogatepass")
        return self._codec.queue_index(name)

    def _queue_push(
        self, value: Any, prefix: str | None, side: str, expire: float | None, read: bool,
        tag: Any, retry: bool,
    ) -> Any:  # fmt: skip
        side = check_side(side)
        prefix = check_prefix(prefix)
        index = self._index(prefix)
        script = self._shared.scripts["PUSH"]
        try:
            while True:
                if side == "back":
                    edge = self._client.zrange(index, -1, -1, withscores=True)
                else:
                    edge = self._client.zrange(index, 0, 0, withscores=True)
                if edge:
                    number = int(edge[0][1]) + (1 if side == "back" else -1)
                    expected = str(int(edge[0][1]))
                else:
                    number, expected = QUEUE_START, ""
                if not QUEUE_RANGE[0] <= number < QUEUE_RANGE[1]:
                    raise ValueError(f"queue {prefix!r} is full: its keys reached {number}")
                key = number if prefix is None else f"{prefix}-{number:015d}"
                rkey = self._codec.item_key(key)
                item = self._item(rkey, value, expire, read, tag)
                pxat = "" if item.pxat is None else item.pxat
                cluster = self._shared.cluster
                status = script(
                    keys=[index, rkey] if cluster else [index, rkey, *item.indexes],
                    args=[expected, number, side, item.blob, pxat],
                )
                self._forget(rkey)
                if status == 1:
                    if cluster and item.indexes:
                        self._index_add(item.indexes, rkey, pxat)
                    return key
                if status == -1:
                    raise ValueError(
                        f"push would replace the item stored under {key!r}, "
                        "which is next to the queue's keys"
                    )
        except ERRORS as exc:
            raise translate(exc, self._shared.where) from exc

    def _queue_take(
        self, prefix: str | None, default: Any, side: str, expire_time: bool, tag: bool,
        retry: bool, remove: bool,
    ) -> Any:  # fmt: skip
        side = check_side(side)
        index = self._index(check_prefix(prefix))
        script = self._shared.scripts["POP_QUEUE"]
        while True:
            try:
                found = script(keys=[index], args=[side, "1" if remove else "0"])
            except ERRORS as exc:
                raise translate(exc, self._shared.where) from exc
            if found is None:
                return shaped(default, None, None, expire_time, tag)
            rkey, blob = found
            if remove:
                self._forget(rkey)
            try:
                key = self._codec.user_key(rkey)
            except IntegrityError as exc:
                self._drop_corrupt(rkey, exc)
                continue
            value = self._decoded(rkey, blob)
            if value is ENOVAL:
                continue
            expire, encoded_tag, _ = self._codec.extras(blob)
            return shaped((key, value), expire, decode_tag(encoded_tag), expire_time, tag)

    def peekitem(
        self, last: bool = True, expire_time: bool = False, tag: bool = False, retry: bool = False
    ) -> Any:
        """Not offered: Redis keeps no insertion order across a namespace's keys.

        Raises :class:`~diskstore.UnsupportedError`; queues (``push``/``pull``/``peek``)
        keep their own order and work.
        """
        raise UnsupportedError(
            "RedisCache.peekitem() is not offered: Redis keeps no insertion order over a "
            "namespace's keys, and keeping one would make every set a script (about 1.6x "
            "its cost) and grow with every expired key (see docs/redis.md); use "
            "push/pull/peek queues, which keep their own order"
        )
