"""Turn-taking and clean timing conditions shared by the workloads.

Engines take turns in rounds whose order rotates (A, B, C; then B, C, A; then C, A, B),
so a slow patch of machine time (another process, thermal throttling, a page cache
flush) lands on every engine in the same proportion instead of on whichever ran last.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager


def turns(engines: Sequence[str], rounds: int) -> Iterator[tuple[int, str]]:
    """Yield ``(round, engine)`` for ``rounds`` rounds, rotating who goes first each round."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds!r}")
    order = list(engines)
    for number in range(rounds):
        shift = number % len(order) if order else 0
        for engine in order[shift:] + order[:shift]:
            yield number, engine


def split(count: int, parts: int) -> list[range]:
    """Split ``range(count)`` into ``parts`` contiguous slices differing in size by at most one."""
    if parts < 1:
        raise ValueError(f"parts must be at least 1, got {parts!r}")
    if count < 0:
        raise ValueError(f"count must not be negative, got {count!r}")
    base, extra = divmod(count, parts)
    slices, start = [], 0
    for index in range(parts):
        stop = start + base + (1 if index < extra else 0)
        slices.append(range(start, stop))
        start = stop
    return slices


@contextmanager
def quiet_gc() -> Iterator[None]:
    """Collect garbage, then keep the collector off while a timed batch runs.

    A collection pause lands on whichever operation happens to allocate at that moment;
    turning it off for a bounded batch keeps those pauses out of every engine's tail.
    """
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def per_call(action: Callable[[str], object], keys: Sequence[str]) -> list[int]:
    """Call *action* on each key in turn; return each call's duration in nanoseconds."""
    clock = time.perf_counter_ns
    times = []
    for key in keys:
        start = clock()
        action(key)
        times.append(clock() - start)
    return times
