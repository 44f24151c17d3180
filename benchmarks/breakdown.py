"""Where the microseconds of one point operation go: SQLite, Python, system calls.

``python -m benchmarks.breakdown`` runs each operation (get, set, delete of small values
over 100 keys) on diskstore and on diskcache and reports, per call:

* ``p50 us``, ``mean us``: the operation through the public API (interleaved calls; the
  mean carries what the median hides, such as a checkpoint every few thousand writes);
* ``statements``: how many SQL statements one call runs (recorded, not assumed);
* ``SQL us``: the time spent inside those statements' ``execute`` and ``fetchall`` calls
  during the operation: what SQLite costs, the calls into it and the rows' conversion
  to Python objects included (less what recording itself adds, measured on ``SELECT 1``);
* ``Python us``: the difference, the engine's own code;
* ``syscalls``: system calls per call, by kind (``--strace``, when ``strace`` exists),
  counted in a child process running the operation ``--number`` times, less a child that
  runs it zero times (deletes remove distinct keys made beforehand in both children).

The floor (a bare ``sqlite3`` table, one statement per operation) is timed alongside.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks.engines import DISKCACHE, DISKSTORE, FLOOR, open_store
from diskstore._storage._placeholders import needed, reorder

# Where the interpreter warns about numbered placeholders, statements are rewritten before
# the clock starts, as diskstore's own connections do (see _placeholders.py).
_PLAIN = needed()

OPS = ("get", "set", "delete")
KEYS = 100
clock = time.perf_counter_ns


class _Recorder:
    """Statements run through recording connections while :attr:`on` is set, each with
    the nanoseconds spent in its ``execute`` and ``fetchall`` calls."""

    on = False
    seen: list[tuple[str, int]] = []


class _RecordingCursor(sqlite3.Cursor):
    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:  # type: ignore[override]
        run, bound = reorder(sql, parameters) if _PLAIN else (sql, parameters)
        if not _Recorder.on:
            return super().execute(run, bound)
        begin = clock()
        cursor = super().execute(run, bound)
        _Recorder.seen.append((sql, clock() - begin))
        return cursor

    def fetchall(self) -> list[Any]:
        if not _Recorder.on or not _Recorder.seen:
            return super().fetchall()
        begin = clock()
        rows = super().fetchall()
        sql, spent = _Recorder.seen[-1]
        _Recorder.seen[-1] = (sql, spent + clock() - begin)
        return rows


class _RecordingConnection(sqlite3.Connection):
    def cursor(self, factory: Any = _RecordingCursor) -> sqlite3.Cursor:  # type: ignore[override]
        return super().cursor(factory)  # type: ignore[no-any-return]

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:  # type: ignore[override]
        return self.cursor().execute(sql, parameters)


@contextlib.contextmanager
def _recording() -> Iterator[None]:
    """Connections opened inside are recording ones."""
    connect = sqlite3.connect

    def recording(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        return connect(*args, **{**kwargs, "factory": _RecordingConnection})

    sqlite3.connect = recording  # type: ignore[assignment]
    try:
        yield
    finally:
        sqlite3.connect = connect  # type: ignore[assignment]


def _values() -> list[bytes]:
    return [bytes([index]) * 32 for index in range(KEYS)]


def _operation(
    store: Any, op: str, values: list[bytes]
) -> tuple[Callable[[int], Any], Callable[[int], Any]]:
    """``(timed, restore)``: the call measured for key *i*, and what puts its key back."""
    if op == "get":
        return (lambda i: store.get(i % KEYS)), (lambda i: None)
    if op == "set":
        return (lambda i: store.set(i % KEYS, values[i % KEYS])), (lambda i: None)
    if op == "delete":
        return (lambda i: store.delete(i % KEYS)), (lambda i: store.set(i % KEYS, values[i % KEYS]))
    raise ValueError(f"op must be one of {OPS}, got {op!r}")


def _open(engine: str, directory: Path) -> Any:
    store = open_store(engine, directory, "diskstore:Cache")
    values = _values()
    for index in range(KEYS):
        store.set(index, values[index])
    return store


def _p50(samples: list[int]) -> float:
    return statistics.median(samples) / 1000


def _total(stores: dict[str, Any], op: str, number: int) -> dict[str, float]:
    """The API call's median per engine, the engines taking turns every 100 calls."""
    values = _values()
    calls = {engine: _operation(store, op, values) for engine, store in stores.items()}
    samples: dict[str, list[int]] = {engine: [] for engine in stores}
    for start in range(0, number, 100):
        for engine, (timed, restore) in calls.items():
            for index in range(start, min(start + 100, number)):
                begin = clock()
                timed(index)
                samples[engine].append(clock() - begin)
                restore(index)
    return {
        engine: (_p50(found), statistics.fmean(found) / 1000) for engine, found in samples.items()
    }


def _recording_cost(number: int = 20_000) -> float:
    """Microseconds that recording adds to one statement's measured time (the wrapper's
    own calls), from ``SELECT 1`` run plain and recorded; subtracted from ``SQL us``."""
    plain = sqlite3.connect(":memory:")
    recorded = sqlite3.connect(":memory:", factory=_RecordingConnection)
    cursor, recording = plain.cursor(), recorded.cursor()
    bare = []
    for _ in range(number):
        begin = clock()
        cursor.execute("SELECT 1").fetchall()
        bare.append(clock() - begin)
    seen = []
    _Recorder.on = True
    try:
        for _ in range(number):
            _Recorder.seen = []
            recording.execute("SELECT 1").fetchall()
            seen.append(_Recorder.seen[0][1])
    finally:
        _Recorder.on = False
    plain.close()
    recorded.close()
    return max(0.0, _p50(seen) - _p50(bare))


def _in_sqlite(store: Any, op: str, number: int) -> tuple[list[str], float]:
    """The statements one call runs, and the median nanoseconds per call spent in them."""
    values = _values()
    timed, restore = _operation(store, op, values)
    samples = []
    texts: list[str] = []
    for index in range(number):
        _Recorder.seen = []
        _Recorder.on = True
        try:
            timed(index)
        finally:
            _Recorder.on = False
        restore(index)
        texts = [sql for sql, _ in _Recorder.seen]
        samples.append(sum(spent for _, spent in _Recorder.seen))
    return texts, _p50(samples)


def _syscalls(engine: str, op: str, number: int) -> dict[str, float]:
    """System calls per call, by name, from ``strace -c`` of two child processes."""
    counts = []
    for runs in (0, number):
        with tempfile.NamedTemporaryFile("r", suffix=".strace") as output:
            command = [
                "strace", "-f", "-c", "-o", output.name, sys.executable, "-m",
                "benchmarks.breakdown", "--child", engine, op, str(runs), str(number),
            ]  # fmt: skip
            subprocess.run(command, check=True, capture_output=True, cwd=_ROOT)
            counts.append(_parse_strace(output.read()))
    base, busy = counts
    return {
        name: (busy.get(name, 0) - base.get(name, 0)) / number
        for name in busy
        if (busy.get(name, 0) - base.get(name, 0)) / number >= 0.05
    }


def _parse_strace(text: str) -> dict[str, int]:
    found = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[0].replace(".", "").isdigit() and fields[-1] != "total":
            found[fields[-1]] = int(fields[3])
    return found


_ROOT = Path(__file__).resolve().parent.parent


def _child(engine: str, op: str, runs: int, keys: int) -> None:
    """Run *op* *runs* times; a delete removes one of *keys* extra keys each time (made
    whatever *runs* is), so that no re-set is counted with it."""
    with tempfile.TemporaryDirectory(prefix="diskstore-breakdown-") as scratch:
        store = _open(engine, Path(scratch) / engine)
        timed, restore = _operation(store, op, _values())
        if op == "delete":
            for index in range(keys):
                store.set(f"extra-{index}", b"x" * 32)
            for index in range(runs):
                store.delete(f"extra-{index}")
        else:
            for index in range(runs):
                timed(index)
                restore(index)
        store.close()


def run(ops: Sequence[str], number: int, strace: bool) -> list[dict[str, Any]]:
    """Measure every op on diskstore, diskcache and the floor; one row per (op, engine)."""
    rows = []
    overhead = _recording_cost()
    with tempfile.TemporaryDirectory(prefix="diskstore-breakdown-") as scratch:
        root = Path(scratch)
        for op in ops:
            plain = {
                engine: _open(engine, root / f"{op}-{engine}")
                for engine in (DISKSTORE, DISKCACHE, FLOOR)
            }
            totals = _total(plain, op, number)
            for store in plain.values():
                store.close()
            with _recording():
                recorded = {
                    engine: _open(engine, root / f"{op}-{engine}-rec")
                    for engine in (DISKSTORE, DISKCACHE)
                }
            for engine in (DISKSTORE, DISKCACHE, FLOOR):
                median, mean = totals[engine]
                row: dict[str, Any] = {
                    "op": op,
                    "engine": engine,
                    "p50_us": median,
                    "mean_us": mean,
                }
                if engine in recorded:
                    texts, sql = _in_sqlite(recorded[engine], op, number)
                    sql -= overhead * len(texts)
                    row.update(
                        statements=len(texts),
                        sql_us=sql,
                        python_us=median - sql,
                        texts=texts,
                    )
                if strace and engine != FLOOR and shutil.which("strace"):
                    row["syscalls"] = _syscalls(engine, op, min(number, 2000))
                rows.append(row)
            for store in recorded.values():
                store.close()
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| op | engine | p50 us | mean us | statements | SQL us | Python us | system calls per call |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        calls = row.get("syscalls")
        described = (
            ", ".join(
                f"{name} {count:.1f}"
                for name, count in sorted(calls.items(), key=lambda kv: -kv[1])
            )
            if calls
            else "-"
        )
        cells = [
            row["op"], row["engine"], f"{row['p50_us']:.1f}", f"{row['mean_us']:.1f}",
            str(row.get("statements", 1 if row["engine"] == FLOOR else "-")),
            f"{row['sql_us']:.1f}" if "sql_us" in row else "-",
            f"{row['python_us']:.1f}" if "python_us" in row else "-",
            described,
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.breakdown", description=__doc__)
    parser.add_argument("--ops", default=",".join(OPS), help="comma-separated: get,set,delete")
    parser.add_argument("--number", type=int, default=3000, help="calls per measurement")
    parser.add_argument("--strace", action="store_true", help="count system calls (needs strace)")
    parser.add_argument("--statements", action="store_true", help="print each op's SQL")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        engine, op, runs, keys = args.child
        _child(engine, op, int(runs), int(keys))
        return 0
    ops = [op for op in args.ops.split(",") if op]
    unknown = sorted(set(ops) - set(OPS))
    if unknown:
        parser.error(f"unknown ops {unknown}; choose from {', '.join(OPS)}")
    rows = run(ops, args.number, args.strace)
    print(markdown(rows))
    if args.statements:
        for row in rows:
            for text in row.get("texts", []):
                print(f"{row['op']:6} {row['engine']:9} {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
