"""How a value sits in its row: the inline payload header, the signed message, and text.

An encoded payload kept in the ``value`` column starts with its decoded length (and its
tag, when signed), so a read needs no column beyond ``mode`` and ``value``. A tag covers the
row's namespace, key and mode before the payload and the decoded length after it, so a
payload moved to another row, or to another encoding, fails verification.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, NamedTuple

from .._common._exceptions import IntegrityError
from ._keys import INT64_MAX
from ._modes import FLAG_PINNED, FLAG_SIGNED, KIND_TEXT
from ._signing import TAG_SIZE

if TYPE_CHECKING:
    from .._fs._files import PendingFile

_SIG_PREFIX = struct.Struct(">cqI")
_SIG_MODE = struct.Struct(">B")
_SIG_SUFFIX = struct.Struct(">q")
# An inline encoded payload starts with its decoded length (and its tag when signed), so a
# read needs no column beyond ``mode`` and ``value``.
INLINE_HEAD = struct.Struct(">Q")


class Stored(NamedTuple):
    """A value as it goes into a row: the columns ``Disk.store`` decides."""

    mode: int
    value: Any
    filename: str | None
    size: int  # bytes in the value file (0 when inline)
    vsize: int  # length of the decoded payload
    sig: bytes | None
    pending: PendingFile | None = None  # a value file to publish inside the transaction


def signature_prefix(ns: int, sigkey: bytes, mode: int) -> bytes:
    """What a tag covers before the payload: the row (namespace, key) and its encoding.

    The decoded length follows the payload (:func:`signature_suffix`), so a file streamed
    from a reader of unknown length is signed exactly like an inline payload.
    """
    mode &= ~FLAG_PINNED
    return _SIG_PREFIX.pack(b"v", ns, len(sigkey)) + sigkey + _SIG_MODE.pack(mode)


def signature_suffix(vsize: int) -> bytes:
    return _SIG_SUFFIX.pack(vsize)


def sqlite_text(text: str) -> bool:
    """Whether SQLite can hold *text* as TEXT: not if it has lone surrogates (not UTF-8)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def text_row(text: str) -> Stored:
    """*text* that SQLite cannot hold as TEXT, as an inline text payload (which can)."""
    data = text.encode("utf-8", "surrogatepass")
    return Stored(KIND_TEXT, INLINE_HEAD.pack(len(data)) + data, None, 0, len(data), None)


def split_inline(mode: int, value: Any) -> tuple[bytes, int, bytes]:
    """An inline ``value`` column as (payload, decoded length, tag; empty when unsigned)."""
    if value is not None and type(value) is not bytes:
        raise IntegrityError(f"an encoded payload is stored as {type(value).__name__}")
    data = value if value is not None else b""
    start = INLINE_HEAD.size + (TAG_SIZE if mode & FLAG_SIGNED else 0)
    if len(data) < start:
        raise IntegrityError("inline payload is shorter than its header")
    (vsize,) = INLINE_HEAD.unpack_from(data)
    if vsize > INT64_MAX:  # no payload is that long; it would not even sign
        raise IntegrityError(f"inline payload declares an impossible length {vsize}")
    return data[start:], vsize, data[INLINE_HEAD.size : start]


class VerifiedPayloads:
    """Small inline payloads this process has signed or verified, by their tag.

    A read that finds a remembered tag over the very same row (namespace, key, mode,
    decoded length) and the very same payload bytes is reading a payload already known to
    be authentic, and skips the HMAC: about 3 us, a quarter of a small ``get``. Anything
    less than an exact match is verified in full, so a changed row never passes unchecked.
    At most ``ITEMS`` payloads of at most ``BYTES`` bytes each are kept (a few MiB); when
    full, it starts over.
    """

    ITEMS = 4096
    BYTES = 4096

    __slots__ = ("_known",)

    def __init__(self) -> None:
        self._known: dict[bytes, tuple[Any, ...]] = {}

    def known(self, tag: Any, row: tuple[Any, ...]) -> bool:
        """Whether *tag* was verified over exactly *row* (whose last item is the payload)."""
        return type(tag) is bytes and self._known.get(tag) == row

    def add(self, tag: bytes, row: tuple[Any, ...]) -> None:
        """Remember that *tag* is authentic for *row*, if its payload is small."""
        if len(row[-1]) > self.BYTES:
            return
        known = self._known
        if len(known) >= self.ITEMS:
            known.clear()
        known[tag] = row


def file_columns(packed: Any) -> tuple[str, int, int, bytes | None] | None:
    """A value file's ``(filename, size, vsize, sig)`` from what a point read selects in
    place of its ``value`` (``_sql.FILE_COLUMNS``); None if it is not that."""
    if type(packed) is not str or packed[:1] != "\0":
        return None
    parts = packed[1:].split(" ")
    if len(parts) != 4:
        return None
    name, size, vsize, sig = parts
    if not (size.isdigit() and vsize.isdigit()):
        return None  # not integers as SQLite prints them: read the row whole
    try:
        return name, int(size), int(vsize), bytes.fromhex(sig) if sig else None
    except ValueError:
        return None
