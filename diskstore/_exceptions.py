"""Errors and warnings raised by diskstore.

Every error diskstore defines derives from :class:`DiskStoreError`, so one ``except`` clause
catches them all; each also derives from the built-in a Python user would expect::

    DiskStoreError (Exception)
    ├── Timeout                        database stayed locked past ``timeout``
    ├── SettingsError (ValueError)     a setting's name or value is invalid
    ├── CacheClosedError (ValueError)  an AsyncCache was closed and used again
    ├── ReadOnlyError (PermissionError) a write on a cache opened read-only
    ├── StorageError (OSError)         the disk refused a write (full, I/O error)
    │   └── StorageFullError           no space left on the device or database
    └── IntegrityError                 stored data failed verification

    CorruptionWarning (UserWarning)    an entry failed verification and was dropped
    EmptyDirWarning (UserWarning)      ``check`` found an empty value directory
    UnknownFileWarning (UserWarning)   ``check`` found a file the cache does not own

``KeyError``, ``TypeError`` and ``ValueError`` are raised where the mapping protocol and
argument checking make them the natural choice.
"""

from __future__ import annotations


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


class ReadOnlyError(DiskStoreError, PermissionError):
    """A write was attempted on a cache opened read-only (or on a read-only directory)."""


class StorageError(DiskStoreError, OSError):
    """The operating system or SQLite refused to store data; the transaction was rolled back."""


class StorageFullError(StorageError):
    """No space is left on the device, or the database reached its page limit."""


class IntegrityError(DiskStoreError):
    """Stored bytes failed verification (bad signature, truncation, or a tampered name)."""


class CorruptionWarning(UserWarning):
    """An entry failed verification; it was removed and treated as a miss."""


class EmptyDirWarning(UserWarning):
    """``check()`` found an empty directory among the value files."""


class UnknownFileWarning(UserWarning):
    """``check()`` found a file in the cache directory that no entry references."""
