"""Checksums of value files that carry no signature, so that damage to them is found.

A value file diskstore writes unsigned and uncompressed (diskcache's ``MODE_BINARY`` and
``MODE_TEXT`` files, and the files of serializers that never sign) has the 64-bit XXH3 hash
of its bytes in its row's ``sig`` column, eight bytes, big-endian. ``sig`` is the column because
every statement that reads a value file already reads it, the mode says whether it holds a
signature (a signed file's HMAC tag) or a checksum, and diskcache never reads it. A
checksum finds damage (a disk error, a stray write), not tampering: whoever can write a file
can rewrite its checksum, which is what signatures are for. Compressed files need none:
their zstandard frames carry a checksum of their own.

XXH3 was chosen by measurement, so that no set or get of a file value costs more than it did
before files had checksums: on the benchmark machine it hashes 10 MB in 0.17 ms (about
60 GB/s from cache), where ``zlib.crc32`` takes 2.5 ms (4.2 GB/s), hardware CRC-32C 0.4 ms,
Adler-32 2.9 ms, SHA-1 and BLAKE2b far more. Rows written before by diskstore with four-byte
CRC-32 checksums are still verified by their CRC-32.

Only names diskstore writes (``data/...``) are checked. Files diskcache wrote have no
checksum and are read unverified; and when diskcache overwrites a row diskstore wrote, it
leaves ``sig`` as it was but names a file of its own, so a checksum never judges a file it
was not computed over.

A process remembers the files it has written or verified, by what any write to a file
changes (device, inode, size, modification and status change times), and does not hash
them again: a value read many times costs its checksum once per process. ``check()`` always
hashes every file.
"""

from __future__ import annotations

import os
import threading
import time
import zlib
from collections import OrderedDict
from typing import TYPE_CHECKING, Generic, TypeVar

from .._common._exceptions import IntegrityError

if TYPE_CHECKING:
    import xxhash

T = TypeVar("T")

#: Bytes of a checksum in ``sig``: the XXH3 hash every file is now written with.
SIZE = 8
#: Bytes of the CRC-32 checksums of files written by earlier versions (still verified).
CRC32_SIZE = 4
#: How a file diskstore wrote is named: only such files have a checksum.
OWN_PREFIX = "data/"
# A file changed less than this long before it was read is not remembered: a change in the
# same clock tick as the read would leave its times as they were.
_SETTLE_NS = 50_000_000
_CAPACITY = 4096


def hasher() -> xxhash.xxh3_64:
    """A running hash of a file's bytes as they are written (``update``, then ``digest``)."""
    import xxhash  # on first use: a cache that never writes a file value does without it

    return xxhash.xxh3_64()


def _matches(data: bytes, sig: bytes) -> bool:
    if len(sig) == SIZE:
        import xxhash

        return xxhash.xxh3_64_digest(data) == sig
    return zlib.crc32(data).to_bytes(CRC32_SIZE, "big") == sig


def recorded(filename: str, sig: bytes | None) -> bool:
    """Whether the row names a file of diskstore's whose checksum it records."""
    return sig is not None and filename.startswith(OWN_PREFIX)


def identity(info: os.stat_result) -> tuple[int, ...]:
    """What any write to a file changes: device, inode, size, modification and status
    change times (the last of which no one can set back)."""
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


class VerifiedFiles(Generic[T]):
    """What this process verified of value files (a checksum, a list of chunk digests),
    by the files' :func:`identity`; the least recently recorded go beyond *capacity*."""

    def __init__(self, capacity: int = _CAPACITY) -> None:
        self._known: OrderedDict[tuple[int, ...], T] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def get(self, info: os.stat_result) -> T | None:
        """What was verified of the file with status *info*, if it is unchanged since."""
        with self._lock:
            return self._known.get(identity(info))

    def known(self, info: os.stat_result, value: T) -> bool:
        """Whether the file with status *info* was verified against *value* before."""
        return self.get(info) == value

    def add(self, info: os.stat_result, value: T, *, settled: bool = True) -> None:
        """Remember that the file with status *info* was verified against *value*.

        A reader passes *settled*: the file is remembered only if its times are older than
        a clock tick, so that a write in the same tick cannot go unnoticed. The writer
        cannot wait: a change made in the tick it published the file would go unnoticed by
        the writer's process (never by another process, and never by ``check``). Kernels
        with fine-grained timestamps (Linux 6.13 and later) give such a change new times.
        """
        if settled and time.time_ns() - max(info.st_ctime_ns, info.st_mtime_ns) < _SETTLE_NS:
            return
        key = identity(info)
        with self._lock:
            self._known[key] = value
            self._known.move_to_end(key)
            while len(self._known) > self._capacity:
                self._known.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._known.clear()

    def _after_fork(self) -> None:
        self._lock = threading.Lock()  # a thread holding it at fork does not exist here


verified: VerifiedFiles[bytes] = VerifiedFiles()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=verified._after_fork)


def verify(
    name: str, info: os.stat_result, data: bytes, sig: bytes, *, remember: bool = True
) -> None:
    """Raise ``IntegrityError`` unless *data*, read from file *name*, matches *sig*.

    With *remember*, a file this process verified before (unchanged since) is not hashed
    again, and one verified now is remembered.
    """
    if remember and verified.known(info, sig):
        return
    if len(sig) not in (SIZE, CRC32_SIZE):
        raise IntegrityError(f"value file {name} has a malformed checksum")
    if not _matches(data, sig):
        raise IntegrityError(f"value file {name} failed its checksum: it is damaged")
    if remember:
        verified.add(info, sig)


def record_written(sig: bytes, info: os.stat_result) -> None:
    """Remember a file this process has just written and published with checksum *sig*."""
    verified.add(info, sig, settled=False)
