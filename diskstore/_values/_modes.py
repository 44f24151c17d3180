"""What a row's ``mode`` column says: how its value is encoded.

In the code, the low three bits of a mode are the payload's kind, the next bits flags; rows
written through diskcache-style ``Disk`` hooks keep diskcache's own mode in bits 8-10. Every
row records its encoding, so entries written under other settings or serializers keep
reading correctly.

In the table, the column is diskcache's: a row diskcache can read has exactly diskcache's
``MODE_RAW`` (a native value), ``MODE_BINARY`` (bytes in a file), ``MODE_TEXT`` (UTF-8 text
in a file) or ``MODE_PICKLE`` (a pickle, trusted by diskstore only with a valid signature in
``sig``). Any other encoding is stored three bits up, over a low part that is 0, diskcache's
``MODE_NONE``, which diskcache reads as ``None`` rather than misreading it (a diskcache-style
hook's row keeps its diskcache mode in that low part). :func:`to_row` gives the stored
value; ``_sql.MODE`` reads it back in every statement, so the code sees one layout.
"""

from __future__ import annotations

from typing import Any

from .._common._exceptions import IntegrityError
from ._keys import INT64_MAX

# diskcache's modes, which a diskcache-style ``store`` returns and ``fetch`` takes.
MODE_NONE = 0
MODE_RAW = 1
MODE_BINARY = 2
MODE_TEXT = 3
MODE_PICKLE = 4

# Low three bits of ``mode``: what the payload is.
KIND_NATIVE = 0  # the ``value`` column holds the value itself
KIND_BYTES = 1
KIND_TEXT = 2
KIND_PICKLE = 3
KIND_JSON = 4
KIND_CUSTOM = 5
KIND_DISKCACHE = 6  # written by a diskcache-style ``store`` hook (see _diskcache_disk.py)
#: A pickle as diskcache writes it (``MODE_PICKLE``): the bare pickle in ``value`` or in the
#: value file, its signature (if any) in ``sig``. Never unpickled unless the signature
#: verifies: see ``Cache.adopt_diskcache``.
KIND_DCPICKLE = 7
KIND_MASK = 7
# Flags.
FLAG_FILE = 8  # payload lives in a value file
FLAG_ZSTD = 16  # payload is a zstandard frame
FLAG_SIGNED = 32  # ``sig`` holds the payload's HMAC tag
FLAG_PINNED = 64  # exempt from eviction until read once (not part of the signature)
FLAG_OOB = (
    128  # a pickle with raw out-of-band buffers, signed by chunk (see diskstore._values._oob)
)
#: Where a diskcache-style row keeps diskcache's mode.
DISKCACHE_MODE_SHIFT = 8


#: Every mode a row can hold: kind, flags, and a diskcache-style row's diskcache mode.
MODE_LIMIT = 1 << (DISKCACHE_MODE_SHIFT + 3)

#: The modes whose stored value is diskcache's own.
_AS_DISKCACHE = {
    KIND_NATIVE: MODE_RAW,
    KIND_BYTES | FLAG_FILE: MODE_BINARY,
    KIND_TEXT | FLAG_FILE: MODE_TEXT,
    KIND_DCPICKLE: MODE_PICKLE,
}


def _stored(mode: int) -> int:
    if mode in _AS_DISKCACHE:
        return _AS_DISKCACHE[mode]
    kind = mode & KIND_MASK
    if kind == KIND_NATIVE:
        return MODE_RAW | (mode & 0xFF) << 3
    low = (mode >> DISKCACHE_MODE_SHIFT) & 7 if kind == KIND_DISKCACHE else 0
    return low | (mode & 0xFF) << 3


#: ``mode`` as stored, for every mode the code uses (a list: the lookup is on every write).
_TO_ROW = [_stored(mode) for mode in range(MODE_LIMIT)]
#: The pinned flag as stored.
ROW_PINNED = FLAG_PINNED << 3
#: The signed flag as stored.
ROW_SIGNED = FLAG_SIGNED << 3


def to_row(mode: int) -> int:
    """The ``mode`` column's value for *mode* (see the module docstring)."""
    return _TO_ROW[mode]


def from_row(stored: int) -> int:
    """The mode the code uses for a stored ``mode`` (what ``_sql.MODE`` computes in SQL)."""
    for mode, value in _AS_DISKCACHE.items():
        if stored == value:
            return mode
    if stored == MODE_NONE:
        return MODE_LIMIT  # nothing diskstore writes: an invalid mode
    mode = stored >> 3
    if mode & KIND_MASK == KIND_DISKCACHE:
        mode |= (stored & 7) << DISKCACHE_MODE_SHIFT
    return mode


def check_columns(mode: Any, filename: Any, sig: Any, vsize: Any, size: Any) -> None:
    """Refuse a row whose columns hold values of the wrong type or an impossible length.

    SQLite does not enforce column types, so anyone who can write to the database can put
    text where a length belongs; such a row must be a miss, not a ``TypeError`` in a reader.
    """
    if type(mode) is not int or not 0 <= mode < MODE_LIMIT:
        raise IntegrityError(f"an entry has an invalid mode {mode!r}")
    if filename is not None and type(filename) is not str:
        raise IntegrityError("an entry's file name is not text")
    if sig is not None and type(sig) is not bytes:
        raise IntegrityError("an entry's signature is not bytes")
    for name, length in (("vsize", vsize), ("size", size)):
        if type(length) is not int or not 0 <= length <= INT64_MAX:
            raise IntegrityError(f"an entry's {name} is invalid: {length!r}")
