"""``JSONDisk``: a serializer that never unpickles, for directories others can write to."""

from __future__ import annotations

from typing import Any, ClassVar

from ._disk import Disk
from ._modes import KIND_JSON


def _json_dumps(obj: Any) -> bytes:
    try:
        import orjson
    except ImportError:
        return _stdlib_dumps(obj)
    try:
        return bytes(orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS))
    except TypeError:
        return _stdlib_dumps(obj)


def _stdlib_dumps(obj: Any) -> bytes:
    import json  # on first use, not with the package: most programs never use JSONDisk

    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


class JSONDisk(Disk):
    """A serializer that never unpickles: values are JSON, keys use the canonical encoding.

    Safe for directories that others can write to. Values must be JSON-serializable (tuples
    come back as lists, as with ``json``); keys may be any nesting of ``None``, ``bool``,
    numbers, strings, bytes, tuples, lists, sets and dicts.
    """

    kind: ClassVar[int] = KIND_JSON
    signed: ClassVar[bool] = False

    def dumps(self, obj: Any) -> bytes:
        return _json_dumps(obj)

    def loads(self, data: bytes) -> Any:
        import json

        return json.loads(data)

    def _serialize_key(self, key: Any) -> bytes:
        raise TypeError(f"JSONDisk cannot store a key of type {type(key).__name__!r}")
