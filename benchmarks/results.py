"""The shape of a benchmark run's results, and their JSON form.

A run is metadata plus one :class:`WorkloadResult` per workload. Each workload holds
latency summaries per operation and engine, scalar metrics per engine (bytes on disk,
throughput), pass/fail correctness checks, notes, and why it was skipped (the feature it
measures is missing) or what error stopped it.
The JSON written by ``python -m benchmarks`` is exactly :meth:`RunResult.to_json`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.stats import OpStats

FORMAT_VERSION = 1


@dataclass
class WorkloadResult:
    """What one workload measured, for every engine that took part."""

    name: str
    description: str
    engines: list[str] = field(default_factory=list)
    ops: dict[str, dict[str, OpStats]] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None
    error: str | None = None
    seconds: float = 0.0

    def add_samples(self, samples: Mapping[str, Mapping[str, Sequence[int]]]) -> None:
        """Summarize raw ``{op: {engine: [ns, ...]}}`` samples into :attr:`ops`."""
        for op, by_engine in samples.items():
            for engine, values in by_engine.items():
                if values:
                    self.ops.setdefault(op, {})[engine] = OpStats.from_ns(values)

    def add_metric(self, metric: str, engine: str, value: float) -> None:
        """Record a scalar ``metric`` (its name carries its unit) for ``engine``."""
        self.metrics.setdefault(metric, {})[engine] = value

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> WorkloadResult:
        """Rebuild a result from :meth:`to_json` output."""
        fields = dict(raw)
        fields["ops"] = {
            op: {engine: OpStats(**stats) for engine, stats in by_engine.items()}
            for op, by_engine in raw.get("ops", {}).items()
        }
        return cls(**fields)


@dataclass
class RunResult:
    """A whole run: where and how it ran, and every workload's result."""

    meta: dict[str, Any]
    workloads: list[WorkloadResult]
    targets: list[dict[str, Any]] = field(default_factory=list)

    def workload(self, name: str) -> WorkloadResult | None:
        """Return the workload called ``name``, or None."""
        return next((w for w in self.workloads if w.name == name), None)

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (``format`` lets later readers detect older files)."""
        return {
            "format": FORMAT_VERSION,
            "meta": self.meta,
            "workloads": [w.to_json() for w in self.workloads],
            "targets": self.targets,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> RunResult:
        """Rebuild a run from :meth:`to_json` output."""
        if raw.get("format") != FORMAT_VERSION:
            raise ValueError(f"results format must be {FORMAT_VERSION}, got {raw.get('format')!r}")
        return cls(
            meta=dict(raw["meta"]),
            workloads=[WorkloadResult.from_json(w) for w in raw["workloads"]],
            targets=list(raw.get("targets", [])),
        )

    def save(self, path: Path) -> None:
        """Write the run as indented JSON to ``path``, creating its directory."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> RunResult:
        """Read a run written by :meth:`save`."""
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
