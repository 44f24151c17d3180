"""The ``Cache``: a dictionary-like, persistent cache in a directory.

``Cache`` coordinates: SQL lives in :mod:`._sql`, connections and transactions in
:mod:`._store`, serialization in :mod:`._disk`, value files in :mod:`._files`, settings in
:mod:`._settings`. Its public API is diskcache 5.6.3's, so ``import diskstore as diskcache``
works; the differences are documented in ``docs/differences.md``.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import sqlite3
import tempfile
import time
import warnings
from collections.abc import Iterator
from typing import Any

from . import _sql
from ._bookkeeping import Bookkeeper
from ._changes import open_counter
from ._constants import ENOVAL, QUEUE_START
from ._disk import (
    FLAG_FILE,
    FLAG_PINNED,
    KIND_BYTES,
    KIND_MASK,
    KIND_NATIVE,
    KIND_TEXT,
    Disk,
    Stored,
)
from ._exceptions import CorruptionWarning, IntegrityError, SettingsError, StorageError
from ._memory import MemoryTier, TierEntry, entry_size
from ._policies import POLICIES
from ._schema import ensure_indexes, open_database
from ._settings import DEFAULT_SETTINGS, NAMES, Settings, check_names, normalize
from ._signing import SecretArg, Signer, resolve_secret
from ._store import Conn, Store, translate

_QUEUE_SIDES = ("back", "front")
_CHUNK = 100
_INT_QUEUE = (0, 999_999_999_999_999)


def _check_expire(expire: Any, now: float) -> float | None:
    if expire is None:
        return None
    if type(expire) not in (int, float):
        raise TypeError(f"expire must be a number of seconds or None, not {expire!r}")
    if math.isnan(expire) or expire < 0:
        raise ValueError(f"expire must be a non-negative number of seconds, not {expire!r}")
    return now + float(expire)


def _check_tag(tag: Any) -> Any:
    if tag is None or type(tag) in (str, bytes, int, float):
        if type(tag) is float and math.isnan(tag):
            raise ValueError("tag must not be NaN")
        return tag
    raise TypeError(f"tag must be None, str, bytes, int or float, not {type(tag).__name__}")


def _check_side(side: Any) -> str:
    if side not in _QUEUE_SIDES:
        raise ValueError(f"side must be 'back' or 'front', not {side!r}")
    return str(side)


def _queue_bounds(prefix: Any) -> tuple[Any, Any]:
    if prefix is None:
        return _INT_QUEUE
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str or None, not {type(prefix).__name__}")
    return f"{prefix}-000000000000000", f"{prefix}-999999999999999"


def _queue_number(key: Any, prefix: str | None) -> int:
    if prefix is None:
        return int(key)
    return int(key[len(prefix) + 1 :])


def _make_directories(directory: str) -> None:
    """Create *directory* and any missing parents, each private to the user (0700)."""
    missing = []
    path = directory
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            if not os.path.isdir(path):
                raise
        except OSError as exc:
            raise StorageError(
                exc.errno or errno.EACCES, f"cannot create cache directory {directory!r}: {exc}"
            ) from exc


class _Shared:
    """State shared by a cache and its namespace views."""

    def __init__(self, settings: Settings, bookkeeper: Bookkeeper, tier: MemoryTier | None) -> None:
        self.settings = settings
        self.bookkeeper = bookkeeper
        self.tier = tier
        self.written = 0  # bytes written since the last size probe
        self.namespaces: dict[str, int] = {"": 0}


class Cache:
    """A persistent, dictionary-like cache stored in a directory.

    >>> import tempfile
    >>> with Cache(tempfile.mkdtemp()) as cache:
    ...     cache.set("answer", 42, expire=60, tag="demo")
    ...     cache["answer"], cache.incr("hits"), len(cache)
    True
    (42, 1, 2)

    Keys and values may be any picklable object; ``str``, ``bytes``, ``int`` and ``float``
    are stored natively. Large values go to files beside the database. Safe to share
    between threads and processes.
    """

    _ns: int
    _ns_name: str

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        timeout: float = 60,
        disk: type[Disk] = Disk,
        *,
        secret: SecretArg = None,
        read_only: bool = False,
        memory_items: int = 0,
        memory_bytes: int = 64 * 2**20,
        **settings: Any,
    ) -> None:
        for name, limit in (("memory_items", memory_items), ("memory_bytes", memory_bytes)):
            if type(limit) is not int or limit < 0:
                raise ValueError(f"{name} must be a non-negative int, not {limit!r}")
        if type(timeout) not in (int, float) or math.isnan(timeout) or timeout < 0:
            raise ValueError(f"timeout must be a non-negative number of seconds, not {timeout!r}")
        if not (isinstance(disk, type) and issubclass(disk, Disk)):
            raise TypeError(f"disk must be a subclass of diskstore.Disk, not {disk!r}")
        extra_disk = {name: settings.pop(name) for name in list(settings) if name not in NAMES}
        self._check_extra_disk_options(disk, extra_disk)
        if directory is None:
            directory = tempfile.mkdtemp(prefix="diskstore-")
        directory = os.path.abspath(os.path.expanduser(os.fspath(directory)))
        if not read_only:
            _make_directories(directory)
        elif not os.path.isdir(directory):
            raise FileNotFoundError(errno.ENOENT, "cache directory does not exist", directory)
        self._directory = directory
        self._timeout = timeout
        self._secret_arg = secret
        self._read_only = read_only
        self._extra_disk = extra_disk
        pragmas = {name: value for name, value in settings.items() if name.startswith("sqlite_")}
        store = Store(directory, timeout=timeout, pragmas=pragmas, read_only=read_only)
        try:
            loaded = open_database(store, settings)
        except BaseException:
            store.close()
            raise
        store.pragmas = {n: v for n, v in loaded.as_dict().items() if n.startswith("sqlite_")}
        store.close_idle_connections()  # reopen with the merged pragmas
        self._store = store
        signer = Signer(resolve_secret(secret) if disk.signed else None)
        self._disk = disk(
            directory,
            **loaded.disk_options(),
            **extra_disk,
            signer=signer,
            fsync=loaded.sqlite_synchronous >= 2,
        )
        policy = POLICIES[loaded.eviction_policy]
        store.changes = None if read_only else open_counter(directory)
        tier = None
        if memory_items and store.changes is not None:
            tier = MemoryTier(memory_items, memory_bytes)
            store.after_commit = tier.advance
        self._shared = _Shared(
            loaded, Bookkeeper(store, statistics=loaded.statistics, policy=policy), tier
        )
        self._memory = (memory_items, memory_bytes)
        self._ns = 0
        self._ns_name = ""

    @staticmethod
    def _check_extra_disk_options(disk: type[Disk], extra: dict[str, Any]) -> None:
        import inspect

        parameters = inspect.signature(disk.__init__).parameters
        for name in extra:
            if not name.startswith("disk_") or name[len("disk_") :] not in parameters:
                check_names({name: None})  # raises, with a suggestion

    # -- properties -------------------------------------------------------------------------
    @property
    def directory(self) -> str:
        """The cache directory."""
        return self._directory

    @property
    def timeout(self) -> float:
        """Seconds to wait for a locked database before raising :class:`Timeout`."""
        return self._timeout

    @property
    def disk(self) -> Disk:
        """The serializer (a :class:`Disk` instance)."""
        return self._disk

    @property
    def namespace_name(self) -> str:
        """The name of this view's namespace (``''`` for the plain cache)."""
        return self._ns_name

    def __getattr__(self, name: str) -> Any:
        if name in DEFAULT_SETTINGS:
            return getattr(self._shared.settings, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- namespaces -------------------------------------------------------------------------
    def namespace(self, name: str) -> Cache:
        """Return a view whose keys are isolated from every other namespace.

        A view has the whole ``Cache`` API; its ``clear``, ``len`` and iteration touch only
        its own items, through an index. Maintenance (``expire``, ``cull``, ``check``,
        ``volume``, ``stats``, settings) applies to the whole directory.
        """
        if not isinstance(name, str):
            raise TypeError(f"namespace name must be a str, not {type(name).__name__}")
        if not name:
            raise ValueError("namespace name must not be empty (the plain cache is the '' view)")
        shared = self._shared
        ns = shared.namespaces.get(name)
        if ns is None:
            ns = self._namespace_id(name)
            shared.namespaces[name] = ns
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view._ns = ns
        view._ns_name = name
        return view

    def _namespace_id(self, name: str) -> int:
        rows = self._store.run(_sql.SELECT_NAMESPACE, (name,))
        if rows:
            return int(rows[0][0])
        with self._store.write(retry=True) as conn:
            con = conn.con
            assert con is not None
            con.execute(_sql.INSERT_NAMESPACE, (name,))
            return int(con.execute(_sql.SELECT_NAMESPACE, (name,)).fetchone()[0])

    # -- reading ----------------------------------------------------------------------------
    def get(
        self,
        key: Any,
        default: Any = None,
        read: bool = False,
        expire_time: bool = False,
        tag: bool = False,
        retry: bool = False,
    ) -> Any:
        """Return the value for *key*, or *default* if it is missing or expired.

        With ``expire_time`` and/or ``tag``, return a tuple that adds them. With ``read``,
        a value stored in a file comes back as an open binary file.
        """
        db_key, raw = self._disk.put(key)
        if self._shared.tier is not None and not read and not tag:
            return self._get_tiered(key, db_key, raw, default, expire_time, retry)
        return self._get_plain(key, db_key, raw, default, read, expire_time, tag, retry)

    def _get_plain(
        self,
        key: Any,
        db_key: Any,
        raw: bool,
        default: Any,
        read: bool,
        expire_time: bool,
        tag: bool,
        retry: bool,
    ) -> Any:
        store = self._store
        ns = self._ns
        params: tuple[Any, ...]
        if ns:
            sql, params = _sql.SELECT_ITEM, (ns, db_key, raw)
        else:
            sql, params = _sql.SELECT_ITEM_MAIN, (db_key, raw)
        while True:
            conn = store.enter()
            try:
                try:
                    rows = conn.con.execute(sql, params).fetchall()  # type: ignore[union-attr]
                except sqlite3.Error as exc:
                    rows = self._retry_read(conn, exc, sql, params, retry)
            finally:
                conn.depth -= 1
            bookkeeper = self._shared.bookkeeper
            now = time.time()
            if not rows or (rows[0][3] is not None and rows[0][3] <= now):
                if bookkeeper.active:
                    bookkeeper.miss()
                return self._miss(default, expire_time, tag)
            rowid, mode, value, exp = rows[0]
            tg = None
            if mode or tag:
                filename = None
                size = vsize = 0
                sig = None
                if mode & FLAG_FILE or mode & FLAG_PINNED or tag:
                    extra = store.run(_sql.SELECT_ITEM_EXTRA, (rowid,), retry=True)
                    if not extra:
                        continue  # removed since it was read: look again
                    filename, size, tg, sig, vsize = extra[0]
                    if mode & FLAG_PINNED and not self._read_only:
                        self._unpin(rowid)
                if mode & ~FLAG_PINNED:
                    try:
                        value = self._disk.fetch(
                            mode, filename, value, read,
                            ns=ns, db_key=db_key, raw=raw, sig=sig, vsize=vsize, size=size,
                        )  # fmt: skip
                    except IntegrityError as exc:
                        if self._drop_corrupt(rowid, mode, filename, key, exc):
                            if bookkeeper.active:
                                bookkeeper.miss()
                            return self._miss(default, expire_time, tag)
                        continue  # the row changed under us: read again
            if bookkeeper.active:
                bookkeeper.hit(rowid, now)
            if expire_time:
                return (value, exp, tg) if tag else (value, exp)
            return (value, tg) if tag else value

    def _get_tiered(
        self, key: Any, db_key: Any, raw: bool, default: Any, expire_time: bool, retry: bool
    ) -> Any:
        """``get`` through the memory tier (see :mod:`diskstore._memory`)."""
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
        now = time.time()
        entry = tier.get(tier_key)
        if entry is not None and (entry.expire_time is None or entry.expire_time > now):
            value = self._disk.loads(entry.value) if entry.serialized else entry.value
            if bookkeeper.active:
                bookkeeper.hit(entry.rowid, now)
            return (value, entry.expire_time) if expire_time else value
        epoch = tier.epoch
        rows = self._store.run(_sql.SELECT_ITEM, (ns, db_key, raw), retry=retry)
        if not rows or (rows[0][3] is not None and rows[0][3] <= now):
            if bookkeeper.active:
                bookkeeper.miss()
            return self._miss(default, expire_time, False)
        rowid, mode, value, exp = rows[0]
        if mode & (FLAG_FILE | FLAG_PINNED):
            # Files and pinned entries take the ordinary path and stay out of the tier.
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

    def _retry_read(
        self, conn: Conn, exc: sqlite3.Error, sql: str, params: Any, retry: bool
    ) -> list[Any]:
        from ._store import is_busy

        if not is_busy(exc) or conn.txn:
            raise translate(exc, self._store.path) from exc
        return self._store.retry_query(conn, sql, params, retry)

    @staticmethod
    def _miss(default: Any, expire_time: bool, tag: bool) -> Any:
        if expire_time and tag:
            return default, None, None
        if expire_time or tag:
            return default, None
        return default

    def _drop_corrupt(
        self, rowid: int, mode: int, filename: str | None, key: Any, exc: Exception
    ) -> bool:
        """Remove an entry that failed verification; False if the row had already changed.

        A read-only cache only reports it (the entry stays, and reads as a miss).
        """
        if self._read_only:
            warnings.warn(
                f"cache entry {key!r} in {self._directory} failed verification: {exc}",
                CorruptionWarning,
                stacklevel=3,
            )
            return True
        with self._store.write(retry=True) as conn:
            con = conn.con
            assert con is not None
            rows = con.execute(_sql.DELETE_ROWID_IF, (rowid, mode, filename)).fetchall()
            self._uncount(conn, rows)
        if not rows:
            return False
        warnings.warn(
            f"dropped cache entry {key!r} in {self._directory}: {exc}",
            CorruptionWarning,
            stacklevel=3,
        )
        return True

    def _unpin(self, rowid: int) -> None:
        with self._store.write(retry=True) as conn:
            conn.con.execute(_sql.UNPIN, (FLAG_PINNED, rowid))  # type: ignore[union-attr]

    def read(self, key: Any, retry: bool = False) -> Any:
        """Return the value for *key* as a file (or the value itself when stored inline).

        Raises ``KeyError`` if the key is missing.
        """
        handle = self.get(key, default=ENOVAL, read=True, retry=retry)
        if handle is ENOVAL:
            raise KeyError(key)
        return handle

    def __getitem__(self, key: Any) -> Any:
        value = self.get(key, default=ENOVAL, retry=True)
        if value is ENOVAL:
            raise KeyError(key)
        return value

    def __contains__(self, key: Any) -> bool:
        db_key, raw = self._disk.put(key)
        rows = self._store.run(_sql.SELECT_EXISTS, (self._ns, db_key, raw, time.time()), retry=True)
        return bool(rows)

    # -- writing ----------------------------------------------------------------------------
    def set(
        self,
        key: Any,
        value: Any,
        expire: float | None = None,
        read: bool = False,
        tag: Any = None,
        retry: bool = False,
        *,
        pin: bool = False,
    ) -> bool:
        """Store *value* under *key*; return True.

        ``expire`` is seconds until the item expires; ``read`` stores a binary file's
        contents; ``tag`` labels the item for :meth:`evict`; ``pin`` keeps it from eviction
        until it has been read once.
        """
        now = time.time()
        expire_time = _check_expire(expire, now)
        tag = _check_tag(tag)
        db_key, raw = self._disk.put(key)
        stored = self._disk.store(value, read, ns=self._ns, db_key=db_key, raw=raw)
        try:
            with self._store.write(retry) as conn:
                self._put_row(conn, now, db_key, raw, stored, expire_time, tag, pin, False)
        finally:
            if stored.pending is not None:
                self._disk.files.discard(stored.pending)
        self._after_write(stored)
        return True

    def __setitem__(self, key: Any, value: Any) -> None:
        self.set(key, value, retry=True)

    def add(
        self,
        key: Any,
        value: Any,
        expire: float | None = None,
        read: bool = False,
        tag: Any = None,
        retry: bool = False,
        *,
        pin: bool = False,
    ) -> bool:
        """Store *value* only if *key* is missing (or expired); return whether it was stored."""
        now = time.time()
        expire_time = _check_expire(expire, now)
        tag = _check_tag(tag)
        db_key, raw = self._disk.put(key)
        stored = self._disk.store(value, read, ns=self._ns, db_key=db_key, raw=raw)
        try:
            with self._store.write(retry) as conn:
                added = self._put_row(conn, now, db_key, raw, stored, expire_time, tag, pin, True)
        finally:
            if stored.pending is not None:
                self._disk.files.discard(stored.pending)
        if added:
            self._after_write(stored)
        return added

    def _put_row(
        self,
        conn: Conn,
        now: float,
        db_key: Any,
        raw: bool,
        stored: Stored,
        expire_time: float | None,
        tag: Any,
        pin: bool,
        only_if_missing: bool,
    ) -> bool:
        con = conn.con
        assert con is not None
        ns = self._ns
        tier = self._shared.tier
        if tier is not None:
            tier.discard((ns, db_key, raw))
        old = con.execute(_sql.SELECT_FOR_WRITE, (ns, db_key, raw)).fetchall()
        if old:
            rowid, old_file, old_size, old_expire, old_tag = old[0][:5]
            if only_if_missing and (old_expire is None or old_expire > now):
                return False
        pending = stored.pending
        if pending is not None:
            self._disk.files.publish(pending)
            stored = stored._replace(pending=None)
            conn.created.append(pending.name)
        mode = stored.mode | FLAG_PINNED if pin else stored.mode
        if old:
            new_expire = old_expire != expire_time
            new_tag = old_tag != tag or type(old_tag) is not type(tag)
            params: list[Any] = [
                mode, stored.size, stored.vsize, stored.filename, stored.value, stored.sig,
            ]  # fmt: skip
            if new_expire:
                params.append(expire_time)
            if new_tag:
                params.append(tag)
            params.append(rowid)
            reset_count = self._shared.settings.eviction_policy == "least-frequently-used"
            con.execute(_sql.update_item(new_expire, new_tag, reset_count), params)
            self._shared.bookkeeper.overwrote(rowid, now)
            if old_file is not None:
                conn.dropped.append(old_file)
            if stored.size != old_size:
                con.execute(_sql.ADD_COUNTS, (0, stored.size - old_size, ns))
        else:
            con.execute(
                _sql.INSERT_ITEM,
                (
                    ns, db_key, raw, now, expire_time, now, tag, mode, stored.size,
                    stored.vsize, stored.filename, stored.value, stored.sig,
                ),
            )  # fmt: skip
            con.execute(_sql.ADD_COUNTS, (1, stored.size, ns))
        return True

    def _after_write(self, stored: Stored) -> None:
        """Account written bytes and cull when a size probe is due."""
        shared = self._shared
        settings = shared.settings
        if not settings.cull_limit:
            return
        value = stored.value
        approx = stored.size + (len(value) if isinstance(value, (bytes, str)) else 8) + 64
        shared.written += approx
        probe_every = min(max(settings.size_limit // 32, 1024), 1 << 18)
        if shared.written >= probe_every or stored.size:
            writes = max(1, shared.written // max(approx, 1))
            shared.written = 0
            self._cull(time.time(), settings.cull_limit * writes, retry=False)

    def touch(self, key: Any, expire: float | None = None, retry: bool = False) -> bool:
        """Set a new expiry for *key*; return False if it is missing or expired."""
        now = time.time()
        expire_time = _check_expire(expire, now)
        db_key, raw = self._disk.put(key)
        with self._store.write(retry) as conn:
            con = conn.con
            assert con is not None
            rows = con.execute(_sql.SELECT_FOR_WRITE, (self._ns, db_key, raw)).fetchall()
            if not rows or (rows[0][3] is not None and rows[0][3] <= now):
                return False
            con.execute(_sql.UPDATE_EXPIRE, (expire_time, rows[0][0]))
            if self._shared.tier is not None:
                self._shared.tier.discard((self._ns, db_key, raw))
            return True

    def incr(self, key: Any, delta: int = 1, default: Any = 0, retry: bool = False) -> Any:
        """Atomically add *delta* to the value of *key* and return the result.

        A missing key starts from *default*; with ``default=None`` it raises ``KeyError``.
        """
        now = time.time()
        db_key, raw = self._disk.put(key)
        disk = self._disk
        ns = self._ns
        with self._store.write(retry) as conn:
            con = conn.con
            assert con is not None
            rows = con.execute(_sql.SELECT_FOR_WRITE, (ns, db_key, raw)).fetchall()
            live = bool(rows) and (rows[0][3] is None or rows[0][3] > now)
            if not live:
                if default is None:
                    raise KeyError(key)
                result = default + delta
                stored = disk.store(result, False, ns=ns, db_key=db_key, raw=raw)
                self._put_row(conn, now, db_key, raw, stored, None, None, False, False)
                return result
            rowid, filename, size, _, _, mode, value, sig, vsize = rows[0]
            if self._shared.tier is not None:
                self._shared.tier.discard((ns, db_key, raw))
            if mode != KIND_NATIVE:
                value = disk.fetch(
                    mode, filename, value, False,
                    ns=ns, db_key=db_key, raw=raw, sig=sig, vsize=vsize, size=size,
                )  # fmt: skip
            result = value + delta
            stored = disk.store(result, False, ns=ns, db_key=db_key, raw=raw)
            if stored.pending is not None:
                disk.files.publish(stored.pending)
                conn.created.append(stored.pending.name)
            con.execute(
                "UPDATE items SET mode = ?, value = ?, sig = ?, vsize = ?, filename = ?,"
                " size = ? WHERE rowid = ?",
                (stored.mode, stored.value, stored.sig, stored.vsize, stored.filename,
                 stored.size, rowid),
            )  # fmt: skip
            if filename is not None:
                conn.dropped.append(filename)
            if stored.size != size:
                con.execute(_sql.ADD_COUNTS, (0, stored.size - size, ns))
            return result

    def decr(self, key: Any, delta: int = 1, default: Any = 0, retry: bool = False) -> Any:
        """Atomically subtract *delta* from the value of *key*; see :meth:`incr`."""
        return self.incr(key, -delta, default, retry)

    # -- removing ---------------------------------------------------------------------------
    def _uncount(self, conn: Conn, rows: list[Any]) -> None:
        """Update counts for deleted rows ``(ns, filename, size)`` and schedule their files."""
        con = conn.con
        assert con is not None
        tier = self._shared.tier
        if tier is not None and rows:
            tier.clear()
        per_ns: dict[int, list[int]] = {}
        for ns, filename, size in rows:
            entry = per_ns.setdefault(ns, [0, 0])
            entry[0] -= 1
            entry[1] -= size
            if filename is not None:
                conn.dropped.append(filename)
        for ns, (count, size) in per_ns.items():
            con.execute(_sql.ADD_COUNTS, (count, size, ns))

    def delete(self, key: Any, retry: bool = False) -> bool:
        """Remove *key*; return True if a live item was removed."""
        db_key, raw = self._disk.put(key)
        ns = self._ns
        with self._store.write(retry) as conn:
            con = conn.con
            assert con is not None
            rows = con.execute(_sql.DELETE_KEY, (ns, db_key, raw)).fetchall()
            if not rows:
                return False
            if self._shared.tier is not None:
                self._shared.tier.discard((ns, db_key, raw))
            filename, size, expire = rows[0]
            con.execute(_sql.ADD_COUNTS, (-1, -size, ns))
            if filename is not None:
                conn.dropped.append(filename)
        return expire is None or expire > time.time()

    def __delitem__(self, key: Any) -> None:
        if not self.delete(key, retry=True):
            raise KeyError(key)

    def pop(
        self,
        key: Any,
        default: Any = None,
        expire_time: bool = False,
        tag: bool = False,
        retry: bool = False,
    ) -> Any:
        """Remove *key* and return its value, or *default* if missing or expired."""
        db_key, raw = self._disk.put(key)
        ns = self._ns
        now = time.time()
        with self._store.write(retry) as conn:
            con = conn.con
            assert con is not None
            rows = con.execute(_sql.SELECT_FOR_WRITE, (ns, db_key, raw)).fetchall()
            if not rows:
                return self._miss(default, expire_time, tag)
            rowid, filename, size, exp, tg, mode, value, sig, vsize = rows[0]
            deleted = con.execute(_sql.DELETE_ROWID, (rowid,)).fetchall()
            self._uncount(conn, deleted)
            if exp is not None and exp <= now:
                return self._miss(default, expire_time, tag)
            try:
                value = self._disk.fetch(
                    mode, filename, value, False,
                    ns=ns, db_key=db_key, raw=raw, sig=sig, vsize=vsize, size=size,
                )  # fmt: skip
            except IntegrityError as exc:
                warnings.warn(
                    f"dropped cache entry {key!r} in {self._directory}: {exc}",
                    CorruptionWarning,
                    stacklevel=2,
                )
                return self._miss(default, expire_time, tag)
        if expire_time:
            return (value, exp, tg) if tag else (value, exp)
        return (value, tg) if tag else value

    def _remove_batches(self, select: str, params: tuple[Any, ...], retry: bool) -> int:
        """Delete rows chosen by *select* (which takes a trailing LIMIT) in batches."""
        removed = 0
        while True:
            with self._store.write(retry) as conn:
                con = conn.con
                assert con is not None
                rows = con.execute(select, (*params, _CHUNK)).fetchall()
                if not rows:
                    return removed
                con.executemany(_sql.DELETE_ROWIDS, [(row[0],) for row in rows])
                self._uncount(conn, [row[1:] for row in rows])
                removed += len(rows)

    def clear(self, retry: bool = False) -> int:
        """Remove every item (of this namespace); return how many were removed."""
        if self._ns == 0:
            return self._remove_batches(_sql.SELECT_NS_ITEMS, (), retry)
        return self._remove_batches(_sql.SELECT_NS_ITEMS_VIEW, (self._ns,), retry)

    def evict(self, tag: Any, retry: bool = False) -> int:
        """Remove every item (of this namespace) labelled *tag*; return how many."""
        tag = _check_tag(tag)
        return self._remove_batches(_sql.SELECT_TAGGED, (self._ns, tag), retry)

    def expire(self, now: float | None = None, retry: bool = False) -> int:
        """Remove every expired item (in the whole directory); return how many."""
        if now is None:
            now = time.time()
        elif type(now) not in (int, float) or math.isnan(now):
            raise TypeError(f"now must be a timestamp or None, not {now!r}")
        return self._remove_batches(_sql.SELECT_EXPIRED, (now,), retry)

    def cull(self, retry: bool = False) -> int:
        """Remove expired items, then evict by policy until the volume fits ``size_limit``."""
        return self._cull(time.time(), None, retry)

    def _cull(self, now: float, limit: int | None, retry: bool) -> int:
        shared = self._shared
        shared.bookkeeper.flush(best_effort=True)
        removed = 0
        budget = math.inf if limit is None else limit
        while removed < budget:
            batch = int(min(_CHUNK, budget - removed))
            with self._store.write(retry) as conn:
                con = conn.con
                assert con is not None
                rows = con.execute(_sql.SELECT_EXPIRED, (now, batch)).fetchall()
                if rows:
                    con.executemany(_sql.DELETE_ROWIDS, [(row[0],) for row in rows])
                    self._uncount(conn, [row[1:] for row in rows])
            if not rows:
                break
            removed += len(rows)
        settings = shared.settings
        column = POLICIES[settings.eviction_policy].order_column
        if column is None:
            return removed
        select = _sql.SELECT_EVICT.format(column=column)
        while removed < budget:
            volume = self.volume()
            over = volume - settings.size_limit
            if over <= 0:
                break
            # Evict about as many items as the excess holds, judged by the average footprint,
            # so a small limit is not emptied by one oversized batch.
            count = self._total_count()
            need = max(1, math.ceil(over / max(volume / max(count, 1), 1)))
            batch = int(min(_CHUNK, need, budget - removed))
            with self._store.write(retry) as conn:
                con = conn.con
                assert con is not None
                rows = con.execute(select, (FLAG_PINNED, batch)).fetchall()
                if rows:
                    con.executemany(_sql.DELETE_ROWIDS, [(row[0],) for row in rows])
                    self._uncount(conn, [row[1:] for row in rows])
            if not rows:
                break
            removed += len(rows)
        return removed

    def _total_count(self) -> int:
        return int(self._store.run(_sql.SELECT_TOTALS, retry=True)[0][0])

    # -- queues -----------------------------------------------------------------------------
    def push(
        self,
        value: Any,
        prefix: str | None = None,
        side: str = "back",
        expire: float | None = None,
        read: bool = False,
        tag: Any = None,
        retry: bool = False,
    ) -> Any:
        """Append *value* to the queue named by *prefix*; return its generated key.

        Keys count from 500000000000000 (``"prefix-500000000000000"`` with a prefix).
        """
        side = _check_side(side)
        low, high = _queue_bounds(prefix)
        now = time.time()
        expire_time = _check_expire(expire, now)
        tag = _check_tag(tag)
        ns = self._ns
        with self._store.write(retry) as conn:
            con = conn.con
            assert con is not None
            sql = _sql.QUEUE_LAST if side == "back" else _sql.QUEUE_FIRST
            rows = con.execute(sql, (ns, low, high)).fetchall()
            if rows:
                number = _queue_number(rows[0][0], prefix) + (1 if side == "back" else -1)
            else:
                number = QUEUE_START
            db_key = number if prefix is None else f"{prefix}-{number:015d}"
            stored = self._disk.store(value, read, ns=ns, db_key=db_key, raw=True)
            try:
                self._put_row(conn, now, db_key, True, stored, expire_time, tag, False, False)
            finally:
                if stored.pending is not None:
                    self._disk.files.discard(stored.pending)
        self._after_write(stored)
        return db_key

    def _queue_take(
        self,
        prefix: str | None,
        default: Any,
        side: str,
        expire_time: bool,
        tag: bool,
        retry: bool,
        remove: bool,
    ) -> Any:
        side = _check_side(side)
        low, high = _queue_bounds(prefix)
        sql = _sql.QUEUE_ROW_FIRST if side == "front" else _sql.QUEUE_ROW_LAST
        ns = self._ns
        while True:
            now = time.time()
            with self._store.write(retry) as conn:
                con = conn.con
                assert con is not None
                rows = con.execute(sql, (ns, low, high)).fetchall()
                if not rows:
                    return self._miss(default, expire_time, tag)
                rowid, key, mode, value, filename, exp, tg, sig, vsize, size = rows[0]
                expired = exp is not None and exp <= now
                if remove or expired:
                    self._uncount(conn, con.execute(_sql.DELETE_ROWID, (rowid,)).fetchall())
                if expired:
                    continue
                try:
                    value = self._disk.fetch(
                        mode, filename, value, False,
                        ns=ns, db_key=key, raw=True, sig=sig, vsize=vsize, size=size,
                    )  # fmt: skip
                except IntegrityError as exc:
                    if not remove:
                        self._uncount(conn, con.execute(_sql.DELETE_ROWID, (rowid,)).fetchall())
                    warnings.warn(
                        f"dropped cache entry {key!r} in {self._directory}: {exc}",
                        CorruptionWarning,
                        stacklevel=3,
                    )
                    continue
            item = (key, value)
            if expire_time and tag:
                return item, exp, tg
            if expire_time:
                return item, exp
            if tag:
                return item, tg
            return item

    def pull(
        self,
        prefix: str | None = None,
        default: Any = (None, None),
        side: str = "front",
        expire_time: bool = False,
        tag: bool = False,
        retry: bool = False,
    ) -> Any:
        """Remove and return ``(key, value)`` from the queue's *side*, or *default*."""
        return self._queue_take(prefix, default, side, expire_time, tag, retry, remove=True)

    def peek(
        self,
        prefix: str | None = None,
        default: Any = (None, None),
        side: str = "front",
        expire_time: bool = False,
        tag: bool = False,
        retry: bool = False,
    ) -> Any:
        """Return ``(key, value)`` from the queue's *side* without removing it."""
        return self._queue_take(prefix, default, side, expire_time, tag, retry, remove=False)

    def peekitem(
        self, last: bool = True, expire_time: bool = False, tag: bool = False, retry: bool = False
    ) -> Any:
        """Return the last (or first) ``(key, value)`` in insertion order; ``KeyError`` if empty."""
        ns = self._ns
        if ns == 0:
            sql = _sql.PEEKITEM_LAST if last else _sql.PEEKITEM_FIRST
            params: tuple[Any, ...] = (0,)
        else:
            sql = _sql.PEEKITEM_LAST_NS if last else _sql.PEEKITEM_FIRST_NS
            params = (ns,)
        while True:
            now = time.time()
            with self._store.write(retry) as conn:
                con = conn.con
                assert con is not None
                rows = con.execute(sql, params).fetchall()
                if not rows:
                    raise KeyError("dictionary is empty")
                rowid, db_key, raw, mode, value, filename, exp, tg, sig, vsize, size = rows[0]
                if exp is not None and exp <= now:
                    self._uncount(conn, con.execute(_sql.DELETE_ROWID, (rowid,)).fetchall())
                    continue
                try:
                    key = self._disk.get(db_key, raw)
                    value = self._disk.fetch(
                        mode, filename, value, False,
                        ns=ns, db_key=db_key, raw=raw, sig=sig, vsize=vsize, size=size,
                    )  # fmt: skip
                except IntegrityError as exc:
                    self._uncount(conn, con.execute(_sql.DELETE_ROWID, (rowid,)).fetchall())
                    warnings.warn(
                        f"dropped a cache entry in {self._directory}: {exc}",
                        CorruptionWarning,
                        stacklevel=2,
                    )
                    continue
            if expire_time and tag:
                return (key, value), exp, tg
            if expire_time:
                return (key, value), exp
            if tag:
                return (key, value), tg
            return key, value

    # -- iteration and size -----------------------------------------------------------------
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

    def volume(self) -> int:
        """Bytes used on disk: database pages plus value files."""
        rows = self._store.run(_sql.SELECT_VOLUME, retry=True)
        return int(rows[0][0])

    def stats(self, enable: bool = True, reset: bool = False) -> tuple[int, int]:
        """Return ``(hits, misses)``; *enable* turns counting on or off, *reset* zeroes it."""
        if enable not in (True, False):
            raise TypeError(f"enable must be a bool, not {enable!r}")
        bookkeeper = self._shared.bookkeeper
        bookkeeper.flush()
        rows = self._store.run(_sql.SELECT_STATS, retry=True)
        hits, misses = int(rows[0][0]), int(rows[0][1])
        if reset:
            with self._store.write(retry=True) as conn:
                conn.con.execute(_sql.RESET_STATS)  # type: ignore[union-attr]
            bookkeeper.reset()
        if bool(enable) != self._shared.settings.statistics:
            self.reset("statistics", bool(enable))
        return hits, misses

    # -- settings ---------------------------------------------------------------------------
    def reset(self, key: str, value: Any = ENOVAL, update: bool = True) -> Any:
        """Read (no *value*) or change a setting, persisting it; return its value.

        With ``update=False`` the stored value is read into this cache without writing.
        """
        check_names({key: None})
        shared = self._shared
        if value is ENOVAL:
            rows = self._store.run(_sql.SELECT_SETTINGS, retry=True)
            stored = {name: stored_value for name, stored_value in rows}
            if key in stored:
                value = normalize(key, stored[key])
                settings = shared.settings.replace(**{key: value})
                self._apply_settings(settings, None)
            return getattr(shared.settings, key)
        value = normalize(key, value)
        settings = shared.settings.replace(**{key: value})  # validates
        if key == "sqlite_auto_vacuum" and value != shared.settings.sqlite_auto_vacuum:
            raise SettingsError("sqlite_auto_vacuum can only be chosen when a cache is created")
        if update:
            with self._store.write(retry=True) as conn:
                con = conn.con
                assert con is not None
                con.execute(_sql.UPSERT_SETTING, (key, value))
                self._apply_settings(settings, con)
        else:
            self._apply_settings(settings, None)
        return value

    def _apply_settings(self, settings: Settings, con: sqlite3.Connection | None) -> None:
        shared = self._shared
        old = shared.settings
        shared.settings = settings
        policy = POLICIES[settings.eviction_policy]
        shared.bookkeeper.configure(statistics=settings.statistics, policy=policy)
        if con is not None and (
            old.eviction_policy != settings.eviction_policy or old.tag_index != settings.tag_index
        ):
            ensure_indexes(con, settings)
        disk = self._disk
        for name, attr in (
            ("disk_min_file_size", "min_file_size"),
            ("disk_pickle_protocol", "pickle_protocol"),
            ("disk_compress_threshold", "compress_threshold"),
            ("disk_compress_level", "compress_level"),
        ):
            setattr(disk, attr, getattr(settings, name))
        if old.disk_compress_level != settings.disk_compress_level:
            disk._local.__dict__.clear()
        pragmas = {n: v for n, v in settings.as_dict().items() if n.startswith("sqlite_")}
        if pragmas != self._store.pragmas:
            self._store.pragmas = pragmas
            if con is None:
                self._store.close_idle_connections()

    def create_tag_index(self) -> None:
        """Index tags, so :meth:`evict` does not scan the table."""
        self.reset("tag_index", True)

    def drop_tag_index(self) -> None:
        """Drop the tag index."""
        self.reset("tag_index", False)

    # -- transactions and lifecycle ---------------------------------------------------------
    def transact(self, retry: bool = False) -> contextlib.AbstractContextManager[None]:
        """Run a block atomically: ``with cache.transact(): ...``.

        Other writers wait until the block ends. Transactions are per thread and nest
        (an inner block that raises rolls back only its own changes).
        """
        return self._store.savepoint_txn(retry)

    def check(self, fix: bool = False, retry: bool = False) -> list[warnings.WarningMessage]:
        """Verify the database and value files; with *fix*, repair what is found.

        Returns the problems found as ``warnings.WarningMessage`` objects, whatever the
        caller's warning filters.
        """
        from ._check import run_check

        return run_check(self, fix=fix, retry=retry)

    def close(self) -> None:
        """Write buffered bookkeeping and close the cache's connections.

        Using the cache afterwards raises :class:`~diskstore.CacheClosedError`.
        """
        store = self._store
        if store.closed:
            return
        with contextlib.suppress(Exception):
            self._shared.bookkeeper.flush()
        store.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {
            "directory": self._directory,
            "timeout": self._timeout,
            "disk": type(self._disk),
            "secret": self._secret_arg,
            "read_only": self._read_only,
            "extra_disk": self._extra_disk,
            "namespace": self._ns_name,
            "memory": self._memory,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        Cache.__init__(
            self,
            state["directory"],
            state["timeout"],
            state["disk"],
            secret=state["secret"],
            read_only=state["read_only"],
            memory_items=state["memory"][0],
            memory_bytes=state["memory"][1],
            **state["extra_disk"],
        )
        if state["namespace"]:
            view = self.namespace(state["namespace"])
            self._ns, self._ns_name = view._ns, view._ns_name

    def __repr__(self) -> str:
        where = f", namespace={self._ns_name!r}" if self._ns_name else ""
        return f"{type(self).__name__}({self._directory!r}{where})"

    # -- memoize ----------------------------------------------------------------------------
    def memoize(self, *args: Any, **kwargs: Any) -> Any:
        """Decorate a function so its results are cached here; see :mod:`diskstore._memoize`."""
        from ._memoize import memoize

        return memoize(self, *args, **kwargs)
