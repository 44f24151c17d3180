"""What a row's ``mode`` column says: how its value is encoded.

The low three bits are the payload's kind, the next bits flags; rows written through
diskcache-style ``Disk`` hooks keep diskcache's own mode in bits 8-10. Every row records its
encoding, so entries written under other settings or serializers keep reading correctly.
"""

from __future__ import annotations

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
