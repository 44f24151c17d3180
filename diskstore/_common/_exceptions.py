"""Errors and warnings raised by diskstore.

Every error diskstore defines derives from :class:`DiskStoreError`, so one ``except`` clause
catches them all; each also derives from the built-in a Python user would expect::

    DiskStoreError (Exception)
    ├── Timeout                        database stayed locked past ``timeout``
    ├── SettingsError (ValueError)     a setting's name or value is invalid
    ├── CacheClosedError (ValueError)  an AsyncCache was closed and used again
    ├── ForkedTransactionError (RuntimeError) a child forked inside ``transact()`` used it
    ├── ReadOnlyError (PermissionError) a write on a cache opened read-only
    ├── SecretMismatchError (PermissionError) opened with another secret than it was made with
    ├── SecretUnavailableError (PermissionError) no secret given, and none can be kept
    ├── UntrustedDataError (ValueError) importing pickles without ``trust=True``
    ├── StorageError (OSError)         the disk refused a write (full, I/O error)
    │   └── StorageFullError           no space left on the device or database
    ├── IntegrityError                 stored data failed verification
    ├── NetworkFilesystemError         the directory is on a network filesystem (or leased)
    ├── ServerUnavailableError (ConnectionError)  a cache server did not answer in time
    └── UnsupportedError (NotImplementedError)    the backend cannot do this operation

    CorruptionWarning (UserWarning)    an entry failed verification and was dropped
    EmptyDirWarning (UserWarning)      ``check`` found an empty value directory
    UnknownFileWarning (UserWarning)   ``check`` found a file the cache does not own
    DiskcacheDirectoryWarning (UserWarning) a directory holds diskcache's ``cache.db``

``KeyError``, ``TypeError`` and ``ValueError`` are raised where the mapping protocol and
argument checking make them the natural choice.
"""

from __future__ import annotations

import os
import sys
import warnings


class DiskStoreError(Exception):
    """Base class of every error raised by diskstore itself."""


class Timeout(DiskStoreError):
    """The database stayed locked by another writer for longer than the cache's timeout.

    Raised by a bulk removal (``clear``, ``evict``, ``expire``, ``cull``) part-way through,
    its first argument is the number of items already removed, as in diskcache.
    """


class SettingsError(DiskStoreError, ValueError):
    """A setting has an unknown name or an invalid value; nothing was persisted."""


class CacheClosedError(DiskStoreError, ValueError):
    """An operation was attempted on an ``AsyncCache`` after ``close()``."""


class ForkedTransactionError(DiskStoreError, RuntimeError):
    """This process was forked inside a ``transact()`` block and the child used the cache.

    The transaction, its connection and SQLite's write lock belong to the parent, which
    carries on unaffected. In the child, every use of that cache on the forking thread
    raises this error until the inherited block is left; leaving it normally raises it too,
    because nothing the block did in the child was committed. After that the child can read
    the cache, but any write to that database from the child raises this error: SQLite keeps
    lock state per process, and the child's copy still records the parent's write lock.
    """


class ReadOnlyError(DiskStoreError, PermissionError):
    """A write was attempted on a cache opened read-only (or on a read-only directory)."""


class SecretMismatchError(DiskStoreError, PermissionError):
    """The cache was created with another signing secret than the one this process has.

    Raised when the cache is opened, before anything is read or deleted: entries signed with
    the other secret would all fail verification. The message names the ways to supply the
    right secret (``secret=``, ``DISKSTORE_SECRET``, the secret file).
    """


class SecretUnavailableError(DiskStoreError, PermissionError):
    """No signing secret was given and none can be read or created in the config directory.

    Raised when a cache is opened by a process with no ``secret=``, no ``DISKSTORE_SECRET``
    and no writable place for the per-user secret file (no home directory, or a read-only
    one, as in many containers). The message names those three ways to supply one.
    """


class UntrustedDataError(DiskStoreError, ValueError):
    """Importing data that only loads by unpickling it unverified, without ``trust=True``."""


class StorageError(DiskStoreError, OSError):
    """The operating system or SQLite refused to store data; the transaction was rolled back."""


class StorageFullError(StorageError):
    """No space is left on the device, or the database reached its page limit."""


class IntegrityError(DiskStoreError):
    """Stored bytes failed verification (bad signature, truncation, or a tampered name)."""


class NetworkFilesystemError(DiskStoreError):
    """The cache directory is on a network filesystem, which diskstore refuses by default.

    SQLite databases written there by more than one machine, or through more than one mount,
    are damaged beyond repair. The message names the filesystem type and mount point and the
    ways out: a local directory, the Redis backend, or ``network_fs="single-host"`` when one
    machine alone uses the directory. With that opt-in, this error also says that another
    machine or mount holds the directory's lease. ``fs_type`` and ``mount_point`` hold what
    was detected.
    """

    def __init__(self, message: str, fs_type: str = "", mount_point: str = "") -> None:
        super().__init__(message)
        self.fs_type = fs_type
        self.mount_point = mount_point

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:
        return (type(self), (str(self), self.fs_type, self.mount_point))


class ServerUnavailableError(DiskStoreError, ConnectionError):
    """The cache server (Redis) could not be reached, or did not answer within the timeout."""


class UnsupportedError(DiskStoreError, NotImplementedError):
    """The backend cannot perform this operation with the cache's semantics (see its docs)."""


class CorruptionWarning(UserWarning):
    """An entry failed verification; it was removed and treated as a miss."""


class EmptyDirWarning(UserWarning):
    """``check()`` found an empty directory among the value files."""


class UnknownFileWarning(UserWarning):
    """``check()`` found a file in the cache directory that no entry references."""


class DiskcacheDirectoryWarning(UserWarning):
    """An entry is a pickle diskcache wrote, which diskstore does not load until trusted.

    The entry reads as a miss; the warning names the way to trust such entries:
    ``Cache.adopt_diskcache(trust=True)`` or ``diskstore adopt DIR --trust``.
    """


class UntrustedPickle(IntegrityError):
    """A diskcache pickle without a valid signature: never unpickled (see ``adopt_diskcache``)."""


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def warn_caller(message: str, category: type[Warning]) -> None:
    """Warn, attributing the warning to the first caller outside diskstore.

    Read paths reach the point where damage is found through different depths of internal
    calls, so a fixed ``stacklevel`` would point at diskstore's own files; the warning is
    only useful at the line of the program that made the call.
    """
    level = 2  # the caller of this function
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    warnings.warn(message, category, stacklevel=level)
