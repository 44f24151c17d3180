"""Authenticating serialized payloads with HMAC-SHA256.

Anyone who can write to a cache directory could otherwise plant a pickle that runs code in
every process reading the cache. Each pickled payload therefore carries a tag computed with a
secret that lives outside the directory; a payload is unpickled only after its tag verifies.

The secret comes from, in order: the ``secret=`` argument, the ``DISKSTORE_SECRET``
environment variable, or a random per-user key created on first use in the user's config
directory (mode 0600). ``secret=False`` turns signing off. A process that has none of the
three (no home directory, or a read-only one, and no ``XDG_CONFIG_HOME``) gets one
:class:`SecretUnavailableError` naming them.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._common._exceptions import DiskStoreError, SecretUnavailableError

SecretArg = bytes | str | bool | None
_Compare = Callable[[bytes, bytes], bool]

TAG_SIZE = 32
MIN_SECRET = 32  # bytes a secret read from the user's secret file must have
_BLOCK = 64  # SHA-256 block size
ENV_VAR = "DISKSTORE_SECRET"


class _Stream:
    """An HMAC being computed over data that arrives in pieces (a value file)."""

    __slots__ = ("_compare", "_inner", "_outer")

    def __init__(self, inner: Any, outer: Any, compare: _Compare) -> None:
        self._inner = inner
        self._outer = outer
        self._compare = compare

    def update(self, data: bytes) -> None:
        self._inner.update(data)

    def digest(self) -> bytes:
        outer = self._outer.copy()
        outer.update(self._inner.digest())
        return bytes(outer.digest())

    def verify(self, tag: bytes | None) -> bool:
        """Constant-time check that *tag* is the tag of the data seen so far."""
        if tag is None or len(tag) != TAG_SIZE:
            return False
        return self._compare(self.digest(), tag)


class Signer:
    """Computes and checks HMAC-SHA256 tags; a disabled signer signs nothing.

    The HMAC construction (RFC 2104) is keyed once: the hash states after the inner and
    outer padded keys are kept and copied per message, which costs a third of a one-shot
    ``hmac.digest`` call (OpenSSL looks the algorithm up on every call).
    """

    __slots__ = ("_compare", "_inner", "_outer")

    def __init__(self, key: bytes | None) -> None:
        self._compare: _Compare | None = None
        if key is None:
            self._inner = self._outer = None
            return
        # Imported by the first signer rather than with the package: hashlib loads OpenSSL,
        # milliseconds that a program with signing off never needs to spend.
        import hashlib
        import hmac

        self._compare = hmac.compare_digest
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in key))
        self._outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in key))

    @property
    def enabled(self) -> bool:
        return self._inner is not None

    def _seeded(self, data: bytes) -> Any:
        """A copy of the keyed inner hash that has read *data*; signing must be on."""
        if self._inner is None:
            raise RuntimeError("signing is disabled for this cache")
        inner = self._inner.copy()
        inner.update(data)
        return inner

    def sign(self, message: bytes) -> bytes:
        """Return the tag of *message* (the caller builds the message from all signed parts)."""
        inner = self._seeded(message)
        assert self._outer is not None
        outer = self._outer.copy()
        outer.update(inner.digest())
        return bytes(outer.digest())

    def hasher(self, prefix: bytes) -> _Stream:
        """Return an incremental HMAC seeded with *prefix*, for payloads streamed to files."""
        inner = self._seeded(prefix)
        assert self._compare is not None
        return _Stream(inner, self._outer, self._compare)

    def verify_parts(self, parts: tuple[bytes, ...], tag: bytes | None) -> bool:
        """Constant-time check that *tag* signs the concatenation of *parts* (no copy made)."""
        inner = self._inner
        if inner is None or tag is None or len(tag) != TAG_SIZE:
            return False
        inner = inner.copy()
        for part in parts:
            inner.update(part)
        assert self._outer is not None
        outer = self._outer.copy()
        outer.update(inner.digest())
        assert self._compare is not None
        return self._compare(outer.digest(), tag)

    def verify(self, message: bytes, tag: bytes | None) -> bool:
        """Constant-time check that *tag* is the tag of *message*."""
        if self._inner is None or tag is None or len(tag) != TAG_SIZE:
            return False
        assert self._compare is not None
        return self._compare(self.sign(message), tag)

    def __repr__(self) -> str:
        return f"Signer(enabled={self.enabled})"


def config_dir() -> Path:
    """The per-user directory holding the default secret.

    Raises ``RuntimeError`` when ``XDG_CONFIG_HOME`` is not set and the user has no home
    directory (no ``HOME``, and no entry in the password database).
    """
    base = os.environ.get("XDG_CONFIG_HOME")
    root = Path(base) if base else Path.home() / ".config"
    return root / "diskstore"


def secret_file() -> str:
    """Where the default secret file is, for messages: a path, or how it would be found."""
    try:
        return str(config_dir() / "secret")
    except RuntimeError:
        return "$XDG_CONFIG_HOME/diskstore/secret (this user has no home directory)"


def _unavailable(reason: str) -> SecretUnavailableError:
    return SecretUnavailableError(
        f"no signing secret: diskstore needs one to sign and verify pickled data, and {reason}. "
        "Give it one in any of three ways: pass secret=... when opening the cache; set the "
        f"{ENV_VAR} environment variable; or set XDG_CONFIG_HOME to a writable directory, "
        "where the secret is created as diskstore/secret. Every process that shares the "
        "cache needs the same secret."
    )


def _os_reason(exc: OSError, path: Path) -> str:
    """*exc* in words, once (``str(exc)`` repeats the errno and path)."""
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
    return f"{exc.strerror or exc}{where}"


def _check_private(path: Path) -> None:
    """A secret others can read (or write) lets them sign pickles: refuse to use it."""
    info = path.stat()
    if info.st_mode & 0o077 or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
        raise DiskStoreError(
            f"the secret file {path} must belong to you and be readable only by you "
            f"(chmod 600 {path})"
        )


def _load_or_create_user_secret() -> bytes:
    """The per-user secret, created on first use; :class:`SecretUnavailableError` when it
    can be neither read nor created (no home directory, or a read-only one: containers,
    daemons, CI users)."""
    try:
        directory = config_dir()
    except RuntimeError:
        raise _unavailable("this user has no home directory to keep one in") from None
    path = directory / "secret"
    try:
        return _read_or_create(directory, path)
    except OSError as exc:
        raise _unavailable(
            f"cannot read or create the secret file {path}: {_os_reason(exc, path)}"
        ) from exc


def _read_or_create(directory: Path, path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    if len(data.strip()) >= MIN_SECRET:
        _check_private(path)
        return data.strip()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Write under a private name, then link into place: whoever links first wins, and
    # nobody ever reads a half-written secret.
    temp = directory / f".secret-{os.getpid()}-{os.urandom(4).hex()}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, os.urandom(32).hex().encode("ascii"))
    finally:
        os.close(fd)
    try:
        os.link(temp, path)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise
    finally:
        os.unlink(temp)
    _check_private(path)
    secret = path.read_bytes().strip()
    if len(secret) < MIN_SECRET:
        # Someone else's file, or a damaged one: a short key would let anyone sign pickles.
        raise DiskStoreError(
            f"the secret in {path} is shorter than {MIN_SECRET} bytes; remove the file to "
            "have a new one created, or set DISKSTORE_SECRET"
        )
    return secret


def resolve_secret(secret: SecretArg) -> bytes | None:
    """Turn the ``secret=`` argument into key bytes, or ``None`` when signing is off."""
    if secret is False:
        return None
    if secret is True or secret is None:
        env = os.environ.get(ENV_VAR)
        if env:
            return env.encode("utf-8")
        return _load_or_create_user_secret()
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if isinstance(secret, (bytes, bytearray)):
        if not secret:
            raise ValueError("secret must not be empty (pass secret=False to disable signing)")
        return bytes(secret)
    raise TypeError(f"secret must be bytes, str, None or False, not {type(secret).__name__}")
