"""A lock on a Redis server for single flight across machines.

``SET key token NX PX ttl`` takes the lock; the random token says who holds it. The lock
expires after ``ttl`` unless its holder renews it: a background thread extends it every
``ttl / 3`` while the holder computes, so a long computation keeps its lock, and a holder
that crashed (or lost the network) loses it within ``ttl``. Renewal and release are scripts
that act only while the key still holds the caller's token, so a holder whose lock already
expired can neither extend nor release the lock of the next holder.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

from . import _scripts
from ._connection import ERRORS

__all__ = ["RedisLock"]

#: Seconds a lock lives without renewal.
DEFAULT_TTL = 30.0
_POLL_MIN, _POLL_MAX = 0.002, 0.05


class RedisLock:
    """One key's single-flight lock (see :class:`diskstore._memo._backend.FlightLock`)."""

    def __init__(self, client: Any, name: bytes, *, ttl: float = DEFAULT_TTL) -> None:
        self._client = client
        self.name = name
        self.ident = "redis:" + name.decode("utf-8", "backslashreplace")
        self._ttl_ms = max(1, int(ttl * 1000))
        self._token: bytes | None = None
        self._stop = threading.Event()

    def acquire(self, timeout: float | None) -> bool:
        """Wait up to ``timeout`` seconds for the lock; False if it stayed taken (or the
        server is unreachable: the caller then computes without cross-machine dedup)."""
        token = secrets.token_hex(16).encode()
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = _POLL_MIN
        try:
            while not self._client.set(self.name, token, nx=True, px=self._ttl_ms):
                if deadline is not None and time.monotonic() + pause > deadline:
                    return False
                time.sleep(pause)
                pause = min(pause * 2, _POLL_MAX)
        except ERRORS:
            return False
        self._token = token
        self._stop.clear()
        threading.Thread(target=self._renew, args=(token,), daemon=True).start()
        return True

    def _renew(self, token: bytes) -> None:
        renew = self._client.register_script(_scripts.RENEW)
        while not self._stop.wait(self._ttl_ms / 3000):
            try:
                if not renew(keys=[self.name], args=[token, self._ttl_ms]):
                    return  # expired and perhaps taken by another holder: not ours now
            except ERRORS:
                continue

    def release(self) -> None:
        """Release the lock if it still holds this holder's token."""
        token, self._token = self._token, None
        self._stop.set()
        if token is None:
            return
        try:
            self._client.register_script(_scripts.RELEASE)(keys=[self.name], args=[token])
        except ERRORS:
            pass  # it expires by itself
