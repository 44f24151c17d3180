"""Deterministic crash points for fault tests, inert unless a test arms them.

A test's child process calls :func:`arm`, which reads ``DISKSTORE_CRASH_AT=<point>[:<n>]``
from the environment; from then on the process calls ``os._exit(70)`` the *n*-th time
(default: first) execution reaches ``<point>``. The points sit at the moments a crash is most
likely to leave damage: after a value file is written, after a commit, and before an old
value file is unlinked.

Nothing outside the test suite calls :func:`arm`, so in an installed program the variable
does nothing: setting it (by accident, or by someone who controls the environment) cannot
make a program that uses diskstore exit. Unarmed, each crash point is a single global test.
"""

from __future__ import annotations

import os

CRASH_EXIT_CODE = 70
ENV_VAR = "DISKSTORE_CRASH_AT"

_target: str | None = None
_remaining = 0


def arm() -> None:
    """Activate the crash point named by ``DISKSTORE_CRASH_AT`` (for fault tests only)."""
    global _target, _remaining
    spec = os.environ.get(ENV_VAR, "")
    if not spec:
        _target = None
        return
    point, _, count = spec.partition(":")
    _target = point
    _remaining = int(count) if count else 1


def crash_point(point: str) -> None:
    """Exit the process abruptly here if a test armed this point."""
    global _remaining
    if _target is None or point != _target:
        return
    _remaining -= 1
    if _remaining <= 0:
        os._exit(CRASH_EXIT_CODE)
