"""Stable content hashing: the same value gives the same digest in every process and run.

Python's own ``hash()`` is salted per process (``PYTHONHASHSEED``) and pickle bytes follow
set and dict iteration order, so neither can key results that outlive a process. This module
feeds a canonical, type-tagged encoding of a value to SHA-256 instead:

- ``None``, ``bool``, ``int``, ``float``, ``complex``, ``str``, ``bytes`` are encoded by type
  and value, so ``1``, ``1.0``, ``True``, ``"1"`` and ``b"1"`` all differ. Every NaN encodes
  alike; ``-0.0`` and ``0.0`` differ (a result may depend on the sign of zero).
- tuples and lists are ordered; dict keys, mappings and sets are not (their items are hashed
  one by one and the digests sorted).
- dataclass instances are hashed by type name and field values, enum members by type and
  member name, named tuples by type name and items.
- numpy arrays and scalars by dtype, shape and data; pandas objects by labels, dtypes and
  ``pandas.util.hash_pandas_object``. Neither library is imported here: a value can only be
  an array if its module is already loaded.
- anything else by its cloudpickle bytes, which covers most user classes; such objects hash
  stably as long as their pickled state does not contain sets of strings.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Set
from typing import Any

import cloudpickle

__all__ = ["stable_hash"]

#: Fixed pickle protocol: the interpreter's default changes between Python releases.
_PICKLE_PROTOCOL = 5

_Write = Callable[[Any], object]


class _Unhashable(Exception):
    """Internal: the value (or something inside it) has no stable encoding."""


def stable_hash(obj: object, *, name: str | None = None) -> str:
    """Return the hex SHA-256 of ``obj``'s canonical encoding.

    ``name`` is only used in the error message: when ``obj`` cannot be encoded a
    ``TypeError`` says which input it was (``cannot hash input 'conn': ...``).

    >>> stable_hash({"a": 1, "b": {2, 3}}) == stable_hash({"b": {3, 2}, "a": 1})
    True
    >>> stable_hash(1) == stable_hash(1.0)
    False
    """
    hasher = hashlib.sha256()
    try:
        _encode(obj, hasher.update, set())
    except _Unhashable as exc:
        subject = f"input {name!r}" if name is not None else f"{type(obj).__name__} value"
        raise TypeError(f"cannot hash {subject}: {exc}") from exc.__cause__
    except RecursionError as exc:
        subject = f"input {name!r}" if name is not None else f"{type(obj).__name__} value"
        raise TypeError(f"cannot hash {subject}: it is nested too deeply") from exc
    return hasher.hexdigest()


def _type_name(cls: type) -> bytes:
    return f"{cls.__module__}.{cls.__qualname__}".encode()


def _sized(tag: bytes, data: bytes) -> bytes:
    # A length prefix makes concatenated encodings unambiguous ("ab"+"c" vs "a"+"bc").
    return b"%s%d:%s" % (tag, len(data), data)


def _float(value: float) -> bytes:
    if math.isnan(value):
        return b"nan"
    # float.hex is exact and keeps the sign of zero; it also spells out +/-inf.
    return value.hex().encode()


def _digest(obj: object, active: set[int]) -> bytes:
    hasher = hashlib.sha256()
    _encode(obj, hasher.update, active)
    return hasher.digest()


def _encode(obj: object, write: _Write, active: set[int]) -> None:
    # Exact type checks first: they are the common case and keep subclasses (bool is an
    # int, IntEnum is an int, numpy.float64 is a float) from being mistaken for the base.
    if obj is None:
        write(b"N")
    elif type(obj) is bool:
        write(b"T" if obj else b"F")
    elif type(obj) is int:
        write(b"i%d;" % obj)
    elif type(obj) is float:
        write(b"f" + _float(obj) + b";")
    elif type(obj) is str:
        write(_sized(b"s", obj.encode("utf-8", "surrogatepass")))
    elif type(obj) is bytes:
        write(b"b%d:" % len(obj))
        write(obj)
    elif type(obj) is tuple:
        _encode_sequence(b"t", obj, write, active)
    elif type(obj) is list:
        _encode_sequence(b"l", obj, write, active)
    elif type(obj) is dict:
        _encode_mapping(b"d", obj, write, active)
    elif type(obj) is set:
        _encode_set(b"S", obj, write, active)
    elif type(obj) is frozenset:
        _encode_set(b"F", obj, write, active)
    else:
        _encode_other(obj, write, active)


def _enter(obj: object, active: set[int]) -> None:
    if id(obj) in active:
        raise _Unhashable(f"it contains a reference to itself (a {type(obj).__name__})")
    active.add(id(obj))


def _encode_sequence(tag: bytes, items: Iterable[object], write: _Write, active: set[int]) -> None:
    _enter(items, active)
    values = list(items)
    write(b"%s%d:" % (tag, len(values)))
    for item in values:
        _encode(item, write, active)
    active.discard(id(items))


def _encode_mapping(
    tag: bytes, mapping: Mapping[object, object], write: _Write, active: set[int]
) -> None:
    _enter(mapping, active)
    pairs = sorted((_digest(key, active), _digest(value, active)) for key, value in mapping.items())
    write(b"%s%d:" % (tag, len(pairs)))
    for key_digest, value_digest in pairs:
        write(key_digest + value_digest)
    active.discard(id(mapping))


def _encode_set(tag: bytes, items: Set[object], write: _Write, active: set[int]) -> None:
    _enter(items, active)
    digests = sorted(_digest(item, active) for item in items)
    write(b"%s%d:" % (tag, len(digests)))
    for item_digest in digests:
        write(item_digest)
    active.discard(id(items))


def _encode_other(obj: object, write: _Write, active: set[int]) -> None:
    cls = type(obj)
    if _encode_numpy(obj, write, active) or _encode_pandas(obj, write, active):
        return
    if isinstance(obj, enum.Enum):
        write(_sized(b"e", _type_name(cls)) + _sized(b"", obj.name.encode()))
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        _enter(obj, active)
        fields = dataclasses.fields(obj)
        write(_sized(b"D", _type_name(cls)) + b"%d:" % len(fields))
        for field in fields:
            write(_sized(b"", field.name.encode()))
            _encode(getattr(obj, field.name), write, active)
        active.discard(id(obj))
    elif isinstance(obj, (bytearray, memoryview)):
        data = bytes(obj)
        write(_sized(b"B" if isinstance(obj, bytearray) else b"m", data))
    elif isinstance(obj, complex) and cls is complex:
        write(b"c" + _float(obj.real) + b"," + _float(obj.imag) + b";")
    elif isinstance(obj, (tuple, list)):
        # Named tuples and other sequence subclasses: items plus the type that gives them meaning.
        write(_sized(b"T", _type_name(cls)))
        _encode_sequence(b"t", obj, write, active)
    elif isinstance(obj, Mapping):
        write(_sized(b"M", _type_name(cls)))
        _encode_mapping(b"d", obj, write, active)
    elif isinstance(obj, Set):
        write(_sized(b"A", _type_name(cls)))
        _encode_set(b"S", obj, write, active)
    else:
        _encode_pickle(obj, write)


def _encode_pickle(obj: object, write: _Write) -> None:
    try:
        data = cloudpickle.dumps(obj, protocol=_PICKLE_PROTOCOL)
    except Exception as exc:
        raise _Unhashable(f"{type(obj).__name__} object cannot be pickled ({exc})") from exc
    write(_sized(b"P", _type_name(type(obj))) + _sized(b"", data))


def _encode_numpy(obj: object, write: _Write, active: set[int]) -> bool:
    numpy = sys.modules.get("numpy")
    if numpy is None:
        return False
    if type(obj) is numpy.ndarray:
        array: Any = obj
        dtype = array.dtype
        header = f"{dtype.descr!r}|{array.shape!r}".encode()
        if dtype.hasobject:
            # Object arrays hold pointers; hash the elements they point to instead.
            write(_sized(b"O", header))
            _encode_sequence(b"l", array.ravel(order="C").tolist(), write, active)
        else:
            write(_sized(b"n", header))
            contiguous = numpy.ascontiguousarray(array)
            write(b"%d:" % contiguous.nbytes)
            try:
                # A flat byte view hashes the buffer in place, without copying a large array.
                write(contiguous.reshape(-1).view(numpy.uint8))
            except (TypeError, ValueError):
                write(contiguous.tobytes())
        return True
    if isinstance(obj, numpy.generic) and not isinstance(obj, numpy.object_):
        scalar: Any = obj
        write(_sized(b"g", repr(scalar.dtype.descr).encode()) + _sized(b"", scalar.tobytes()))
        return True
    return False


def _encode_pandas(obj: object, write: _Write, active: set[int]) -> bool:
    pandas = sys.modules.get("pandas")
    if pandas is None or not isinstance(obj, (pandas.DataFrame, pandas.Series, pandas.Index)):
        return False
    frame: Any = obj
    if isinstance(obj, pandas.DataFrame):
        columns = list(frame.columns)
        labels: object = (columns, [str(d) for d in frame.dtypes], list(frame.index.names))
    elif isinstance(obj, pandas.Series):
        labels = (frame.name, str(frame.dtype), list(frame.index.names))
    else:
        labels = (list(frame.names), str(frame.dtype))
    try:
        row_hashes = pandas.util.hash_pandas_object(frame, index=True).to_numpy()
    except TypeError:
        return False  # unhashable cells (lists, dicts): fall back to the pickled form
    write(_sized(b"pd", _type_name(type(obj))) + b"%r;" % (frame.shape,))
    _encode(labels, write, active)
    write(_sized(b"", row_hashes.astype("<u8").tobytes()))
    return True
