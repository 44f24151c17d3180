"""How keys, values and tags become Redis keys and strings: the on-disk format, reused.

A namespace's keys all start with ``diskstore:<namespace>:`` (``%`` and ``:`` in the name
written as ``%25`` and ``%3A``, so a namespace's prefix never starts another's). No part of
that prefix is a hash tag: on a Redis Cluster every item lands in the slot its own key
hashes to, so a namespace spreads over every master. The one exception is a queue: its
index and the items it generates carry the queue's hash tag, ``{q<crc32 of its name>}``,
so that a push or a pull stays one script on one slot. Every key shaped like a queue's
(an ``int`` within ``QUEUE_RANGE``, or ``"<prefix>-<15 digits>"`` with a number in it) is
stored there, since a queue may generate it, whether or not a queue did.

Every item is one Redis string at ``<prefix>i:<encoded key>``, so a plain read is one
``GET`` and a plain write one ``SET``. The string starts with a kind byte:

- ``b``, ``s``, ``f``: a native bytes, str (UTF-8) or float (``repr``), which follows;
- a digit or ``-``: the whole string is a native 64-bit int, in decimal (so ``INCRBY``
  works on it as it stands);
- ``d``: two bytes of the ``mode`` that :class:`~diskstore.Disk` records in a row, then the
  payload exactly as the SQLite cache stores it inline (pickled by cloudpickle, compressed
  by zstandard, HMAC-signed, its header carrying its length and tag);
- the same letters in upper case (``B S F I D``) when the item has extras: after the kind
  (and mode), one byte and two big-endian 32-bit lengths, then the absolute expiry time
  (``repr`` of a float), the tag (canonically encoded) and the memoized function that
  stored it, each empty when absent, then the value.

The expiry itself is the string's Redis TTL (``PXAT``); the header keeps the exact time
that ``get(..., expire_time=True)`` returns. The Lua scripts read the same layout
(``_scripts.ITEM_LIB``).

The signature of a payload covers the full Redis key, so a payload copied to another key,
or a pickle planted by anyone without the secret, fails verification and reads as a miss
with a :class:`~diskstore.CorruptionWarning`; it is never unpickled.

Keys use the same split as rows: ``str``, ``bytes``, 64-bit ``int`` and ``float`` are written
as themselves after a one-byte type mark; anything else takes ``Disk.put``'s canonical
encoding (or its signed serialization) after the mark ``x``.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

from .._common._exceptions import IntegrityError
from .._values._disk import Disk
from .._values._keys import decode_canonical, encode_canonical
from .._values._modes import KIND_NATIVE

__all__ = ["Codec", "Extras", "namespace_prefix"]

_NATIVE_MARKS = {int: b"i", float: b"f", str: b"s", bytes: b"b"}
#: After an upper-case kind (and a ``D``'s mode): the lengths of expiry, tag and function.
_EXTRAS = struct.Struct(">BII")
_B, _S, _D, _F, _I, _MINUS = b"bsdfi-"
_UPPER = ord("a") - ord("A")

#: ``(expire_time, encoded tag, function name)`` of a stored item, each None when absent.
Extras = tuple[float | None, bytes | None, bytes | None]
_NO_EXTRAS: Extras = (None, None, None)

#: The numbers a queue's generated keys may take (a queue starts at ``QUEUE_START``, the
#: middle, and grows by one per push at either end).
QUEUE_RANGE = (10**14, 9 * 10**14)
_QUEUE_TAG_LENGTH = len(b"{q00000000}")


def namespace_prefix(namespace: str) -> bytes:
    """``diskstore:<namespace>:``, the name escaped so that no prefix starts another's."""
    name = namespace.replace("%", "%25").replace(":", "%3A")
    return b"diskstore:" + name.encode("utf-8", "surrogatepass") + b":"


def queue_tag(name: bytes) -> bytes:
    """The hash tag shared by a queue's index and items (``name``: ``n`` or ``s<prefix>``)."""
    return b"{q%08x}" % zlib.crc32(name)


def queue_of(key: Any) -> bytes | None:
    """The queue name (as :func:`queue_tag` takes it) whose slot holds ``key``, or None."""
    low, high = QUEUE_RANGE
    if type(key) is int:
        return b"n" if low <= key < high else None
    if type(key) is str and len(key) >= 16 and key[-16] == "-":
        digits = key[-15:]
        if digits.isascii() and digits.isdigit() and low <= int(digits) < high:
            return b"s" + key[:-16].encode("utf-8", "surrogatepass")
    return None


class Codec:
    """Encodes for one namespace: its key prefix and the serializer."""

    __slots__ = ("disk", "item_prefix", "prefix")

    def __init__(self, prefix: bytes, disk: Disk) -> None:
        self.prefix = prefix
        self.item_prefix = prefix + b"i:"
        self.disk = disk

    # -- keys ------------------------------------------------------------------------------
    def item_key(self, key: Any) -> bytes:
        """The Redis key of the item stored under *key*."""
        if type(key) is str:
            if len(key) >= 16 and key[-16] == "-":
                queue = queue_of(key)
                if queue is not None:
                    body = b"s" + key.encode("utf-8", "surrogatepass")
                    return self.item_prefix + queue_tag(queue) + body
            return self.item_prefix + b"s" + key.encode("utf-8", "surrogatepass")
        if type(key) is bytes:
            return self.item_prefix + b"b" + key
        db_key: Any
        db_key, raw = self.disk.put(key)
        if not raw:
            return self.item_prefix + b"x" + bytes(db_key)
        if type(db_key) is int:
            if queue_of(db_key) is not None:
                return self.item_prefix + queue_tag(b"n") + b"i" + str(db_key).encode()
            return self.item_prefix + b"i" + str(db_key).encode()
        return self.item_prefix + b"f" + repr(float(db_key)).encode()

    def queue_index(self, name: bytes) -> bytes:
        """The sorted set indexing the queue ``name`` (``n`` or ``s<prefix>``)."""
        return self.prefix + b"q:" + queue_tag(name) + name

    def user_key(self, item_key: bytes) -> Any:
        """Inverse of :meth:`item_key`; ``IntegrityError`` for a key it did not write."""
        body = item_key[len(self.item_prefix) :]
        if body[:2] == b"{q":
            body = body[_QUEUE_TAG_LENGTH:]
        mark, rest = body[:1], body[1:]
        try:
            if mark == b"s":
                return rest.decode("utf-8", "surrogatepass")
            if mark == b"b":
                return rest
            if mark == b"i":
                return int(rest)
            if mark == b"f":
                return float(rest)
        except ValueError as exc:
            raise IntegrityError(f"a stored key is malformed: {item_key!r}") from exc
        if mark == b"x":
            return self.disk.get(rest, False)
        raise IntegrityError(f"a stored key has an unknown encoding: {item_key!r}")

    def tag_key(self, tag: bytes) -> bytes:
        """The Redis set listing the items stored with the encoded *tag*."""
        return self.prefix + b"t:" + tag

    # -- values ----------------------------------------------------------------------------
    def encode(
        self, rkey: bytes, value: Any, read: bool, expire_time: float | None = None,
        tag: bytes | None = None, function: bytes | None = None,
    ) -> bytes:  # fmt: skip
        """The string stored under the Redis key *rkey* for *value* and its extras."""
        if read:
            value = value.read()
        stored = self.disk.store_row(value, False, ns=0, db_key=rkey, raw=True)
        extras = expire_time is not None or tag is not None or function is not None
        if stored.mode == KIND_NATIVE:
            native = stored.value
            kind = type(native)
            if kind is bytes:
                head, data = b"b", native
            elif kind is str:
                head, data = b"s", native.encode("utf-8", "surrogatepass")
            elif kind is int:
                if not extras:
                    return str(native).encode()
                head, data = b"i", str(native).encode()
            else:
                head, data = b"f", repr(native).encode()
        else:
            head, data = b"d" + stored.mode.to_bytes(2, "big"), stored.value
        if not extras:
            return bytes(head + data)
        expire = b"" if expire_time is None else repr(expire_time).encode()
        tag, function = tag or b"", function or b""
        return b"".join(
            (
                head[:1].upper(),
                head[1:],
                _EXTRAS.pack(len(expire), len(tag), len(function)),
                expire,
                tag,
                function,
                data,
            )
        )

    def value(self, rkey: bytes, blob: bytes) -> Any:
        """Decode a stored item's value; ``IntegrityError`` when it fails verification."""
        kind = blob[0] if blob else 0
        if kind == _B:
            return blob[1:]
        if kind == _S:
            return blob[1:].decode("utf-8", "surrogatepass")
        if kind == _D:
            mode = int.from_bytes(blob[1:3], "big")
            return self.disk.fetch_row(mode, None, blob[3:], False, ns=0, db_key=rkey, raw=True)
        try:
            if 48 <= kind <= 57 or kind == _MINUS:
                return int(blob)
            if kind == _F:
                return float(blob[1:])
        except ValueError as exc:
            raise IntegrityError(f"a stored value is malformed: {blob[:40]!r}") from exc
        if 65 <= kind <= 90:
            # The extras are not needed for the value: skip them without decoding.
            start = 3 if kind == _D - _UPPER else 1
            try:
                elen, tlen, flen = _EXTRAS.unpack_from(blob, start)
            except struct.error as exc:
                raise IntegrityError(f"a stored item's header is malformed: {blob[:40]!r}") from exc
            head = bytes((kind + _UPPER,)) + blob[1:start]
            return self._decode(rkey, head, blob[start + _EXTRAS.size + elen + tlen + flen :])
        raise IntegrityError(f"a stored value has an unknown encoding {blob[:1]!r}")

    def _decode(self, rkey: bytes, head: bytes, data: bytes) -> Any:
        """The value of an item with extras: ``head`` is its kind (and mode) in lower case."""
        kind = head[0]
        if kind == _B:
            return data
        if kind == _S:
            return data.decode("utf-8", "surrogatepass")
        if kind == _D:
            mode = int.from_bytes(head[1:3], "big")
            return self.disk.fetch_row(mode, None, data, False, ns=0, db_key=rkey, raw=True)
        try:
            return int(data) if kind == _I else float(data)
        except ValueError as exc:
            raise IntegrityError(f"a stored value is malformed: {data[:40]!r}") from exc

    @staticmethod
    def _split(blob: bytes) -> tuple[bytes, Extras, bytes]:
        """``(kind and mode in lower case, extras, value bytes)`` of an upper-case item."""
        start = 3 if blob[0] == _D - _UPPER else 1
        try:
            elen, tlen, flen = _EXTRAS.unpack_from(blob, start)
            at = start + _EXTRAS.size
            expire = float(blob[at : at + elen]) if elen else None
            at += elen
            tag = blob[at : at + tlen] if tlen else None
            at += tlen
            function = blob[at : at + flen] if flen else None
        except (struct.error, ValueError) as exc:
            raise IntegrityError(f"a stored item's header is malformed: {blob[:40]!r}") from exc
        if at + flen > len(blob):
            raise IntegrityError(f"a stored item is truncated: {blob[:40]!r}")
        head = bytes([blob[0] + _UPPER]) + blob[1:start]
        return head, (expire, tag, function), blob[at + flen :]

    def extras(self, blob: bytes) -> Extras:
        """The expiry time, encoded tag and function stored with an item."""
        if blob and 65 <= blob[0] <= 90:
            return self._split(blob)[1]
        return _NO_EXTRAS

    def verify(self, rkey: bytes, blob: bytes) -> None:
        """Check a payload's signature and length without deserializing it."""
        if blob and 65 <= blob[0] <= 90:
            head, _, data = self._split(blob)
        else:
            head, data = blob[:3] if blob[:1] == b"d" else blob[:1], blob[3:]
        if head[:1] == b"d":
            mode = int.from_bytes(head[1:3], "big")
            if mode:
                self.disk.payload(mode, None, data, 0, rkey, True, None, 0, 0)
            return
        self.value(rkey, blob)


def encode_tag(tag: Any) -> bytes:
    """The canonical bytes of a tag (str, bytes, int or float)."""
    return encode_canonical(tag)


def decode_tag(data: bytes | None) -> Any:
    """Inverse of :func:`encode_tag`; ``None`` stays ``None``."""
    return None if data is None else decode_canonical(data)
