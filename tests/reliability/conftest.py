"""Fixtures for the reliability tests, and the record of the figures they measure.

Tests record what they measured through the ``figures`` fixture. At the end of the session
the record is written to ``build/reliability.json`` and printed as a table after the test
results, so the numbers quoted in ``docs/reliability.md`` can be reproduced with::

    .venv/bin/pytest tests/reliability
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ._figures import RECORD, Figures


@pytest.fixture(scope="session")
def figures() -> Figures:
    return Figures()


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    if not RECORD:
        return
    build = Path(config.rootpath) / "build"
    build.mkdir(exist_ok=True)
    target = build / "reliability.json"
    ordered = {name: RECORD[name] for name in sorted(RECORD)}
    target.write_text(json.dumps(ordered, indent=2, sort_keys=True) + "\n")
    terminalreporter.section("reliability figures")
    width = max(len(name) for name in ordered)
    terminalreporter.write_line(f"{'figure':<{width}}  {'diskstore':>12}  {'diskcache':>12}")
    for name, entry in ordered.items():
        ours = _show(entry["diskstore"])
        theirs = _show(entry.get("diskcache"))
        terminalreporter.write_line(f"{name:<{width}}  {ours:>12}  {theirs:>12}")
    terminalreporter.write_line(f"(written to {os.path.relpath(target)})")


def _show(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)
