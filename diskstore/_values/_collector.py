"""Pausing the cyclic garbage collector while a large value is rebuilt.

Unpickling (or decoding JSON into) a value of many containers allocates them faster than
the collector's thresholds expect: it runs again and again over objects that are all alive,
and the older generations grow with every pass. Measured on a 1 MB JSON-like pickle, that
is a third of ``pickle.loads``. The collector is paused while a large payload is loaded,
and resumed by the last loader to finish, only if it was running before.

A program that calls ``gc.disable()`` while a load is in progress in another thread has
the collector enabled again when that load ends.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Callable
from typing import Any

#: Payloads from this many bytes on are loaded with the collector paused.
LARGE = 64 << 10

_lock = threading.Lock()
_loading = 0
_resume = False


def load_paused(loads: Callable[[bytes], Any], data: bytes) -> Any:
    """``loads(data)`` with the cyclic garbage collector paused."""
    global _loading, _resume
    with _lock:
        if _loading == 0:
            _resume = gc.isenabled()
            gc.disable()
        _loading += 1
    try:
        return loads(data)
    finally:
        with _lock:
            _loading -= 1
            if _loading == 0 and _resume:
                gc.enable()


def _after_fork() -> None:
    global _lock, _loading
    _lock = threading.Lock()
    if _loading and _resume:
        gc.enable()
    _loading = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
