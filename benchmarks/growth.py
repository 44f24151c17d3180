"""How costs grow with the number of items: ``python -m benchmarks.growth [--quick | --smoke]``.

Both caches are filled to each size (10,000, 100,000 and 1,000,000 items in a full run;
``--quick`` stops at 100,000), then every operation is measured on both, the engines taking
turns operation by operation (who goes first alternates):

* ``get``, ``set`` (new keys), ``delete`` (those keys) and ``len``: per call, the median of
  a sample of calls;
* ``iteration``: full ``for key in cache`` passes, per item (the median of at least three,
  the engines alternating pass by pass);
* ``check``: full ``check()`` passes, per item in the cache, likewise;
* ``expire``, ``cull``, ``evict``: one call removing a known batch of items (expired
  items; items evicted to fit a lowered ``size_limit``; items with one tag), per item
  removed; ``evict_absent`` is ``evict`` of a tag no item has, per call;
* ``get_sqlite``: the floor under ``get``: random present keys looked up, in passes
  alternating with ``get``'s (every pass with keys of its own), by a bare ``sqlite3``
  connection to the engine's own database file, with the engine's memory-map and
  page-cache sizes, its own key lookup statement and no Python layer: how much of
  ``get``'s growth is SQLite's.

Resident memory while iterating is measured in a fresh process per engine (the largest
growth of its resident set over what it was just before the iteration; Linux only), so
one engine's heap cannot flatter the other's; bytes on disk per item are measured after closing. Filling is
untimed and done in transactions of 1,000 items. The results go to a JSON file, a table and
a log-log plot (``--plot``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from statistics import median
from typing import Any

from benchmarks import engines
from benchmarks.context import disk_usage
from benchmarks.engines import DISKCACHE, DISKSTORE
from benchmarks.scale import FULL, QUICK, SMOKE, Scale
from benchmarks.timing import per_call, quiet_gc
from diskstore._storage import _sql
from diskstore._storage._store import DB_NAME

clock = time.perf_counter_ns
RESULTS_DIR = Path(__file__).resolve().parent / "results"
PLOT = Path(__file__).resolve().parent.parent / "docs" / "img" / "growth.png"
ENGINES = (DISKSTORE, DISKCACHE)
#: Operations whose per-item cost must stay flat as the cache grows.
FLAT = ("get", "set", "iteration")
FLAT_LIMIT = 1.5
RSS_LIMIT_MB = 50.0
FILL_BATCH = 1000
OPS = ("get", "set", "delete", "len", "iteration", "check", "expire", "cull", "evict")
EXTRA_OPS = ("evict_absent", "get_sqlite")
ORDER = (*OPS, "evict_absent")


def _key(index: int) -> str:
    return f"key-{index:09d}"


def _fill(cache: Any, count: int, rng: random.Random) -> None:
    for start in range(0, count, FILL_BATCH):
        with cache.transact():
            for index in range(start, min(count, start + FILL_BATCH)):
                cache.set(_key(index), rng.randbytes(rng.randrange(16, 65)))


def _per_call(calls: Callable[[], list[int]]) -> float:
    """Median of per-call nanosecond samples, in microseconds."""
    with quiet_gc():
        samples = calls()
    return median(samples) / 1000


def _measure(engine: str, cache: Any, size: int, sample: int, op: str, rng: random.Random) -> float:
    """Run one operation's measurement on a cache of ``size`` items; return microseconds."""
    if op in ("set", "delete"):
        keys = [f"new-{index:09d}" for index in range(sample)]
        value = rng.randbytes(40)
        action = (lambda key: cache.set(key, value)) if op == "set" else cache.delete

        return _per_call(lambda: per_call(action, keys))
    if op == "len":

        def lens() -> list[int]:
            times = []
            for _ in range(sample):
                start = clock()
                len(cache)
                times.append(clock() - start)
            return times

        return _per_call(lens)
    return _removal(cache, sample, op)


#: Each engine's own key lookup, as its ``get`` runs it (diskstore's plain namespace).
_LOOKUPS = {
    DISKSTORE: _sql.SELECT_ITEM_MAIN,
    DISKCACHE: (
        "SELECT rowid, mode, value, expire_time, filename FROM Cache WHERE key = ? AND raw = ?"
    ),
}


_ROUNDS = 3


def _gets(engine: str, cache: Any, size: int, sample: int, rng: random.Random) -> dict[str, float]:
    """Median microseconds of ``get`` and of a bare lookup, each of random present keys.

    ``get`` passes alternate with passes of a bare ``sqlite3`` connection to the engine's
    database file (same memory-map and page-cache sizes), so that both see the same stretch
    of machine load, and neither pollutes the other's processor caches call by call. Every
    pass draws keys of its own: a key read twice would find its pages already in memory.
    """
    name = DB_NAME if engine == DISKSTORE else "cache.db"
    con = sqlite3.connect(os.path.join(cache.directory, name), isolation_level=None)
    try:
        con.execute(f"PRAGMA mmap_size = {int(cache.sqlite_mmap_size)}")
        con.execute(f"PRAGMA cache_size = {int(cache.sqlite_cache_size)}")
        sql = _LOOKUPS[engine]
        cur = con.cursor()
        gets: list[int] = []
        lookups: list[int] = []
        with quiet_gc():
            for _ in range(_ROUNDS):
                for key in [_key(rng.randrange(size)) for _ in range(sample)]:
                    start = clock()
                    cache.get(key)
                    gets.append(clock() - start)
                keys = [_key(rng.randrange(size)) for _ in range(sample)]
                for found in [cache._disk.put(key) for key in keys]:
                    start = clock()
                    if not cur.execute(sql, found).fetchall():
                        raise RuntimeError(f"{engine}: a filled key is missing from its database")
                    lookups.append(clock() - start)
        return {"get": median(gets) / 1000, "get_sqlite": median(lookups) / 1000}
    finally:
        con.close()


def _whole_passes(caches: dict[str, Any], size: int, op: str) -> dict[str, float]:
    """Time whole passes (iteration or check), the engines alternating pass by pass, so
    that a slow patch of machine time lands on both; microseconds per item, the median."""
    passes = max(3, min(7, 300_000 // size))
    times: dict[str, list[int]] = {engine: [] for engine in caches}
    for number in range(passes):
        for engine in ENGINES if number % 2 == 0 else ENGINES[::-1]:
            cache = caches[engine]
            with quiet_gc():
                start = clock()
                if op == "iteration":
                    seen = sum(1 for _ in cache)
                    if seen != size:
                        raise RuntimeError(f"{engine} iterated {seen} of {size} items")
                else:
                    cache.check()
                times[engine].append(clock() - start)
    return {engine: median(found) / 1000 / size for engine, found in times.items()}


def _removal(cache: Any, sample: int, op: str) -> float:
    """Time one bulk removal of ``sample`` prepared items; microseconds per item removed."""
    value = b"x" * 40
    if op == "evict_absent":
        times = []
        for _ in range(5):
            start = clock()
            cache.evict("no such tag")
            times.append(clock() - start)
        return median(times) / 1000
    if op in ("expire", "evict"):
        with cache.transact():
            for index in range(sample):
                if op == "expire":
                    cache.set(f"gone-{index:09d}", value, expire=60)
                else:
                    cache.set(f"gone-{index:09d}", value, tag="batch")
        start = clock()
        removed = cache.expire(now=time.time() + 120) if op == "expire" else cache.evict("batch")
    else:  # cull: lower the limit by about ``sample`` items' worth of volume
        count = len(cache)
        volume = cache.volume()
        cache.reset("size_limit", int(volume * (1 - sample / max(count, 1))))
        start = clock()
        removed = cache.cull()
    elapsed = clock() - start
    if op == "cull":
        cache.reset("size_limit", 2**40)
    return elapsed / 1000 / max(removed, 1)


# Resident memory is read from /proc/self/statm every 1,000 keys (the peak counter,
# ru_maxrss, would hide growth below the peak that importing already set). Its "shared"
# field counts resident file-backed pages, here the database pages SQLite memory-maps
# (up to ``sqlite_mmap_size``), so resident minus shared is the heap, where SQLite's page
# cache (up to ``sqlite_cache_size`` pages) and everything Python holds live.
_RSS_PROGRAM = """
import json, os, sys
sys.path[:0] = {path!r}
from benchmarks import engines
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as statm:
        fields = statm.read().split()
    return int(fields[1]) * page, (int(fields[1]) - int(fields[2])) * page
cache = engines.open_store({engine!r}, {directory!r}, {candidate!r})
before = rss()
peak = list(before)
count = 0
for _ in cache:
    count += 1
    if count % 1000 == 0:
        peak = [max(pair) for pair in zip(peak, rss())]
peak = [max(pair) for pair in zip(peak, rss())]
cache.close()
print(json.dumps({{"items": count, "bytes": peak[0] - before[0], "heap": peak[1] - before[1]}}))
"""


def _iteration_rss(engine: str, directory: Path, candidate: str) -> dict[str, float]:
    """Iterate a closed cache in a fresh process; return its peak resident growth in MB."""
    root = str(Path(__file__).resolve().parent.parent)
    program = _RSS_PROGRAM.format(
        path=[root], engine=engine, directory=str(directory), candidate=candidate
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=3600
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "rss_mb": found["bytes"] / 2**20,
        "heap_mb": found["heap"] / 2**20,
        "items": found["items"],
    }


def run_size(size: int, candidate: str, root: Path, seed: int) -> dict[str, dict[str, float]]:
    """Measure every operation on both engines at ``size`` items."""
    sample = max(10, min(2000, size // 10))
    found: dict[str, dict[str, float]] = {engine: {} for engine in ENGINES}
    caches: dict[str, Any] = {}
    directories: dict[str, Path] = {}
    try:
        for engine in ENGINES:
            directories[engine] = Path(tempfile.mkdtemp(prefix=f"{engine}-{size}-", dir=root))
            caches[engine] = engines.open_store(engine, directories[engine], candidate)
            _fill(caches[engine], size, random.Random(seed))
        for number, op in enumerate(ORDER):
            if op in ("iteration", "check"):
                for engine, cost in _whole_passes(caches, size, op).items():
                    found[engine][op] = cost
                continue
            order = ENGINES if number % 2 == 0 else ENGINES[::-1]
            for engine in order:
                rng = random.Random(seed + number)
                if op == "get":
                    found[engine].update(_gets(engine, caches[engine], size, sample, rng))
                    continue
                found[engine][op] = _measure(engine, caches[engine], size, sample, op, rng)
    finally:
        for cache in caches.values():
            cache.close()
    for engine in ENGINES:
        # The cull above removed some items; count what is left for bytes per item.
        reopened = engines.open_store(engine, directories[engine], candidate)
        remaining = len(reopened)
        reopened.close()
        found[engine]["bytes_per_item"] = disk_usage(directories[engine])[0] / remaining
        found[engine].update(_iteration_rss(engine, directories[engine], candidate))
        shutil.rmtree(directories[engine], ignore_errors=True)
    return found


def judge(results: dict[str, dict[str, dict[str, float]]]) -> list[dict[str, Any]]:
    """Check the growth targets: flat per-item costs, iteration speed, iteration memory."""
    sizes = sorted(results, key=int)
    first, last = results[sizes[0]][DISKSTORE], results[sizes[-1]][DISKSTORE]
    verdicts: list[dict[str, Any]] = []
    for op in FLAT:
        growth = last[op] / first[op]
        verdicts.append(
            {
                "label": f"{op} per item, {sizes[-1]} / {sizes[0]} items",
                "value": round(growth, 3),
                "bound": f"<= {FLAT_LIMIT}",
                "met": growth <= FLAT_LIMIT,
            }
        )
    for size in sizes:
        mine, theirs = results[size][DISKSTORE]["iteration"], results[size][DISKCACHE]["iteration"]
        verdicts.append(
            {
                "label": f"iteration per item at {size} items, diskstore / diskcache",
                "value": round(mine / theirs, 3),
                "bound": "<= 1",
                "met": mine <= theirs,
            }
        )
    for name, what in (("rss_mb", "resident memory"), ("heap_mb", "heap (resident, not mapped)")):
        grown = last[name]
        verdicts.append(
            {
                "label": f"{what} added by iterating {sizes[-1]} items, MB",
                "value": round(grown, 1),
                "bound": f"<= {RSS_LIMIT_MB:g}",
                "met": grown <= RSS_LIMIT_MB,
            }
        )
    return verdicts


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    """Markdown table: one row per operation and size, both engines and their ratio."""
    lines = [
        "| op | items | diskstore us | diskcache us | ds/dc |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for op in (*OPS, *EXTRA_OPS, "bytes_per_item", "rss_mb", "heap_mb"):
        for size in sorted(results, key=int):
            mine, theirs = results[size][DISKSTORE][op], results[size][DISKCACHE][op]
            ratio = f"{mine / theirs:.2f}" if theirs else "-"
            lines.append(f"| {op} | {int(size):,} | {mine:.3f} | {theirs:.3f} | {ratio} |")
    return "\n".join(lines)


def plot(run: dict[str, Any], output: Path) -> None:
    """Draw per-operation cost against items, log-log, diskstore solid, diskcache dashed."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    results = run["results"]
    sizes = sorted(results, key=int)
    figure, axes = pyplot.subplots(figsize=(9, 6))
    colours = pyplot.get_cmap("tab10")
    for number, op in enumerate(OPS + EXTRA_OPS):
        for engine, style in ((DISKSTORE, "-"), (DISKCACHE, "--")):
            axes.plot(
                [int(size) for size in sizes],
                [results[size][engine][op] for size in sizes],
                style,
                marker="o",
                markersize=3,
                color=colours(number % 10),
                label=f"{op} ({engine})",
            )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("items in the cache")
    axes.set_ylabel("microseconds per call (get, set, delete, len, evict_absent) or per item")
    axes.set_title(
        f"cost against size, {run['meta']['scale']} run {run['meta']['started']}\n"
        "diskstore solid, diskcache dashed",
        fontsize=9,
    )
    axes.grid(which="both", alpha=0.3)
    axes.legend(fontsize=6, ncol=2, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=110)
    pyplot.close(figure)


def _scale(args: argparse.Namespace) -> Scale:
    if args.smoke:
        return SMOKE
    return QUICK if args.quick else FULL


def main(argv: Sequence[str] | None = None) -> int:
    """Run the growth workload; return the exit status (2: a target missed with --check)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.growth", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="stop at 100,000 items")
    size.add_argument("--smoke", action="store_true", help="a few hundred items")
    parser.add_argument("--output", type=Path, help="results JSON (default: benchmarks/results/)")
    parser.add_argument("--plot", type=Path, nargs="?", const=PLOT, help="also draw the PNG")
    parser.add_argument("--tmpdir", type=Path, help="where the caches live")
    parser.add_argument("--candidate", default=engines.DEFAULT_CANDIDATE, metavar="MODULE:CLASS")
    parser.add_argument("--seed", type=int, default=20_240_601)
    parser.add_argument("--check", action="store_true", help="exit 2 if a target is missed")
    args = parser.parse_args(argv)
    scale = _scale(args)
    started = datetime.datetime.now(datetime.timezone.utc)
    root = Path(tempfile.mkdtemp(prefix="diskstore-growth-", dir=args.tmpdir))
    results: dict[str, dict[str, dict[str, float]]] = {}
    try:
        for count in scale.growth_sizes:
            print(f"{count:>9,} items ...", end=" ", file=sys.stderr, flush=True)
            began = time.perf_counter()
            results[str(count)] = run_size(count, args.candidate, root, args.seed)
            print(f"{time.perf_counter() - began:.1f} s", file=sys.stderr)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    run = {
        "format": 1,
        "meta": {
            "started": started.isoformat(timespec="seconds"),
            "scale": scale.name,
            "sizes": list(scale.growth_sizes),
            "engines": engines.describe(args.candidate),
            "load_average_at_start": list(load) if load else None,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        },
        "results": results,
        "targets": judge(results),
    }
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    output = args.output or RESULTS_DIR / f"growth-{stamp}-{scale.name}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(run, indent=2) + "\n", encoding="utf-8")
    print(table(results))
    print()
    for verdict in run["targets"]:
        mark = "met" if verdict["met"] else "MISSED"
        print(f"{verdict['label']}: {verdict['value']} ({verdict['bound']}) {mark}")
    sizes = sorted(results, key=int)
    for engine in ENGINES:
        first, last = results[sizes[0]][engine], results[sizes[-1]][engine]
        print(
            f"{engine} get and its bare SQLite lookup per call, {sizes[-1]} / {sizes[0]} items:"
            f" {last['get'] / first['get']:.3f} and {last['get_sqlite'] / first['get_sqlite']:.3f}"
        )
    print(f"results written to {output}")
    if args.plot is not None:
        plot(run, args.plot)
        print(f"plot written to {args.plot}")
    missed = any(not verdict["met"] for verdict in run["targets"])
    return 2 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
