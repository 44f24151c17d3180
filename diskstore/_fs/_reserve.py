"""Space held back so that a full disk can still be emptied through the cache's API.

In WAL mode even a delete must append to the write-ahead log, so on a full file system the
operations that would free space fail like every other write (diskcache: 55 of 56 deletes
failed). Each cache directory therefore keeps ``reserve``, a small file whose blocks are
really allocated. When a removal meets a full disk, the log is first checkpointed and
truncated; if that is not enough, the reserve gives back one step of its space and the
removal is retried. Once it commits, its value files are unlinked and the log is
checkpointed again, which returns the freed pages to the file system. The reserve is made
whole again after removals, and after writes (at most every few seconds), when there is
room.
"""

from __future__ import annotations

import errno
import os
import time

RESERVE_NAME = "cache.db-reserve"
RESERVE_BYTES = 512 << 10
RELEASE_STEP = 128 << 10  # given back per rescue: room for one removal batch's log pages
RETRY_INTERVAL = 5.0  # seconds between attempts to make the reserve again after writes


class Reserve:
    """The reserve file of one cache directory."""

    def __init__(self, directory: str, size: int = RESERVE_BYTES) -> None:
        self.path = os.path.join(directory, RESERVE_NAME)
        self.size = size
        self._next_try = 0.0
        self._ok = False  # made (or seen) by this process and not released since

    @property
    def whole(self) -> bool:
        """Whether this process made or saw the reserve whole since it last gave any back."""
        return self._ok

    def present(self) -> bool:
        try:
            return os.lstat(self.path).st_size >= self.size
        except FileNotFoundError:
            return False

    def ensure(self) -> bool:
        """Make the reserve whole if there is room; True if it is in place."""
        if self.present():
            self._ok = True
            return True
        self._next_try = time.monotonic() + RETRY_INTERVAL
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError:
            return False
        try:
            try:
                os.posix_fallocate(fd, 0, self.size)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                    raise
                have = os.fstat(fd).st_size
                os.pwrite(fd, b"\0" * (self.size - have), have)  # no fallocate: write blocks
        except OSError:
            return False  # no room yet: keep whatever part of the reserve exists
        finally:
            os.close(fd)
        self._ok = True
        return True

    def ensure_later(self) -> None:
        """Try to make the reserve again, at most every few seconds (called after writes)."""
        if not self._ok and time.monotonic() >= self._next_try:
            self.ensure()

    def release(self) -> bool:
        """Give back one step of the reserved space; True if there was any to give."""
        self._ok = False
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_NOFOLLOW)
        except OSError:
            return False
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                return False
            os.ftruncate(fd, max(0, size - RELEASE_STEP))
        except OSError:
            return False
        finally:
            os.close(fd)
        self._next_try = time.monotonic() + RETRY_INTERVAL
        return True
