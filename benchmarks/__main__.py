"""Command line: ``python -m benchmarks [--quick | --smoke] [--only NAME] [--output PATH]``.

Runs the workloads, prints the results table, writes the JSON, and exits non-zero when
a correctness check failed or a workload crashed (1), or, with ``--check-targets``, when
a performance target was missed (2).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import engines, heavy, report, targets, workloads
from benchmarks.context import Context
from benchmarks.multiproc import PROCESSES
from benchmarks.results import RunResult, WorkloadResult
from benchmarks.scale import FULL, QUICK, SMOKE, Scale

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_SEED = 20_240_601


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark diskstore against diskcache and a bare sqlite3 table.",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="fewer operations (under a minute)")
    size.add_argument("--smoke", action="store_true", help="a handful of operations per workload")
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"run only these workloads (repeat or comma-separate): {', '.join(workloads.NAMES)}",
    )
    parser.add_argument(
        "--output", type=Path, help="results JSON path (default: benchmarks/results/)"
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="seed for keys, values, order"
    )
    parser.add_argument(
        "--candidate",
        default=engines.DEFAULT_CANDIDATE,
        metavar="MODULE:CLASS",
        help="the Cache class run in the diskstore slot (default: %(default)s)",
    )
    parser.add_argument("--tmpdir", type=Path, help="where the caches live (default: system temp)")
    parser.add_argument(
        "--check-targets", action="store_true", help="exit with status 2 if any target is missed"
    )
    return parser


def _scale(args: argparse.Namespace) -> Scale:
    if args.smoke:
        return SMOKE
    return QUICK if args.quick else FULL


def _cpu_model() -> str:
    """Return the CPU model name where the platform tells it (Linux), else the processor."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor()


def _meta(args: argparse.Namespace, scale: Scale, started: datetime.datetime) -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "started": started.isoformat(timespec="seconds"),
        "scale": scale.name,
        "seed": args.seed,
        "rounds": scale.rounds,
        "processes": PROCESSES,
        "candidate": args.candidate,
        "engines": engines.describe(args.candidate),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": _cpu_model(),
        "cpus": os.cpu_count(),
        "load_average_at_start": list(load) if load else None,
    }


def _run_one(workload: workloads.Workload, ctx: Context) -> WorkloadResult:
    started = time.perf_counter()
    try:
        result = workload.run(ctx)
    except Exception:
        print(traceback.format_exc(), file=sys.stderr)
        ctx.stop_pool()  # a failed batch may leave workers mid-command; start afresh
        result = WorkloadResult(workload.name, "crashed")
        result.checks["completed"] = False
        result.error = traceback.format_exc().strip().splitlines()[-1]
    finally:
        ctx.release()
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; return the process exit status."""
    args = _parser().parse_args(argv)
    scale = _scale(args)
    names = [n.strip() for item in args.only or [] for n in item.split(",") if n.strip()]
    try:
        chosen = workloads.select(names)
        engines.load_class(args.candidate)
        engines.load_class(engines.BASELINE)
    except (ValueError, LookupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 64
    started = datetime.datetime.now(datetime.timezone.utc)
    meta = _meta(args, scale, started)
    root = Path(tempfile.mkdtemp(prefix="diskstore-bench-", dir=args.tmpdir))
    ctx = Context(candidate=args.candidate, scale=scale, seed=args.seed, root=root)
    results = []
    try:
        for number, workload in enumerate(chosen, 1):
            print(f"[{number:2}/{len(chosen)}] {workload.name} ...", end=" ", file=sys.stderr)
            sys.stderr.flush()
            results.append(_run_one(workload, ctx))
            print(f"{results[-1].seconds:.1f} s", file=sys.stderr)
    finally:
        ctx.close()
        shutil.rmtree(root, ignore_errors=True)
    meta["seconds"] = round(
        (datetime.datetime.now(datetime.timezone.utc) - started).total_seconds(), 1
    )
    run = RunResult(meta=meta, workloads=results)
    outcomes = targets.evaluate(run)
    run.targets = [outcome.to_json() for outcome in outcomes]
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    output = args.output or RESULTS_DIR / f"bench-{stamp}-{scale.name}.json"
    run.save(output)
    print(report.table(run, outcomes))
    print()
    comparison = heavy.tables(run)
    if comparison:
        print("median ms; ratios are diskstore over each engine (below 1: diskstore is faster)")
        print(comparison)
        print()
    print(report.summary(outcomes))
    behind = targets.slower(run)
    if behind:
        print("slower than diskcache: " + "; ".join(behind))
    print(f"results written to {output}")
    failures = report.failed_checks(run)
    for line in failures:
        print(f"!!! CHECK FAILED: {line}", file=sys.stderr)
    if failures:
        return 1
    if args.check_targets and any(outcome.met is False for outcome in outcomes):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
