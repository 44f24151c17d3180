"""Memoize options for heavy results: revalidation, round trips, mapped arrays, callbacks.

They are keyword-only and validated here, once, when a function is decorated; see
:func:`diskstore.memoize` for what each does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import TypedDict

from .._common._hooks import OnHit, OnMiss
from .._values._disk import MMAP_MODES


class MemoizeExtras(TypedDict, total=False):
    """The keyword options of ``memoize`` beyond diskcache's (typed for ``**extras``)."""

    refresh_after: float | None
    round_trip: bool
    mmap_mode: str | None
    on_hit: OnHit | None
    on_miss: OnMiss | None


@dataclass(frozen=True)
class Extras:
    """Validated :class:`MemoizeExtras`."""

    refresh_after: float | None = None
    round_trip: bool = False
    mmap_mode: str | None = None
    on_hit: OnHit | None = None
    on_miss: OnMiss | None = None


def check_seconds(name: str, value: object) -> float:
    """A finite number of seconds >= 0, or a ``TypeError``/``ValueError`` naming *name*."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
    return seconds


#: Every keyword memoize takes, for "did you mean" (the extras are added below).
OPTIONS = (
    "name",
    "typed",
    "expire",
    "tag",
    "ignore",
    "version",
    "hash_source",
    "key",
    "store_if",
    "single_flight",
    "lock_timeout",
)


def check_extras(extras: MemoizeExtras) -> Extras:
    unknown = set(extras) - set(MemoizeExtras.__annotations__)
    if unknown:
        import difflib  # only for the error message

        names = sorted(unknown)
        known = [*OPTIONS, *MemoizeExtras.__annotations__]
        close = {name: difflib.get_close_matches(name, known, n=1) for name in names}
        hints = [
            f"{match[0]!r}" + (f" for {name!r}" if len(names) > 1 else "")
            for name, match in close.items()
            if match
        ]
        hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
        raise TypeError(f"memoize got unexpected keyword arguments {names!r}{hint}")
    refresh_after = extras.get("refresh_after")
    if refresh_after is not None:
        refresh_after = check_seconds("refresh_after", refresh_after)
    round_trip = extras.get("round_trip", False)
    if not isinstance(round_trip, bool):
        raise TypeError(f"round_trip must be a bool, got {round_trip!r}")
    mmap_mode = extras.get("mmap_mode")
    if mmap_mode is not None and mmap_mode not in MMAP_MODES:
        raise ValueError(f"mmap_mode must be 'r', 'c' or None, got {mmap_mode!r}")
    for name in ("on_hit", "on_miss"):
        callback = extras.get(name)
        if callback is not None and not callable(callback):
            raise TypeError(f"{name} must be a callable or None, got {callback!r}")
    return Extras(
        refresh_after=refresh_after,
        round_trip=round_trip,
        mmap_mode=mmap_mode,
        on_hit=extras.get("on_hit"),
        on_miss=extras.get("on_miss"),
    )
