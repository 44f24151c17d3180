"""Iterating a cache's keys and counting them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from . import _sql
from ._base import _CHUNK, CacheBase, _is_decode_error
from ._exceptions import CorruptionWarning, DiskStoreError, IntegrityError, warn_caller


class IterationMixin(CacheBase):
    """Iteration and ``len`` of :class:`~diskstore.Cache`."""

    def _keys_from(self, rows: list[Any]) -> Iterator[Any]:
        for row in rows:
            if row[-2] is None:  # skipped by _undecodable_chunk
                continue
            try:
                yield self._disk.get(row[-2], row[-1])
            except IntegrityError as exc:
                warn_caller(
                    f"skipped a cache key in {self._directory}: {exc}",
                    CorruptionWarning,
                )

    def _iter_rowids(self, reverse: bool) -> Iterator[Any]:
        # Keys inserted after iteration starts are not yielded (as in diskcache): they get
        # rowids above the largest one now, where forward iteration stops.
        last = int(self._store.run(_sql.SELECT_MAX_ROWID, retry=True)[0][0])
        return self._iter_rowids_upto(reverse, last)

    def _iter_rowids_upto(self, reverse: bool, last: int) -> Iterator[Any]:
        ns = self._ns
        if ns == 0:
            sql = _sql.ITER_BACKWARD if reverse else _sql.ITER_FORWARD
        else:
            sql = _sql.ITER_BACKWARD_NS if reverse else _sql.ITER_FORWARD_NS
        bound = last + 1 if reverse else 0
        while True:
            params = (bound, _CHUNK) if ns == 0 else (ns, bound, _CHUNK)
            try:
                rows = self._store.run(sql, params, retry=True)
            except DiskStoreError as exc:
                if not _is_decode_error(exc.__cause__ or exc):
                    raise
                rows = self._undecodable_chunk(reverse, bound)
            if not reverse and rows and rows[-1][0] > last:
                rows = [row for row in rows if row[0] <= last]
                yield from self._keys_from(rows)
                return
            if not rows:
                return
            yield from self._keys_from(rows)
            bound = rows[-1][0]

    def _undecodable_chunk(self, reverse: bool, bound: int) -> list[Any]:
        """Read a chunk holding a key whose text is not UTF-8, skipping that key."""
        sql = _sql.ITER_BACKWARD_BYTES if reverse else _sql.ITER_FORWARD_BYTES
        return self._decoded(self._store.run(sql, (self._ns, bound, _CHUNK), retry=True))

    def _decoded(self, rows: list[Any]) -> list[Any]:
        """Decode text keys read as bytes; a key that is not UTF-8 becomes ``None`` (skipped)."""
        decoded = []
        for rowid, data, raw, is_text in rows:
            if is_text:
                try:
                    data = data.decode("utf-8")
                except UnicodeDecodeError:
                    warn_caller(
                        f"skipped a cache key in {self._directory}: text is not UTF-8",
                        CorruptionWarning,
                    )
                    data = None
            decoded.append((rowid, data, raw))
        # Skipped rows keep their place, so the next chunk starts after them.
        return decoded

    def __iter__(self) -> Iterator[Any]:
        """Iterate keys in insertion order (expired items included until removed)."""
        return self._iter_rowids(reverse=False)

    def __reversed__(self) -> Iterator[Any]:
        return self._iter_rowids(reverse=True)

    def iterkeys(self, reverse: bool = False) -> Iterator[Any]:
        """Iterate keys in database sort order (numbers, then text, then bytes/blobs)."""
        ns = self._ns
        last: tuple[Any, Any] | None = None
        while True:
            try:
                if last is None:
                    sql = _sql.ITERKEYS_LAST if reverse else _sql.ITERKEYS_FIRST
                    rows = self._store.run(sql, (ns, _CHUNK), retry=True)
                else:
                    sql = _sql.ITERKEYS_PREV if reverse else _sql.ITERKEYS_NEXT
                    rows = self._store.run(sql, (ns, *last, _CHUNK), retry=True)
            except DiskStoreError as exc:
                if not _is_decode_error(exc.__cause__ or exc):
                    raise
                # A key that is not UTF-8 text: read the rest with keys as bytes.
                sql = _sql.ITERKEYS_REST_BYTES_DESC if reverse else _sql.ITERKEYS_REST_BYTES
                floor = last if last is not None else ((2**63, "") if reverse else (-(2**63), 0))
                yield from self._keys_from(
                    self._decoded(self._store.run(sql, (ns, *floor), retry=True))
                )
                return
            if not rows:
                return
            yield from self._keys_from(rows)
            last = (rows[-1][0], rows[-1][1])

    def __len__(self) -> int:
        """Number of items (of this namespace), read from a counter: O(1)."""
        rows = self._store.run(_sql.SELECT_COUNT, (self._ns,), retry=True)
        return int(rows[0][0]) if rows else 0
