"""Value files: where large values live, and the only code that touches them.

A value file is written under a temporary name, flushed, and renamed to its final name
before the transaction that references it commits, so a final name never holds a partial
file. Names are random (key data never becomes a file name), and every name read back from
the database must match the exact pattern written here; files are opened without following
symbolic links at any level below the cache directory, so a tampered ``filename`` column can
never make diskstore read or delete a file elsewhere.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import os
import re
import stat
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO, Protocol

from .._common._exceptions import IntegrityError, StorageError, StorageFullError
from . import _checksums
from ._durability import Space, sync_directory, sync_fd
from ._faults import crash_point

DATA_DIR = "data"
# Names are relative to the cache directory, as diskcache's are, so either engine finds a
# file from its row: diskstore writes ``data/xx/<30 hex>.val``; diskcache's own files,
# ``ab/cd/<28 hex>.val``, are read where they are.
NAME_PATTERN = re.compile(
    r"data/[0-9a-f]{2}/[0-9a-f]{30}\.val|[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{28}\.val"
)
TEMP_PATTERN = re.compile(r"data/[0-9a-f]{2}/[0-9a-f]{30}\.tmp")
_HEX2 = re.compile(r"[0-9a-f]{2}")
CHUNK = 1 << 20

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
# O_NONBLOCK: opening a FIFO planted in place of a value file must not wait for a writer.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...


class Transform(Protocol):
    """A streaming encoder (zstd ``compressobj``) applied to bytes on their way to disk."""

    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self) -> bytes: ...


class PendingFile:
    """A value file written under its temporary name, waiting to be published."""

    __slots__ = (
        "checksum",
        "dir_fd",
        "fd",
        "input_bytes",
        "name",
        "new_dirs",
        "on_publish",
        "published",
        "stored_bytes",
    )

    def __init__(self, name: str, dir_fd: int, fd: int, stored: int, consumed: int) -> None:
        self.name = name  # final name, relative to the cache directory
        self.dir_fd = dir_fd
        self.fd = fd
        self.stored_bytes = stored
        self.input_bytes = consumed
        self.published = False
        #: Checksum of the stored bytes (see ``_checksums``), when the writer was asked for it.
        self.checksum = b""
        #: Directories that gained an entry (a new ``data/xx``, a new ``data``) for this file.
        self.new_dirs: list[str] = []
        #: Called with the file's status once it has its final name.
        self.on_publish: Callable[[os.stat_result], None] | None = None

    def close(self) -> None:
        for attr in ("fd", "dir_fd"):
            fd = getattr(self, attr)
            if fd >= 0:
                setattr(self, attr, -1)
                with contextlib.suppress(OSError):
                    os.close(fd)


def storage_error(exc: OSError, action: str) -> StorageError:
    """Translate an ``OSError`` from a write into diskstore's error, keeping errno."""
    cls = StorageFullError if exc.errno in (errno.ENOSPC, errno.EDQUOT) else StorageError
    if cls is StorageFullError:
        Space.short = True
    return cls(exc.errno, f"{action}: {exc.strerror or exc}")


def random_token() -> str:
    """32 random hex digits naming a new value file (what ``secrets.token_hex(16)`` returns,
    without importing ``secrets``, which loads hashlib and OpenSSL)."""
    return os.urandom(16).hex()


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class FileStore:
    """Creates value files below ``<directory>/data``; opens and removes them, and
    diskcache's, by their names relative to the directory."""

    def __init__(self, directory: str, *, fsync: bool = False) -> None:
        self.directory = directory
        self.root = directory
        self.fsync = fsync
        # A descriptor of ``data/``, opened on the first read and kept until the cache is
        # closed: a read then opens two names instead of three, and closes one.
        self._data_fd = -1
        self._data_lock = threading.Lock()
        self._data_finalizers: list[weakref.finalize[..., FileStore]] = []

    # -- names ------------------------------------------------------------------------------
    @staticmethod
    def validate(name: object) -> str:
        """Return *name* if it is a name this module writes; raise ``IntegrityError`` if not."""
        if not isinstance(name, str) or NAME_PATTERN.fullmatch(name) is None:
            raise IntegrityError(f"refusing value file name {name!r}")
        return name

    def path(self, name: str) -> str:
        return os.path.join(self.root, self.validate(name))

    @contextlib.contextmanager
    def _subdir(self, name: str, *, create: bool = False) -> Iterator[int]:
        """Yield a descriptor of the file's directory, reached without following links."""
        fd = self._open_subdir(name, create=create)
        try:
            yield fd
        finally:
            os.close(fd)

    def _open_subdir(
        self,
        name: str,
        *,
        create: bool = False,
        made: list[str] | None = None,
        kept: bool = False,
    ) -> int:
        """A descriptor of the directory holding *name*, each level opened without links.

        With *kept*, a folder of ``data/`` is opened through the kept descriptor of
        ``data/`` (reads only: a write goes by path). Otherwise the first level is opened by
        its path below the cache directory (one system call fewer than opening the directory
        first), the others relative to it. A directory created on the way adds its parent,
        whose entries changed, to *made* (innermost first), to be synced when the file is
        published.
        """
        if kept and not create and name.startswith(_DATA_PREFIX):
            try:
                return self._open_data_subdir(name[5:7])
            except FileNotFoundError:
                if self._data_fd >= 0 and not self._kept_stale():
                    raise
                # No ``data/`` yet, or the kept one has since been replaced: go by path.
                self._forget_data_dir()
        first, *rest = name.split("/")[:-1]
        top = os.path.join(self.root, first)
        try:
            fd = os.open(top, _DIR_FLAGS)
        except FileNotFoundError:
            if not create:
                raise
            with contextlib.suppress(FileExistsError):
                os.mkdir(top, 0o700)
                if made is not None:
                    made.append(self.root)
            fd = os.open(top, _DIR_FLAGS)
        path = top
        try:
            for part in rest:
                try:
                    sub = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o700, dir_fd=fd)
                        if made is not None:
                            made.insert(0, path)
                    sub = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = sub
                path = os.path.join(path, part)
        except BaseException:
            os.close(fd)
            raise
        return fd

    # -- writing ----------------------------------------------------------------------------
    def write(
        self,
        chunks: Iterable[bytes | memoryview],
        *,
        transform: Transform | None = None,
        digest: Digest | None = None,
        checksum: bool = False,
    ) -> PendingFile:
        """Write *chunks* to a new temporary value file and return it, not yet published.

        *transform* (a compressor) is applied on the way; *digest* sees the stored bytes;
        with *checksum*, their checksum is left in the result's ``checksum``.
        The writer keeps an exclusive ``flock`` on the temporary file until it is published
        or discarded, which is how ``check`` tells a write in progress from a crash's debris.
        """
        token = random_token()
        name = f"{DATA_DIR}/{token[:2]}/{token[2:]}.val"
        stored = 0
        consumed = 0
        made: list[str] = []
        try:
            # By path, not through the kept ``data/``: a write must never land in a folder
            # that has since been moved away from the cache directory.
            dir_fd = self._open_subdir(name, create=True, made=made, kept=False)
        except OSError as exc:
            raise storage_error(exc, "creating a value directory") from exc
        temp = token[2:] + ".tmp"
        fd = -1
        hasher = _checksums.hasher() if checksum else None
        try:
            fd = os.open(temp, _WRITE_FLAGS, 0o600, dir_fd=dir_fd)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            for chunk in chunks:
                consumed += len(chunk)
                out = transform.compress(bytes(chunk)) if transform else chunk
                if out:
                    if digest is not None:
                        digest.update(bytes(out))
                    if hasher is not None:
                        hasher.update(out)
                    _write_all(fd, out)
                    stored += len(out)
            if transform is not None:
                tail = transform.flush()
                if tail:
                    if digest is not None:
                        digest.update(tail)
                    if hasher is not None:
                        hasher.update(tail)
                    _write_all(fd, tail)
                    stored += len(tail)
            if self.fsync:
                os.fsync(fd)
        except BaseException as exc:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.unlink(temp, dir_fd=dir_fd)
                os.close(fd)
            os.close(dir_fd)
            if isinstance(exc, OSError):
                raise storage_error(exc, "writing a value file") from exc
            raise
        crash_point("file-written")
        if Space.short:
            Space.short = False
        pending = PendingFile(name, dir_fd, fd, stored, consumed)
        if hasher is not None:
            pending.checksum = hasher.digest()
        pending.new_dirs = made
        return pending

    def publish(self, pending: PendingFile) -> None:
        """Rename a written file to its final name (inside the transaction that uses it)."""
        final = _leaf(pending.name)
        temp = final[:-4] + ".tmp"
        try:
            os.replace(temp, final, src_dir_fd=pending.dir_fd, dst_dir_fd=pending.dir_fd)
        except OSError as exc:
            self.discard(pending)
            raise storage_error(exc, "publishing a value file") from exc
        if self.fsync:  # each commit is synced: the names must be durable before it
            try:
                sync_fd(pending.dir_fd)
                for directory in pending.new_dirs:
                    sync_directory(directory)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.unlink(final, dir_fd=pending.dir_fd)
                pending.close()
                raise storage_error(exc, "syncing a value file's directory") from exc
        pending.published = True
        if pending.on_publish is not None:
            with contextlib.suppress(OSError):
                pending.on_publish(os.fstat(pending.fd))
        pending.close()

    def discard(self, pending: PendingFile) -> None:
        """Remove a written file that was never published; a published one is left alone.

        Once published, a file belongs to its transaction, which removes it on rollback.
        """
        if pending.published or pending.dir_fd < 0:
            return
        with contextlib.suppress(OSError):
            os.unlink(_leaf(pending.name)[:-4] + ".tmp", dir_fd=pending.dir_fd)
        pending.close()

    def in_progress(self, relative: str) -> bool:
        """Whether a temporary file is still held by a live writer."""
        try:
            with self._subdir(relative) as dir_fd:
                fd = os.open(_leaf(relative), _READ_FLAGS, dir_fd=dir_fd)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)
        return False

    # -- reading ----------------------------------------------------------------------------
    def _data_dir(self) -> int:
        """The kept descriptor of ``data/`` (opened without following a link)."""
        with self._data_lock:
            if self._data_fd < 0:
                fd = os.open(os.path.join(self.root, DATA_DIR), _DIR_FLAGS)
                self._data_fd = fd
                self._data_finalizers.append(weakref.finalize(self, os.close, fd))
            return self._data_fd

    def close(self) -> None:
        """Close the kept descriptors (``Cache.close``); a later read opens ``data/`` again.

        A read racing with this in another thread may find the descriptor closed and report
        the file as unreadable, as any use of a cache while it is being closed may fail.
        """
        with self._data_lock:
            self._data_fd = -1
            finalizers, self._data_finalizers = self._data_finalizers, []
        for finalizer in finalizers:
            with contextlib.suppress(OSError):
                finalizer()

    def _open_data_subdir(self, part: str) -> int:
        """A descriptor of ``data/<part>``, opened through the kept ``data/`` descriptor."""
        data_fd = self._data_fd if self._data_fd >= 0 else self._data_dir()
        return os.open(part, _DIR_FLAGS, dir_fd=data_fd)

    def _open_leaf(self, name: str, *, kept: bool = True) -> int:
        """A descriptor of value file *name*, every level below the directory opened without
        following links."""
        dir_fd = self._open_subdir(name, kept=kept)
        try:
            return os.open(_leaf(name), _READ_FLAGS, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)

    def _open_regular(self, name: str) -> tuple[int, os.stat_result]:
        """A descriptor of value file *name* (a regular file, else ``IntegrityError``) and
        its status, from the one ``fstat`` a read needs."""
        if type(name) is not str or NAME_PATTERN.fullmatch(name) is None:
            self.validate(name)
        try:
            try:
                fd = self._open_leaf(name)
            except FileNotFoundError:
                if not name.startswith(_DATA_PREFIX) or not self._kept_stale():
                    raise
                # The kept ``data/`` is a directory since replaced: look again by path.
                self._forget_data_dir()
                fd = self._open_leaf(name, kept=False)
        except FileNotFoundError as exc:
            raise IntegrityError(f"value file {name} is missing") from exc
        except OSError as exc:
            raise IntegrityError(f"value file {name} cannot be opened: {exc}") from exc
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise IntegrityError(f"value file {name} is not a regular file")
        return fd, info

    def _kept_stale(self) -> bool:
        """Whether the kept descriptor no longer names ``<directory>/data``."""
        fd = self._data_fd
        if fd < 0:
            return False
        try:
            kept = os.fstat(fd)
            now = os.stat(os.path.join(self.root, DATA_DIR), follow_symlinks=False)
        except OSError:
            return True
        return (kept.st_dev, kept.st_ino) != (now.st_dev, now.st_ino)

    def _forget_data_dir(self) -> None:
        """Reopen ``data/`` on the next read (the kept descriptor named another directory).

        The old descriptor is closed with the cache: another thread may be using it.
        """
        with self._data_lock:
            self._data_fd = -1

    def open(self, name: str, *, buffered: bool = True) -> BinaryIO:
        """Open a value file for reading (binary; unbuffered reads when not *buffered*)."""
        fd, _ = self._open_regular(name)
        os.set_blocking(fd, True)
        handle = os.fdopen(fd, "rb", buffering=-1 if buffered else 0)
        # Callers (and diskcache programs) expect ``handle.name`` to be the file's path.
        raw = handle.raw if isinstance(handle, io.BufferedReader) else handle
        setattr(raw, "name", os.path.join(self.root, name))  # noqa: B010 (typed read-only)
        return handle

    def read(self, name: str, size: int, checksum: bytes | None = None) -> bytes:
        """Read a whole value file, which must hold exactly *size* bytes, and match
        *checksum* when one is given (see :mod:`diskstore._fs._checksums`)."""
        # One fstat and one read: the whole file lands in one bytes object. A regular file
        # ignores O_NONBLOCK, so the descriptor is read as opened.
        fd, info = self._open_regular(name)
        try:
            if info.st_size != size:  # checked first: a tampered size must not size a buffer
                raise IntegrityError(
                    f"value file {name} holds {info.st_size} bytes, expected {size}"
                )
            data = os.read(fd, size + 1)
        finally:
            os.close(fd)
        if len(data) != size:
            raise IntegrityError(f"value file {name} holds {len(data)} bytes, expected {size}")
        if checksum is not None and not _checksums.verified.known(info, checksum):
            _checksums.verify(name, info, data, checksum)
        return data

    def open_sized(self, name: str, size: int) -> tuple[BinaryIO, os.stat_result]:
        """Open a value file unbuffered, checking that it holds exactly *size* bytes."""
        handle = self.open(name, buffered=False)
        info = os.fstat(handle.fileno())
        if info.st_size != size:
            handle.close()
            raise IntegrityError(f"value file {name} holds {info.st_size} bytes, expected {size}")
        return handle, info

    @staticmethod
    def read_into(handle: BinaryIO, view: memoryview, offset: int) -> None:
        """Fill *view* from *handle* at *offset* (positional reads: threads may share it)."""
        fd = handle.fileno()
        while view:
            got = os.preadv(fd, [view], offset)
            if got <= 0:
                raise IntegrityError("value file is shorter than its row records")
            view = view[got:]
            offset += got

    # -- removing ---------------------------------------------------------------------------
    def unlink(self, name: str) -> None:
        """Remove a value file; a file already gone is not an error."""
        self.validate(name)
        try:
            with self._subdir(name) as dir_fd:
                os.unlink(_leaf(name), dir_fd=dir_fd)
        except FileNotFoundError:
            pass

    def unlink_any(self, relative: str) -> None:
        """Remove a stray entry found by :meth:`scan`; a link is removed, never followed."""
        parts = relative.split("/")
        if (
            not 2 <= len(parts) <= 3
            or not all(parts)
            or ".." in parts
            or "." in parts
            or not (parts[0] == DATA_DIR or _HEX2.fullmatch(parts[0]))
        ):
            raise IntegrityError(f"refusing to remove {relative!r}")
        try:
            with self._subdir(relative) as dir_fd:
                os.unlink(parts[-1], dir_fd=dir_fd)
        except FileNotFoundError:
            pass

    def scan(self) -> Iterator[str]:
        """Yield every entry where value files live, relative to the directory (for
        ``check``): below ``data/``, and diskcache's ``ab/cd/`` folders."""
        yield from _scan_two_levels(os.path.join(self.root, DATA_DIR), DATA_DIR, any_sub=True)
        try:
            tops = sorted(os.scandir(self.root), key=lambda entry: entry.name)
        except FileNotFoundError:
            return
        for top in tops:
            if _HEX2.fullmatch(top.name) and top.is_dir(follow_symlinks=False):
                yield from _scan_two_levels(top.path, top.name, any_sub=False)


_DATA_PREFIX = DATA_DIR + "/"


def _leaf(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _scan_two_levels(path: str, prefix: str, *, any_sub: bool) -> Iterator[str]:
    """Entries ``prefix/sub/file`` below *path* (``prefix/x`` for what is not a folder)."""
    try:
        subdirs = sorted(os.scandir(path), key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return
    for sub in subdirs:
        if not sub.is_dir(follow_symlinks=False) or not (any_sub or _HEX2.fullmatch(sub.name)):
            yield f"{prefix}/{sub.name}"
            continue
        for entry in sorted(os.scandir(sub.path), key=lambda entry: entry.name):
            yield f"{prefix}/{sub.name}/{entry.name}"
