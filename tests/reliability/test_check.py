"""Item 9: ``check()`` reports the same problems whatever the warning filters, and one
``check(fix=True)`` pass leaves nothing to report.

A cache is damaged in every way ``check`` knows about: an unreferenced value file, a
temporary file left by a dead writer, a file it does not own, a value file that went
missing, one that was truncated, and a namespace count that is wrong. The report is
compared across filters in this process and in fresh interpreters started with ``-W ignore``
and ``-W error``. diskcache is measured under the same filters for comparison.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import diskcache
import pytest

import diskstore

from ._support import orphan_files, raw_connection

REPORT_SCRIPT = """
import json, sys
import diskstore
with diskstore.Cache(sys.argv[1]) as cache:
    found = cache.check()
print(json.dumps([[w.category.__name__, str(w.message)] for w in found]))
"""


def damage(directory: str) -> None:
    """Damage a populated cache in each way ``check`` should notice."""
    con = raw_connection(directory, read_only=False)
    try:
        files = [
            row[0] for row in con.execute("SELECT filename FROM Cache WHERE filename IS NOT NULL")
        ]
        con.execute("UPDATE Settings SET value = value + 5 WHERE key = 'count'")
        con.commit()
    finally:
        con.close()
    data = os.path.join(directory, "data")
    missing, truncated = files[0], files[1]
    os.unlink(os.path.join(directory, missing))
    with open(os.path.join(directory, truncated), "r+b") as handle:
        handle.truncate(100)
    os.makedirs(os.path.join(data, "ab"), exist_ok=True)
    with open(os.path.join(data, "ab", "0" * 30 + ".val"), "wb") as handle:
        handle.write(b"orphan")
    with open(os.path.join(data, "ab", "1" * 30 + ".tmp"), "wb") as handle:
        handle.write(b"debris of a dead writer")
    with open(os.path.join(data, "ab", "notes.txt"), "wb") as handle:
        handle.write(b"not ours")


def describe(found) -> list[tuple[str, str]]:
    return sorted((w.category.__name__, str(w.message)) for w in found)


def report_under(cache, action: str) -> list[tuple[str, str]]:
    with warnings.catch_warnings():
        if action == "record":
            with warnings.catch_warnings(record=True):
                warnings.simplefilter("always")
                return describe(cache.check())
        warnings.simplefilter(action)
        return describe(cache.check())


def report_in_subprocess(directory: str, flag: str) -> list[tuple[str, str]]:
    result = subprocess.run(
        [sys.executable, "-W", flag, "-c", REPORT_SCRIPT, directory],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()
    return sorted(tuple(item) for item in json.loads(result.stdout))


@pytest.fixture
def damaged(cache_dir):
    with diskstore.Cache(cache_dir) as cache:
        for number in range(4):
            cache.set(f"file{number}", bytes([number]) * 100_000)
        cache.set("inline", [1, 2, 3])
    damage(cache_dir)
    return cache_dir


@pytest.mark.timeout(120)
def test_check_ignores_warning_filters(damaged, figures):
    with diskstore.Cache(damaged) as cache:
        reference = report_under(cache, "default")
        reports = {action: report_under(cache, action) for action in ("ignore", "error", "record")}
    reports["-W ignore"] = report_in_subprocess(damaged, "ignore")
    reports["-W error"] = report_in_subprocess(damaged, "error")
    figures.record("check(): problems reported (default filters)", len(reference))
    figures.record("check(): problems reported under -W ignore", len(reports["-W ignore"]))

    kinds = {category for category, _message in reference}
    assert kinds == {"CorruptionWarning", "UnknownFileWarning"}
    assert len(reference) >= 6
    for action, report in reports.items():
        assert report == reference, action


@pytest.mark.timeout(120)
def test_one_fix_pass_converges(damaged, figures):
    with diskstore.Cache(damaged) as cache:
        assert cache.check() != []
        fixed = cache.check(fix=True)
        assert fixed != []
        remaining = cache.check()
        figures.record("check(): problems left after one fix=True pass", len(remaining))
        assert remaining == []
        assert cache.check(fix=True) == []
        assert len(cache) == sum(1 for _ in cache)
        assert cache.get("inline") == [1, 2, 3]
        survivors = [key for key in cache if key.startswith("file")]
        assert len(survivors) == 2  # the missing and the truncated entries were dropped
        for key in survivors:
            assert cache.get(key) == bytes([int(key[-1])]) * 100_000
    assert orphan_files(damaged) == []


def _diskcache_report(directory: str, action: str) -> int:
    with diskcache.Cache(directory) as cache, warnings.catch_warnings():
        warnings.simplefilter(action)
        return len(cache.check())


def test_diskcache_check_under_filters(tmp_path, figures):
    """Measured for the comparison table only (diskcache 5.6.3 is not asserted on)."""
    directory = str(tmp_path / "diskcache")
    with diskcache.Cache(directory) as cache:
        for number in range(4):
            cache.set(f"file{number}", bytes([number]) * 100_000)
        filenames = [
            row[0] for row in cache._sql("SELECT filename FROM Cache WHERE filename IS NOT NULL")
        ]
    os.unlink(os.path.join(directory, filenames[0]))
    with open(os.path.join(directory, "orphan.val"), "wb") as handle:
        handle.write(b"orphan")
    ignored = _diskcache_report(directory, "ignore")
    shown = _diskcache_report(directory, "always")
    figures.record_diskcache("check(): problems reported under -W ignore", ignored)
    figures.record_diskcache("check(): problems reported (default filters)", shown)
    assert shown >= ignored
