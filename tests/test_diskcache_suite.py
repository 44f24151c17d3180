"""Tests for tests/diskcache_suite/run.py: every test it leaves out is documented, and few."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _runner() -> object:
    spec = importlib.util.spec_from_file_location("run", ROOT / "tests/diskcache_suite/run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_excluded_test_is_named_with_its_reason_in_the_differences_page() -> None:
    excluded: dict[str, str] = _runner().EXCLUDED  # type: ignore[attr-defined]
    page = (ROOT / "docs/differences.md").read_text()
    assert len(excluded) + 1 <= 25  # and the tutorial, whose file the release lacks
    for node, reason in excluded.items():
        assert node.startswith("tests/test_") and "::test_" in node
        assert f"| `{node.split('::')[1]}` | {reason} |" in page, node
    assert "`test_doctest.py::test_tutorial`" in page


def test_support_files_are_not_collected_by_our_own_suite() -> None:
    names = [path.name for path in (ROOT / "tests/diskcache_suite").rglob("*.py")]
    assert names and not [n for n in names if n.startswith("test_") or n == "conftest.py"]
