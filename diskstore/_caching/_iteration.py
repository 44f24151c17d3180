"""Iterating a cache's keys and counting them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .._common._exceptions import (
    CorruptionWarning,
    DiskStoreError,
    IntegrityError,
    UntrustedPickle,
    warn_caller,
)
from .._fs._filesystems import damage_hint
from .._storage import _sql
from .._values._disk import Disk
from ._base import _CHUNK, CacheBase, _is_decode_error

#: Rows per chunk of a rowid scan: small for the first chunk, so that taking one key is
#: cheap, then growing to this, which halves the per-key cost of a long scan.
_SCAN_CHUNK = 1000
_SKIP = object()


class IterationMixin(CacheBase):
    """Iteration and ``len`` of :class:`~diskstore.Cache`."""

    def _keys_from(self, rows: list[Any]) -> Iterator[Any]:
        for row in rows:
            key = self._load_key(row[-2], row[-1])
            if key is not _SKIP:
                yield key

    def _load_key(self, db_key: Any, raw: Any) -> Any:
        """The key stored as ``(db_key, raw)``, or ``_SKIP`` (with a warning) if it is bad."""
        if db_key is None:  # undecodable text, already reported by _decoded
            return _SKIP
        try:
            return self._disk.get(db_key, raw)
        except IntegrityError as exc:
            if isinstance(exc, UntrustedPickle):
                self._report_corrupt(db_key, exc)  # one warning, naming adoption
            else:
                warn_caller(f"skipped a cache key in {self._directory}: {exc}", CorruptionWarning)
            return _SKIP

    def _iter_rowids(self, reverse: bool) -> Iterator[Any]:
        # Keys inserted after iteration starts are not yielded (as in diskcache): they get
        # rowids above the largest one now, where forward iteration stops.
        last = int(self._store.run(_sql.SELECT_MAX_ROWID, retry=True)[0][0])
        return self._iter_rowids_upto(reverse, last)

    def _iter_rowids_upto(
        self, reverse: bool, last: int, *, live_at: float | None = None
    ) -> Iterator[Any]:
        """Yield keys in rowid order up to rowid *last*, a chunk at a time, each chunk
        resuming after the previous one (the statements stop at *last* themselves).

        With *live_at* (forward only), items expired at that time are left out.
        """
        ns = self._ns
        live: tuple[float, ...] = ()
        if live_at is not None:
            if reverse:
                raise ValueError("live_at lists keys forward only")
            sqls = (
                (_sql.ITER_FORWARD_LIVE, _sql.ITER_FORWARD_LIVE_BYTES)
                if ns == 0
                else (_sql.ITER_FORWARD_NS_LIVE, _sql.ITER_FORWARD_NS_LIVE_BYTES)
            )
            limit: tuple[int, ...] = (last,)
            bound = 0
            live = (live_at,)
        elif reverse:
            sqls = (
                (_sql.ITER_BACKWARD, _sql.ITER_BACKWARD_BYTES)
                if ns == 0
                else (_sql.ITER_BACKWARD_NS, _sql.ITER_BACKWARD_NS_BYTES)
            )
            limit = ()
            bound = last + 1
        else:
            sqls = (
                (_sql.ITER_FORWARD, _sql.ITER_FORWARD_BYTES)
                if ns == 0
                else (_sql.ITER_FORWARD_NS, _sql.ITER_FORWARD_NS_BYTES)
            )
            limit = (last,)
            bound = 0
        view: tuple[int, ...] = () if ns == 0 else (ns,)
        # Raw keys (str, bytes, numbers) are stored as themselves: unless a Disk subclass
        # reads keys its own way, they are yielded without a call per key.
        as_stored = type(self._disk).get is Disk.get
        chunk = _CHUNK
        while True:
            params = (*view, bound, *limit, *live, chunk)
            try:
                rows = self._store.scan(sqls[0], params, retry=True)
            except DiskStoreError as exc:
                if not _is_decode_error(exc.__cause__ or exc):
                    raise
                # A key whose text is not UTF-8: read this chunk with keys as bytes.
                rows = self._decoded(self._store.scan(sqls[1], params, retry=True))
            if not rows:
                return
            for _rowid, db_key, raw in rows:
                if raw and as_stored and db_key is not None:
                    yield db_key
                else:
                    key = self._load_key(db_key, raw)
                    if key is not _SKIP:
                        yield key
            if (rows[-1][0] >= bound) if reverse else (rows[-1][0] <= bound):
                self._out_of_order()  # only a damaged table goes back: it would never end
            bound = rows[-1][0]
            chunk = min(chunk * 2, _SCAN_CHUNK)

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

    def _iter_live(self, now: float) -> Iterator[Any]:
        """Iterate keys in insertion order, leaving out the items expired at *now*."""
        last = int(self._store.run(_sql.SELECT_MAX_ROWID, retry=True)[0][0])
        return self._iter_rowids_upto(False, last, live_at=now)

    def _expired_count(self, now: float, *, all_namespaces: bool = False) -> int:
        """How many items (of this namespace, or of all) are expired at *now* but not yet
        removed: ``len()`` counts them until ``expire()`` or a write removes them."""
        if all_namespaces:
            rows = self._store.run(_sql.COUNT_EXPIRED_ALL, (now,), retry=True)
        else:
            rows = self._store.run(_sql.COUNT_EXPIRED, (now, self._ns), retry=True)
        return int(rows[0][0])

    def __reversed__(self) -> Iterator[Any]:
        return self._iter_rowids(reverse=True)

    def iterkeys(self, reverse: bool = False) -> Iterator[Any]:
        """Iterate keys in database sort order (numbers, then text, then bytes/blobs)."""
        ns = self._ns
        if reverse:
            plain = (_sql.ITERKEYS_LAST, _sql.ITERKEYS_PREV)
            as_bytes = (_sql.ITERKEYS_LAST_BYTES, _sql.ITERKEYS_PREV_BYTES)
        else:
            plain = (_sql.ITERKEYS_FIRST, _sql.ITERKEYS_NEXT)
            as_bytes = (_sql.ITERKEYS_FIRST_BYTES, _sql.ITERKEYS_NEXT_BYTES)
        sqls = plain
        resume: tuple[Any, ...] | None = None  # (key, raw), plus is_text when read as bytes
        while True:
            params = (ns, _CHUNK) if resume is None else (ns, *resume, _CHUNK)
            try:
                rows = self._store.scan(sqls[resume is not None], params, retry=True)
            except DiskStoreError as exc:
                if sqls is as_bytes or not _is_decode_error(exc.__cause__ or exc):
                    raise
                # A key that is not UTF-8 text: go on with text keys read as bytes.
                sqls = as_bytes
                resume = None if resume is None else (*resume, 0)
                continue
            if not rows:
                return
            previous = resume
            if sqls is plain:
                resume = (rows[-1][0], rows[-1][1])
            else:
                resume = tuple(rows[-1][1:])
                rows = self._decoded(rows)
            if resume == previous:
                self._out_of_order()
            yield from self._keys_from(rows)

    def _out_of_order(self) -> None:
        path = self._store.path
        raise IntegrityError(
            f"database {path} is damaged: its rows come back out of order{damage_hint(path)}"
        )

    def __len__(self) -> int:
        """Number of items (of this namespace), read from a counter: O(1)."""
        rows = self._store.run(_sql.SELECT_COUNT, (self._ns,), retry=True)
        return int(rows[0][0]) if rows else 0
