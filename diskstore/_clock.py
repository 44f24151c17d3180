"""The wall clock that decides store times and expiry.

Every module asks ``_clock.now()`` at call time, so a test can replace this one function to
move time without sleeping.
"""

from __future__ import annotations

import time

now = time.time
