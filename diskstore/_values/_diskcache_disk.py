"""diskcache's ``Disk`` protocol, for subclasses written against diskcache.

Programs extend diskcache by subclassing ``Disk`` and overriding ``store``, ``fetch``,
``filename`` or ``remove`` with diskcache's signatures, usually calling the base class to do
the rest::

    class CloudpickleDisk(Disk):
        def store(self, value, read, key=UNKNOWN):
            if not read:
                value = cloudpickle.dumps(value)
            return super().store(value, read, key=key)

        def fetch(self, mode, filename, value, read):
            data = super().fetch(mode, filename, value, read)
            return data if read else cloudpickle.loads(data)

:class:`DiskcacheHooks` gives :class:`~diskstore.Disk` those four methods with diskcache's
signatures and results (``store`` returns ``(size, mode, filename, db_value)`` with the
``MODE_*`` values, files go where ``filename()`` says). A subclass that overrides any of them
is served through them, on every read and write, as diskcache would call them.

What such a subclass gives up, and what is still protected: its ``store`` decides the bytes,
so diskstore neither compresses them nor keeps them in its own file layout. It does sign
them: each row's tag covers the namespace, key, mode, file name, the ``db_value`` and the
whole file, and is verified before the subclass's ``fetch`` sees anything, so a value
planted in the database or a value file is a miss (with a warning), never handed to an
unpickler. Verifying a file costs one extra read of it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO, ClassVar

from .._common._constants import UNKNOWN
from .._common._exceptions import IntegrityError
from .._fs._files import CHUNK
from ._keys import NotCanonical, decode_canonical, encode_canonical, signature_key
from ._modes import (
    DISKCACHE_MODE_SHIFT,
    FLAG_FILE,
    FLAG_SIGNED,
    KIND_DISKCACHE,
    MODE_BINARY,
    MODE_PICKLE,
    MODE_RAW,
    MODE_TEXT,
)
from ._signing import TAG_SIZE, Signer

#: Marks a file name a diskcache-style hook chose (relative to the cache directory), so it
#: is never mistaken for one of diskstore's own value files.
FILE_MARK = "@"
_HEAD = struct.Struct(">cqI")
_TAIL = struct.Struct(">qq")
_DB_FILES = ("cache.db", "cache.db-wal", "cache.db-shm", "cache.db-changes", "cache.db-reserve")

#: The methods whose override selects diskcache's protocol.
HOOKS = ("store", "fetch", "filename", "remove")


def diskcache_mode(mode: int) -> int:
    """The diskcache ``MODE_*`` recorded in a row's *mode*."""
    return (mode >> DISKCACHE_MODE_SHIFT) & 7


class DiskcacheHooks:
    """diskcache's ``Disk`` methods, with diskcache's signatures and results."""

    _directory: str
    min_file_size: int
    signer: Signer
    signed: ClassVar[bool]

    def dumps(self, obj: Any) -> bytes:
        raise NotImplementedError

    def loads(self, data: bytes) -> Any:
        raise NotImplementedError

    # -- the four hooks, as diskcache defines them --------------------------------------
    def store(self, value: Any, read: bool, key: Any = UNKNOWN) -> tuple[int, int, str | None, Any]:
        """Return ``(size, mode, filename, db_value)`` for *value*, writing a file if large.

        Small ``str``/``bytes``, 64-bit ``int`` and ``float`` values are stored as
        themselves (``MODE_RAW``); large bytes and streams (``read=True``) go to a file as
        they are (``MODE_BINARY``), large text to a UTF-8 file (``MODE_TEXT``), and anything
        else is serialized (``MODE_PICKLE``), in the row or, when large, in a file.
        """
        kind = type(value)
        if read:
            name, path = self.filename(key, value)
            return self._write_legacy(path, _stream_chunks(value)), MODE_BINARY, name, None
        if (kind is int and -(2**63) <= value < 2**63) or kind is float:
            return 0, MODE_RAW, None, value
        if kind is str or kind is bytes:
            if len(value) < self.min_file_size:
                return 0, MODE_RAW, None, value
            name, path = self.filename(key, value)
            if kind is bytes:
                return self._write_legacy(path, [value]), MODE_BINARY, name, None
            size = self._write_legacy(path, [value.encode("utf-8", "surrogatepass")])
            return size, MODE_TEXT, name, None
        data = self.dumps(value)
        if len(data) < self.min_file_size:
            return 0, MODE_PICKLE, None, data
        name, path = self.filename(key, value)
        return self._write_legacy(path, [data]), MODE_PICKLE, name, None

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        """Turn what :meth:`store` returned back into the value (a file when *read*)."""
        if mode == MODE_RAW:
            return bytes(value) if isinstance(value, (memoryview, bytearray)) else value
        if mode in (MODE_BINARY, MODE_TEXT, MODE_PICKLE) and filename is not None:
            handle = self._open_legacy(filename)
            if mode == MODE_BINARY and read:
                return handle
            with handle:
                data = handle.read()
            if mode == MODE_BINARY:
                return data
            if mode == MODE_TEXT:
                return data.decode("utf-8", "surrogatepass")
            return self.loads(data)
        if mode == MODE_PICKLE and value is not None:
            return self.loads(bytes(value))
        raise IntegrityError(f"cannot fetch a value of mode {mode!r}")

    def filename(self, key: Any = UNKNOWN, value: Any = UNKNOWN) -> tuple[str, str]:
        """Return ``(filename, full_path)`` for a new value file: a random name, two levels
        of subdirectories deep, relative to the cache directory."""
        name = os.urandom(16).hex()
        relative = os.path.join(name[:2], name[2:4], name[4:] + ".val")
        return relative, os.path.join(self._directory, relative)

    def remove(self, file_path: str) -> None:
        """Remove the value file *file_path* (relative to the cache directory) and any
        directories it leaves empty; a file already gone is not an error."""
        path = self._legacy_path(file_path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        top = os.path.realpath(self._directory)
        parent = os.path.dirname(path)
        while os.path.realpath(parent) != top and parent.startswith(top):
            try:
                os.rmdir(parent)
            except OSError:
                return
            parent = os.path.dirname(parent)

    # -- files the hooks name -----------------------------------------------------------
    def _legacy_path(self, relative: str) -> str:
        """The full path of *relative*, refused unless it stays inside the cache directory."""
        top = os.path.realpath(self._directory)
        if not isinstance(relative, str) or not relative or os.path.isabs(relative):
            raise IntegrityError(f"refusing value file name {relative!r}")
        parts = relative.replace(os.sep, "/").split("/")
        path = os.path.realpath(os.path.join(top, relative))
        if ".." in parts or not path.startswith(top + os.sep) or relative in _DB_FILES:
            raise IntegrityError(f"refusing value file name {relative!r}")
        return path

    def _write_legacy(self, full_path: str, chunks: Iterable[bytes | memoryview]) -> int:
        relative = os.path.relpath(full_path, self._directory)
        path = self._legacy_path(relative)
        os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        fd = os.open(path, flags, 0o600)
        size = 0
        try:
            with open(fd, "wb", closefd=True) as writer:
                for chunk in chunks:
                    writer.write(chunk)
                    size += len(chunk)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
        return size

    def _open_legacy(self, relative: str) -> BinaryIO:
        path = self._legacy_path(relative)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError as exc:
            raise IntegrityError(f"value file {relative} is missing") from exc
        except OSError as exc:
            raise IntegrityError(f"value file {relative} cannot be opened: {exc}") from exc
        handle = os.fdopen(fd, "rb")
        setattr(handle.raw, "name", path)  # noqa: B010 (typed read-only)
        return handle

    # -- rows --------------------------------------------------------------------------
    @property
    def _signs_hooks(self) -> bool:
        return self.signer.enabled

    def _hook_tag(
        self, ns: int, db_key: Any, raw: bool, mode: int, name: str | None, body: bytes,
        size: int, file_chunks: Iterable[bytes],
    ) -> bytes:  # fmt: skip
        digest = self.signer.hasher(
            _HEAD.pack(b"d", ns, mode) + signature_key(db_key, raw) + (name or "").encode()
        )
        digest.update(_TAIL.pack(len(body), size))
        digest.update(body)
        for chunk in file_chunks:
            digest.update(chunk)
        return digest.digest()

    def store_hooked(
        self, value: Any, read: bool, key: Any, ns: int, db_key: Any, raw: bool
    ) -> tuple[int, Any, str | None, int, bytes | None]:
        """Store through the (overridden) hooks; return ``(mode, value, filename, size, sig)``.

        The row value is the canonical encoding of ``db_value`` (after its tag when signed),
        so reading it back runs no code.
        """
        size, dc_mode, name, db_value = self.store(value, read, key=key)
        if dc_mode not in (MODE_RAW, MODE_BINARY, MODE_TEXT, MODE_PICKLE) or not isinstance(
            size, int
        ):
            raise TypeError(
                f"{type(self).__name__}.store() must return (size, mode, filename, value) "
                f"with a diskcache MODE_*, got {(size, dc_mode, name, type(db_value).__name__)}"
            )
        if isinstance(db_value, (memoryview, bytearray)):
            db_value = bytes(db_value)
        try:
            body = encode_canonical(db_value)
        except NotCanonical as exc:
            raise TypeError(
                f"{type(self).__name__}.store() returned a db_value of type "
                f"{type(db_value).__name__}; it must be None, int, float, str or bytes"
            ) from exc
        mode = KIND_DISKCACHE | (dc_mode << DISKCACHE_MODE_SHIFT)
        stored_name = None
        if name is not None:
            mode |= FLAG_FILE
            stored_name = FILE_MARK + name
        sig = None
        if self._signs_hooks:
            mode |= FLAG_SIGNED
            chunks = self._file_chunks(name) if name is not None else ()
            tag = self._hook_tag(ns, db_key, raw, mode, name, body, size, chunks)
            if name is None:
                body = tag + body
            else:
                sig = tag
        return mode, body, stored_name, size, sig

    def fetch_hooked(
        self, mode: int, filename: str | None, value: Any, read: bool, ns: int, db_key: Any,
        raw: bool, sig: bytes | None, size: int,
    ) -> Any:  # fmt: skip
        """Verify a row written by :meth:`store_hooked`, then hand it to ``fetch``."""
        body = bytes(value) if value is not None else b""
        name = filename[len(FILE_MARK) :] if filename else None
        if self._signs_hooks:
            if not mode & FLAG_SIGNED:
                raise IntegrityError("refusing to load an unsigned entry")
            if name is None:
                sig, body = body[:TAG_SIZE], body[TAG_SIZE:]
            chunks = self._file_chunks(name) if name is not None else ()
            tag = self._hook_tag(ns, db_key, raw, mode, name, body, size, chunks)
            import hmac  # loaded by the signer already

            if sig is None or not hmac.compare_digest(tag, sig):
                raise IntegrityError("entry failed signature verification")
        try:
            db_value = decode_canonical(body)
        except ValueError as exc:
            raise IntegrityError(f"entry is malformed: {exc}") from exc
        try:
            return self.fetch(diskcache_mode(mode), name, db_value, read)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                raise IntegrityError(f"value file {name} is missing") from exc
            raise

    def _file_chunks(self, name: str) -> Iterator[bytes]:
        with self._open_legacy(name) as handle:
            yield from iter(lambda: handle.read(CHUNK), b"")

    def remove_hooked(self, stored_name: str) -> None:
        """Remove a file named in a hooked row (its name carries :data:`FILE_MARK`)."""
        self.remove(stored_name[len(FILE_MARK) :])


def _stream_chunks(reader: Any) -> Iterator[bytes]:
    read = getattr(reader, "read", None)
    if not callable(read):
        raise TypeError(
            f"value must be a readable binary file when read=True, not {type(reader).__name__}"
        )
    while True:
        chunk = read(CHUNK)
        if not chunk:
            return
        if not isinstance(chunk, (bytes, bytearray)):
            raise TypeError(
                f"value.read() must return bytes when read=True, not {type(chunk).__name__}"
            )
        yield bytes(chunk)


__all__ = ["FILE_MARK", "HOOKS", "DiskcacheHooks", "diskcache_mode"]
