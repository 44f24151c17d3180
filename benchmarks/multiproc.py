"""A pool of spawned worker processes that run timed batches in lock step.

The workers are started once per run (``spawn``, so each is a fresh interpreter with
nothing inherited) and keep their stores open across rounds, like the processes of a
real application would. For every batch the parent sends the same command to each
worker; the workers open the store if needed, meet at a barrier so that they all start
together, run their operations, and send back per-operation latencies plus the start and
end of their run on the shared monotonic clock.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
import traceback
from collections.abc import Mapping
from typing import Any

from benchmarks import engines, mix

PROCESSES = 4
BARRIER_TIMEOUT = 60.0
START_TIMEOUT = 120.0


class WorkerError(RuntimeError):
    """A worker process failed or did not answer in time."""


def _run_command(
    command: Mapping[str, Any], index: int, stores: dict[tuple[str, str], Any], barrier: Any
) -> Any:
    kind = command["kind"]
    if kind == "close":
        while stores:
            stores.popitem()[1].close()
        return None
    engine, directory = command["engine"], command["directory"]
    store = stores.get((engine, directory))
    if store is None:
        store = engines.open_store(engine, directory, command["candidate"], command.get("settings"))
        stores[(engine, directory)] = store
    clock = time.perf_counter_ns
    if kind == "mixed":
        ops = mix.mixed_ops(command["seed"] * 1000 + index, command["count"])
        barrier.wait(BARRIER_TIMEOUT)
        start = clock()
        samples = mix.run_ops(store, ops)
        return {"samples": samples, "start": start, "end": clock(), "ops": len(ops)}
    if kind == "incr":
        key, times = command["key"], []
        incr = store.incr
        barrier.wait(BARRIER_TIMEOUT)
        start = clock()
        for _ in range(command["count"]):
            begin = clock()
            incr(key)
            times.append(clock() - begin)
        return {"samples": {"incr": times}, "start": start, "end": clock(), "ops": len(times)}
    raise ValueError(f"command kind must be mixed, incr or close, got {kind!r}")


def worker_main(index: int, commands: Any, results: Any, barrier: Any) -> None:
    """Serve commands from ``commands`` until it yields None; answer each on ``results``."""
    stores: dict[tuple[str, str], Any] = {}
    try:
        while True:
            command = commands.get()
            if command is None:
                break
            try:
                results.put((index, True, _run_command(command, index, stores, barrier)))
            except BaseException:
                results.put((index, False, traceback.format_exc()))
    finally:
        for store in stores.values():
            store.close()


class WorkerPool:
    """``PROCESSES`` spawned workers; use as a context manager so they always stop."""

    def __init__(self, candidate: str, *, processes: int = PROCESSES, timeout: float = 600.0):
        if processes < 1:
            raise ValueError(f"processes must be at least 1, got {processes!r}")
        self.candidate = candidate
        self.processes = processes
        self.timeout = timeout
        context = multiprocessing.get_context("spawn")
        self._barrier = context.Barrier(processes)
        self._results: Any = context.Queue()
        self._commands: list[Any] = [context.Queue() for _ in range(processes)]
        self._workers = [
            context.Process(
                target=worker_main,
                args=(index, self._commands[index], self._results, self._barrier),
                name=f"bench-worker-{index}",
                daemon=True,
            )
            for index in range(processes)
        ]
        for worker in self._workers:
            worker.start()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def run(self, command: Mapping[str, Any]) -> list[Any]:
        """Send ``command`` to every worker; return their answers in worker order."""
        full = {"candidate": self.candidate, **command}
        for commands in self._commands:
            commands.put(full)
        answers: dict[int, Any] = {}
        failures: list[str] = []
        deadline = time.monotonic() + self.timeout
        while len(answers) + len(failures) < self.processes:
            remaining = deadline - time.monotonic()
            try:
                index, ok, payload = self._results.get(timeout=max(remaining, 0.01))
            except queue.Empty:
                dead = [w.name for w in self._workers if not w.is_alive()]
                raise WorkerError(
                    f"workers did not answer {command['kind']!r} within {self.timeout}s"
                    f" (exited: {dead or 'none'})"
                ) from None
            if ok:
                answers[index] = payload
            else:
                failures.append(f"worker {index}:\n{payload}")
        if failures:
            self._barrier.reset()
            raise WorkerError(f"{command['kind']!r} failed:\n" + "\n".join(failures))
        return [answers[index] for index in range(self.processes)]

    def close_stores(self) -> None:
        """Have every worker close the stores it opened."""
        self.run({"kind": "close"})

    def close(self) -> None:
        """Stop the workers: politely, then by force after a grace period."""
        for commands in self._commands:
            try:
                commands.put(None)
            except (OSError, ValueError):
                pass
        for worker in self._workers:
            worker.join(timeout=30)
        for worker in self._workers:
            if worker.is_alive():
                worker.terminate()
                worker.join(timeout=5)
        for channel in (*self._commands, self._results):
            # The workers are gone; nothing left in a pipe matters, so never wait on it.
            channel.cancel_join_thread()
            channel.close()
