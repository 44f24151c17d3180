"""Single-flight locks as single bytes of one shared file, locked with ``fcntl``.

A memoized miss must tell whether another process is computing the same key. A lock file
per key answers that with four file-system operations per miss (create, lock, unlink,
close), which cost more than the miss itself. Here every key's lock is instead one byte of
one file, ``<cache directory>/cache.db-flight``, at an offset taken from the key's token,
held with a POSIX record lock. Without contention a miss costs two system calls (lock,
unlock) on a descriptor each process opens once: no file is created or deleted per key,
and no database row is written, so nothing shows up in the cache's keys, ``len`` or stats.

Crash safety comes from the kernel: a process's record locks go away when it exits or is
killed, so a leader that dies never blocks the others, and there is no lease to expire.

Record locks belong to a process, not to a thread or a descriptor, which shapes the rest:

- threads of one process exclude each other with an in-process lock per byte, taken
  before the record lock (two memoized wrappers of one function, say);
- the file is opened once per process and file, and closed only when nothing in the
  process uses it: closing *any* descriptor of a file drops every record lock the process
  holds on it;
- a forked child inherits no record locks, and starts with no bytes held.

Offsets are 48 bits of the token, so two keys computed at once share a byte with
negligible probability; if they did, one would wait for the other, look the key up again
and compute it then, costing time only. A busy byte is polled (from 1 ms, doubling, up to
50 ms) until it is free or the caller's timeout passes: record locks have no timed wait.

A filesystem that refuses record locks, or a directory where the file cannot be created,
falls back to per-key lock files (:class:`~diskstore._memo._singleflight.FileFlightLock`) in the
lock directory, ``cache.db-locks``, which is made beside the file and otherwise stays empty.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._backend import FlightLock

__all__ = ["FLIGHT_FILE", "RangeFlightLock", "RangeLocks", "range_locks_supported"]

#: The file whose bytes are the per-key locks, beside the database.
FLIGHT_FILE = "cache.db-flight"
_FILE_MODE = 0o600
_DIR_MODE = 0o700
_OFFSET_BITS = 48
_FIRST_POLL = 0.001
_LAST_POLL = 0.05
#: errno values that mean "another process holds the byte".
_BUSY = frozenset({errno.EACCES, errno.EAGAIN})

try:
    import fcntl
except ImportError:  # Windows: per-key lock files only
    fcntl = None  # type: ignore[assignment]


def range_locks_supported() -> bool:
    """Whether this platform has POSIX record locks."""
    return fcntl is not None


def offset_of(token: str) -> int:
    """The byte that stands for *token*: its leading hex digits, or a hash of it."""
    if len(token) >= _OFFSET_BITS // 4:
        try:
            return int(token[: _OFFSET_BITS // 4], 16)
        except ValueError:
            pass
    digest = hashlib.blake2b(token.encode(), digest_size=_OFFSET_BITS // 8).digest()
    return int.from_bytes(digest, "big")


def _try_lock_byte(fd: int, offset: int) -> bool:
    """Take the record lock of byte *offset* if no other process holds it.

    An ``OSError`` other than "held by another process" means record locks are refused.
    """
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
    except OSError as exc:
        if exc.errno not in _BUSY:
            raise
        return False
    return True


class _SharedFile:
    """One process's descriptor of one flight file, and which of its bytes threads hold."""

    __slots__ = ("__weakref__", "fd", "holders", "identity")

    def __init__(self, fd: int, identity: tuple[int, int]) -> None:
        self.fd = fd
        self.identity = identity
        self.holders: dict[int, int] = {}  # offset -> thread holding it, in this process
        weakref.finalize(self, os.close, fd)

    def forget_after_fork(self) -> None:
        """Start with no byte held, as a forked child must: the holding threads are gone."""
        self.holders = {}

    def claim(self, offset: int, timeout: float | None) -> tuple[bool, bool]:
        """Reserve *offset* for this thread among the process's; return (got it, waited).

        ``dict.setdefault`` is atomic, so the free case takes no lock. A byte held by another
        thread of this process is polled for, as the record lock is: both are rare.
        """
        me = threading.get_ident()
        holders = self.holders
        holder = holders.setdefault(offset, me)
        if holder == me:
            return True, False
        if timeout == 0:
            return False, True
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = _FIRST_POLL
        while True:
            time.sleep(pause)
            pause = min(pause * 2, _LAST_POLL)
            if holders.setdefault(offset, me) == me:
                return True, True
            if deadline is not None and time.monotonic() >= deadline:
                return False, True

    def unclaim(self, offset: int) -> None:
        """Let the next thread of this process have *offset*."""
        self.holders.pop(offset, None)


_registry_mutex = threading.Lock()
#: Open flight files by (device, inode): one descriptor per file per process.
_open_files: weakref.WeakValueDictionary[tuple[int, int], _SharedFile] = (
    weakref.WeakValueDictionary()
)


def _open_shared(path: str) -> _SharedFile:
    with _registry_mutex:
        try:
            info = os.stat(path)
            shared = _open_files.get((info.st_dev, info.st_ino))
            if shared is not None:
                return shared
        except FileNotFoundError:
            pass
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC
        fd = os.open(path, flags, _FILE_MODE)
        info = os.fstat(fd)
        identity = (info.st_dev, info.st_ino)
        known = _open_files.get(identity)
        if known is not None:
            # Created between the stat and the open by another thread of ours: keep the
            # descriptor open (closing it would drop the process's locks on the file).
            _leaked.append(fd)
            return known
        shared = _open_files[identity] = _SharedFile(fd, identity)
        return shared


_leaked: list[int] = []


class RangeLocks:
    """The single-flight lock factory of one cache directory (a ``LockFactory``).

    ``path`` is the flight file; ``lock_dir`` the directory of per-key lock files used
    when record locks are refused. The file is opened on first use, and re-opened when the
    directory was replaced (removed and made again) since.
    """

    __slots__ = ("_file", "_unsupported", "lock_dir", "path")

    def __init__(self, path: str, lock_dir: str) -> None:
        self.path = path
        self.lock_dir = lock_dir
        self._file: _SharedFile | None = None
        self._unsupported = False

    def __call__(self, token: str) -> FlightLock:
        if self._unsupported:
            return self.file_lock(token)
        return RangeFlightLock(self, token)

    def file_lock(self, token: str) -> FlightLock:
        """The key's lock as a lock file, for where record locks are refused."""
        from ._singleflight import FileFlightLock

        return FileFlightLock(self.lock_dir, token)

    def shared(self) -> _SharedFile | None:
        """The open flight file, opened now if need be; None when it cannot be opened."""
        shared = self._file
        if shared is not None:
            return shared
        try:
            os.makedirs(self.lock_dir, mode=_DIR_MODE, exist_ok=True)
            shared = self._file = _open_shared(self.path)
        except OSError:
            return None
        return shared

    def refuse(self) -> None:
        """Record locks do not work here: use per-key lock files from now on."""
        self._unsupported = True


class RangeFlightLock:
    """One key's lock: one byte of the flight file (see the module docstring)."""

    __slots__ = ("_fallback", "_held", "_locks", "_offset", "_token", "ident", "waited")

    def __init__(self, locks: RangeLocks, token: str) -> None:
        self._locks = locks
        self._token = token
        self._offset = offset = offset_of(token)
        #: The same for every lock object of this byte of this file.
        self.ident = f"{locks.path}#{offset}"
        #: Whether taking the lock had to wait for another holder (then the value may have
        #: been stored meanwhile, and the caller should look again).
        self.waited = False
        self._held: _SharedFile | None = None
        self._fallback: FlightLock | None = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free at once, without waiting."""
        return self.acquire(0.0)

    def acquire(self, timeout: float | None) -> bool:
        """Wait up to *timeout* seconds (None: no limit); False when it timed out."""
        shared = self._locks._file or self._locks.shared()
        if shared is None:
            return self._acquire_fallback(timeout)
        offset = self._offset
        # The common case first, inline: the byte is free in this process and in the others.
        me = threading.get_ident()
        if shared.holders.setdefault(offset, me) == me:
            try:
                fcntl.lockf(shared.fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
            except OSError:
                shared.unclaim(offset)
            else:
                self._held = shared
                return True
        return self._acquire_slowly(shared, offset, timeout)

    def _acquire_slowly(self, shared: _SharedFile, offset: int, timeout: float | None) -> bool:
        """``acquire`` when the byte is held by another thread or process (or refused)."""
        start = time.monotonic()
        claimed, waited = shared.claim(offset, timeout)
        if not claimed:
            self.waited = True
            return False
        if waited:  # another thread of this process had the byte: count its time
            self.waited = True
            if timeout:
                timeout = max(0.0, timeout - (time.monotonic() - start))
        try:
            if self._lock_byte(shared.fd, offset, timeout):
                self._held = shared
                return True
        except OSError:
            shared.unclaim(offset)
            self._locks.refuse()
            return self._acquire_fallback(timeout)
        except BaseException:
            shared.unclaim(offset)
            raise
        shared.unclaim(offset)
        return False

    def _lock_byte(self, fd: int, offset: int, timeout: float | None) -> bool:
        """Take the record lock, polling while another process holds it, up to *timeout*.

        An ``OSError`` other than "held by another process" means record locks are refused.
        """
        if _try_lock_byte(fd, offset):
            return True
        self.waited = True
        if timeout == 0:
            return False
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = _FIRST_POLL
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            time.sleep(pause if left is None else min(pause, left))
            pause = min(pause * 2, _LAST_POLL)
            if _try_lock_byte(fd, offset):
                return True

    def _acquire_fallback(self, timeout: float | None) -> bool:
        lock = self._locks.file_lock(self._token)
        self.waited = True  # a lock file gives no sign of contention: always look again
        if not lock.acquire(timeout):
            return False
        self._fallback = lock
        return True

    def release(self) -> None:
        """Release the byte (and let the next thread of this process have it)."""
        fallback, self._fallback = self._fallback, None
        if fallback is not None:
            fallback.release()
            return
        shared, self._held = self._held, None
        if shared is None:
            return
        try:
            fcntl.lockf(shared.fd, fcntl.LOCK_UN, 1, self._offset)
        finally:
            shared.holders.pop(self._offset, None)


def _after_fork_in_child() -> None:
    # The parent's threads, and the record locks they held, did not come along.
    global _registry_mutex
    _registry_mutex = threading.Lock()
    for shared in list(_open_files.values()):
        shared.forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
