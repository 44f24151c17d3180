"""Inspection mode: list a cache's keys and metadata without its secret, loading nothing.

A cache opened with the wrong secret refuses to open (see :mod:`._fingerprint`), and a
reader without any secret should still be able to see what a cache holds: how many items,
under which keys, how large, when they expire. :func:`inspect_cache` reads the database
read-only and never deserializes a value or a serialized key, so it needs no secret and
cannot run code planted in the directory. Keys stored as themselves or in the canonical
encoding are shown as they are; serialized (pickled) keys are shown as :class:`OpaqueKey`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import Any

from .._values._keys import decode_canonical
from .._values._modes import (
    FLAG_FILE,
    FLAG_SIGNED,
    FLAG_ZSTD,
    KIND_BYTES,
    KIND_CUSTOM,
    KIND_JSON,
    KIND_MASK,
    KIND_NATIVE,
    KIND_PICKLE,
    KIND_TEXT,
)
from . import _sql
from ._fingerprint import stored_fingerprint
from ._schema import open_database
from ._settings import Settings
from ._store import Store

_KINDS = {
    KIND_NATIVE: "native",
    KIND_BYTES: "bytes",
    KIND_TEXT: "text",
    KIND_PICKLE: "pickle",
    KIND_JSON: "json",
    KIND_CUSTOM: "custom",
}
_CHUNK = 1000


@dataclasses.dataclass(frozen=True)
class OpaqueKey:
    """A serialized key, which only the secret may load: shown by its size alone."""

    nbytes: int

    def __repr__(self) -> str:
        return f"<serialized key, {self.nbytes} bytes>"


@dataclasses.dataclass(frozen=True)
class EntryInfo:
    """What inspection shows of one entry: its key and metadata, never its value."""

    namespace: str
    key: Any
    store_time: float
    expire_time: float | None
    access_time: float
    access_count: int
    tag: Any
    #: How the value is encoded: native, bytes, text, pickle, json or custom.
    kind: str
    #: Bytes the value takes in the database or in its value file.
    stored_bytes: int
    #: Length of the decoded payload (0 for native values).
    payload_bytes: int
    in_file: bool
    compressed: bool
    signed: bool


def _text(data: Any) -> str:
    return bytes(data).decode("utf-8", "backslashreplace")


def _key(kind: str, data: Any, raw: int) -> Any:
    if kind == "text":
        return _text(data)
    if raw:
        return bytes(data) if kind == "blob" else data
    data = bytes(data)
    if data[:2] in (b"\xffS", b"\xffP"):
        return OpaqueKey(len(data))
    try:
        return decode_canonical(data[1:])
    except ValueError:
        return OpaqueKey(len(data))


def namespace_table(store: Store) -> dict[str, tuple[int, int]]:
    """Item count and value-file bytes of every namespace, by name (``''``: the plain cache)."""
    rows = store.run(_sql.INSPECT_NAMESPACES, retry=True)
    return {str(row[1]): (int(row[2]), int(row[3])) for row in rows}


class CacheInspection:
    """A read-only view of a cache directory's keys and metadata; see :func:`inspect_cache`."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        path = os.path.abspath(os.fspath(directory))
        if not os.path.isdir(path):
            raise FileNotFoundError(f"cache directory does not exist: {path!r}")
        self.directory = path
        self._store = Store(path, timeout=60, pragmas={}, read_only=True)
        try:
            self.settings: Settings = open_database(self._store, {})
            #: The recorded fingerprint of the cache's secret (``None``: none recorded).
            self.fingerprint = stored_fingerprint(self._store)
            rows = self._store.run(_sql.INSPECT_NAMESPACES, retry=True)
        except BaseException:
            self._store.close()
            raise
        self._names = {int(row[0]): str(row[1]) for row in rows}
        #: Item count and value-file bytes per namespace name (``''``: the plain cache).
        self.namespaces = {str(row[1]): (int(row[2]), int(row[3])) for row in rows}

    def entries(self, namespace: str | None = None) -> Iterator[EntryInfo]:
        """Yield every entry in insertion order, of one namespace or (``None``) of all."""
        if namespace is not None:
            ids = [ns for ns, name in self._names.items() if name == namespace]
            if not ids:
                return
        last = 0
        while True:
            if namespace is None:
                rows = self._store.scan(_sql.INSPECT_CHUNK, (last, _CHUNK), retry=True)
            else:
                rows = self._store.scan(_sql.INSPECT_CHUNK_NS, (ids[0], last, _CHUNK), retry=True)
            if not rows:
                return
            last = rows[-1][0]
            for row in rows:
                yield self._entry(row)

    def _entry(self, row: Any) -> EntryInfo:
        (_, ns, key_type, key, raw, stored, expire, accessed, count,
         tag_type, tag, mode, size, vsize, inline) = row  # fmt: skip
        if tag_type == "text":
            tag = _text(tag)
        elif tag_type == "blob":
            tag = bytes(tag)
        in_file = bool(mode & FLAG_FILE)
        return EntryInfo(
            namespace=self._names.get(ns, f"#{ns}"),
            key=_key(key_type, key, raw),
            store_time=stored,
            expire_time=expire,
            access_time=accessed,
            access_count=count,
            tag=tag,
            kind=_KINDS.get(mode & KIND_MASK, f"unknown ({mode & KIND_MASK})"),
            stored_bytes=int(size if in_file else inline or 0),
            payload_bytes=int(vsize),
            in_file=in_file,
            compressed=bool(mode & FLAG_ZSTD),
            signed=bool(mode & FLAG_SIGNED),
        )

    def close(self) -> None:
        """Close the database connection."""
        self._store.close()

    def __enter__(self) -> CacheInspection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def inspect_cache(directory: str | os.PathLike[str]) -> CacheInspection:
    """Open *directory* for inspection: keys and metadata, read-only, without the secret.

    >>> import tempfile, diskstore
    >>> directory = tempfile.mkdtemp()
    >>> with diskstore.Cache(directory) as cache:
    ...     cache.set(("user", 1), {"name": "Ada"}, tag="users")
    True
    >>> with diskstore.inspect_cache(directory) as inspection:
    ...     [(e.key, e.kind, e.tag) for e in inspection.entries()]
    [(('user', 1), 'pickle', 'users')]
    """
    return CacheInspection(directory)
