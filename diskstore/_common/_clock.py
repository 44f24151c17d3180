"""The wall clock that decides store times and expiry.

Every module asks ``_clock.now()`` at call time, so a test can replace this one function to
move time without sleeping. It looks ``time.time`` up on every call, so patching
``time.time`` (``unittest.mock``, freezegun) moves the cache's clock too, as in diskcache.
"""

from __future__ import annotations

import time


def now() -> float:
    """Seconds since the epoch, from ``time.time`` as it is at the moment of the call."""
    return time.time()
