"""Reading through the memory tier (see :mod:`diskstore._caching._memory` for why it is
coherent)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._common import _clock
from .._common._exceptions import IntegrityError
from .._storage import _sql
from .._values._modes import FLAG_FILE, FLAG_PINNED, KIND_BYTES, KIND_DCPICKLE, KIND_MASK, KIND_TEXT
from ._base import CacheBase, _sane_row
from ._memory import TierEntry, entry_size


class TieredReadMixin(CacheBase):
    """``get`` through the per-process memory tier of :class:`~diskstore.Cache`."""

    _get_plain: Callable[..., Any]  # the ordinary read path, provided by Cache

    def _get_tiered(
        self, key: Any, db_key: Any, raw: bool, default: Any, expire_time: bool, retry: bool
    ) -> Any:
        """``get`` through the memory tier (see :mod:`diskstore._caching._memory`)."""
        tier = self._shared.tier
        counter = self._store.changes
        assert tier is not None and counter is not None
        begun, done = counter.read()
        if begun != done:  # a write is in flight (or its writer died): bypass the tier
            return self._get_plain(key, db_key, raw, default, False, expire_time, False, retry)
        if begun != tier.seen:
            tier.reset(begun)
        ns = self._ns
        tier_key = (ns, db_key, raw)
        bookkeeper = self._shared.bookkeeper
        now = _clock.now()
        entry = tier.get(tier_key)
        if entry is not None and (entry.expire_time is None or entry.expire_time > now):
            value = self._disk.loads(entry.value) if entry.serialized else entry.value
            if bookkeeper.active:
                bookkeeper.hit(entry.rowid, now)
            return (value, entry.expire_time) if expire_time else value
        epoch = tier.epoch
        rows = self._store.run(_sql.SELECT_ITEM, (ns, db_key, raw), retry=retry)
        if rows and not _sane_row(rows[0]):
            return self._get_plain(key, db_key, raw, default, False, expire_time, False, retry)
        if not rows or (rows[0][3] is not None and rows[0][3] <= now):
            if bookkeeper.active:
                bookkeeper.miss()
            return self._miss(default, expire_time, False)
        rowid, mode, value, exp = rows[0][:4]
        if mode & (FLAG_FILE | FLAG_PINNED) or mode & KIND_MASK == KIND_DCPICKLE:
            # Files, pinned entries and diskcache's pickles take the ordinary path and stay
            # out of the tier.
            return self._get_plain(key, db_key, raw, default, False, expire_time, False, retry)
        serialized = False
        if mode:
            try:
                payload = self._disk.payload(mode, None, value, ns, db_key, raw, None, 0, 0)
            except IntegrityError:
                return self._get_plain(key, db_key, raw, default, False, expire_time, False, retry)
            kind = mode & KIND_MASK
            if kind == KIND_BYTES:
                value = payload
            elif kind == KIND_TEXT:
                value = payload.decode("utf-8", "surrogatepass")
            else:
                value, serialized = payload, True
        if counter.begun() == begun:  # nothing began while we read: safe to keep
            tier.put(tier_key, TierEntry(rowid, value, serialized, exp, entry_size(value)), epoch)
        if bookkeeper.active:
            bookkeeper.hit(rowid, now)
        if serialized:
            value = self._disk.loads(value)
        return (value, exp) if expire_time else value
