"""Serialization strategies: how keys and values become rows and files.

``Disk`` is the extension point, as in diskcache. Keys that SQLite stores natively (``str``,
``bytes``, 64-bit ``int``, non-NaN ``float``) are stored as themselves; other keys get the
canonical encoding of :mod:`diskstore._values._keys`, falling back to the serializer. Values are
stored natively when small and primitive, otherwise as a payload: raw bytes, UTF-8 text, or
the serializer's output, compressed with zstandard when that makes it smaller, and signed
with HMAC-SHA256 when the serializer can run code (pickle). Every row records its encoding in
``mode``, so entries written under other settings keep reading correctly.

To plug in another serializer, subclass :class:`Disk` and override ``dumps``/``loads`` (and
set ``signed = False`` only if ``loads`` can never run code)::

    class MsgpackDisk(Disk):
        kind = KIND_CUSTOM
        signed = False
        def dumps(self, obj): return msgpack.packb(obj)
        def loads(self, data): return msgpack.unpackb(data)
"""

from __future__ import annotations

import functools
import io
import math
import mmap
import pickle
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar

from .._common._constants import UNKNOWN
from .._common._exceptions import IntegrityError, UntrustedPickle
from .._fs import _checksums
from .._fs._files import CHUNK, FileStore
from . import _oob
from ._collector import LARGE, load_paused
from ._diskcache_disk import HOOKS, DiskcacheHooks
from ._keys import (
    INT64_MAX,
    INT64_MIN,
    NotCanonical,
    decode_canonical,
    encode_canonical,
    key_hash,
    signature_key,
)
from ._modes import (
    FLAG_FILE,
    FLAG_OOB,
    FLAG_PINNED,
    FLAG_SIGNED,
    FLAG_ZSTD,
    KIND_BYTES,
    KIND_DCPICKLE,
    KIND_DISKCACHE,
    KIND_MASK,
    KIND_NATIVE,
    KIND_PICKLE,
    KIND_TEXT,
    MODE_LIMIT,
    check_columns,
)
from ._rows import (
    INLINE_HEAD,
    Stored,
    VerifiedPayloads,
    signature_prefix,
    signature_suffix,
    split_inline,
    sqlite_text,
    text_row,
)
from ._signing import TAG_SIZE, Signer

# Keys SQLite cannot store natively are blobs that start with 0xFF, so they sort after the
# native bytes keys in ``iterkeys`` (as pickled keys, starting 0x80, do in diskcache); the
# next byte says how the rest is encoded.
_KEY_MARK = b"\xff"
_KEY_SIGNED = b"\xffS"
_KEY_UNSIGNED = b"\xffP"
#: How a key diskcache pickled starts (pickle protocol 2 and later); see _adopt.py.
_DISKCACHE_PICKLE = b"\x80"
_SAMPLE = 1 << 16
# Payloads from this size on are compressed by several threads.
_THREADED = 8 << 20
#: ``mmap_mode`` values a read accepts: ``'r'`` maps buffers read-only, ``'c'`` copy-on-write.
MMAP_MODES = {"r": mmap.ACCESS_READ, "c": mmap.ACCESS_COPY}

if TYPE_CHECKING:
    import zstandard

_ZSTANDARD: Any = None


def _zstd() -> Any:
    """The zstandard module, imported on first (de)compression: it costs a tenth of
    ``import diskstore`` and caches of small values never need it."""
    global _ZSTANDARD
    if _ZSTANDARD is None:
        import zstandard

        _ZSTANDARD = zstandard
    return _ZSTANDARD


class Disk(DiskcacheHooks):
    """Stores keys and values in rows and files; pickles with cloudpickle, signed.

    Subclass it and override ``dumps``/``loads`` to change the serializer, or, as with
    diskcache, ``store``/``fetch``/``filename``/``remove`` (see
    :mod:`diskstore._values._diskcache_disk`).
    """

    #: The payload kind this serializer writes (a row of another kind is not loaded).
    kind: ClassVar[int] = KIND_PICKLE
    #: Whether payloads must carry a verified signature before ``loads`` sees them.
    signed: ClassVar[bool] = True
    #: Whether the class overrides diskcache's hooks, so rows go through them.
    hooked: ClassVar[bool] = False

    #: Whether ``Cache.get`` may read an inline payload through :meth:`fetch_inline`
    #: (false when a subclass reads rows its own way).
    fast_inline: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.hooked = any(getattr(cls, name) is not getattr(Disk, name) for name in HOOKS)
        cls.fast_inline = all(
            getattr(cls, name) is getattr(Disk, name)
            for name in ("fetch_row", "payload", "fetch_inline", "_decode")
        )

    def __init__(
        self,
        directory: str,
        min_file_size: int = 2**15,
        pickle_protocol: int = pickle.HIGHEST_PROTOCOL,
        compress_threshold: int = 1024,
        compress_level: int = 3,
        *,
        signer: Signer | None = None,
        fsync: bool = False,
    ) -> None:
        self._directory = directory
        self.min_file_size = min_file_size
        self.pickle_protocol = pickle_protocol
        self.compress_threshold = compress_threshold
        self.compress_level = compress_level
        self.signer = signer if signer is not None else Signer(None)
        self.files = FileStore(directory, fsync=fsync)
        self._local = threading.local()
        self._verified = VerifiedPayloads()

    def attach(self, directory: str, *, signer: Signer, fsync: bool) -> None:
        """Give a constructed serializer the cache's secret and durability settings.

        Called by the cache after ``__init__``, so subclasses whose constructors take only
        diskcache's arguments (or skip ``super().__init__``) still get everything they need.
        """
        if not hasattr(self, "_directory"):
            self._directory = directory
        for name, default in (
            ("min_file_size", 2**15),
            ("pickle_protocol", pickle.HIGHEST_PROTOCOL),
            ("compress_threshold", 1024),
            ("compress_level", 3),
        ):
            if not hasattr(self, name):
                setattr(self, name, default)
        if not hasattr(self, "_local"):
            self._local = threading.local()
        self.signer = signer
        self._verified = VerifiedPayloads()  # what the previous secret verified is not known
        self.files = FileStore(directory, fsync=fsync)

    # -- serializer hooks -------------------------------------------------------------------
    def dumps(self, obj: Any) -> bytes:
        """Serialize a value or key that has no native or canonical form."""
        from ._pickling import pickle_dumps  # loads cloudpickle on first use

        return pickle_dumps(obj, protocol=self.pickle_protocol)

    def loads(self, data: bytes) -> Any:
        """Inverse of :meth:`dumps`; only ever called on verified payloads."""
        return pickle.loads(data)

    @property
    def signer(self) -> Signer:
        """Signs and verifies payloads (disabled: nothing is signed)."""
        return self._signer

    @signer.setter
    def signer(self, signer: Signer) -> None:
        self._signer = signer
        #: Whether payloads are signed and verified, read on every get and set.
        self._signing = self.signed and signer.enabled

    # -- keys -------------------------------------------------------------------------------
    def hash(self, key: Any) -> int:
        """A stable 32-bit hash of *key* (the same in every process and run), as diskcache
        computes it for native keys; a FanoutCache routes keys by it."""
        return key_hash(key)

    def put(self, key: Any) -> tuple[Any, bool]:
        """Return ``(db_key, raw)``: raw keys are stored as themselves."""
        kind = type(key)
        if kind is bytes or (kind is str and sqlite_text(key)):
            return key, True
        if kind is int:
            if INT64_MIN <= key <= INT64_MAX:
                return key, True
        elif kind is float:
            if math.isnan(key):
                raise ValueError(
                    "key must not be NaN (NaN never equals itself, so it cannot be found)"
                )
            return key, True
        try:
            return _KEY_MARK + encode_canonical(key), False
        except NotCanonical:
            return self._serialize_key(key), False

    def _serialize_key(self, key: Any) -> bytes:
        data = bytes([self.kind]) + self.dumps(key)
        if self._signing:
            return _KEY_SIGNED + self.signer.sign(b"k" + data) + data
        return _KEY_UNSIGNED + data

    def get(self, db_key: Any, raw: bool) -> Any:
        """Return the key stored as ``(db_key, raw)``; ``IntegrityError`` if it fails checks."""
        if raw:
            return db_key
        if not isinstance(db_key, bytes):
            raise IntegrityError("a stored key has an unknown encoding")
        data = db_key
        tag = data[:2]
        if tag == _KEY_SIGNED:
            sig, data = data[2 : 2 + TAG_SIZE], data[2 + TAG_SIZE :]
            if self._signing and not self.signer.verify(b"k" + data, sig):
                raise IntegrityError("a stored key failed signature verification")
        elif tag == _KEY_UNSIGNED:
            if self._signing:
                raise IntegrityError("refusing to load an unsigned serialized key")
            data = data[2:]
        elif data[:1] == _KEY_MARK:
            try:
                return decode_canonical(data[1:])
            except ValueError as exc:
                raise IntegrityError(f"a stored key is malformed: {exc}") from exc
        elif data[:1] == _DISKCACHE_PICKLE:
            raise UntrustedPickle("a key diskcache pickled, not yet trusted")
        else:
            raise IntegrityError("a stored key has an unknown encoding")
        if data[:1] != bytes([self.kind]):
            raise IntegrityError("a stored key was written by another serializer")
        return self.loads(data[1:])

    # -- values -----------------------------------------------------------------------------
    def _compressor(self) -> zstandard.ZstdCompressor:
        local = self._local
        compressor: zstandard.ZstdCompressor | None = getattr(local, "compressor", None)
        if compressor is None:
            compressor = _zstd().ZstdCompressor(level=self.compress_level, write_checksum=True)
            local.compressor = compressor
        return compressor

    def _threaded_compressor(self) -> zstandard.ZstdCompressor:
        local = self._local
        compressor: zstandard.ZstdCompressor | None = getattr(local, "threaded", None)
        if compressor is None:
            compressor = _zstd().ZstdCompressor(
                level=self.compress_level, write_checksum=True, threads=-1
            )
            local.threaded = compressor
        return compressor

    def _decompressor(self) -> zstandard.ZstdDecompressor:
        local = self._local
        decompressor: zstandard.ZstdDecompressor | None = getattr(local, "decompressor", None)
        if decompressor is None:
            decompressor = _zstd().ZstdDecompressor()
            local.decompressor = decompressor
        return decompressor

    def _maybe_compress(self, data: bytes) -> tuple[bytes, bool]:
        if self.compress_level and len(data) >= self.compress_threshold:
            large = len(data) >= _THREADED
            if large and not self._worth_compressing(_spread_sample(data)):
                return data, False
            compressor = self._threaded_compressor() if large else self._compressor()
            packed = compressor.compress(data)
            if len(packed) < len(data):
                return packed, True
        return data, False

    def _worth_compressing(self, sample: bytes) -> bool:
        if not self.compress_level or len(sample) < self.compress_threshold:
            return False
        return len(self._compressor().compress(sample)) < 0.9 * len(sample)

    def store_row(
        self,
        value: Any,
        read: bool,
        *,
        ns: int = 0,
        db_key: Any = b"",
        raw: bool = True,
        key: Any = UNKNOWN,
    ) -> Stored:
        """Decide how *value* is stored; may write a value file (published by the caller).

        *ns*, *db_key* and *raw* name the row inside the signature, so a payload moved to
        another row fails verification; *key* is the key as given (for diskcache's hooks).
        """
        if self.hooked:
            mode, body, name, size, sig = self.store_hooked(value, read, key, ns, db_key, raw)
            return Stored(mode, body, name, size, 0, sig)
        kind = type(value)
        if read:
            return self._store_stream(value, ns, db_key, raw)
        if kind is int:
            if INT64_MIN <= value <= INT64_MAX:
                return Stored(KIND_NATIVE, value, None, 0, 0, None)
        elif kind is float:
            if not math.isnan(value):  # SQLite would store NaN as NULL
                return Stored(KIND_NATIVE, value, None, 0, 0, None)
        elif kind is bytes or kind is str:
            if len(value) < self.min_file_size:
                # Text with lone surrogates is not UTF-8: SQLite cannot hold it as TEXT.
                native = kind is bytes or sqlite_text(value)
                plain = Stored(KIND_NATIVE, value, None, 0, 0, None) if native else None
                if len(value) < self.compress_threshold or not self.compress_level:
                    return plain or text_row(value)
                data = value if kind is bytes else value.encode("utf-8", "surrogatepass")
                packed, compressed = self._maybe_compress(data)
                if not compressed:
                    return plain or text_row(value)
                mode = (KIND_BYTES if kind is bytes else KIND_TEXT) | FLAG_ZSTD
                head = INLINE_HEAD.pack(len(data))
                if self._signing:  # a compressed payload is verified before it is expanded
                    mode |= FLAG_SIGNED
                    prefix = signature_prefix(ns, signature_key(db_key, raw), mode)
                    head += self.signer.sign(prefix + packed + signature_suffix(len(data)))
                return Stored(mode, head + packed, None, 0, len(data), None)
            return self._store_large(value, ns, db_key, raw)
        if self._out_of_band:
            stream, buffers = _oob.dumps(value, self.pickle_protocol)
            if buffers:
                return self._store_oob(stream, buffers, ns, db_key, raw)
            return self._store_serialized(stream, ns, db_key, raw)
        return self._store_serialized(self.dumps(value), ns, db_key, raw)

    @property
    def _out_of_band(self) -> bool:
        """Whether large buffers are kept out of the pickle (only this class's own pickle)."""
        return (
            self.kind == KIND_PICKLE
            and type(self).dumps is Disk.dumps
            and self.pickle_protocol >= 5
        )

    def _store_oob(
        self, stream: bytes, buffers: list[memoryview], ns: int, db_key: Any, raw: bool
    ) -> Stored:
        """Write a pickle and its out-of-band buffers, raw, to one value file."""
        pieces, total = _oob.layout(stream, buffers)
        mode = KIND_PICKLE | FLAG_FILE | FLAG_OOB
        if not self._signing:
            pending = self.files.write(pieces)
            return Stored(mode, None, pending.name, total, total, None, pending)
        mode |= FLAG_SIGNED
        prefix = signature_prefix(ns, signature_key(db_key, raw), mode)
        # The buffers are hashed in other threads while this one writes them.
        import concurrent.futures  # not with the package: it loads logging and traceback

        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            digests = pool.submit(
                _oob.chunk_digests,
                total,
                len(pieces[0]) + len(pieces[1]),  # header and stream
                functools.partial(_oob.parts_between, pieces),
            )
            pending = self.files.write(pieces)
            known = digests.result()
            sig = self.signer.sign(_chunk_message(prefix, known, total))
        pending.on_publish = functools.partial(_oob.verified_files.add, value=known, settled=False)
        return Stored(mode, None, pending.name, total, total, sig, pending)

    def _fetch_oob(
        self, mode: int, filename: str | None, ns: int, db_key: Any, raw: bool,
        sig: bytes | None, size: int, mmap_mode: str | None, unpickle: bool = True,
    ) -> Any:  # fmt: skip
        """Load a pickle with out-of-band buffers, verified; mapped from the file if asked."""
        if mode & KIND_MASK != KIND_PICKLE or not mode & FLAG_FILE or filename is None:
            raise IntegrityError("an out-of-band entry must be a pickle in a value file")
        signing = self._signing
        if signing and not mode & FLAG_SIGNED:
            raise IntegrityError("refusing to load an unsigned payload")
        check = None
        if signing:
            prefix = signature_prefix(ns, signature_key(db_key, raw), mode)

            def check(digests: list[bytes | None]) -> None:
                if not self.signer.verify(_chunk_message(prefix, digests, size), sig):
                    raise IntegrityError("value file failed signature verification")

        handle, info = self.files.open_sized(filename, size)
        with handle:
            access = MMAP_MODES[mmap_mode] if mmap_mode is not None else None
            return _oob.load(handle, info, size, access, check, unpickle=unpickle)

    def _store_serialized(self, data: bytes, ns: int, db_key: Any, raw: bool) -> Stored:
        vsize = len(data)
        payload, compressed = self._maybe_compress(data)
        mode = self.kind | (FLAG_ZSTD if compressed else 0)
        if len(payload) >= self.min_file_size:
            mode |= FLAG_FILE
        prefix = b""
        if self._signing:
            mode |= FLAG_SIGNED
            prefix = signature_prefix(ns, signature_key(db_key, raw), mode)
        if mode & FLAG_FILE:
            digest = self.signer.hasher(prefix) if mode & FLAG_SIGNED else None
            view = memoryview(payload)
            chunks = (view[i : i + CHUNK] for i in range(0, len(payload), CHUNK))
            if mode & (FLAG_SIGNED | FLAG_ZSTD):  # verified by its tag or its zstd checksum
                pending = self.files.write(chunks, digest=digest)
            else:
                return self._write_checked(mode, chunks)
            sig = None
            if digest is not None:
                digest.update(signature_suffix(vsize))
                sig = digest.digest()
            return Stored(mode, None, pending.name, pending.stored_bytes, vsize, sig, pending)
        head = INLINE_HEAD.pack(vsize)
        if mode & FLAG_SIGNED:
            tag = self.signer.sign(prefix + payload + signature_suffix(vsize))
            self._verified.add(tag, (ns, db_key, raw, mode, vsize, payload))
            head += tag
        return Stored(mode, head + payload, None, 0, vsize, None)

    def _store_large(self, value: bytes | str, ns: int, db_key: Any, raw: bool) -> Stored:
        if isinstance(value, str):
            kind = KIND_TEXT
            step = CHUNK // 4
            chunks: Iterable[bytes | memoryview] = (
                value[i : i + step].encode("utf-8", "surrogatepass")
                for i in range(0, len(value), step)
            )
            sample = _spread_sample(value).encode("utf-8", "surrogatepass")
            size = -1
        else:
            # A bytes value in a file is the file itself, uncompressed, as in diskcache:
            # ``get(key, read=True).name`` is a path whose contents are the value.
            view = memoryview(value)
            chunks = (view[i : i + CHUNK] for i in range(0, len(value), CHUNK))
            return self._write_checked(KIND_BYTES | FLAG_FILE, chunks)
        return self._write_file(kind, chunks, sample, ns, db_key, raw, size)

    def _write_checked(self, mode: int, chunks: Iterable[bytes | memoryview]) -> Stored:
        """Write an unsigned, uncompressed value file with its checksum in ``sig``."""
        pending = self.files.write(chunks, checksum=True)
        sig = pending.checksum
        pending.on_publish = functools.partial(_checksums.record_written, sig)
        size = pending.stored_bytes
        return Stored(mode, None, pending.name, size, pending.input_bytes, sig, pending)

    def _store_stream(self, reader: Any, ns: int, db_key: Any, raw: bool) -> Stored:
        read = getattr(reader, "read", None)
        if not callable(read):
            raise TypeError(
                f"value must be a readable binary file when read=True, not {type(reader).__name__}"
            )
        first = read(_SAMPLE)
        if not isinstance(first, (bytes, bytearray)):
            raise TypeError(
                f"value.read() must return bytes when read=True, not {type(first).__name__}"
            )

        def chunks() -> Iterator[bytes]:
            if first:
                yield bytes(first)
            while True:
                chunk = read(CHUNK)
                if not chunk:
                    return
                yield chunk

        return self._write_file(KIND_BYTES, chunks(), b"", ns, db_key, raw)  # stored as given

    def _write_file(
        self,
        kind: int,
        chunks: Iterable[bytes | memoryview],
        sample: bytes,
        ns: int,
        db_key: Any,
        raw: bool,
        size: int = -1,
    ) -> Stored:
        compress = self._worth_compressing(sample)
        transform = None
        if compress:  # a known size goes into the frame, so a read decodes it in one call
            compressor = self._threaded_compressor() if size >= _THREADED else self._compressor()
            transform = compressor.compressobj(size=size)
        mode = kind | FLAG_FILE | (FLAG_ZSTD if compress else 0)
        if not compress:
            return self._write_checked(mode, chunks)
        digest = None
        if compress and self._signing:  # verified before it is ever decompressed
            mode |= FLAG_SIGNED
            digest = self.signer.hasher(signature_prefix(ns, signature_key(db_key, raw), mode))
        pending = self.files.write(chunks, transform=transform, digest=digest)
        sig = None
        if digest is not None:
            digest.update(signature_suffix(pending.input_bytes))
            sig = digest.digest()
        return Stored(
            mode, None, pending.name, pending.stored_bytes, pending.input_bytes, sig, pending
        )

    def fetch_row(
        self,
        mode: int,
        filename: str | None,
        value: Any,
        read: bool,
        *,
        ns: int = 0,
        db_key: Any = b"",
        raw: bool = True,
        sig: bytes | None = None,
        vsize: int = 0,
        size: int = 0,
        mmap_mode: str | None = None,
    ) -> Any:
        """Turn a row back into its value; ``IntegrityError`` when it fails verification.

        With *mmap_mode*, the out-of-band buffers of a pickled value (numpy arrays) are
        mapped from the value file instead of read into memory.
        """
        check_columns(mode, filename, sig, vsize, size)
        kind = mode & KIND_MASK
        if kind == KIND_NATIVE:
            return value
        if kind == KIND_DISKCACHE:
            if not self.hooked:
                raise IntegrityError("entry was written through diskcache-style Disk hooks")
            return self.fetch_hooked(mode, filename, value, read, ns, db_key, raw, sig, size)
        if kind == KIND_DCPICKLE:
            return self.loads(
                self.payload(mode, filename, value, ns, db_key, raw, sig, vsize, size)
            )
        if mode & FLAG_OOB:
            return self._fetch_oob(mode, filename, ns, db_key, raw, sig, size, mmap_mode)
        if read and kind == KIND_BYTES and mode & FLAG_FILE:
            if filename is None:
                raise IntegrityError("a file-backed entry has no file name")
            return self._open_stream(mode, filename, ns, db_key, raw, sig, vsize)
        data = self.payload(mode, filename, value, ns, db_key, raw, sig, vsize, size)
        if kind == KIND_BYTES:
            return data
        if kind == KIND_TEXT:
            try:
                return data.decode("utf-8", "surrogatepass")
            except UnicodeDecodeError as exc:  # unsigned text can be changed; never raise
                raise IntegrityError(f"stored text is not UTF-8: {exc}") from exc
        if len(data) >= LARGE:
            return load_paused(self.loads, data)
        return self.loads(data)

    def payload(
        self,
        mode: int,
        filename: str | None,
        value: Any,
        ns: int,
        db_key: Any,
        raw: bool,
        sig: bytes | None,
        vsize: int,
        size: int,
    ) -> bytes:
        """Read, verify and decompress a stored payload; never deserializes it.

        An out-of-band entry's payload is its whole value file.
        """
        check_columns(mode, filename, sig, vsize, size)
        kind = mode & KIND_MASK
        if mode & FLAG_OOB:
            if filename is None:
                raise IntegrityError("a file-backed entry has no file name")
            self._fetch_oob(mode, filename, ns, db_key, raw, sig, size, "r", unpickle=False)
            return self.files.read(filename, size)
        if kind == KIND_DCPICKLE:
            return self._diskcache_pickle(mode, filename, value, ns, db_key, raw, sig, vsize, size)
        if mode & FLAG_FILE:
            if filename is None:
                raise IntegrityError("a file-backed entry has no file name")
            if mode & (FLAG_ZSTD | FLAG_SIGNED):
                data = self.files.read(filename, size)
            else:
                # Unsigned and uncompressed: checked against its checksum, when it has one.
                checksum = sig if _checksums.recorded(filename, sig) else None
                data = self.files.read(filename, size, checksum)
                if kind in (KIND_BYTES, KIND_TEXT):
                    return data  # read whole and checked: nothing to verify or expand
                vsize = size  # diskcache's own files record no decoded length
        else:
            data, vsize, inline_sig = split_inline(mode, value)
            sig = inline_sig if mode & FLAG_SIGNED else sig
        raw_kind = kind in (KIND_BYTES, KIND_TEXT)
        if not raw_kind and kind != self.kind:
            raise IntegrityError(f"entry was written by another serializer (kind {kind})")
        if self._signing and (not raw_kind or mode & FLAG_ZSTD):
            self._verify(mode, data, ns, db_key, raw, sig, vsize)
        return self._decode(mode, data, vsize)

    def _diskcache_pickle(
        self, mode: int, filename: str | None, value: Any, ns: int, db_key: Any, raw: bool,
        sig: bytes | None, vsize: int, size: int,
    ) -> bytes:  # fmt: skip
        """The bare pickle of a ``MODE_PICKLE`` row, verified against the tag in ``sig``.

        diskcache stores the pickle itself, inline or in a file. Such a row is loaded only
        once ``adopt_diskcache(trust=True)`` has signed it (or when signing is off).
        """
        if self.kind != KIND_PICKLE:
            raise IntegrityError("entry is a pickle, which this serializer never loads")
        data = self._bare_pickle(value, filename, size)
        if self._signing:
            if sig is None:
                raise UntrustedPickle("a pickle written by diskcache, not yet trusted")
            self._verify(mode | FLAG_SIGNED, data, ns, db_key, raw, sig, vsize)
        return data

    def _bare_pickle(self, value: Any, filename: str | None, size: int) -> bytes:
        """A ``MODE_PICKLE`` row's pickle, from ``value`` or from its file (never loaded)."""
        if value is not None:
            if type(value) is not bytes:
                raise IntegrityError(f"a pickle is stored as {type(value).__name__}")
            return value
        if filename is not None:
            return self.files.read(filename, size)
        raise IntegrityError("a pickled entry has neither a value nor a file")

    def sign_diskcache_pickle(
        self, value: Any, filename: str | None, ns: int, db_key: Any, raw: bool, size: int
    ) -> tuple[bytes, int]:
        """The tag and length that make a diskcache pickle row load (never unpickles it)."""
        data = self._bare_pickle(value, filename, size)
        mode = KIND_DCPICKLE | FLAG_SIGNED
        prefix = signature_prefix(ns, signature_key(db_key, raw), mode)
        return self.signer.sign(prefix + data + signature_suffix(len(data))), len(data)

    def fetch_inline(self, mode: int, value: Any, ns: int, db_key: Any, raw: bool) -> Any:
        """The value of a row whose payload of this Disk's kind is inline in ``value``.

        ``Cache.get``'s common path for pickled values: the checks of :meth:`fetch_row`
        for that one case, without its dispatch. The caller has seen that *mode* is an
        ``int`` of this kind without the file, pinned or out-of-band flags.
        """
        if mode >= MODE_LIMIT:
            raise IntegrityError(f"an entry has an invalid mode {mode!r}")
        data, vsize, sig = split_inline(mode, value)
        if self._signing:
            self._verify(mode, data, ns, db_key, raw, sig, vsize)
        return self.loads(self._decode(mode, data, vsize))

    def _verify(
        self, mode: int, data: bytes, ns: int, db_key: Any, raw: bool, sig: Any, vsize: int
    ) -> None:
        if not mode & FLAG_SIGNED:
            raise IntegrityError("refusing to load an unsigned payload")
        row = (ns, db_key, raw, mode & ~FLAG_PINNED, vsize, data)
        if self._verified.known(sig, row):
            return
        prefix = signature_prefix(ns, signature_key(db_key, raw), mode)
        if not self.signer.verify_parts((prefix, data, signature_suffix(vsize)), sig):
            raise IntegrityError("payload failed signature verification")
        self._verified.add(sig, row)

    def _decode(self, mode: int, data: bytes, vsize: int) -> bytes:
        if not mode & FLAG_ZSTD:
            if len(data) != vsize:
                raise IntegrityError(f"payload holds {len(data)} bytes, expected {vsize}")
            return data
        zstd = _zstd()
        try:
            declared = zstd.frame_content_size(data)
            if declared not in (vsize, -1):
                raise IntegrityError(f"compressed payload declares {declared} bytes, not {vsize}")
            out = self._decompressor().decompress(data, max_output_size=vsize)
        except zstd.ZstdError as exc:
            raise IntegrityError(f"compressed payload is damaged: {exc}") from exc
        if len(out) != vsize:
            raise IntegrityError(f"payload decompressed to {len(out)} bytes, expected {vsize}")
        return out

    def _open_stream(
        self, mode: int, filename: str, ns: int, db_key: Any, raw: bool, sig: bytes | None,
        vsize: int,
    ) -> BinaryIO:  # fmt: skip
        handle = self.files.open(filename)
        if not mode & FLAG_ZSTD:
            return handle
        if self._signing:
            try:
                self._verify_file(handle, mode, ns, db_key, raw, sig, vsize)
            except BaseException:
                handle.close()
                raise
            handle.seek(0)
        reader = _zstd().ZstdDecompressor().stream_reader(handle, closefd=True)
        return io.BufferedReader(reader)

    def _verify_file(
        self, handle: BinaryIO, mode: int, ns: int, db_key: Any, raw: bool, sig: bytes | None,
        vsize: int,
    ) -> None:  # fmt: skip
        """Check a compressed file's tag in one streaming pass, before anything is expanded."""
        if not mode & FLAG_SIGNED or sig is None:
            raise IntegrityError("refusing to expand an unsigned compressed file")
        digest = self.signer.hasher(signature_prefix(ns, signature_key(db_key, raw), mode))
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
        digest.update(signature_suffix(vsize))
        if not digest.verify(sig):
            raise IntegrityError("value file failed signature verification")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._directory!r})"


def _chunk_message(prefix: bytes, digests: list[bytes | None], total: int) -> bytes:
    """What the tag of a value file with out-of-band buffers signs: its chunk digests."""
    return prefix + b"".join(d or b"" for d in digests) + signature_suffix(total)


def _spread_sample(data: Any) -> Any:
    """Up to ``_SAMPLE`` items of *data*, from its start, middle and end: a large value's
    compressibility is judged on more than its first bytes."""
    if len(data) <= _SAMPLE:
        return data
    third = _SAMPLE // 3
    middle = len(data) // 2
    return data[:third] + data[middle : middle + third] + data[-third:]
