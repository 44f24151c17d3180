"""The near cache: recently read items kept in this process, invalidated by the server.

Coherence comes from Redis's own client-side-caching support (``CLIENT TRACKING`` in
broadcast mode). A background thread owns two connections: a *listener* subscribed to
``__redis__:invalidate``, and a *control* connection that turned tracking on with
``REDIRECT <listener> BCAST PREFIX <namespace's item prefix>``. From then on the server
sends the listener the name of every item key of the namespace that any client changes,
deletes, expires or evicts, and the thread drops it from the near cache.

Reading never races with an invalidation: a reader notes the invalidation *generation*
before it asks the server and keeps what it read only if no invalidation arrived meanwhile.
A write the server served after the read sends its invalidation after the reply, so it
either arrives before the reader keeps the value (and the value is not kept) or after (and
drops it). Stale reads are therefore bounded by the time an invalidation takes to reach
the listener (the staleness window, measured in ``docs/benchmarks.md``). This process's
own writes drop their keys at once.

When either connection fails, the near cache is emptied and bypassed until both are back
and tracking is on again; the thread checks both every ``_HEALTH`` seconds, so a silently
dead connection costs at most that long plus the timeout. Values are kept as the server's
verified fields and decoded on every hit, so callers get fresh objects.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

import redis
import redis.exceptions as rex

__all__ = ["NearCache"]

_CHANNEL = b"__redis__:invalidate"
_HEALTH = 1.0
#: How long the thread waits for a message before looking at the clock (and at ``close``).
_POLL = 0.05


class NearCache:
    """A bounded LRU of item fields, kept coherent by server-side invalidation."""

    def __init__(self, client: redis.Redis, prefix: bytes, *, items: int, max_bytes: int) -> None:
        self._pool = client.connection_pool
        self._prefix = prefix
        self._items = items
        self._max_bytes = max_bytes
        self._bytes = 0
        self._entries: OrderedDict[bytes, tuple[Any, int]] = OrderedDict()
        self._mutex = threading.Lock()
        self.generation = 0
        self.ready = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="diskstore-near", daemon=True)
        self._thread.start()

    # -- the cache -------------------------------------------------------------------------
    def get(self, rkey: bytes) -> Any:
        """The fields kept for ``rkey``, or None."""
        with self._mutex:
            found = self._entries.get(rkey)
            if found is None:
                return None
            self._entries.move_to_end(rkey)
            return found[0]

    def put(self, rkey: bytes, fields: Any, generation: int) -> None:
        """Keep ``fields`` read for ``rkey`` unless an invalidation arrived since
        ``generation`` was read (or the near cache is not coherent now)."""
        size = sum(len(field) for field in fields if field is not None) + len(rkey)
        if size > self._max_bytes:
            return
        with self._mutex:
            if not self.ready or generation != self.generation:
                return
            old = self._entries.pop(rkey, None)
            if old is not None:
                self._bytes -= old[1]
            self._entries[rkey] = (fields, size)
            self._bytes += size
            while len(self._entries) > self._items or self._bytes > self._max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped

    def discard(self, rkey: bytes) -> None:
        """Forget ``rkey`` (this process wrote it)."""
        with self._mutex:
            self.generation += 1
            old = self._entries.pop(rkey, None)
            if old is not None:
                self._bytes -= old[1]

    def flush(self) -> None:
        """Forget everything."""
        with self._mutex:
            self.generation += 1
            self._entries.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    # -- invalidation ----------------------------------------------------------------------
    def _run(self) -> None:
        pause = 0.05
        while not self._stop.is_set():
            listener = control = None
            try:
                listener, control = self._connect()
                pause = 0.05
                self._listen(listener, control)
            except (rex.RedisError, OSError):
                pass
            finally:
                with self._mutex:
                    self.ready = False
                self.flush()
                for connection in (listener, control):
                    if connection is not None:
                        connection.disconnect()
            self._stop.wait(pause)
            pause = min(pause * 2, 2.0)

    def _connection(self) -> Any:
        # RESP2 on purpose: invalidations then come as ordinary pub/sub messages, read the
        # same way whatever protocol the client's other connections speak.
        options = {
            name: value
            for name, value in self._pool.connection_kwargs.items()
            if not name.startswith("maint_notifications")  # a RESP3-only feature
        }
        options["protocol"] = 2
        return self._pool.connection_class(**options)

    def _connect(self) -> tuple[Any, Any]:
        listener = self._connection()
        listener.send_command("CLIENT", "ID")
        listener_id = listener.read_response()
        listener.send_command("SUBSCRIBE", _CHANNEL)
        listener.read_response()
        control = self._connection()
        control.send_command(
            "CLIENT", "TRACKING", "ON", "REDIRECT", listener_id, "BCAST", "PREFIX", self._prefix
        )
        control.read_response()
        self.flush()
        with self._mutex:
            self.ready = True
        return listener, control

    def _listen(self, listener: Any, control: Any) -> None:
        checked = time.monotonic()
        pong_due: float | None = None
        while not self._stop.is_set():
            if listener.can_read(timeout=_POLL):
                message = listener.read_response()
                kind = message[0] if isinstance(message, list) and message else None
                if kind == b"message" and len(message) == 3:
                    keys = message[2]
                    if keys is None:  # FLUSHDB / FLUSHALL
                        self.flush()
                    else:
                        for rkey in keys:
                            self.discard(rkey)
                elif kind == b"pong":
                    pong_due = None
            now = time.monotonic()
            if pong_due is not None and now > pong_due:
                raise rex.ConnectionError("the invalidation connection stopped answering")
            if now - checked >= _HEALTH:
                listener.send_command("PING")
                control.send_command("PING")
                control.read_response()
                checked = now
                if pong_due is None:
                    pong_due = now + 3 * _HEALTH

    def stop(self) -> None:
        """Ask the invalidation thread to stop (it drops its connections on the way out)."""
        self._stop.set()

    def close(self) -> None:
        """Stop the invalidation thread, wait for it, and forget everything."""
        self.stop()
        self._thread.join(timeout=5)
        self.flush()
