"""A cross-process change counter, so memory tiers can tell cheaply whether anything changed.

``PRAGMA data_version`` answers the same question but opens a read transaction (several
microseconds, as much as the read it would save). Instead, every write transaction of every
process bumps a counter in a small shared file, ``<directory>/changes``, mapped into memory:

- ``begun`` is incremented while the writer holds SQLite's write lock (so increments never
  race), before it changes anything;
- ``done`` is set to that number after the transaction commits or rolls back.

A reader may trust what it cached while ``begun == done`` and ``begun`` equals the value it
last saw, and may cache a value it read from the database only if ``begun`` did not move
while it read. A writer killed between the two steps leaves ``begun != done``, which only
disables caching until the next write completes: the failure mode is slower, never stale.

A third number, ``durable``, tells every process how far commits are known to be on disk
(see _durability.py): a process that completes a synced checkpoint sets it to the ``done``
it read before starting, since every transaction numbered up to that had finished by then.
Writers of ``durable`` may race and set it back; any value written is still true, so a race
only delays what waits for it.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct

_PAIR = struct.Struct("=QQ")
_ONE = struct.Struct("=Q")
_DURABLE = _PAIR.size  # offset of ``durable``
_SIZE = _DURABLE + _ONE.size
FILE_NAME = "cache.db-changes"


class ChangeCounter:
    """The ``begun``/``done`` pair of one cache directory."""

    def __init__(self, directory: str) -> None:
        path = os.path.join(directory, FILE_NAME)
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(path, flags, 0o600)
        try:
            if os.fstat(fd).st_size < _SIZE:
                os.ftruncate(fd, _SIZE)  # zero-filled; a no-op race between openers
            self._map = mmap.mmap(fd, _SIZE, mmap.MAP_SHARED)
        finally:
            os.close(fd)

    def read(self) -> tuple[int, int]:
        """Return ``(begun, done)``."""
        begun, done = _PAIR.unpack_from(self._map, 0)
        return int(begun), int(done)

    def begun(self) -> int:
        return int(_ONE.unpack_from(self._map, 0)[0])

    def begin(self) -> int:
        """Number this write transaction (call while holding SQLite's write lock)."""
        number = (_ONE.unpack_from(self._map, 0)[0] + 1) & 0xFFFFFFFFFFFFFFFF
        _ONE.pack_into(self._map, 0, number)
        return int(number)

    def finish(self, number: int) -> None:
        """Mark write *number* as committed or rolled back."""
        _ONE.pack_into(self._map, _ONE.size, number)

    def durable(self) -> int:
        """Every transaction numbered up to this is known to be on disk."""
        return int(_ONE.unpack_from(self._map, _DURABLE)[0])

    def set_durable(self, number: int) -> None:
        """Record that transactions up to *number* are on disk (never lowers it knowingly)."""
        if number > self.durable():
            _ONE.pack_into(self._map, _DURABLE, number)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._map.close()


class UnmappedChangeCounter(ChangeCounter):
    """The same counter read and written with ``pread``/``pwrite`` instead of a mapping.

    On a network filesystem (``network_fs="single-host"``) a shared mapping is not kept
    coherent and can be shrunk under a reader by another client (SIGBUS); plain reads and
    writes go through the one client's page cache, which its processes share.
    """

    def __init__(self, directory: str) -> None:
        path = os.path.join(directory, FILE_NAME)
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        self._fd = os.open(path, flags, 0o600)
        if os.fstat(self._fd).st_size < _SIZE:
            os.ftruncate(self._fd, _SIZE)

    def _pair(self) -> bytes:
        data = os.pread(self._fd, _PAIR.size, 0)
        return data if len(data) == _PAIR.size else bytes(_PAIR.size)

    def read(self) -> tuple[int, int]:
        begun, done = _PAIR.unpack(self._pair())
        return int(begun), int(done)

    def begun(self) -> int:
        return self.read()[0]

    def begin(self) -> int:
        number = (self.begun() + 1) & 0xFFFFFFFFFFFFFFFF
        os.pwrite(self._fd, _ONE.pack(number), 0)
        return number

    def finish(self, number: int) -> None:
        os.pwrite(self._fd, _ONE.pack(number), _ONE.size)

    def durable(self) -> int:
        data = os.pread(self._fd, _ONE.size, _DURABLE)
        return int(_ONE.unpack(data)[0]) if len(data) == _ONE.size else 0

    def set_durable(self, number: int) -> None:
        if number > self.durable():
            os.pwrite(self._fd, _ONE.pack(number), _DURABLE)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)

    def __del__(self) -> None:
        self.close()


def open_counter(directory: str, *, mapped: bool = True) -> ChangeCounter | None:
    """Open the directory's counter; ``None`` where it cannot be created (read-only)."""
    try:
        return ChangeCounter(directory) if mapped else UnmappedChangeCounter(directory)
    except OSError:
        return None
