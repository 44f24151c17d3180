"""Forced checkpoints, run by a background thread rather than by the write that asked.

Value files that commits dropped wait for a checkpoint before they are removed (see
``_fs/_durability.py``); once they hold the store's ``defer_limit``, one is forced. That
checkpoint syncs every value file written since the last one and then unlinks the dropped
ones: about 0.3 s after 25 overwrites of a 10 MB value. Run inline, it made one write in
25 wait that long (a p99 thirteen times diskcache's, which syncs nothing). One daemon
thread per process runs them instead, for any store that asks; a store whose waiting files
reach twice its limit (the disk cannot keep up) forces the checkpoint itself, so the space
held stays bounded.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._store import Store

#: A store whose waiting files hold this many times its limit checkpoints in its own thread.
BACKLOG = 2

_queue: deque[weakref.ref[Store]] = deque()  # asked for, not yet started
_running = False  # a checkpoint taken from the queue is under way
_wake = threading.Condition()
_thread: threading.Thread | None = None


def request(store: Store) -> bool:
    """Ask the background thread to checkpoint *store*; False if it cannot be started (at
    interpreter shutdown), and the caller should checkpoint itself."""
    global _thread
    with _wake:
        if any(ref() is store for ref in _queue):
            return True
        if _thread is None:
            thread = threading.Thread(target=_run, name="diskstore-checkpoint", daemon=True)
            try:
                thread.start()
            except RuntimeError:
                return False
            _thread = thread
        _queue.append(weakref.ref(store))
        _wake.notify_all()
    return True


def wait_idle(timeout: float | None = None) -> bool:
    """Wait until no checkpoint is queued or running; False if *timeout* passed first.

    For measurements that must not time one program's background work against another's.
    """
    with _wake:
        return _wake.wait_for(lambda: not _queue and not _running, timeout)


def _run() -> None:
    global _running
    while True:
        with _wake:
            while not _queue:
                _wake.wait()
            # Taken off the queue before it starts: a request while it runs (files dropped
            # after it looked) queues the store again rather than finding it still queued.
            store = _queue.popleft()()
            _running = True
        try:
            if store is not None:
                with contextlib.suppress(Exception):
                    store.checkpoint_behind()
        finally:
            with _wake:
                _running = False
                _wake.notify_all()
        del store


def _forget_in_child() -> None:
    global _thread, _wake, _queue, _running
    _thread = None  # threads do not survive fork; the child starts its own on demand
    _wake = threading.Condition()
    _queue = deque()
    _running = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
