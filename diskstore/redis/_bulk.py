"""Operations over a whole namespace: ``len``, iteration, ``clear``, ``evict``, ``check``.

Each walks the namespace's keys with ``SCAN`` (or a tag set with ``SSCAN``) in batches of
``_BATCH``, so memory stays bounded by the batch, not by the number of keys. On a Redis
Cluster the walk visits every master in turn (redis-py's cluster ``scan_iter``), and the
batch's commands go out in one pipeline per master. ``SCAN`` may
return a key twice while the keyspace is being resized; iteration drops the repeats it can
see within a batch, and counts (``len``) are exact only while no other client writes.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

from .._common._exceptions import CorruptionWarning, IntegrityError
from . import _scripts
from ._base import RedisBase
from ._codec import encode_tag
from ._connection import ERRORS, translate

__all__ = ["BulkMixin"]

_BATCH = 500
_GLOB_SPECIAL = frozenset(b"*?[]\\")


def glob_escape(prefix: bytes) -> bytes:
    """``prefix`` with the characters special to SCAN's MATCH pattern escaped."""
    return b"".join(b"\\" + bytes([c]) if c in _GLOB_SPECIAL else bytes([c]) for c in prefix)


def _batches(keys: Iterator[Any]) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for key in keys:
        batch.append(key)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


class BulkMixin(RedisBase):
    """Namespace-wide operations of :class:`~diskstore.redis.RedisCache`."""

    def _scan(self, prefix: bytes) -> Iterator[list[bytes]]:
        """Batches of the keys starting with ``prefix`` (on every master of a cluster)."""
        pattern = glob_escape(prefix) + b"*"
        try:
            yield from _batches(self._client.scan_iter(match=pattern, count=_BATCH))
        except ERRORS as exc:
            raise translate(exc, self._shared.where) from exc

    def __len__(self) -> int:
        """The number of items in this namespace (a full ``SCAN``: O(keys on the server))."""
        return sum(len(batch) for batch in self._scan(self._codec.item_prefix))

    def __iter__(self) -> Iterator[Any]:
        """Iterate over the keys in ``SCAN`` order (not insertion order, unlike ``Cache``)."""
        for batch in self._scan(self._codec.item_prefix):
            for rkey in dict.fromkeys(batch):
                try:
                    yield self._codec.user_key(rkey)
                except IntegrityError as exc:
                    self._drop_corrupt(rkey, exc)

    def iterkeys(self, reverse: bool = False) -> Iterator[Any]:
        """Iterate over the keys; ``reverse`` is accepted but ``SCAN`` has no order."""
        return iter(self)

    def clear(self, retry: bool = False) -> int:
        """Remove every item (and tag set, queue and lock) of this namespace; return the
        number of items removed. Other namespaces, including views below this one, stay."""
        removed = 0
        item_prefix = self._codec.item_prefix
        for batch in self._scan(self._codec.prefix):
            removed += sum(1 for rkey in batch if rkey.startswith(item_prefix))
            try:
                self._client.unlink(*batch)
            except ERRORS as exc:
                raise translate(exc, self._shared.where) from exc
            finally:
                self._forget()
        return removed

    def evict(self, tag: Any, retry: bool = False) -> int:
        """Remove the items stored with ``tag``; return how many."""
        encoded = encode_tag(tag)
        return self._remove_indexed(self._codec.tag_key(encoded), b"t", encoded)

    def _remove_indexed(self, index: bytes, field: bytes, value: bytes) -> int:
        """Delete the members of the set ``index`` whose ``field`` still holds ``value``.

        Members leave the set (``SPOP``) before their items are checked, and a write adds
        its item to the set after writing it, so an item that gains the tag meanwhile is
        either deleted here or listed again: never kept with the tag but left out of the
        set. The check and delete run on each item's own slot (``DELETE_IF``).
        """
        removed = 0
        try:
            while True:
                members: Any = self._client.spop(index, _BATCH)
                if not members:
                    return removed
                removed += self._check_members(members, field, value, delete=True)
                self._forget()
        except ERRORS as exc:
            raise translate(exc, self._shared.where) from exc

    def _check_members(
        self, members: list[bytes], field: bytes, value: bytes, *, delete: bool
    ) -> int:
        """How many of the items ``members`` hold that tag (``field`` ``t``) or function
        (``f``), each checked (and deleted) on its own slot; one pipeline per master. The
        script is loaded first (on every master of a cluster), so the pipeline sends only
        its digest."""
        sha = self._client.script_load(_scripts.DELETE_IF)
        with self._client.pipeline(transaction=False) as pipe:
            for rkey in members:
                pipe.execute_command(  # type: ignore[no-untyped-call]
                    "EVALSHA", sha, 1, rkey, field, value, "1" if delete else ""
                )
            return sum(int(found) for found in pipe.execute())

    def _count_indexed(self, index: bytes, field: bytes, value: bytes) -> int:
        """How many members of the set ``index`` are live items whose ``field`` is ``value``."""
        count = 0
        try:
            for batch in _batches(self._client.sscan_iter(index, count=_BATCH)):
                count += self._check_members(batch, field, value, delete=False)
        except ERRORS as exc:
            raise translate(exc, self._shared.where) from exc
        return count

    def expire(self, now: float | None = None, retry: bool = False) -> int:
        """Return 0: Redis removes expired items itself, at their expiry time."""
        return 0

    def cull(self, retry: bool = False) -> int:
        """Return 0: the server evicts by its ``maxmemory-policy``, not the cache."""
        return 0

    def stats(self, enable: bool = True, reset: bool = False) -> tuple[int, int]:
        """Return ``(hits, misses)`` counted by every client of this namespace.

        ``enable`` turns counting on or off for this cache object (each ``get`` then costs
        a second command); ``reset`` sets the counts to zero.
        """
        key = self._codec.prefix + b"stats"
        self._shared.statistics = bool(enable)
        try:
            hits, misses = self._client.hmget(key, "hits", "misses")
            if reset:
                self._client.delete(key)
        except ERRORS as exc:
            raise translate(exc, self._shared.where) from exc
        return int(hits or 0), int(misses or 0)

    def volume(self) -> int:
        """Bytes the server uses for this namespace's keys (``MEMORY USAGE``, summed)."""
        total = 0
        for batch in self._scan(self._codec.prefix):
            try:
                with self._client.pipeline(transaction=False) as pipe:
                    for rkey in batch:
                        pipe.memory_usage(rkey, samples=0)
                    total += sum(int(size or 0) for size in pipe.execute())
            except ERRORS as exc:
                raise translate(exc, self._shared.where) from exc
        return total

    def check(self, fix: bool = False, retry: bool = False) -> list[warnings.WarningMessage]:
        """Verify every item's key and payload signature; return the warnings found.

        With ``fix=True`` the items that fail are deleted.
        """
        found: list[warnings.WarningMessage] = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for batch in self._scan(self._codec.item_prefix):
                try:
                    with self._client.pipeline(transaction=False) as pipe:
                        for rkey in batch:
                            pipe.get(rkey)
                        blobs = pipe.execute(raise_on_error=False)
                except ERRORS as exc:
                    raise translate(exc, self._shared.where) from exc
                for rkey, blob in zip(batch, blobs, strict=True):
                    if blob is None:
                        continue  # expired meanwhile
                    try:
                        self._codec.user_key(rkey)
                        if not isinstance(blob, bytes):
                            raise IntegrityError(f"not an item: {blob}")
                        self._codec.verify(rkey, blob)
                    except IntegrityError as exc:
                        warnings.warn(f"cache entry {rkey!r}: {exc}", CorruptionWarning, 1)
                        if fix:
                            try:
                                self._client.delete(rkey)
                            except ERRORS as error:
                                raise translate(error, self._shared.where) from error
                            self._forget(rkey)
            found.extend(caught)
        return found

    def create_tag_index(self) -> None:
        """Nothing to do: tags are always indexed by tag sets."""

    def drop_tag_index(self) -> None:
        """Nothing to do: tag sets are what ``evict`` reads."""
