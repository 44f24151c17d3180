"""Tests for diskstore.tasks.TaskCache: results keyed by task, version and input content."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import diskcache
import numpy as np
import pytest
from _cache_support import join_refreshes

import diskstore
from diskstore.tasks import TaskCache, TaskEntry

INPUTS = {"path": "data.csv", "columns": ["a", "b"], "options": {"sep": ",", "skip": {1, 2}}}


@pytest.fixture
def tasks(tmp_path: Path) -> Iterator[TaskCache]:
    with TaskCache(str(tmp_path / "tasks")) as opened:
        yield opened


class TestKeys:
    def test_reordered_inputs_hit(self, tasks: TaskCache) -> None:
        tasks.set("load", "1", INPUTS, {"rows": 10})
        reordered = {
            "options": {"skip": {2, 1}, "sep": ","},
            "columns": ["a", "b"],
            "path": "data.csv",
        }
        assert tasks.get("load", "1", reordered) == {"rows": 10}

    def test_changed_input_misses(self, tasks: TaskCache) -> None:
        tasks.set("load", "1", INPUTS, {"rows": 10})
        assert tasks.get("load", "1", {**INPUTS, "columns": ["b", "a"]}) is None
        assert tasks.get("load", "1", {**INPUTS, "extra": None}) is None

    def test_changed_version_misses(self, tasks: TaskCache) -> None:
        tasks.set("load", "1", INPUTS, {"rows": 10})
        assert tasks.get("load", "2", INPUTS) is None
        assert tasks.get("load", 1, INPUTS) == {"rows": 10}  # 1 and "1" are one version

    def test_other_task_misses(self, tasks: TaskCache) -> None:
        tasks.set("load", "1", INPUTS, {"rows": 10})
        assert tasks.get("parse", "1", INPUTS) is None

    def test_ignored_input_hits(self, tasks: TaskCache) -> None:
        tasks.set("load", "1", {**INPUTS, "verbose": True}, "out", ignore_inputs=("verbose",))
        assert tasks.get("load", "1", {**INPUTS, "verbose": False}, ignore_inputs={"verbose"})
        assert tasks.get("load", "1", INPUTS, ignore_inputs=["verbose"]) == "out"
        assert tasks.get("load", "1", {**INPUTS, "verbose": False}) is None

    def test_array_inputs_hash_by_content(self, tasks: TaskCache) -> None:
        image = np.arange(64, dtype=np.uint8).reshape(8, 8)
        tasks.set("blur", "1", {"image": image, "radius": 2}, "blurred")
        assert tasks.get("blur", "1", {"radius": 2, "image": image.copy()}) == "blurred"
        image[0, 0] = 255
        assert tasks.get("blur", "1", {"radius": 2, "image": image}) is None

    def test_set_returns_the_input_hash(self, tasks: TaskCache) -> None:
        digest = tasks.set("load", "1", INPUTS, 1)
        assert digest == tasks.input_hash(INPUTS)
        assert digest == tasks.input_hash({**INPUTS, "skip": 0}, ["skip"])
        assert [entry.input_hash for entry in tasks.entries("load")] == [digest]

    def test_none_outputs_read_as_a_miss(self, tasks: TaskCache) -> None:
        tasks.set("noop", "1", {}, None)
        assert tasks.get("noop", "1", {}) is None
        assert len(tasks.entries("noop")) == 1


class TestValidation:
    def test_unhashable_input_is_named(self, tasks: TaskCache) -> None:
        with pytest.raises(TypeError, match="cannot hash input 'connection'"):
            tasks.get("load", "1", {"path": "x", "connection": threading.Lock()})
        with pytest.raises(TypeError, match="cannot hash input 'connection'"):
            tasks.set("load", "1", {"path": "x", "connection": threading.Lock()}, 1)

    def test_unhashable_input_can_be_ignored(self, tasks: TaskCache) -> None:
        inputs = {"path": "x", "connection": threading.Lock()}
        tasks.set("load", "1", inputs, 1, ignore_inputs=("connection",))
        assert tasks.get("load", "1", inputs, ignore_inputs=("connection",)) == 1

    @pytest.mark.parametrize(
        ("args", "error", "message"),
        [
            (("", "1", {}), ValueError, "task_name must be a non-empty str, got ''"),
            ((None, "1", {}), TypeError, "task_name must be a non-empty str, got None"),
            (("t", 1.5, {}), TypeError, "version must be a str or an int, got 1.5"),
            (("t", True, {}), TypeError, "version must be a str or an int, got True"),
            (("t", "1", [("a", 1)]), TypeError, "inputs must be a mapping"),
            (("t", "1", {1: "a"}), TypeError, "input names must be str, got 1"),
            (("t", "1", {}, "verbose"), TypeError, r"ignore_inputs=\('verbose',\)"),
            (("t", "1", {}, [1]), TypeError, "ignore_inputs must hold input names"),
        ],
    )
    def test_bad_arguments(
        self, tasks: TaskCache, args: tuple[Any, ...], error: type[Exception], message: str
    ) -> None:
        with pytest.raises(error, match=message):
            tasks.get(*args)

    def test_bad_compute_seconds(self, tasks: TaskCache) -> None:
        with pytest.raises(ValueError, match=r"compute_seconds .* got -1"):
            tasks.set("t", "1", {}, 1, compute_seconds=-1)

    def test_unpicklable_outputs(self, tasks: TaskCache) -> None:
        with pytest.raises(TypeError, match="outputs of task 't' cannot be pickled"):
            tasks.set("t", "1", {}, threading.Lock())
        assert tasks.entries() == []

    def test_directory_or_cache(self, tmp_path: Path) -> None:
        with diskstore.Cache(str(tmp_path)) as cache:
            with pytest.raises(ValueError, match="either directory or cache"):
                TaskCache(str(tmp_path), cache=cache)
        with diskcache.Cache(str(tmp_path / "plain")) as plain:
            with pytest.raises(TypeError, match="namespace"):
                TaskCache(cache=plain)


class TestEntries:
    def test_metadata(self, tasks: TaskCache) -> None:
        outputs = {"table": list(range(100))}
        before = time.time()
        digest = tasks.set("load", "3", INPUTS, outputs, compute_seconds=1.25)
        after = time.time()
        for _ in range(3):
            tasks.get("load", "3", INPUTS)
        (entry,) = tasks.entries()
        assert entry == TaskEntry(
            task_name="load",
            version="3",
            input_hash=digest,
            created=entry.created,
            compute_seconds=1.25,
            hits=3,
            size=len(cloudpickle.dumps(outputs, protocol=5)),
        )
        assert before <= entry.created <= after

    def test_overwriting_resets_hits(self, tasks: TaskCache) -> None:
        tasks.set("load", "1", INPUTS, 1)
        tasks.get("load", "1", INPUTS)
        tasks.set("load", "1", INPUTS, 2)
        (entry,) = tasks.entries("load")
        assert entry.hits == 0
        assert tasks.get("load", "1", INPUTS) == 2

    def test_entries_are_sorted_and_filtered(self, tasks: TaskCache) -> None:
        tasks.set("b-task", "1", {"x": 1}, 1)
        tasks.set("a-task", "1", {"x": 1}, 1)
        tasks.set("a-task", "2", {"x": 1}, 1)
        listed = [(e.task_name, e.version) for e in tasks.entries()]
        assert listed == [("a-task", "1"), ("a-task", "2"), ("b-task", "1")]
        assert [e.version for e in tasks.entries("a-task")] == ["1", "2"]
        assert tasks.entries("missing") == []

    def test_clear_one_task_leaves_the_others(self, tasks: TaskCache) -> None:
        tasks.set("a", "1", {"x": 1}, "a1")
        tasks.set("a", "1", {"x": 2}, "a2")
        tasks.set("b", "1", {"x": 1}, "b1")
        tasks.cache.set("plain", "kept")
        tasks.clear("a")
        assert tasks.get("a", "1", {"x": 1}) is None
        assert tasks.get("b", "1", {"x": 1}) == "b1"
        assert [e.task_name for e in tasks.entries()] == ["b"]
        assert tasks.cache.get("plain") == "kept"

    def test_clear_everything(self, tasks: TaskCache) -> None:
        tasks.set("a", "1", {}, 1)
        tasks.set("b", "1", {}, 2)
        tasks.cache.set("plain", "kept")
        tasks.clear()
        assert tasks.entries() == []
        assert tasks.get("b", "1", {}) is None
        assert tasks.cache.get("plain") == "kept"


class TestDecorator:
    def test_arguments_become_named_inputs(self, tasks: TaskCache) -> None:
        calls: list[Any] = []

        @tasks.task(version="1", ignore=("verbose",))
        def resize(path: str, width: int = 64, *, verbose: bool = False) -> dict[str, Any]:
            calls.append((path, width))
            return {"path": path, "width": width}

        assert resize("a.png") == {"path": "a.png", "width": 64}
        assert resize("a.png", 64, verbose=True) == {"path": "a.png", "width": 64}
        assert resize(width=64, path="a.png") == {"path": "a.png", "width": 64}
        assert calls == [("a.png", 64)]
        resize("a.png", 32)
        assert len(calls) == 2
        assert tasks.get(resize.task_name, "1", {"path": "a.png", "width": 64}) is not None

    def test_records_compute_seconds_and_hits(self, tasks: TaskCache) -> None:
        @tasks.task(version=2, name="sleepy")
        def sleepy(x: int) -> int:
            time.sleep(0.05)
            return x

        sleepy(1)
        sleepy(1)
        (entry,) = tasks.entries("sleepy")
        assert entry.version == "2"
        assert entry.hits == 1
        assert entry.compute_seconds is not None and entry.compute_seconds >= 0.05

    def test_none_results_are_reused(self, tasks: TaskCache) -> None:
        calls: list[int] = []

        @tasks.task(version="1")
        def side_effect(x: int) -> None:
            calls.append(x)

        side_effect(1)
        side_effect(1)
        assert calls == [1]

    def test_var_keyword_arguments_are_inputs(self, tasks: TaskCache) -> None:
        @tasks.task(version="1", name="kw", ignore=("debug",))
        def kw(*parts: str, **options: Any) -> str:
            return "-".join(parts) + str(sorted(options))

        kw("a", "b", x=1, debug=True)
        assert tasks.get("kw", "1", {"parts": ("a", "b"), "x": 1}) == "a-b['debug', 'x']"

    def test_misuse(self, tasks: TaskCache) -> None:
        with pytest.raises(ValueError, match="'nope'"):

            @tasks.task(version="1", ignore=("nope",))
            def f(x: int) -> int:
                return x

        with pytest.raises(TypeError, match="async"):

            @tasks.task(version="1")
            async def g(x: int) -> int:
                return x

        with pytest.raises(TypeError, match="version"):
            tasks.task(version=None)  # type: ignore[arg-type]


class TestOwnership:
    def test_given_cache_is_used_and_left_open(self, tmp_path: Path) -> None:
        with diskstore.Cache(str(tmp_path)) as cache:
            with TaskCache(cache=cache) as tasks:
                tasks.set("t", "1", {}, "v")
            assert cache.get("plain", "still open") == "still open"
            assert TaskCache(cache=cache).get("t", "1", {}) == "v"

    def test_results_survive_reopening(self, tmp_path: Path) -> None:
        with TaskCache(str(tmp_path)) as tasks:
            tasks.set("t", "1", INPUTS, "v")
        with TaskCache(str(tmp_path)) as tasks:
            assert tasks.get("t", "1", INPUTS) == "v"


def test_results_are_found_from_another_process_with_another_hash_seed(tmp_path: Path) -> None:
    directory = str(tmp_path / "tasks")
    with TaskCache(directory) as tasks:
        tasks.set("load", "1", INPUTS, {"rows": 10})
    script = textwrap.dedent(
        """
        import sys
        from diskstore.tasks import TaskCache
        inputs = {
            "options": {"skip": {2, 1}, "sep": ","},
            "path": "data.csv",
            "columns": ["a", "b"],
        }
        with TaskCache(sys.argv[1]) as tasks:
            print(tasks.get("load", 1, inputs))
        """
    )
    for seed in ("0", "99"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-c", script, directory],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert result.stdout.strip() == "{'rows': 10}"


def test_a_stale_task_result_is_returned_and_refreshed_once_in_background(
    tmp_path: Path,
) -> None:
    release = threading.Event()
    runs: list[int] = []
    with TaskCache(str(tmp_path / "tasks")) as tasks:

        @tasks.task(version=1, refresh_after=0.05)
        def build(n: int) -> int:
            runs.append(n)
            if len(runs) > 1:
                assert release.wait(60)  # the refresh waits until the stale calls returned
            return len(runs)

        assert build(3) == 1
        time.sleep(0.1)
        assert [build(3) for _ in range(4)] == [1, 1, 1, 1]  # none waited for the refresh
        release.set()
        join_refreshes()
        assert runs == [3, 3]
        assert build(3) == 2


def test_a_failing_task_refresh_keeps_the_result(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fail = False
    with TaskCache(str(tmp_path / "tasks")) as tasks:

        @tasks.task(version=1, refresh_after=0.05)
        def build(n: int) -> int:
            if fail:
                raise OSError("disk gone")
            return n * 10

        assert build(2) == 20
        fail = True
        time.sleep(0.1)
        with caplog.at_level("WARNING", logger="diskstore"):
            assert build(2) == 20
            join_refreshes()
        assert any("failed" in r.getMessage() for r in caplog.records if r.name == "diskstore")
        fail = False
        assert build(2) == 20
        join_refreshes()


def test_task_refresh_after_is_checked(tmp_path: Path) -> None:
    with TaskCache(str(tmp_path / "tasks")) as tasks:
        with pytest.raises(ValueError, match="refresh_after must be a finite number"):
            tasks.task(version=1, refresh_after=-1)
