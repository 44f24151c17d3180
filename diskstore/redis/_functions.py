"""Memoized results on Redis: what ``memoize`` asks of a cache, as the SQLite cache does.

A memoized result is an ordinary item under the key ``f.__cache_key__(...)`` returns; its
header also records the function, and the item joins the function's set,
``<prefix>f:<name>`` (in the same write script on a single server, just after the write on
a cluster). So ``f.cache_clear()`` and
``f.cache_info().currsize`` walk that set instead of scanning the namespace. A set may
hold items that were since overwritten, deleted, expired or evicted: both operations check
each member's recorded function, and ``cache_clear`` drops the members it walked.
"""

from __future__ import annotations

from typing import Any

from .._common._constants import ENOVAL
from ._bulk import BulkMixin

__all__ = ["FunctionsMixin"]


class FunctionsMixin(BulkMixin):
    """The internal protocol between :mod:`diskstore._memo._memoize` and ``RedisCache``."""

    def _write_item(
        self, key: Any, value: Any, expire: float | None, read: bool, tag: Any, *,
        only_if_missing: bool, function: str | None = None,
    ) -> bool:  # fmt: skip
        raise NotImplementedError  # provided by RedisCache

    def _fetch(self, rkey: bytes) -> bytes | None:
        raise NotImplementedError  # provided by RedisCache

    def _function_key(self, function: str) -> bytes:
        return self._codec.prefix + b"f:" + function.encode("utf-8", "surrogatepass")

    def _memo_store(
        self, function: str, key: Any, value: Any, expire: float | None, tag: Any
    ) -> None:
        """Store a memoized result of *function* under *key* (an ordinary ``set``)."""
        self._write_item(key, value, expire, False, tag, only_if_missing=False, function=function)

    def _memo_lookup(self, key: Any) -> Any:
        """Read *key* without counting a hit or miss (the second look of a single flight)."""
        rkey = self._codec.item_key(key)
        blob = self._fetch(rkey)
        return ENOVAL if blob is None else self._decoded(rkey, blob)

    def _memo_count(self, function: str) -> int:
        """How many results of *function* this namespace holds."""
        name = function.encode("utf-8", "surrogatepass")
        return self._count_indexed(self._function_key(function), b"f", name)

    def _memo_clear(self, function: str, retry: bool = True) -> int:
        """Remove every result of *function* in this namespace; return how many."""
        name = function.encode("utf-8", "surrogatepass")
        return self._remove_indexed(self._function_key(function), b"f", name)
