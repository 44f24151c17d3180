"""The ``Cache``: a dictionary-like, persistent cache in a directory.

``Cache`` coordinates: SQL lives in :mod:`.._storage._sql`, connections and transactions in
:mod:`.._storage._store`, serialization in :mod:`.._values._disk`, value files in
:mod:`.._fs._files`, settings in :mod:`.._storage._settings`. Its public API is diskcache 5.6.3's,
so ``import diskstore as diskcache`` works; the differences are documented in
``docs/differences.md``.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import sqlite3
from typing import Any

from .._common import _clock
from .._common._constants import ENOVAL
from .._common._exceptions import (
    IntegrityError,
    ReadOnlyError,
    StorageFullError,
)
from .._fs._changes import open_counter
from .._fs._durability import defer_limit, per_commit
from .._fs._lease import check_mode, guard
from .._fs._reserve import Reserve
from .._storage import _fingerprint, _sql
from .._storage._bookkeeping import Bookkeeper
from .._storage._policies import POLICIES
from .._storage._schema import open_database
from .._storage._settings import DEFAULT_SETTINGS, METADATA, NAMES, Settings, check_names, normalize
from .._storage._store import Store
from .._values._disk import MMAP_MODES, Disk
from .._values._modes import FLAG_FILE, FLAG_OOB, FLAG_PINNED, KIND_DCPICKLE, KIND_MASK, to_row
from .._values._rows import file_columns
from .._values._signing import SecretArg, Signer, resolve_secret
from ._adopt import LEGACY_MEMOIZE
from ._arithmetic import ArithmeticMixin
from ._base import _check_expire, _check_tag, _expired, _sane_row, _Shared
from ._functions import FunctionsMixin
from ._iteration import IterationMixin
from ._maintenance import MaintenanceMixin
from ._memory import MemoryTier
from ._private_names import PrivateNamesMixin
from ._queue import QueueMixin
from ._setup import make_directories, make_disk
from ._tiered import TieredReadMixin


def expand_directory(directory: str | os.PathLike[str]) -> str:
    """The absolute path a directory argument names: ``~`` and ``$VARS`` expanded.

    ``Cache`` and ``FanoutCache`` both open what this returns, so one path string always
    names one cache (diskcache expands both too).
    """
    return os.path.abspath(os.path.expandvars(os.path.expanduser(os.fspath(directory))))


class _Quiet:
    """Stands in for the bookkeeper where a read must not count as a hit or miss."""

    active = False


_QUIET: Any = _Quiet()


#: Id of a namespace that does not exist (no row ever has it): an always-empty view.
_NO_NAMESPACE = -1
#: A mode whose bits under this mask equal the Disk's kind is an inline payload it reads.
_KIND_AND_SLOW_FLAGS = KIND_MASK | FLAG_FILE | FLAG_PINNED | FLAG_OOB


class Cache(
    TieredReadMixin,
    QueueMixin,
    IterationMixin,
    MaintenanceMixin,
    FunctionsMixin,
    ArithmeticMixin,
    PrivateNamesMixin,
):
    """A persistent, dictionary-like cache stored in a directory.

    >>> import tempfile
    >>> with Cache(tempfile.mkdtemp()) as cache:
    ...     cache.set("answer", 42, expire=60, tag="demo")
    ...     cache["answer"], cache.incr("hits"), len(cache)
    True
    (42, 1, 2)

    Keys and values may be any picklable object; ``str``, ``bytes``, ``int`` and ``float``
    are stored natively. Large values go to files beside the database. Safe to share
    between threads and processes. ``~`` and ``$VARS`` in *directory* are expanded, as by
    ``FanoutCache`` and diskcache; ``None`` creates a new temporary directory.
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
        network_fs: str = "refuse",
        **settings: Any,
    ) -> None:
        check_mode(network_fs)
        for name, limit in (("memory_items", memory_items), ("memory_bytes", memory_bytes)):
            if type(limit) is not int or limit < 0:
                raise ValueError(f"{name} must be a non-negative int, not {limit!r}")
        if type(timeout) not in (int, float) or math.isnan(timeout) or timeout < 0:
            raise ValueError(f"timeout must be a non-negative number of seconds, not {timeout!r}")
        if not (isinstance(disk, type) and issubclass(disk, Disk)):
            # ValueError, as diskcache raises: an instance or another class is a bad value.
            raise ValueError(f"disk must be a subclass of diskstore.Disk, not {disk!r}")
        extra_disk = {name: settings.pop(name) for name in list(settings) if name not in NAMES}
        self._check_extra_disk_options(disk, extra_disk)
        if directory is None:
            import tempfile  # not with the package: it loads shutil, random, bz2 and lzma

            directory = tempfile.mkdtemp(prefix="diskstore-")
        directory = expand_directory(directory)
        # Before anything is created: a process without a secret changes nothing on disk.
        key = resolve_secret(secret) if disk.signed else None
        if not read_only:
            make_directories(directory)
            if not os.access(directory, os.W_OK | os.X_OK):
                raise ReadOnlyError(
                    f"cache directory {directory!r} is not writable; "
                    "open it with read_only=True to read it"
                )
        elif not os.path.isdir(directory):
            raise FileNotFoundError(errno.ENOENT, "cache directory does not exist", directory)
        lease = guard(directory, network_fs, read_only=read_only, settings=settings)
        self._network_fs = network_fs
        self._directory = directory
        self._timeout = timeout
        self._secret_arg = secret
        self._read_only = read_only
        self._extra_disk = extra_disk
        try:
            check_names(settings)
            validated = Settings(**{n: normalize(n, value) for n, value in settings.items()})
        except BaseException:
            if lease is not None:
                lease.release()
            raise
        pragmas = {
            name: getattr(validated, name) for name in settings if name.startswith("sqlite_")
        }
        store = Store(directory, timeout=timeout, pragmas=pragmas, read_only=read_only)
        if lease is not None:
            store.lease = lease
            lease.attach(store)
        try:
            loaded = open_database(store, settings)
        except BaseException:
            store.close()
            raise
        store.pragmas = {n: v for n, v in loaded.as_dict().items() if n.startswith("sqlite_")}
        store.close_idle_connections()  # reopen with the merged pragmas
        self._store = store
        options = {
            **loaded.disk_options(),
            **{name[len("disk_") :]: value for name, value in extra_disk.items()},
        }
        self._disk = make_disk(disk, directory, options)
        fsync = per_commit(loaded.sqlite_journal_mode, loaded.sqlite_synchronous)
        self._disk.attach(directory, signer=Signer(key), fsync=fsync)
        if self._disk.hooked:
            store.remove_hooked = self._disk.remove_hooked
        if key is not None:
            try:
                _fingerprint.reconcile(store, key, secret, read_only=read_only, disk=self._disk)
            except BaseException:
                store.close()
                raise
        policy = POLICIES[loaded.eviction_policy]
        store.changes = None if read_only else open_counter(directory, mapped=lease is None)
        store.defer_limit = defer_limit(loaded.size_limit)
        reserve = None
        if not read_only:
            reserve = Reserve(directory)
            reserve.ensure()
        tier = None
        if memory_items and store.changes is not None and not self._disk.hooked:
            tier = MemoryTier(memory_items, memory_bytes)
            store.after_commit = tier.advance
        self._shared = _Shared(
            loaded,
            Bookkeeper(
                store, statistics=loaded.statistics and not read_only, policy=policy,
                read_only=read_only,
            ),
            tier,
            reserve,
        )  # fmt: skip
        self._memory = (memory_items, memory_bytes)
        self._ns = 0
        self._ns_name = ""
        self._shared.metadata.update(self._metadata_now())
        self._shared.legacy_memoize = bool(
            self._store.run(_sql.SELECT_SETTING, (LEGACY_MEMOIZE,), retry=True)
        )

    @staticmethod
    def _check_extra_disk_options(disk: type[Disk], extra: dict[str, Any]) -> None:
        if not extra:
            return
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
        if name in METADATA:
            return self._shared.metadata[name]
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
        if self._read_only:
            return _NO_NAMESPACE  # never created, so empty; a read-only cache cannot add it
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
        *,
        mmap_mode: str | None = None,
    ) -> Any:
        """Return the value for *key*, or *default* if it is missing or expired.

        With ``expire_time`` and/or ``tag``, return a tuple that adds them. With ``read``,
        a value stored in a file comes back as an open binary file. With ``mmap_mode='r'``
        (or ``'c'``, copy-on-write), numpy arrays of a stored value come back mapped from
        their value file instead of read into memory, as ``numpy.load(mmap_mode=...)``
        does.
        """
        db_key, raw = self._disk.put(key)
        if mmap_mode is not None:
            if mmap_mode not in MMAP_MODES:
                raise ValueError(f"mmap_mode must be 'r', 'c' or None, got {mmap_mode!r}")
            return self._get_plain(
                key, db_key, raw, default, read, expire_time, tag, retry, mmap_mode=mmap_mode
            )
        shared = self._shared
        if shared.tier is not None and not read and not tag:
            return self._get_tiered(key, db_key, raw, default, expire_time, retry)
        # The common case inline: one statement on this thread's cursor, a native value
        # without expiry, no extra columns asked for.
        ns = self._ns
        params: tuple[Any, ...]
        if ns:
            sql, params = _sql.SELECT_ITEM, (ns, db_key, raw)
        else:
            sql, params = _sql.SELECT_ITEM_MAIN, (db_key, raw)
        conn = self._store.enter()
        try:
            try:
                rows = conn.cur.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                rows = self._retry_read(conn, exc, sql, params, retry)
        finally:
            conn.depth -= 1
        if rows and not (expire_time or tag):
            rowid, mode, value, exp = rows[0]
            if not mode and exp is None:
                bookkeeper = shared.bookkeeper
                if bookkeeper.active:
                    bookkeeper.hit(rowid, _clock.now())
                return value
            disk = self._disk
            # An inline payload of the Disk's own kind (a small pickle): read it here too.
            if (
                exp is None
                and type(mode) is int
                and mode & _KIND_AND_SLOW_FLAGS == disk.kind
                and mode >= 0
                and disk.fast_inline
            ):
                try:
                    value = disk.fetch_inline(mode, value, ns, db_key, raw)
                except IntegrityError:
                    pass  # read once more below, which reports the damage
                else:
                    bookkeeper = shared.bookkeeper
                    if bookkeeper.active:
                        bookkeeper.hit(rowid, _clock.now())
                    return value
        return self._get_plain(key, db_key, raw, default, read, expire_time, tag, retry, rows)

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
        rows: list[Any] | None = None,
        *,
        count: bool = True,
        mmap_mode: str | None = None,
    ) -> Any:
        """``get`` in full generality; *rows* is the first read's result when already made.

        Every field returned comes from one row read by one statement (see
        ``SELECT_ITEM_FULL``): a row is never completed by rowid, which could mix versions.
        With *count* false the read is left out of the hit and miss statistics.
        """
        ns = self._ns
        params: tuple[Any, ...]
        if ns:
            sql, params = _sql.SELECT_ITEM, (ns, db_key, raw)
        else:
            sql, params = _sql.SELECT_ITEM_MAIN, (db_key, raw)
        full = (ns, db_key, raw)
        if tag:
            rows = None  # the tag is not in the short read
            sql, params = _sql.SELECT_ITEM_FULL, full
        while True:
            if rows is None:
                rows = self._read_rows(sql, params, retry)
            bookkeeper = self._shared.bookkeeper if count else _QUIET
            now = _clock.now()
            if rows and not _sane_row(rows[0]):
                self._report_corrupt(key, IntegrityError("its columns hold values of wrong types"))
                rows = []
            if not rows or (rows[0][3] is not None and rows[0][3] <= now):
                if bookkeeper.active:
                    bookkeeper.miss()
                return self._miss(default, expire_time, tag)
            row = rows[0]
            rowid, mode, value, exp = row[:4]
            filename: str | None = None
            size = vsize = 0
            sig: bytes | None = None
            tg = None
            if len(row) > 4:
                filename, size, sig, vsize, tg = row[4:]
                break
            if mode & FLAG_FILE and (columns := file_columns(value)) is not None:
                filename, size, vsize, sig = columns  # the point read brought them along
                value = None
                break
            if not (mode & (FLAG_FILE | FLAG_PINNED) or mode & KIND_MASK == KIND_DCPICKLE):
                break
            rows = None  # read the whole row once more, in one statement
            sql, params = _sql.SELECT_ITEM_FULL, full
        if mode & FLAG_PINNED and not self._read_only:
            self._unpin(rowid, mode)
        if mode & ~FLAG_PINNED:
            try:
                value = self._disk.fetch_row(
                    mode, filename, value, read,
                    ns=ns, db_key=db_key, raw=raw, sig=sig, vsize=vsize, size=size,
                    mmap_mode=mmap_mode,
                )  # fmt: skip
            except IntegrityError as exc:
                self._report_corrupt(key, exc)
                if bookkeeper.active:
                    bookkeeper.miss()
                return self._miss(default, expire_time, tag)
        if bookkeeper.active:
            bookkeeper.hit(rowid, now)
        return self._shaped(value, exp, tg, expire_time, tag)

    def _read_rows(self, sql: str, params: tuple[Any, ...], retry: bool) -> list[Any]:
        conn = self._store.enter()
        try:
            try:
                return conn.cur.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                return self._retry_read(conn, exc, sql, params, retry)
        finally:
            conn.depth -= 1

    def _unpin(self, rowid: int, mode: int) -> None:
        pinned = to_row(mode)
        unpinned = to_row(mode & ~FLAG_PINNED)
        with self._store.write(retry=True) as conn:
            conn.con.execute(_sql.UNPIN, (unpinned, rowid, pinned))  # type: ignore[union-attr]

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
        rows = self._store.run(
            _sql.SELECT_EXISTS, (self._ns, db_key, raw, _clock.now()), retry=True
        )
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
        self._store_item(key, value, expire, read, tag, retry, pin, only_if_missing=False)
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
        return self._store_item(key, value, expire, read, tag, retry, pin, only_if_missing=True)

    def _store_item(
        self,
        key: Any,
        value: Any,
        expire: float | None,
        read: bool,
        tag: Any,
        retry: bool,
        pin: bool,
        *,
        only_if_missing: bool,
        fn: int | None = None,
    ) -> bool:
        now = _clock.now()
        expire_time = None if expire is None else _check_expire(expire, now)
        if tag is not None:
            tag = _check_tag(tag)
        db_key, raw = self._disk.put(key)
        try:
            stored = self._disk.store_row(value, read, ns=self._ns, db_key=db_key, raw=raw, key=key)
        except StorageFullError:
            if read or not self._store.checkpoints.dropped:
                raise
            # Files that earlier commits dropped may hold the space until a checkpoint.
            self._store.flush()
            stored = self._disk.store_row(value, read, ns=self._ns, db_key=db_key, raw=raw, key=key)
        stored_it = False
        try:
            with self._store.write(retry) as conn:
                stored_it = self._put_row(
                    conn, now, db_key, raw, stored, expire_time, tag, pin, only_if_missing, fn
                )
        finally:
            if stored.pending is not None:
                self._disk.files.discard(stored.pending)
            elif not stored_it and stored.filename is not None:
                self._store.remove_files([stored.filename])  # a hook's file nobody took
        if stored_it:
            self._after_write(stored, expire_time, now)
        return stored_it

    def touch(self, key: Any, expire: float | None = None, retry: bool = False) -> bool:
        """Set a new expiry for *key*; return False if it is missing or expired."""
        now = _clock.now()
        expire_time = _check_expire(expire, now)
        db_key, raw = self._disk.put(key)
        with self._store.write(retry) as conn:
            con = conn.con
            assert con is not None
            rows = con.execute(_sql.SELECT_FOR_WRITE, (self._ns, db_key, raw)).fetchall()
            if not rows or _expired(rows[0][3], now):
                return False
            con.execute(_sql.UPDATE_EXPIRE, (expire_time, rows[0][0]))
            if self._shared.tier is not None:
                self._shared.tier.discard((self._ns, db_key, raw))
            return True

    # -- removing ---------------------------------------------------------------------------

    def delete(self, key: Any, retry: bool = False) -> bool:
        """Remove *key*; return True if a live item was removed (works on a full disk too)."""
        return self._freeing(lambda: self._delete(key, retry))

    def _delete(self, key: Any, retry: bool) -> bool:
        db_key, raw = self._disk.put(key)
        ns = self._ns
        with self._store.write(retry) as conn:
            con = conn.con
            assert con is not None
            rows = con.execute(_sql.DELETE_KEY, (ns, db_key, raw, _clock.now())).fetchall()
            if not rows:
                return False
            if self._shared.tier is not None:
                self._shared.tier.discard((ns, db_key, raw))
            filename = rows[0][0]
            if filename is not None:
                conn.dropped.append(filename)
        return True

    def __delitem__(self, key: Any, retry: bool = True) -> None:
        if not self.delete(key, retry=retry):
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
        return self._freeing(lambda: self._pop(key, default, expire_time, tag, retry))

    def _pop(self, key: Any, default: Any, expire_time: bool, tag: bool, retry: bool) -> Any:
        db_key, raw = self._disk.put(key)
        ns = self._ns
        now = _clock.now()
        with self._store.write(retry) as conn:
            con = conn.con
            assert con is not None
            rows = con.execute(_sql.SELECT_FOR_WRITE, (ns, db_key, raw)).fetchall()
            if not rows:
                return self._miss(default, expire_time, tag)
            rowid, filename, size, exp, tg, mode, value, sig, vsize = rows[0]
            if _expired(exp, now):
                return self._miss(default, expire_time, tag)  # left to expiry, as diskcache
            deleted = con.execute(_sql.DELETE_ROWID, (rowid,)).fetchall()
            self._uncount(conn, deleted)
            value = self._fetch_taken(
                "removed", key, mode, filename, value, ns, db_key, raw, sig, vsize, size
            )
            if value is ENOVAL:
                return self._miss(default, expire_time, tag)
        return self._shaped(value, exp, tg, expire_time, tag)

    # -- queues -----------------------------------------------------------------------------

    # -- iteration and size -----------------------------------------------------------------

    # -- settings ---------------------------------------------------------------------------

    # -- transactions and lifecycle ---------------------------------------------------------
    def transact(self, retry: bool = False) -> contextlib.AbstractContextManager[None]:
        """Run a block atomically: ``with cache.transact(): ...``.

        Other writers wait until the block ends. Transactions are per thread and nest
        (an inner block that raises rolls back only its own changes).
        """
        return self._store.savepoint_txn(retry)

    def close(self) -> None:
        """Write buffered bookkeeping and close the cache's connections.

        Using the cache afterwards opens new connections, as in diskcache, so a cache can be
        closed after each unit of work (a web request, a task) and used again.
        """
        store = self._store
        if store.closed:
            return
        with contextlib.suppress(Exception):
            self._shared.bookkeeper.flush()
        store.close()
        files = getattr(self._disk, "files", None)
        if files is not None:
            files.close()

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
            "network_fs": self._network_fs,
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
            network_fs=state.get("network_fs", "refuse"),
            **state["extra_disk"],
        )
        if state["namespace"]:
            view = self.namespace(state["namespace"])
            self._ns, self._ns_name = view._ns, view._ns_name

    def __repr__(self) -> str:
        where = f", namespace={self._ns_name!r}" if self._ns_name else ""
        return f"{type(self).__name__}({self._directory!r}{where})"
