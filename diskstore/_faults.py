"""Deterministic crash points for fault tests.

Setting ``DISKSTORE_CRASH_AT=<point>[:<n>]`` in a process's environment makes it call
``os._exit(70)`` the *n*-th time (default: first) execution reaches ``<point>``. The points
sit at the moments a crash is most likely to leave damage: after a value file is written,
after a commit, and before an old value file is unlinked. Without the variable the check is
a single global test.
"""

from __future__ import annotations

import os

CRASH_EXIT_CODE = 70

_target: str | None = None
_remaining = 0


def _configure() -> None:
    global _target, _remaining
    spec = os.environ.get("DISKSTORE_CRASH_AT", "")
    if not spec:
        _target = None
        return
    point, _, count = spec.partition(":")
    _target = point
    _remaining = int(count) if count else 1


def crash_point(point: str) -> None:
    """Exit the process abruptly here if this point was chosen."""
    global _remaining
    if _target is None or point != _target:
        return
    _remaining -= 1
    if _remaining <= 0:
        os._exit(CRASH_EXIT_CODE)


_configure()
