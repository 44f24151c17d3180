"""Canonical byte encoding of keys.

Equal keys must find the same row whichever process or Python run built them, so keys that
SQLite cannot store natively are encoded here rather than pickled: pickle output depends on
object identity (memo references) and on set iteration order, which varies with
``PYTHONHASHSEED``. The encoding covers the types keys are usually made of (``None``,
``bool``, ``int``, ``float``, ``str``, ``bytes``, and tuples, lists, frozensets, sets and dicts
of them); it is self-delimiting and decodes without running any code. Anything else is left to
the serializer (see ``Disk.put``).

Each value is a one-byte tag followed by its payload; containers carry a count, and sets and
dicts are written in sorted order of their members' encodings.

``args_to_key`` builds the key diskcache's ``memoize`` stores a call's result under:
``diskstore.core`` exports it to diskcache's programs, and ``memoize`` finds the results a
cache adopted from diskcache with it.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Collection, Mapping
from typing import Any

_LEN = struct.Struct(">I")
_FLOAT = struct.Struct(">d")

#: Deepest container nesting the encoding has; deeper keys go to the serializer, and deeper
#: stored input is malformed (never a crash).
MAX_DEPTH = 100

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

#: Tag of an encoding produced by a serializer rather than by this module.
TAG_SERIALIZED = b"P"


class NotCanonical(TypeError):
    """The key holds a value this module cannot encode canonically."""


def _float_bytes(value: float) -> bytes:
    if value == 0.0:
        value = 0.0  # -0.0 == 0.0, so both must encode alike
    elif math.isnan(value):
        value = math.nan  # one bit pattern for every NaN
    return _FLOAT.pack(value)


def _encode(obj: Any, out: list[bytes], depth: int = 1) -> None:
    if depth > MAX_DEPTH:
        raise NotCanonical(f"key nesting deeper than {MAX_DEPTH}")
    kind = type(obj)
    if kind is str:
        data = obj.encode("utf-8", "surrogatepass")
        out.append(b"s" + _LEN.pack(len(data)) + data)
    elif kind is int:
        data = str(obj).encode("ascii")
        out.append(b"i" + _LEN.pack(len(data)) + data)
    elif kind is bytes:
        out.append(b"b" + _LEN.pack(len(obj)) + obj)
    elif kind is tuple or kind is list:
        out.append((b"(" if kind is tuple else b"[") + _LEN.pack(len(obj)))
        append = out.append
        for item in obj:
            # Strings, ints and None inline: call keys are mostly flat tuples of them.
            item_kind = type(item)
            if item_kind is str:
                data = item.encode("utf-8", "surrogatepass")
                append(b"s" + _LEN.pack(len(data)) + data)
            elif item_kind is int:
                data = str(item).encode("ascii")
                append(b"i" + _LEN.pack(len(data)) + data)
            elif item is None:
                append(b"N")
            else:
                _encode(item, out, depth + 1)
    elif obj is None:
        out.append(b"N")
    elif obj is True:
        out.append(b"T")
    elif obj is False:
        out.append(b"F")
    elif kind is float:
        out.append(b"f" + _float_bytes(obj))
    elif kind is frozenset or kind is set:
        parts = sorted(_encode_nested(item, depth + 1) for item in obj)
        out.append((b"{" if kind is frozenset else b"<") + _LEN.pack(len(parts)))
        out.extend(parts)
    elif kind is dict:
        pairs = sorted(
            (_encode_nested(k, depth + 1), _encode_nested(v, depth + 1)) for k, v in obj.items()
        )
        out.append(b"d" + _LEN.pack(len(pairs)))
        for encoded_key, encoded_value in pairs:
            out.append(encoded_key)
            out.append(encoded_value)
    else:
        raise NotCanonical(f"no canonical encoding for {kind.__qualname__!r}")


def _encode_nested(obj: Any, depth: int) -> bytes:
    out: list[bytes] = []
    _encode(obj, out, depth)
    return b"".join(out)


def encode_canonical(obj: Any) -> bytes:
    """Return the canonical encoding of *obj*, or raise :class:`NotCanonical`."""
    out: list[bytes] = []
    _encode(obj, out)
    return b"".join(out)


_DOUBLE = struct.Struct("!d")


def key_hash(key: Any) -> int:
    """A stable 32-bit hash of *key*, the same in every process and run: diskcache's.

    A string, bytes, integer or float key hashes as diskcache 5 hashes it (Adler-32 of its
    bytes, or the integer modulo 2**32 - 1), so a FanoutCache routes it to the shard
    diskcache does; any other key by Adler-32 of its canonical bytes. An integral float
    hashes as its integer, since a cache finds 1 by 1.0.
    """
    if type(key) is float and key.is_integer() and INT64_MIN <= key <= INT64_MAX:
        key = int(key)
    kind = type(key)
    if kind is str:
        return zlib.adler32(key.encode("utf-8", "surrogatepass"))
    if kind is bytes:
        return zlib.adler32(key)
    if kind is int and INT64_MIN <= key <= INT64_MAX:
        return int(key % 0xFFFFFFFF)
    if kind is float:
        return zlib.adler32(_DOUBLE.pack(key))
    return zlib.adler32(encode_key(key))


def encode_key(key: Any) -> bytes:
    """Return stable bytes identifying *key*, for hashing keys across processes and runs.

    Used to route keys to shards and to name per-key locks. Keys outside the canonical types
    fall back to their pickle, which is stable for most value types but not guaranteed.
    """
    try:
        return encode_canonical(key)
    except NotCanonical:
        import pickle

        return TAG_SERIALIZED + pickle.dumps(key, protocol=4)


class _Reader:
    __slots__ = ("data", "depth", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.depth = 0

    def take(self, count: int) -> bytes:
        end = self.pos + count
        if end > len(self.data):
            raise ValueError("truncated key encoding")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def length(self) -> int:
        (value,) = _LEN.unpack(self.take(4))
        return int(value)

    def value(self) -> Any:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ValueError(f"key nesting deeper than {MAX_DEPTH}")
        try:
            return self._value()
        finally:
            self.depth -= 1

    def _value(self) -> Any:
        tag = self.take(1)
        if tag == b"s":
            return self.take(self.length()).decode("utf-8", "surrogatepass")
        if tag == b"i":
            return int(self.take(self.length()).decode("ascii"))
        if tag == b"b":
            return self.take(self.length())
        if tag == b"(":
            return tuple(self.value() for _ in range(self.length()))
        if tag == b"[":
            return [self.value() for _ in range(self.length())]
        if tag == b"N":
            return None
        if tag == b"T":
            return True
        if tag == b"F":
            return False
        if tag == b"f":
            return _FLOAT.unpack(self.take(8))[0]
        if tag == b"{":
            return frozenset(self.value() for _ in range(self.length()))
        if tag == b"<":
            return {self.value() for _ in range(self.length())}
        if tag == b"d":
            return {self.value(): self.value() for _ in range(self.length())}
        raise ValueError(f"unknown key encoding tag {tag!r}")


def decode_canonical(data: bytes) -> Any:
    """Invert :func:`encode_canonical`; raise ``ValueError`` on malformed input."""
    reader = _Reader(data)
    value = reader.value()
    if reader.pos != len(data):
        raise ValueError("trailing bytes after key encoding")
    return value


def signature_key(db_key: Any, raw: bool) -> bytes:
    """Bytes naming a stored key inside a signature, equal for keys SQLite treats as equal.

    SQLite finds an integer key with an equal float (``1`` and ``1.0``), so integral floats
    are named as integers here.
    """
    if not raw:
        return b"k" + bytes(db_key)
    kind = type(db_key)
    if kind is str:  # the common case, spelled out (the same bytes encode_canonical gives)
        data: bytes = db_key.encode("utf-8", "surrogatepass")
        return b"s" + _LEN.pack(len(data)) + data
    if kind is float and db_key.is_integer() and INT64_MIN <= db_key <= INT64_MAX:
        db_key = int(db_key)
    return encode_canonical(db_key)


def args_to_key(
    base: tuple[Any, ...],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    typed: bool,
    ignore: Collection[int | str],
) -> tuple[Any, ...]:
    """Build diskcache's memoize key for a call: identical to diskcache's for equal inputs.

    The key is *base*, the positional arguments not ignored by position, a ``None``
    separator, then the keyword arguments not ignored by name as flattened ``(name, value)``
    pairs in name order; with *typed*, the types of those arguments follow in the same order.
    """
    kept = tuple(arg for index, arg in enumerate(args) if index not in ignore)
    key = (*base, *kept, None)
    pairs = sorted((name, value) for name, value in kwargs.items() if name not in ignore)
    for pair in pairs:
        key += pair
    if typed:
        key += tuple(type(arg) for arg in kept)
        key += tuple(type(value) for _, value in pairs)
    return key
