"""What a workload is handed: the engines, the scale, the seed, and fresh directories.

:func:`interleave` is the loop almost every single-process workload shares: open each
engine on its own fresh directory, prepare it untimed, then let the engines take
rotating turns at timed batches, and close everything even when a batch fails.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import engines
from benchmarks.multiproc import WorkerPool
from benchmarks.scale import Scale
from benchmarks.timing import quiet_gc, turns

Samples = dict[str, dict[str, list[int]]]


@dataclass
class Context:
    """Run-wide settings plus the resources workloads share (temp root, worker pool)."""

    candidate: str
    scale: Scale
    seed: int
    root: Path
    _pool: WorkerPool | None = None
    _directories: list[Path] = field(default_factory=list)

    def directory(self, workload: str, engine: str) -> Path:
        """Return a new empty directory for ``engine`` in ``workload``."""
        path = Path(tempfile.mkdtemp(prefix=f"{workload}-{engine}-", dir=self.root))
        self._directories.append(path)
        return path

    def open(
        self,
        engine: str,
        directory: Path,
        settings: Mapping[str, Any] | None = None,
        *,
        fanout: bool = False,
    ) -> Any:
        """Open ``engine`` on ``directory`` with ``settings`` (sharded with ``fanout``)."""
        return engines.open_store(engine, directory, self.candidate, settings, fanout=fanout)

    def pool(self) -> WorkerPool:
        """Return the worker pool, starting it on first use."""
        if self._pool is None:
            self._pool = WorkerPool(self.candidate)
        return self._pool

    def release(self) -> None:
        """Delete the directories handed out so far (a workload's data is not kept)."""
        while self._directories:
            shutil.rmtree(self._directories.pop(), ignore_errors=True)

    def stop_pool(self) -> None:
        """Stop the worker pool, if started; the next :meth:`pool` call starts a fresh one."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def close(self) -> None:
        """Stop the worker pool and delete every directory."""
        self.stop_pool()
        self.release()


@dataclass
class Session:
    """One engine's open store within a workload, plus scratch state for the workload."""

    engine: str
    directory: Path
    store: Any
    state: dict[str, Any] = field(default_factory=dict)


def _settle() -> None:
    """Let diskstore's background checkpoint (dropped value files) finish before the next
    engine's turn, so that its disk work is timed against no other engine."""
    checkpointer = sys.modules.get("diskstore._storage._checkpointer")
    if checkpointer is not None:
        checkpointer.wait_idle(60)


def interleave(
    ctx: Context,
    workload: str,
    participants: Sequence[str],
    batch: Callable[[Session, int], Mapping[str, list[int]]],
    *,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    setup: Callable[[Session], None] | None = None,
    rounds: int | None = None,
    fanout: bool = False,
) -> tuple[Samples, list[Session]]:
    """Run ``batch(session, round)`` for every engine in rotating turns; return samples.

    ``settings`` maps an engine to the settings it is opened with; ``setup`` prepares
    each store untimed; ``fanout`` opens the cache engines' ``FanoutCache``. The stores are closed before this returns, so the sessions'
    directories can be measured as they are left on disk.
    """
    sessions: list[Session] = []
    samples: Samples = {}
    try:
        for engine in participants:
            directory = ctx.directory(workload, engine)
            store = ctx.open(engine, directory, (settings or {}).get(engine), fanout=fanout)
            sessions.append(Session(engine, directory, store))
            if setup is not None:
                setup(sessions[-1])
        by_engine = {session.engine: session for session in sessions}
        for number, engine in turns(participants, rounds or ctx.scale.rounds):
            with quiet_gc():
                batch_samples = batch(by_engine[engine], number)
            _settle()
            for op, values in batch_samples.items():
                samples.setdefault(op, {}).setdefault(engine, []).extend(values)
    finally:
        for session in sessions:
            session.store.close()
    return samples, sessions


def disk_usage(directory: Path) -> tuple[int, int]:
    """Return ``(apparent bytes, allocated bytes)`` of every file under ``directory``.

    Apparent size is what the files hold; allocated size is what the file system spent
    on them (block rounding, sparse files), where the platform reports it.
    """
    apparent = allocated = 0
    for parent, _dirs, files in os.walk(directory):
        for name in files:
            info = os.stat(os.path.join(parent, name))
            apparent += info.st_size
            allocated += getattr(info, "st_blocks", 0) * 512 or info.st_size
    return apparent, allocated
