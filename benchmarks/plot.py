"""Draw a results JSON as a PNG: ``python -m benchmarks.plot RESULTS.json [-o OUT.png]``.

One horizontal bar per measured row, drawn from 1.0 (parity) to the ratio diskstore /
diskcache on a log scale (left of the line is better, except for throughput, where right
is better);
a dot marks the bare sqlite3 floor and a tick marks the target. Bars are green where
the target was met, red where it was missed and grey where there is none.
matplotlib is imported only here, so the harness itself runs without it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.engines import DISKCACHE, DISKSTORE, FLOOR
from benchmarks.results import RunResult
from benchmarks.stats import ratio
from benchmarks.targets import METRIC, Outcome, evaluate

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "img" / "benchmarks.png"
PLOTTED_METRICS = ("throughput_ops_per_s", "bytes_on_disk")
COLOURS = {True: "#2e8b57", False: "#c0392b", None: "#8c8c8c"}


@dataclass(frozen=True)
class Bar:
    """One plotted row: a label, its ratios to diskcache, and its target if any."""

    label: str
    mine: float
    floor: float | None
    outcome: Outcome | None


def bars(run: RunResult) -> list[Bar]:
    """Return the bars for ``run``, in the order its workloads ran."""
    outcomes = {(o.target.workload, o.target.measure, o.target.stat): o for o in evaluate(run)}
    found: list[Bar] = []
    for result in run.workloads:
        if result.skipped:
            continue
        for op, by_engine in result.ops.items():
            stats = ["p50"] + [s for (w, m, s) in outcomes if (w, m) == (result.name, op)]
            for stat in dict.fromkeys(stats):
                base = by_engine.get(DISKCACHE)
                mine = by_engine.get(DISKSTORE)
                if base is None or mine is None:
                    continue
                floor = by_engine.get(FLOOR)
                found.append(
                    Bar(
                        f"{result.name} {op} {stat}",
                        mine.value(stat) / base.value(stat),
                        None if floor is None else floor.value(stat) / base.value(stat),
                        outcomes.get((result.name, op, stat)),
                    )
                )
        for name in PLOTTED_METRICS:
            values = result.metrics.get(name, {})
            mine_ratio = ratio(values.get(DISKSTORE), values.get(DISKCACHE))
            if mine_ratio is None:
                continue
            found.append(
                Bar(
                    f"{result.name} {name}",
                    mine_ratio,
                    ratio(values.get(FLOOR), values.get(DISKCACHE)),
                    outcomes.get((result.name, name, METRIC)),
                )
            )
    return found


def draw(run: RunResult, output: Path) -> None:
    """Render ``run`` to the PNG file ``output``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    rows = bars(run)
    if not rows:
        raise ValueError("the results hold no workload measured on both diskstore and diskcache")
    positions = list(range(len(rows)))[::-1]
    figure, axes = pyplot.subplots(figsize=(9, 0.28 * len(rows) + 1.6))
    colours = [COLOURS[row.outcome.met if row.outcome else None] for row in rows]
    # Bars grow from 1.0 (parity with diskcache), leftwards when diskstore is smaller.
    widths = [row.mine - 1.0 for row in rows]
    axes.barh(positions, widths, left=1.0, color=colours, height=0.6)
    floors = [(p, row.floor) for p, row in zip(positions, rows, strict=True) if row.floor]
    if floors:
        axes.scatter(
            [f for _, f in floors],
            [p for p, _ in floors],
            marker="o",
            s=14,
            color="black",
            label="sqlite3 floor / diskcache",
            zorder=3,
        )
    targets = [
        (p, row.outcome.target.limit) for p, row in zip(positions, rows, strict=True) if row.outcome
    ]
    if targets:
        axes.scatter(
            [t for _, t in targets],
            [p for p, _ in targets],
            marker="|",
            s=160,
            color="#1f4e79",
            linewidths=2,
            label="target",
            zorder=4,
        )
    axes.axvline(1.0, color="black", linewidth=0.8)
    axes.set_xscale("log")
    axes.set_yticks(positions, [row.label for row in rows], fontsize=7)
    axes.set_xlabel("diskstore / diskcache (log scale; < 1 is better, throughput > 1 is better)")
    meta = run.meta
    axes.set_title(
        f"diskstore vs diskcache {meta.get('scale', '')} run, {meta.get('started', '')}\n"
        f"{meta.get('platform', '')}, {meta.get('cpus', '?')} CPUs, Python {meta.get('python', '')}",
        fontsize=8,
    )
    axes.legend(fontsize=7, loc="lower right")
    axes.grid(axis="x", which="both", alpha=0.3)
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=110)
    pyplot.close(figure)


def main(argv: Sequence[str] | None = None) -> int:
    """Read a results JSON and write the PNG; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plot", description=__doc__)
    parser.add_argument("results", type=Path, help="a JSON file written by python -m benchmarks")
    parser.add_argument(
        "-o", "--output", type=Path, default=DEFAULT_OUTPUT, help="PNG path (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    try:
        run = RunResult.load(args.results)
        draw(run, args.output)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"plot written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
