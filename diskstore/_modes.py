"""What a row's ``mode`` column says: how its value is encoded.

The low three bits are the payload's kind, the next bits flags; rows written through
diskcache-style ``Disk`` hooks keep diskcache's own mode in bits 8-10. Every row records its
encoding, so entries written under other settings or serializers keep reading correctly.
"""

from __future__ import annotations

from typing import Any

from ._exceptions import IntegrityError
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
KIND_MASK = 7
# Flags.
FLAG_FILE = 8  # payload lives in a value file
FLAG_ZSTD = 16  # payload is a zstandard frame
FLAG_SIGNED = 32  # ``sig`` holds the payload's HMAC tag
FLAG_PINNED = 64  # exempt from eviction until read once (not part of the signature)
FLAG_OOB = 128  # a pickle with raw out-of-band buffers, signed by chunk (see diskstore._oob)
#: Where a diskcache-style row keeps diskcache's mode.
DISKCACHE_MODE_SHIFT = 8


#: Every mode a row can hold: kind, flags, and a diskcache-style row's diskcache mode.
MODE_LIMIT = 1 << (DISKCACHE_MODE_SHIFT + 3)


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
