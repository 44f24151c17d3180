"""The results table: workload | op | each engine's p50/p90/p99 | ratios | target | met?.

Latencies are microseconds. ``ds/dc`` is diskstore over diskcache and ``floor/dc`` the
bare sqlite3 table over diskcache, both of the row's statistic (p50 unless the row says
otherwise); scalar metrics (bytes on disk, throughput) get one row each.
``python -m benchmarks.report RESULTS.json [--markdown]`` prints the table of a saved run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.engines import DISKCACHE, DISKSTORE, ENGINES, FLOOR
from benchmarks.results import RunResult, WorkloadResult
from benchmarks.stats import OpStats, ratio
from benchmarks.targets import METRIC, Outcome, evaluate

HEADER = (
    "workload",
    "op",
    *(f"{engine} p50/p90/p99 us" for engine in ENGINES),
    "ds/dc",
    "floor/dc",
    "target",
    "met?",
)
SHOWN_METRICS = (
    "throughput_ops_per_s",
    "bytes_on_disk",
    "final_count",
    "volume_over_limit",
    "ratio_get",
    "ratio_set",
    "ratio_memoize_hit",
    "ratio_near_get",
    "staleness_us_p50",
    "staleness_us_p99",
)


def _triple(stats: OpStats | None) -> str:
    if stats is None:
        return "-"
    return f"{stats.p50_us:.1f}/{stats.p90_us:.1f}/{stats.p99_us:.1f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _metric(name: str, value: float | None) -> str:
    if value is None:
        return "-"
    if name.startswith("bytes"):
        return f"{value / 1024 / 1024:.2f} MiB"
    if name.startswith("throughput"):
        return f"{value:,.0f}/s"
    if name == "final_count":
        return f"{value:.0f}"
    return f"{value:.2f}"


def _stat(by_engine: dict[str, OpStats], engine: str, stat: str) -> float | None:
    found = by_engine.get(engine)
    return None if found is None else found.value(stat)


def _verdict(outcome: Outcome | None) -> tuple[str, str]:
    if outcome is None:
        return "", ""
    met = {True: "yes", False: "NO", None: "n/a"}[outcome.met]
    return outcome.target.bound, met


def _rows(result: WorkloadResult, outcomes: dict[tuple[str, str, str], Outcome]) -> list[list[str]]:
    if result.error:
        return [[result.name, f"ERROR: {result.error}"]]
    if result.skipped:
        return [[result.name, f"skipped: {result.skipped}"]]
    rows = []
    for op, by_engine in result.ops.items():
        stats = ["p50"] + [
            stat for (wl, measure, stat) in outcomes if (wl, measure) == (result.name, op)
        ]
        for stat in dict.fromkeys(stats):
            ds, dc, floor = (_stat(by_engine, e, stat) for e in (DISKSTORE, DISKCACHE, FLOOR))
            target, met = _verdict(outcomes.get((result.name, op, stat)))
            rows.append(
                [
                    result.name,
                    op if stat == "p50" else f"{op} ({stat})",
                    *(_triple(by_engine.get(engine)) for engine in ENGINES),
                    _ratio(ratio(ds, dc)),
                    _ratio(ratio(floor, dc)),
                    target,
                    met,
                ]
            )
    for name in SHOWN_METRICS:
        values = result.metrics.get(name)
        if not values:
            continue
        target, met = _verdict(outcomes.get((result.name, name, METRIC)))
        rows.append(
            [
                result.name,
                name,
                *(_metric(name, values.get(engine)) for engine in ENGINES),
                _ratio(ratio(values.get(DISKSTORE), values.get(DISKCACHE))),
                _ratio(ratio(values.get(FLOOR), values.get(DISKCACHE))),
                target,
                met,
            ]
        )
    return rows


def _all_rows(run: RunResult, outcomes: list[Outcome]) -> list[list[str]]:
    by_key = {
        (o.target.workload, o.target.measure, o.target.stat): o
        for o in outcomes
        if o.target.against == DISKCACHE  # the floor's targets are listed by summary()
    }
    rows = [list(HEADER)]
    for result in run.workloads:
        rows.extend(_rows(result, by_key))
    return rows


def table(run: RunResult, outcomes: list[Outcome]) -> str:
    """Return the results table as aligned plain text."""
    rows = _all_rows(run, outcomes)
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(len(HEADER))]
    lines = []
    for index, row in enumerate(rows):
        if len(row) < len(HEADER):  # a skipped or failed workload: name and reason only
            lines.append(f"{row[0].ljust(widths[0])}  {row[1]}")
        else:
            lines.append(
                "  ".join(
                    cell.ljust(width) for cell, width in zip(row, widths, strict=True)
                ).rstrip()
            )
        if index == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)


def markdown(run: RunResult, outcomes: list[Outcome]) -> str:
    """Return the results table as a Markdown table (for the docs)."""
    rows = _all_rows(run, outcomes)
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * len(HEADER)]
    for row in rows[1:]:
        cells = row + [""] * (len(HEADER) - len(row))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def failed_checks(run: RunResult) -> list[str]:
    """Return one line per failed correctness check (an empty list when all passed)."""
    failed = []
    for result in run.workloads:
        for name, passed in result.checks.items():
            if not passed:
                why = result.error or "; ".join(result.notes)
                failed.append(f"{result.name}: {name} FAILED" + (f" ({why})" if why else ""))
    return failed


def summary(outcomes: list[Outcome]) -> str:
    """Return a one-line count of targets met, missed and not measured."""
    met = sum(o.met is True for o in outcomes)
    missed = [o.target.label for o in outcomes if o.met is False]
    unmeasured = sum(o.met is None for o in outcomes)
    text = f"targets met: {met}/{len(outcomes)}"
    if missed:
        text += f"; missed: {', '.join(missed)}"
    if unmeasured:
        text += f"; not measured: {unmeasured}"
    floor = [o for o in outcomes if o.target.against != DISKCACHE and o.ratio is not None]
    for outcome in floor:
        verdict = "met" if outcome.met else "missed"
        text += (
            f"\n  {outcome.target.label}: diskstore/{outcome.target.against} "
            f"{outcome.ratio:.2f} ({outcome.target.bound}, {verdict})"
        )
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table of a saved results JSON: ``python -m benchmarks.report FILE``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__)
    parser.add_argument("results", type=Path, help="a JSON file written by python -m benchmarks")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    try:
        run = RunResult.load(args.results)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    outcomes = evaluate(run)
    print(markdown(run, outcomes) if args.markdown else table(run, outcomes))
    print()
    print(summary(outcomes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
