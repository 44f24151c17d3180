"""Iterating a cache's keys and counting them."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

from . import _sql
from ._base import _CHUNK, CacheBase
from ._exceptions import CorruptionWarning, IntegrityError


class IterationMixin(CacheBase):
    """Iteration and ``len`` of :class:`~diskstore.Cache`."""

    def _keys_from(self, rows: list[Any]) -> Iterator[Any]:
        for row in rows:
            try:
                yield self._disk.get(row[-2], row[-1])
            except IntegrityError as exc:
                warnings.warn(
                    f"skipped a cache key in {self._directory}: {exc}",
                    CorruptionWarning,
                    stacklevel=3,
                )

    def _iter_rowids(self, reverse: bool) -> Iterator[Any]:
        ns = self._ns
        if ns == 0:
            sql = _sql.ITER_BACKWARD if reverse else _sql.ITER_FORWARD
        else:
            sql = _sql.ITER_BACKWARD_NS if reverse else _sql.ITER_FORWARD_NS
        bound = 2**63 - 1 if reverse else 0
        while True:
            params = (bound, _CHUNK) if ns == 0 else (ns, bound, _CHUNK)
            rows = self._store.run(sql, params, retry=True)
            if not rows:
                return
            yield from self._keys_from(rows)
            bound = rows[-1][0]

    def __iter__(self) -> Iterator[Any]:
        """Iterate keys in insertion order (expired items included until removed)."""
        return self._iter_rowids(reverse=False)

    def __reversed__(self) -> Iterator[Any]:
        return self._iter_rowids(reverse=True)

    def iterkeys(self, reverse: bool = False) -> Iterator[Any]:
        """Iterate keys in database sort order (numbers, then text, then bytes/blobs)."""
        ns = self._ns
        rows = self._store.run(
            _sql.ITERKEYS_LAST if reverse else _sql.ITERKEYS_FIRST, (ns, _CHUNK), retry=True
        )
        while rows:
            yield from self._keys_from(rows)
            last_key, last_raw = rows[-1]
            rows = self._store.run(
                _sql.ITERKEYS_PREV if reverse else _sql.ITERKEYS_NEXT,
                (ns, last_key, last_raw, _CHUNK),
                retry=True,
            )

    def __len__(self) -> int:
        """Number of items (of this namespace), read from a counter: O(1)."""
        rows = self._store.run(_sql.SELECT_COUNT, (self._ns,), retry=True)
        return int(rows[0][0]) if rows else 0
