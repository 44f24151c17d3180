"""The near cache: recently read items kept in this process, invalidated by the server.

Coherence comes from Redis's own client-side-caching support (``CLIENT TRACKING`` in
broadcast mode). A background thread owns two connections per server: a *listener*
subscribed to ``__redis__:invalidate``, and a *control* connection that turned tracking on
with ``REDIRECT <listener> BCAST PREFIX <namespace's prefix>``. From then on the server
sends the listener the name of every key of the namespace that any client changes,
deletes, expires or evicts, and the thread drops it from the near cache. On a Redis Cluster
a server reports only the keys it holds, so the thread keeps such a pair on every master,
and reconnects them all when the set of masters changes (a failover, a new master).

Reading never races with an invalidation: a reader notes the invalidation *generation*
before it asks the server and keeps what it read only if no invalidation arrived meanwhile.
A write the server served after the read sends its invalidation after the reply, so it
either arrives before the reader keeps the value (and the value is not kept) or after (and
drops it). Stale reads are therefore bounded by the time an invalidation takes to reach
the listener (the staleness window, measured in ``docs/benchmarks.md``). This process's
own writes drop their keys at once.

When any connection fails, the near cache is emptied and bypassed until all are back and
tracking is on again; the thread checks them every ``_HEALTH`` seconds, so a silently
dead connection costs at most that long plus the timeout. Values are kept as the server's
strings (with their expiry time) and decoded on every hit, so callers get fresh objects.
"""

from __future__ import annotations

import select
import threading
import time
import weakref
from collections import OrderedDict
from typing import Any

import redis.exceptions as rex

from ._connection import is_cluster

__all__ = ["NearCache"]

_CHANNEL = b"__redis__:invalidate"
_HEALTH = 1.0
#: How long the thread waits for a message before looking at the clock (and at ``close``).
_POLL = 0.05


class NearCache:
    """A bounded LRU of item strings, kept coherent by server-side invalidation."""

    def __init__(self, shared: Any, prefix: bytes, *, items: int, max_bytes: int) -> None:
        # Weakly: the cache's finalizer stops this thread when the last view is dropped.
        # The client is opened (and a cluster found) by the thread if no read did it yet.
        self._shared = weakref.ref(shared)
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
        """``(string, expire time or None)`` kept for ``rkey``, or None."""
        with self._mutex:
            found = self._entries.get(rkey)
            if found is None:
                return None
            self._entries.move_to_end(rkey)
            return found[0]

    def lookup(self, rkey: bytes) -> bytes | None:
        """The item string kept for ``rkey`` if it has not expired, else None."""
        found = self.get(rkey)
        if found is None or (found[1] is not None and found[1] <= time.time()):
            return None
        return found[0]  # type: ignore[no-any-return]

    def put(self, rkey: bytes, entry: tuple[bytes, float | None], generation: int) -> None:
        """Keep ``entry`` read for ``rkey`` unless an invalidation arrived since
        ``generation`` was read (or the near cache is not coherent now)."""
        size = len(entry[0]) + len(rkey)
        if size > self._max_bytes:
            return
        with self._mutex:
            if not self.ready or generation != self.generation:
                return
            old = self._entries.pop(rkey, None)
            if old is not None:
                self._bytes -= old[1]
            self._entries[rkey] = (entry, size)
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
            pairs: list[tuple[Any, Any]] = []
            try:
                pools = self._pools()
                for pool in pools:
                    pairs.append(self._connect(pool))
                self.flush()
                with self._mutex:
                    self.ready = True
                pause = 0.05
                self._listen(pairs, {self._pool_name(pool) for pool in pools})
            except Exception:
                self._refresh_topology()
            finally:
                with self._mutex:
                    self.ready = False
                self.flush()
                for pair in pairs:
                    for connection in pair:
                        connection.disconnect()
            self._stop.wait(pause)
            pause = min(pause * 2, 2.0)

    def _client(self) -> Any:
        shared = self._shared()
        if shared is None:
            self._stop.set()
            raise rex.ConnectionError("the cache was dropped")
        return shared.client

    def _pools(self) -> list[Any]:
        """The connection pools of the server, or of every master of a cluster."""
        client = self._client()
        if is_cluster(client):
            return [node.redis_connection.connection_pool for node in client.get_primaries()]
        return [client.connection_pool]

    @staticmethod
    def _pool_name(pool: Any) -> str:
        options = pool.connection_kwargs
        return f"{options.get('host')}:{options.get('port')}:{options.get('path')}"

    def _masters(self) -> set[str]:
        try:
            return {self._pool_name(pool) for pool in self._pools()}
        except Exception:
            return set()

    def _refresh_topology(self) -> None:
        """After a failure on a cluster, ask it for its masters again (a failover)."""
        shared = self._shared()
        client = None if shared is None else shared.__dict__.get("client")
        if client is not None and is_cluster(client):
            try:
                client.nodes_manager.initialize()
            except Exception:
                pass

    @staticmethod
    def _connection(pool: Any) -> Any:
        # RESP2 on purpose: invalidations then come as ordinary pub/sub messages, read the
        # same way whatever protocol the client's other connections speak.
        options = {
            name: value
            for name, value in pool.connection_kwargs.items()
            if "maint_notifications" not in name  # a RESP3-only feature
        }
        options["protocol"] = 2
        return pool.connection_class(**options)

    def _connect(self, pool: Any) -> tuple[Any, Any]:
        listener = self._connection(pool)
        listener.send_command("CLIENT", "ID")
        listener_id = listener.read_response()
        listener.send_command("SUBSCRIBE", _CHANNEL)
        listener.read_response()
        control = self._connection(pool)
        control.send_command(
            "CLIENT", "TRACKING", "ON", "REDIRECT", listener_id, "BCAST", "PREFIX", self._prefix
        )
        control.read_response()
        return listener, control

    def _receive(self, listener: Any, pong_due: dict[Any, float | None]) -> None:
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
            pong_due[listener] = None

    def _listen(self, pairs: list[tuple[Any, Any]], masters: set[str]) -> None:
        checked = time.monotonic()
        listeners = [listener for listener, _ in pairs]
        pong_due: dict[Any, float | None] = dict.fromkeys(listeners)
        while not self._stop.is_set():
            if len(listeners) == 1:
                if listeners[0].can_read(timeout=_POLL):
                    self._receive(listeners[0], pong_due)
            else:
                waiting = [listener for listener in listeners if listener.can_read(timeout=0)]
                if not waiting:
                    select.select([listener._sock for listener in listeners], [], [], _POLL)
                for listener in waiting:
                    self._receive(listener, pong_due)
            now = time.monotonic()
            if any(due is not None and now > due for due in pong_due.values()):
                raise rex.ConnectionError("an invalidation connection stopped answering")
            if now - checked >= _HEALTH:
                for listener, control in pairs:
                    listener.send_command("PING")
                    control.send_command("PING")
                    control.read_response()
                    if pong_due[listener] is None:
                        pong_due[listener] = now + 3 * _HEALTH
                checked = now
                if len(masters) > 1 or is_cluster(self._client()):
                    current = self._masters()
                    if current and current != masters:
                        raise rex.ConnectionError("the cluster's masters changed")

    def stop(self) -> None:
        """Ask the invalidation thread to stop (it drops its connections on the way out)."""
        self._stop.set()

    def close(self) -> None:
        """Stop the invalidation thread, wait for it, and forget everything."""
        self.stop()
        self._thread.join(timeout=5)
        self.flush()
