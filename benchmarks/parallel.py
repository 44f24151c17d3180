"""Workloads with four processes on one directory: the operation mix, and ``incr``.

Each engine gets its own directory, shared by the four workers of
:class:`~benchmarks.multiproc.WorkerPool`. Engines take rotating turns at rounds; in each
round the four workers start together behind a barrier. Throughput is the operations of
a round divided by the span from the first worker's start to the last worker's end.
"""

from __future__ import annotations

from typing import Any

from benchmarks import mix
from benchmarks.context import Context, Samples
from benchmarks.engines import ENGINES
from benchmarks.results import WorkloadResult
from benchmarks.timing import split, turns

INCR_KEY = "counter"


def _collect(answers: list[Any], engine: str, samples: Samples) -> tuple[int, int]:
    """Merge the workers' samples for ``engine``; return the round's (ops, span in ns)."""
    for answer in answers:
        for op, values in answer["samples"].items():
            samples.setdefault(op, {}).setdefault(engine, []).extend(values)
    span = max(a["end"] for a in answers) - min(a["start"] for a in answers)
    return sum(a["ops"] for a in answers), span


def mixed_4proc(ctx: Context) -> WorkloadResult:
    """The 90/9/1 mix from four processes at once on one directory."""
    pool = ctx.pool()
    result = WorkloadResult(
        "mixed_4proc",
        f"90/9/1 mix over 100 keys from {pool.processes} processes on one directory",
        list(ENGINES),
    )
    directories = {}
    for engine in ENGINES:
        directories[engine] = ctx.directory(result.name, engine)
        store = ctx.open(engine, directories[engine])
        try:
            mix.prefill(store, ctx.seed + 1)
        finally:
            store.close()
    counts = split(ctx.scale.mp_ops_per_worker, ctx.scale.rounds)
    samples: Samples = {}
    totals = {engine: [0, 0] for engine in ENGINES}
    try:
        for number, engine in turns(ENGINES, ctx.scale.rounds):
            answers = pool.run(
                {
                    "kind": "mixed",
                    "engine": engine,
                    "directory": str(directories[engine]),
                    "seed": ctx.seed + number,
                    "count": len(counts[number]),
                }
            )
            ops, span = _collect(answers, engine, samples)
            totals[engine][0] += ops
            totals[engine][1] += span
    finally:
        pool.close_stores()
    result.add_samples(samples)
    for engine, (ops, span) in totals.items():
        result.add_metric("throughput_ops_per_s", engine, ops / (span / 1e9) if span else 0.0)
    return result


def incr_4proc(ctx: Context) -> WorkloadResult:
    """Four processes each ``incr`` one shared key; the final count must be exact."""
    pool = ctx.pool()
    per_worker = ctx.scale.incr_per_worker
    result = WorkloadResult(
        "incr_4proc", f"{pool.processes} processes x {per_worker} incr on one key", list(ENGINES)
    )
    directories = {engine: ctx.directory(result.name, engine) for engine in ENGINES}
    counts = split(per_worker, ctx.scale.rounds)
    samples: Samples = {}
    try:
        for number, engine in turns(ENGINES, ctx.scale.rounds):
            command = {
                "kind": "incr",
                "engine": engine,
                "directory": str(directories[engine]),
                "key": INCR_KEY,
                "count": len(counts[number]),
            }
            _collect(pool.run(command), engine, samples)
    finally:
        pool.close_stores()
    result.add_samples(samples)
    expected = pool.processes * per_worker
    for engine in ENGINES:
        store = ctx.open(engine, directories[engine])
        try:
            final = store.get(INCR_KEY)
        finally:
            store.close()
        result.add_metric("final_count", engine, final)
        result.checks[f"exact_count[{engine}]"] = final == expected
        if final != expected:
            result.notes.append(f"{engine}: final count {final!r}, expected {expected}")
    return result
