"""Heavy results: large values against diskcache, memoize against joblib.Memory.

``large_values`` sets and gets 10 MB to 1 GB values (random bytes, which no one can
compress, and float64 arrays) in diskstore and diskcache. ``memoize_heavy`` runs the same
module-level functions memoized by diskstore, diskcache and ``joblib.Memory``: a small
result, a 100 MB float64 array (also memory-mapped, where the engine can), and a dict of
several arrays; it also measures the bytes each leaves on disk.

Engines take turns in rotating rounds as everywhere else; results are medians of every
timed call. The main table shows the diskstore and diskcache columns; :func:`table` prints
the three-way comparison with joblib (``python -m benchmarks.heavy RESULTS.json``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from benchmarks.context import Context, Session, disk_usage, interleave
from benchmarks.engines import DISKCACHE, DISKSTORE
from benchmarks.results import RunResult, WorkloadResult
from benchmarks.timing import quiet_gc, turns

clock = time.perf_counter_ns
MB = 1 << 20
JOBLIB = "joblib"
HEAVY_ENGINES = (DISKSTORE, DISKCACHE, JOBLIB)
SMALL_CALLS = 20


# -- large values --------------------------------------------------------------------------


def _array(size: int, offset: int = 0) -> Any:
    import numpy as np

    return np.arange(size // 8, dtype=np.float64) + offset


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, bytes):
        return isinstance(got, bytes) and got == want
    import numpy as np

    return isinstance(got, np.ndarray) and bool(np.array_equal(got, want))


def large_values(ctx: Context) -> WorkloadResult:
    """Set then get large values: random bytes and float64 arrays of each scale's sizes."""
    result = WorkloadResult("large_values", "set/get 10 MB-1 GB bytes and arrays")
    result.engines = [DISKSTORE, DISKCACHE]
    for megabytes in ctx.scale.large_mb:
        size = megabytes * MB
        for kind, value in (("bytes", os.urandom(size)), ("array", _array(size))):
            rounds = ctx.scale.large_rounds if megabytes < 1000 else min(3, ctx.scale.large_rounds)
            label = f"{megabytes}mb" if megabytes < 1000 else f"{megabytes // 1000}gb"

            def batch(session: Session, number: int, value: Any = value) -> Mapping[str, list[int]]:
                start = clock()
                session.store.set("k", value)
                middle = clock()
                got = session.store.get("k")
                end = clock()
                if not _same(got, value):
                    session.state["mismatch"] = True
                del got
                return {"set": [middle - start], "get": [end - middle]}

            samples, sessions = interleave(
                ctx, f"large_{kind}_{label}", result.engines, batch, rounds=rounds
            )
            result.add_samples(
                {f"{op}_{kind}_{label}": by_engine for op, by_engine in samples.items()}
            )
            for session in sessions:
                result.checks[f"roundtrip_{kind}_{label}[{session.engine}]"] = not (
                    session.state.get("mismatch")
                )
            ctx.release()
            del value
    result.notes.append("bytes are random (incompressible); arrays are np.arange float64")
    return result


# -- memoize against joblib ------------------------------------------------------------------

# Module-level functions, so joblib can hash their code as it does in real use.
ARRAY_BYTES = [100 * MB]


def small_result(i: int) -> dict[str, Any]:
    return {"i": i, "name": f"item-{i}", "scores": [i * 0.5] * 10}


def big_array(i: int) -> Any:
    return _array(ARRAY_BYTES[0], i)


def array_dict(i: int) -> dict[str, Any]:
    part = ARRAY_BYTES[0] // 4
    return {"x": _array(part, i), "y": _array(part, -i), "z": _array(part), "meta": {"i": i}}


class _Memoizers:
    """One engine's memoized functions on its own directory."""

    def __init__(self, engine: str, directory: Path, ctx: Context) -> None:
        self.engine = engine
        self.directory = directory
        self.store: Any = None
        self.memory: Any = None
        if engine == JOBLIB:
            import joblib

            self.memory = joblib.Memory(str(directory), verbose=0)
            wrap = self.memory.cache
            self.small = wrap(small_result)
            self.array = wrap(big_array)
            # joblib takes the mapping mode from the Memory (its store), not from cache().
            mapping = joblib.Memory(str(directory), mmap_mode="r", verbose=0)
            self.mapped: Any = mapping.cache(big_array)
            self.dict = wrap(array_dict)
            return
        self.store = ctx.open(engine, directory)
        self.small = self.store.memoize(name="small")(small_result)
        self.array = self.store.memoize(name="array")(big_array)
        self.mapped = (
            self.store.memoize(name="array", mmap_mode="r")(big_array)
            if engine == DISKSTORE
            else None
        )
        self.dict = self.store.memoize(name="dict")(array_dict)

    def clear(self) -> None:
        if self.memory is not None:
            self.memory.clear(warn=False)
        elif self.engine == DISKSTORE:  # each function's entries live in its namespace
            for func in (self.small, self.array, self.dict):
                func.cache_clear()
        else:
            self.store.clear()

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def _timed(func: Callable[[int], Any], arg: int) -> tuple[int, Any]:
    start = clock()
    value = func(arg)
    return clock() - start, value


def memoize_heavy(ctx: Context) -> WorkloadResult:
    """memoize hits and misses of small and heavy results, against joblib.Memory."""
    result = WorkloadResult("memoize_heavy", "memoize vs joblib.Memory: small, 100 MB, dict")
    try:
        import joblib  # noqa: F401
        import numpy
    except ImportError as exc:
        result.skipped = f"needs joblib and numpy ({exc})"
        return result
    ARRAY_BYTES[0] = ctx.scale.heavy_array_mb * MB
    result.engines = list(HEAVY_ENGINES)
    memos = {e: _Memoizers(e, ctx.directory("memoize_heavy", e), ctx) for e in HEAVY_ENGINES}
    samples: dict[str, dict[str, list[int]]] = {}
    wrong: set[str] = set()

    def add(op: str, engine: str, ns: int) -> None:
        samples.setdefault(op, {}).setdefault(engine, []).append(ns)

    try:
        for number, engine in turns(HEAVY_ENGINES, ctx.scale.large_rounds):
            memo = memos[engine]
            with quiet_gc():
                for call in range(SMALL_CALLS):
                    arg = number * SMALL_CALLS + call
                    add("small_miss", engine, _timed(memo.small, arg)[0])
                    ns, value = _timed(memo.small, arg)
                    add("small_hit", engine, ns)
                    if value != small_result(arg):
                        wrong.add(engine)
                for op, func in (("array", memo.array), ("dict", memo.dict)):
                    add(f"{op}_miss", engine, _timed(func, number)[0])
                    ns, value = _timed(func, number)
                    add(f"{op}_hit", engine, ns)
                    if op == "dict":
                        value = value["y"]
                    if not _same(
                        value,
                        _array(
                            ARRAY_BYTES[0] // (4 if op == "dict" else 1),
                            (-1 if op == "dict" else 1) * number,
                        ),
                    ):
                        wrong.add(engine)
                    del value
                if memo.mapped is not None:
                    ns, value = _timed(memo.mapped, number)
                    add("array_mmap_hit_first", engine, ns)
                    del value
                    time.sleep(0.1)  # past the settling time: the file counts as verified
                    for _ in range(3):
                        ns, value = _timed(memo.mapped, number)
                        add("array_mmap_hit", engine, ns)
                        if not isinstance(value, numpy.memmap) and value.flags.writeable:
                            wrong.add(engine)
                        del value
            if number == ctx.scale.large_rounds - 1:
                _close_and_measure(memo, result)
            else:
                memo.clear()
    finally:
        for memo in memos.values():
            memo.close()
    result.add_samples(samples)
    for engine in HEAVY_ENGINES:
        result.checks[f"results[{engine}]"] = engine not in wrong
    result.notes.append(
        f"{SMALL_CALLS} small calls per round; heavy results of {ctx.scale.heavy_array_mb} MB; "
        "array_mmap_hit is a mapped hit of a file already verified by this process"
    )
    return result


def _close_and_measure(memo: _Memoizers, result: WorkloadResult) -> None:
    memo.close()
    apparent, allocated = disk_usage(memo.directory)
    result.add_metric("bytes_on_disk", memo.engine, apparent)
    result.add_metric("bytes_allocated", memo.engine, allocated)


# -- the comparison table ----------------------------------------------------------------------


def _median_ms(result: WorkloadResult, op: str, engine: str) -> float | None:
    stats = result.ops.get(op, {}).get(engine)
    return None if stats is None else stats.p50_us / 1000


def _fmt(value: float | None) -> str:
    return "-" if value is None else (f"{value:.2f}" if value < 10 else f"{value:.0f}")


def _ratio(value: float | None, base: float | None) -> str:
    return "-" if value is None or not base else f"{value / base:.2f}"


def table(result: WorkloadResult, *, markdown: bool = False) -> str:
    """Median milliseconds per engine and diskstore's ratios, one row per operation."""
    engines = [e for e in result.engines if any(e in ops for ops in result.ops.values())]
    others = [e for e in engines if e != DISKSTORE]
    header = ["op", *(f"{e} ms" for e in engines), *(f"ds/{e}" for e in others)]
    rows = [header]
    for op in result.ops:
        values = {e: _median_ms(result, op, e) for e in engines}
        rows.append(
            [op, *(_fmt(values[e]) for e in engines)]
            + [_ratio(values[DISKSTORE], values[e]) for e in others]
        )
    disk = result.metrics.get("bytes_on_disk", {})
    if disk:
        mib = {e: disk.get(e) for e in engines}
        rows.append(
            ["bytes on disk (MiB)"]
            + [_fmt(None if v is None else v / MB) for v in mib.values()]
            + [_ratio(mib[DISKSTORE], mib[e]) for e in others]
        )
    if markdown:
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def tables(run: RunResult, *, markdown: bool = False) -> str:
    """The comparison tables of the heavy workloads present in *run*."""
    parts = []
    for result in run.workloads:
        if result.name in ("large_values", "memoize_heavy") and result.ops:
            parts.append(f"{result.name}:\n{table(result, markdown=markdown)}")
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.heavy")
    parser.add_argument("results", type=Path)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    print(tables(RunResult.load(args.results), markdown=args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
