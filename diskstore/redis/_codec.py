"""How keys, values and tags become Redis keys and hash fields: the on-disk format, reused.

A namespace's keys all start with ``diskstore:<namespace>:`` (``%`` and ``:`` in the name
written as ``%25`` and ``%3A``, so a namespace's prefix never starts another's). No part of
that prefix is a hash tag: on a Redis Cluster every item lands in the slot its own key
hashes to, so a namespace spreads over every master. The one exception is a queue: its
index and the items it generates carry the queue's hash tag, ``{q<crc32 of its name>}``,
so that a push or a pull stays one script on one slot. Every key shaped like a queue's
(an ``int`` within ``QUEUE_RANGE``, or ``"<prefix>-<15 digits>"`` with a number in it) is
stored there, since a queue may generate it, whether or not a queue did.

Every item is a Redis hash at ``<prefix>i:<encoded key>`` with the fields

- ``m``: how ``v`` is encoded: ``i``/``f``/``s``/``b`` for a native int, float, str or
  bytes, else the decimal ``mode`` that :class:`~diskstore.Disk` records in a row;
- ``v``: the value, or the payload exactly as the SQLite cache stores it inline (pickled by
  cloudpickle, compressed by zstandard, HMAC-signed, the header carrying its length and tag);
- ``e``: the absolute expiry time (``repr`` of a float) when there is one;
- ``t``: the tag, canonically encoded, when there is one.

The signature of a payload covers the full Redis key, so a payload copied to another key,
or a pickle planted by anyone without the secret, fails verification and reads as a miss
with a :class:`~diskstore.CorruptionWarning`; it is never unpickled.

Keys use the same split as rows: ``str``, ``bytes``, 64-bit ``int`` and ``float`` are written
as themselves after a one-byte type mark; anything else takes ``Disk.put``'s canonical
encoding (or its signed serialization) after the mark ``x``.
"""

from __future__ import annotations

import zlib
from typing import Any

from .._disk import Disk
from .._exceptions import IntegrityError
from .._keys import decode_canonical, encode_canonical
from .._modes import KIND_NATIVE

__all__ = ["Codec", "Fields", "namespace_prefix"]

#: Field names of an item hash.
MODE, VALUE, EXPIRE, TAG = b"m", b"v", b"e", b"t"
_NATIVE_MARKS = {int: b"i", float: b"f", str: b"s", bytes: b"b"}

#: ``(mode, value, expire, tag)`` as read back with HMGET.
Fields = list[Any]

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
    def encode(self, rkey: bytes, value: Any, read: bool) -> list[Any]:
        """``[m, v]``: the mode and value fields of *value* stored under the Redis key *rkey*."""
        if read:
            value = value.read()
        stored = self.disk.store_row(value, False, ns=0, db_key=rkey, raw=True)
        if stored.mode == KIND_NATIVE:
            native = stored.value
            mark = _NATIVE_MARKS[type(native)]
            if mark == b"f":
                native = repr(native)
            elif mark == b"s":
                native = native.encode("utf-8", "surrogatepass")
            return [mark, native]
        return [str(stored.mode).encode(), stored.value]

    def value(self, rkey: bytes, mode: bytes, data: bytes) -> Any:
        """Decode a stored value; ``IntegrityError`` when it fails verification."""
        if mode == b"b":
            return data
        if mode == b"s":
            return data.decode("utf-8", "surrogatepass")
        try:
            if mode == b"i":
                return int(data)
            if mode == b"f":
                return float(data)
            number = int(mode)
        except ValueError as exc:
            raise IntegrityError(f"a stored value has an unknown encoding {mode!r}") from exc
        return self.disk.fetch_row(number, None, data, False, ns=0, db_key=rkey, raw=True)

    def verify(self, rkey: bytes, mode: bytes, data: bytes) -> None:
        """Check a payload's signature and length without deserializing it."""
        if mode in (b"b", b"s", b"i", b"f"):
            self.value(rkey, mode, data)
            return
        try:
            number = int(mode)
        except ValueError as exc:
            raise IntegrityError(f"a stored value has an unknown encoding {mode!r}") from exc
        if number:
            self.disk.payload(number, None, data, 0, rkey, True, None, 0, 0)


def encode_tag(tag: Any) -> bytes:
    """The canonical bytes of a tag (str, bytes, int or float)."""
    return encode_canonical(tag)


def decode_tag(data: bytes | None) -> Any:
    """Inverse of :func:`encode_tag`; ``None`` stays ``None``."""
    return None if data is None else decode_canonical(data)


def decode_expire(data: bytes | None) -> float | None:
    """The stored absolute expiry time, or ``None``."""
    return None if data is None else float(data)
