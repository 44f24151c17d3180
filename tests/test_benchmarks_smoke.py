"""The benchmark harness still runs end to end: every workload, both caches, complete JSON.

The harness lives outside the package and nothing else exercises it, so without this test
a renamed cache method or a broken workload would only show up on the next manual run.
The run uses ``--smoke`` (a handful of operations per workload): it proves that the
harness works, not how fast anything is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import diskstore

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = (
    "mixed",
    "mixed_4proc",
    "value_1kb",
    "value_100kb",
    "value_10mb",
    "value_json_1mb",
    "memoize",
    "incr_4proc",
    "cull_1kb",
    "cull_64kb",
    "get_lru",
    "get_statistics",
    "disk_json_100kb",
    "signed_small",
    "fanout_signed_small",
    "unsigned_small",
    "hot_get",
    "async_burst",
    "redis",
    "large_values",
    "memoize_heavy",
    "import",
)
OPS = {
    "mixed": {"get", "set", "delete"},
    "mixed_4proc": {"get", "set", "delete"},
    "memoize": {"hit", "miss"},
    "incr_4proc": {"incr"},
    "cull_1kb": {"set"},
    "get_lru": {"get"},
    "value_10mb": {"get", "set"},
    "disk_json_100kb": {"set"},
    "signed_small": {"get", "set"},
    "fanout_signed_small": {"get", "set"},
    "unsigned_small": {"get", "set"},
    "async_burst": {"loop_lag", "burst"},
    "redis": {"get", "set", "memoize_hit", "near_get"},
    "large_values": {"set_bytes_1mb", "get_bytes_1mb", "set_array_1mb", "get_array_1mb"},
    "memoize_heavy": {"small_hit", "small_miss", "array_hit", "array_miss", "array_mmap_hit"},
    "import": {"import"},
}
# Operations diskcache has no equivalent of (joblib and diskstore map arrays; diskcache not).
DISKSTORE_ONLY = {("memoize_heavy", "array_mmap_hit"), ("memoize_heavy", "array_mmap_hit_first")}
TARGET_COUNT = 24
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _harness(*args: str, home: Path, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, XDG_CONFIG_HOME=str(home))
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    base = tmp_path_factory.mktemp("bench")
    output = base / "results.json"
    done = _harness(
        "-m", "benchmarks", "--smoke", "--output", str(output), "--tmpdir", str(base), home=base
    )
    assert done.returncode == 0, f"harness failed:\n{done.stdout}\n{done.stderr}"
    return output, json.loads(output.read_text(encoding="utf-8"))


def _workloads(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {workload["name"]: workload for workload in results["workloads"]}


def _memory_tier_supported(tmp_path: Path) -> bool:
    try:
        cache = diskstore.Cache(str(tmp_path / "probe"), memory_items=1000)
    except (TypeError, ValueError):
        return False
    cache.close()
    return True


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_every_workload_is_reported(smoke_run: tuple[Path, dict[str, Any]]) -> None:
    _, results = smoke_run
    assert tuple(w["name"] for w in results["workloads"]) == WORKLOADS
    assert results["meta"]["scale"] == "smoke"


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_diskstore_slot_runs_diskstore(smoke_run: tuple[Path, dict[str, Any]]) -> None:
    _, results = smoke_run
    described = results["meta"]["engines"]
    assert described["diskstore"].startswith("diskstore.")
    assert described["diskcache"].startswith("diskcache.")


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_both_caches_measured_on_every_operation(
    smoke_run: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    _, results = smoke_run
    by_name = _workloads(results)
    optional = {
        "async_burst": hasattr(diskstore, "AsyncCache"),
        "hot_get": _memory_tier_supported(tmp_path),
    }
    for name, workload in by_name.items():
        if name in optional and not optional[name]:
            assert workload["skipped"], f"{name} ran without the feature it measures"
            continue
        assert workload["skipped"] is None, f"{name} skipped: {workload['skipped']}"
        assert workload["ops"], f"{name} measured nothing"
        assert OPS.get(name, set()) <= set(workload["ops"]), name
        # The Redis workload compares RedisCache with redis-py (the floor), not diskcache.
        compared = ("diskstore", "sqlite3") if name == "redis" else ("diskstore", "diskcache")
        for op, by_engine in workload["ops"].items():
            for engine in compared:
                if engine == "diskcache" and (name, op) in DISKSTORE_ONLY:
                    assert engine not in by_engine
                    continue
                stats = by_engine.get(engine)
                assert stats is not None, f"{name}/{op} has no {engine} result"
                assert stats["n"] > 0
                assert 0 <= stats["p50_us"] <= stats["p90_us"] <= stats["p99_us"]
                # Event-loop lag can truly be zero; a timed cache call cannot.
                assert op == "loop_lag" or stats["p50_us"] > 0, f"{name}/{op} {engine}"


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_floor_runs_the_plain_key_value_workloads(smoke_run: tuple[Path, dict[str, Any]]) -> None:
    _, results = smoke_run
    by_name = _workloads(results)
    for name in ("mixed", "mixed_4proc", "value_1kb", "incr_4proc", "get_lru"):
        for op, by_engine in by_name[name]["ops"].items():
            assert "sqlite3" in by_engine, f"{name}/{op} lacks the sqlite3 floor"


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_correctness_checks_pass(smoke_run: tuple[Path, dict[str, Any]]) -> None:
    _, results = smoke_run
    by_name = _workloads(results)
    incr = by_name["incr_4proc"]
    for engine in ("diskstore", "diskcache", "sqlite3"):
        assert incr["checks"][f"exact_count[{engine}]"] is True
        assert incr["metrics"]["final_count"][engine] == 4 * 50
    for name, workload in by_name.items():
        failed = [check for check, passed in workload["checks"].items() if not passed]
        assert not failed, f"{name}: {failed}"
    for name in ("value_json_1mb", "disk_json_100kb"):
        sizes = by_name[name]["metrics"]["bytes_on_disk"]
        assert sizes["diskstore"] > 0 and sizes["diskcache"] > 0


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_targets_are_judged(smoke_run: tuple[Path, dict[str, Any]]) -> None:
    _, results = smoke_run
    outcomes = results["targets"]
    assert len(outcomes) == TARGET_COUNT
    for outcome in outcomes:
        assert outcome["ratio"] is not None and outcome["ratio"] > 0, outcome
        assert outcome["met"] in (True, False)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_plot_renders_the_json(smoke_run: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    path, _ = smoke_run
    image = tmp_path / "plot.png"
    done = _harness("-m", "benchmarks.plot", str(path), "-o", str(image), home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert image.read_bytes().startswith(PNG_SIGNATURE)


@pytest.mark.timeout(60)
def test_unknown_workload_is_refused(tmp_path: Path) -> None:
    done = _harness("-m", "benchmarks", "--smoke", "--only", "no_such_load", home=tmp_path)
    assert done.returncode == 64
    assert "'no_such_load'" in done.stderr


@pytest.mark.timeout(60)
def test_plot_refuses_a_file_that_is_not_results(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.json"
    bogus.write_text('{"format": 99}', encoding="utf-8")
    image = tmp_path / "x.png"
    done = _harness("-m", "benchmarks.plot", str(bogus), "-o", str(image), home=tmp_path)
    assert done.returncode == 1
    assert "format" in done.stderr
    assert not image.exists()


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_growth_workload_measures_every_operation_at_every_size(tmp_path: Path) -> None:
    output, image = tmp_path / "growth.json", tmp_path / "growth.png"
    done = _harness(
        "-m", "benchmarks.growth", "--smoke", "--output", str(output), "--plot", str(image),
        "--tmpdir", str(tmp_path), home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, f"growth failed:\n{done.stdout}\n{done.stderr}"
    run = json.loads(output.read_text(encoding="utf-8"))
    sizes = run["meta"]["sizes"]
    assert sizes == sorted(sizes) and len(sizes) >= 2
    operations = {"get", "get_sqlite", "set", "delete", "len", "iteration", "check", "expire"}
    operations |= {"cull", "evict", "evict_absent"}
    for size in sizes:
        for engine in ("diskstore", "diskcache"):
            measured = run["results"][str(size)][engine]
            assert operations <= set(measured), (size, engine)
            assert all(measured[op] > 0 for op in operations), (size, engine, measured)
            assert 0 < measured["items"] <= size
            assert measured["bytes_per_item"] > 0
    labels = [target["label"] for target in run["targets"]]
    assert any(label.startswith("iteration per item") for label in labels)
    assert any("resident memory" in label for label in labels)
    assert image.read_bytes().startswith(PNG_SIGNATURE)


def test_layouts_measures_both_layouts_at_each_size(tmp_path: Path) -> None:
    done = _harness(
        "-m", "benchmarks.layouts", "--sizes", "300,600", "--sample", "50",
        "--tmpdir", str(tmp_path), home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, f"layouts failed:\n{done.stdout}\n{done.stderr}"
    rows = [line.split("|")[1:-1] for line in done.stdout.splitlines()[2:]]
    assert [(row[0].strip(), row[1].strip()) for row in rows] == [
        (size, op) for size in ("300", "600") for op in ("lookup", "insert", "delete")
    ]
    for row in rows:
        rowid, clustered, ratio = (float(cell) for cell in row[2:])
        assert rowid > 0 and clustered > 0
        assert ratio == pytest.approx(clustered / rowid, abs=0.01)
    assert list(tmp_path.glob("diskstore-layouts-*")) == []


def test_slower_lists_each_operation_behind_diskcache_at_median_or_tail() -> None:
    from benchmarks.results import RunResult, WorkloadResult
    from benchmarks.targets import TARGETS, judge, slower

    result = WorkloadResult("mixed", "")
    result.add_samples(
        {
            "get": {"diskstore": [5_000] * 90 + [90_000] * 10, "diskcache": [6_000] * 100},
            "set": {"diskstore": [20_000] * 100, "diskcache": [40_000] * 100},
            "delete": {"diskstore": [50_000] * 100, "diskcache": [40_000] * 100},
        }
    )
    result.ops["get"]["sqlite3"] = result.ops["get"]["diskstore"]
    run = RunResult(meta={}, workloads=[result])
    lines = slower(run)
    assert lines == ["mixed get: p99 15.00x", "mixed delete: p50 1.25x, p99 1.25x"]
    floor_get = next(t for t in TARGETS if t.label == "get, against bare SQLite")
    outcome = judge(floor_get, result)
    assert outcome.ratio == 1.0 and outcome.met is True


@pytest.mark.timeout(120)
def test_breakdown_counts_statements_and_splits_the_time() -> None:
    from benchmarks.breakdown import markdown, run

    rows = run(["get", "delete"], 200, strace=False)
    by_key = {(row["op"], row["engine"]): row for row in rows}
    assert by_key["get", "diskstore"]["statements"] == 1
    assert by_key["delete", "diskstore"]["statements"] == 3  # BEGIN, DELETE ... RETURNING, COMMIT
    assert by_key["delete", "diskcache"]["statements"] == 4  # it reads the row first
    for row in rows:
        assert row["p50_us"] > 0
        if "sql_us" in row:
            assert row["sql_us"] > 0 and row["python_us"] == row["p50_us"] - row["sql_us"]
    assert markdown(rows).count("\n") == len(rows) + 1
