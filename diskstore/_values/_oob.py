"""Pickles whose large buffers live out of band, in raw value files that can be mapped.

Pickle protocol 5 lets an object hand its large buffers (the data of a numpy array, of each
numpy block of a pandas frame) to the pickler instead of copying them into the stream. Such
a value is stored as one value file laid out as::

    header | entry table | pickle stream | pad | buffer 0 | pad | buffer 1 | ...

with every buffer starting on a 64-byte boundary, uncompressed. Reading it back is one read
into memory allocated once (or one ``mmap``), and unpickling hands the buffers back to numpy,
which wraps them without copying.

Signing covers every byte of the file, but not as one sequential HMAC: the header and
pickle stream form the first chunk, the rest of the file is cut into fixed 1 MiB chunks,
each chunk is hashed with SHA-256 (in threads, since ``hashlib`` releases the GIL), and the
tag is the HMAC of the row prefix, the chunk digests and the length. That runs at several
times the speed of one HMAC stream on a machine with spare cores, and lets a read skip
rehashing the buffer chunks of a file this process already verified (see
:class:`VerifiedFiles`).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import pickle
import struct
from collections.abc import Callable, Sequence
from typing import Any

from .._common._exceptions import IntegrityError
from .._fs._checksums import VerifiedFiles, identity
from .._fs._files import FileStore

MAGIC = b"DSOOB\x00\x01\x00"
_HEAD = struct.Struct(">8sIIQ")  # magic, buffer count, reserved, stream length
_ENTRY = struct.Struct(">QQ")  # offset, length of one buffer
ALIGN = 64
#: Buffers smaller than this stay inside the pickle stream.
INBAND_MAX = 1 << 16
#: Bytes hashed per digest in the signed chunk list.
HASH_CHUNK = 1 << 20
#: Payloads from this size on are hashed (and read) by several threads.
PARALLEL_MIN = 16 << 20
#: Buffers from this size are anonymous maps (see _allocate). Smaller ones come from the
#: C heap, which keeps freed memory for the next read (glibc's malloc maps anything above
#: at most 32 MiB afresh each time).
MAP_BYTES = 32 << 20
_MAX_BUFFERS = 1 << 20
_CPUS = os.cpu_count() or 1

Buffer = bytes | bytearray | memoryview
#: Checks the chunk digests of a file against its row's tag; raises ``IntegrityError``.
Check = Callable[[list[bytes | None]], None]


_CLOUDPICKLE_DUMPS: Any = None


def cloudpickle_dumps() -> Any:
    """``cloudpickle.dumps``, imported on the first pickle: it is a large share of
    ``import diskstore``, and a cache of plain values never needs it."""
    global _CLOUDPICKLE_DUMPS
    if _CLOUDPICKLE_DUMPS is None:
        import cloudpickle

        _CLOUDPICKLE_DUMPS = cloudpickle.dumps
    return _CLOUDPICKLE_DUMPS


def dumps(obj: Any, protocol: int) -> tuple[bytes, list[memoryview]]:
    """Pickle *obj*, keeping contiguous buffers of ``INBAND_MAX`` bytes or more out of band."""
    buffers: list[memoryview] = []

    def keep_apart(buffer: pickle.PickleBuffer) -> bool:
        try:
            view = buffer.raw()
        except BufferError:  # not contiguous: pickled into the stream
            return True
        if view.nbytes < INBAND_MAX:
            return True
        buffers.append(view)
        return False

    from ._pickling import pickle_dumps  # loads cloudpickle on first use

    stream = pickle_dumps(obj, protocol=protocol, buffer_callback=keep_apart)
    return bytes(stream), buffers


def loads(stream: Buffer, buffers: Sequence[memoryview]) -> Any:
    """Unpickle a stream whose out-of-band buffers are *buffers* (in order)."""
    return pickle.loads(stream, buffers=buffers)


def _aligned(pos: int) -> int:
    return (pos + ALIGN - 1) // ALIGN * ALIGN


def layout(stream: bytes, buffers: Sequence[memoryview]) -> tuple[list[bytes | memoryview], int]:
    """Return the pieces of the file for *stream* and *buffers*, and its total length."""
    head_len = _HEAD.size + _ENTRY.size * len(buffers)
    pos = head_len + len(stream)
    entries = []
    body: list[bytes | memoryview] = [stream]
    for view in buffers:
        start = _aligned(pos)
        if start > pos:
            body.append(bytes(start - pos))
        body.append(view)
        entries.append(_ENTRY.pack(start, view.nbytes))
        pos = start + view.nbytes
    head = _HEAD.pack(MAGIC, len(buffers), 0, len(stream)) + b"".join(entries)
    return [head, *body], pos


def parse(data: Buffer, total: int) -> tuple[int, int, list[tuple[int, int]]]:
    """Read the header of a file of *total* bytes: ``(stream start, end, buffer spans)``.

    Every offset is checked against the file's length, so a damaged header is an
    ``IntegrityError`` rather than a wild slice.
    """
    view = memoryview(data)
    if total < _HEAD.size or len(view) < _HEAD.size:
        raise IntegrityError("buffer file is shorter than its header")
    magic, count, _, stream_len = _HEAD.unpack_from(view)
    if magic != MAGIC or count > _MAX_BUFFERS:
        raise IntegrityError("buffer file has an unknown header")
    start = _HEAD.size + _ENTRY.size * count
    if len(view) < start or start + stream_len > total:
        raise IntegrityError("buffer file header does not fit the file")
    spans = []
    pos = start + stream_len
    for i in range(count):
        offset, length = _ENTRY.unpack_from(view, _HEAD.size + _ENTRY.size * i)
        if offset < pos or offset % ALIGN or offset + length > total:
            raise IntegrityError("buffer file has a buffer outside the file")
        spans.append((offset, length))
        pos = offset + length
    if pos != total:
        raise IntegrityError(f"buffer file holds {total} bytes, its header says {pos}")
    return start, start + stream_len, spans


def head_length(data: Buffer) -> int:
    """Bytes of header and entry table, from the first ``_HEAD.size`` bytes of a file."""
    if len(data) < _HEAD.size:
        raise IntegrityError("buffer file is shorter than its header")
    magic, count, _, stream_len = _HEAD.unpack_from(data)
    if magic != MAGIC or count > _MAX_BUFFERS:
        raise IntegrityError("buffer file has an unknown header")
    return int(_HEAD.size + _ENTRY.size * count + stream_len)


HEAD_SIZE = _HEAD.size


def parts_between(pieces: Sequence[bytes | memoryview], start: int, end: int) -> list[memoryview]:
    """The views of *pieces* (laid end to end) that cover ``[start, end)``."""
    out = []
    pos = 0
    for piece in pieces:
        view = memoryview(piece).cast("B")
        stop = pos + view.nbytes
        if stop > start and pos < end:
            out.append(view[max(start - pos, 0) : min(end, stop) - pos])
        pos = stop
        if pos >= end:
            break
    return out


def chunk_digests(
    total: int,
    head: int,
    parts: Callable[[int, int], Sequence[Buffer]],
    skip: frozenset[int] = frozenset(),
) -> list[bytes | None]:
    """SHA-256 of each chunk of a file of *total* bytes whose header and stream take *head*.

    Chunk 0 is the header and pickle stream, so rechecking it alone is cheap; the rest of
    the file follows in ``HASH_CHUNK`` slices. ``parts(start, end)`` returns the bytes of
    one slice (it may read them first, so a read and its hash run in the same thread while
    the data is still in cache). Chunks in *skip* are not hashed (their digest is
    ``None``). Large files use several threads.
    """
    import hashlib  # on first use, not with the package: it loads OpenSSL

    head = min(max(head, 0), total)
    bounds = [(0, head)] + [
        (start, min(total, start + HASH_CHUNK)) for start in range(head, total, HASH_CHUNK)
    ]

    def digest(index: int) -> bytes:
        hasher = hashlib.sha256()
        for part in parts(*bounds[index]):
            hasher.update(part)
        return hasher.digest()

    digests: list[bytes | None] = [None] * len(bounds)
    wanted = [i for i in range(len(bounds)) if i not in skip]
    workers = min(_CPUS, 4, len(wanted))
    if sum(bounds[i][1] - bounds[i][0] for i in wanted) < PARALLEL_MIN or workers < 2:
        for index in wanted:
            digests[index] = digest(index)
        return digests
    import concurrent.futures  # only large values hash in parallel

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for index, value in zip(wanted, pool.map(digest, wanted), strict=True):
            digests[index] = value
    return digests


#: Chunk digests of buffer files this process verified. A read of a file verified before
#: rehashes only its first chunk, the header and pickle stream (the part that could run
#: code), and reuses the recorded digests of the buffer chunks while the file is unchanged.
#: The writer records what it hashed, so its own later reads need not hash the buffers.
verified_files: VerifiedFiles[list[bytes | None]] = VerifiedFiles()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=verified_files._after_fork)


def _allocate(size: int, stream: bytes) -> memoryview:
    """Writable memory for a file about to be read, not touched before the read fills it.

    ``bytearray(n)`` zeroes every page first, which costs as much as the read. Buffers of
    :data:`MAP_BYTES` and more are private anonymous maps, whose pages the kernel provides
    as the read reaches them: numpy's allocator would map them afresh too, asking for huge
    pages, whose first touch stalls for as long as the kernel takes to assemble them
    (measured here: 70 to 290 ms to read 100 MB into a new ``numpy.empty``, 60 ms into a
    map). Smaller ones come from numpy when the pickle stream names it (unpickling imports
    it anyway), whose memory the C heap reuses from one read to the next.
    """
    if size >= MAP_BYTES:
        with contextlib.suppress(OSError, ValueError):
            return memoryview(mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS))
    if b"numpy" in stream:
        try:
            import numpy
        except ImportError:
            pass
        else:
            return numpy.empty(size, dtype=numpy.uint8).data
    return memoryview(bytearray(size))


def _merge(
    size: int, head: int, parts: Callable[[int, int], Sequence[Buffer]], known: list[bytes | None]
) -> list[bytes | None]:
    """Digests of a file verified before: the head chunks rehashed, the others recorded."""
    skip = frozenset(range(1, len(known)))
    fresh = chunk_digests(size, head, parts, skip)
    if len(fresh) != len(known):
        return chunk_digests(size, head, parts)
    return [known[i] if i in skip else fresh[i] for i in range(len(fresh))]


def load(
    handle: Any,
    info: os.stat_result,
    size: int,
    access: int | None,
    check: Check | None,
    *,
    unpickle: bool = True,
) -> Any:
    """Load an out-of-band pickle file of *size* bytes, verified by *check* when given.

    With *access* (an ``mmap`` access mode) the buffers are views of a mapping of the file;
    otherwise the file is read, once, into memory allocated for it. The header and pickle
    stream are always hashed from a private copy, so what is unpickled is what was checked
    even if the file changes meanwhile; buffer chunks are rehashed only for files this
    process has not verified before (see :data:`verified_files`).
    """
    first = bytearray(min(size, HEAD_SIZE))
    FileStore.read_into(handle, memoryview(first), 0)
    head = min(size, head_length(first))
    private = bytearray(head)
    FileStore.read_into(handle, memoryview(private), 0)
    known = verified_files.get(info) if check is not None else None
    if access is not None:
        view = memoryview(mmap.mmap(handle.fileno(), size, access=access))
        stream_view = memoryview(private)

        def parts(start: int, end: int) -> list[memoryview]:
            out = []
            if start < head:
                out.append(stream_view[start : min(end, head)])
            if end > head:
                out.append(view[max(start, head) : end])
            return out

        if check is not None:
            digests = (
                chunk_digests(size, head, parts)
                if known is None
                else _merge(size, head, parts, known)
            )
            check(digests)
    else:
        view = _allocate(size, bytes(private))
        if check is None:
            FileStore.read_into(handle, view, 0)
        elif known is not None:
            FileStore.read_into(handle, view, 0)
            same = identity(os.fstat(handle.fileno())) == identity(info)
            whole = lambda start, end: (view[start:end],)  # noqa: E731
            check(_merge(size, head, whole, known) if same else chunk_digests(size, head, whole))
        else:

            def fill(start: int, end: int) -> tuple[memoryview]:
                FileStore.read_into(handle, view[start:end], start)
                return (view[start:end],)

            digests = chunk_digests(size, head, fill)
            check(digests)
        stream_view = view[:head]
    if check is not None and known is None:
        verified_files.add(info, digests)
    start, end, spans = parse(stream_view, size)
    if not unpickle:  # only checking (Cache.check)
        return None
    return loads(stream_view[start:end], [view[o : o + n] for o, n in spans])
