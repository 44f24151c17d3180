"""Every command on a 200,000-item cache; progress bars on a terminal and not in a pipe.

The cache is built once for the module (one transaction), read-only commands run first,
and the commands that change it run last, in one test, in a fixed order.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _cache_support import in_pseudo_terminal

import diskstore
from diskstore import _cli

ITEMS = 200_000
BIG_VALUE = "x" * 200_000
SHORT_LIVED = 1.0  # seconds
pytestmark = pytest.mark.timeout(600)


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    status = _cli.main(list(argv), out=out)
    return status, out.getvalue()


def run_json(*argv: str) -> Any:
    status, out = run(*argv, "--json")
    assert status == 0, out
    return json.loads(out)


def _square(n: int) -> int:
    return n * n


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = str(tmp_path_factory.mktemp("big") / "cache")
    with diskstore.Cache(directory) as cache:
        with cache.transact(retry=True):
            for i in range(ITEMS):
                cache[f"key-{i}"] = i
        for i in range(100):
            cache.set(f"tagged-{i}", i, tag="batch")
        cache[7] = "the int seven"
        cache["big"] = BIG_VALUE
        cache.namespace("sessions")["user-1"] = {"cart": [1, 2]}
        square = cache.memoize(name="squares")(_square)
        for n in range(10):
            square(n)
        # Last, and expiring only after the fixture: sets remove items already expired.
        for i in range(100):
            cache.set(f"short-lived-{i}", i, expire=SHORT_LIVED)
    return directory


def test_stats(big: str) -> None:
    # The short-lived items may have expired by now: count them anyway.
    report = run_json("stats", big, "--include-expired")
    assert report["items"] == ITEMS + 202 + 10  # memoized results are items of the cache
    assert report["items_all_namespaces"] == ITEMS + 202 + 10 + 1
    assert run_json("stats", big)["items"] == ITEMS + 202 + 10 - report["expired"]


def test_keys_with_a_glob_a_limit_and_json(big: str) -> None:
    assert run_json("keys", big, "key-19999?") == {
        "keys": [f"key-19999{i}" for i in range(10)],
        "truncated": False,
    }
    assert run_json("keys", big, "--limit", "3") == {
        "keys": ["key-0", "key-1", "key-2"],
        "truncated": True,
    }
    status, out = run("keys", big, "--include-expired")
    assert status == 0
    assert len(out.splitlines()) == ITEMS + 202 + 10
    assert run_json("keys", big, "--namespace", "sessions")["keys"] == ["user-1"]
    inspected = run_json("keys", big, "--inspect", "key-12345")["entries"]
    assert inspected == [
        {
            "expire_time": None,
            "key": "key-12345",
            "kind": "native",
            "signed": False,
            "stored_bytes": 5,  # length() of the native integer 12345
            "tag": None,
        }
    ]


def test_namespaces_and_functions(big: str) -> None:
    names = {row["name"]: row["items"] for row in run_json("namespaces", big)}
    assert names[""] == ITEMS + 202 + 10
    assert names["sessions"] == 1
    functions = run_json("functions", big)
    assert [(f["name"], f["items"]) for f in functions] == [("squares", 10)]
    assert functions[0]["file_bytes"] == 0  # small results are stored inline
    status, out = run("functions", big)
    assert status == 0 and "squares" in out


def test_get_summarizes_a_large_value(big: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run("get", big, "big")
    assert status == 0
    assert len(out) < 1000
    assert "--full" in out
    assert run("get", big, "big", "--full") == (0, repr(BIG_VALUE) + "\n")
    assert run("get", big, "big", "--raw") == (0, BIG_VALUE)
    report = run_json("get", big, "key-5")
    assert (report["repr"], report["type"], report["truncated"]) == ("5", "int", False)
    assert run("get", big, "7") == (1, "")
    assert "--literal" in capsys.readouterr().err
    assert run("get", big, "7", "--literal") == (0, "'the int seven'\n")
    assert run("get", big, "nope") == (1, "")
    assert "key not found: 'nope'" in capsys.readouterr().err


def test_version_and_check_json(big: str) -> None:
    assert run_json("version")["diskstore"] == diskstore.__version__
    assert run_json("check", big) == {"found": [], "remaining": [], "fixed": False}


def test_check_shows_a_progress_bar_on_a_terminal(big: str) -> None:
    status, output = in_pseudo_terminal([sys.executable, "-m", "diskstore", "check", big])
    assert status == 0, output
    text = output.decode("utf-8", "replace")
    assert "checking" in text
    every_row = ITEMS + 202 + 10 + 1  # the plain cache with memoized results, a namespace
    assert "100%" in text and f"{every_row}/{every_row}" in text
    assert "no problems found" in text


def test_check_prints_no_progress_in_a_pipe(big: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "diskstore", "check", big], capture_output=True, timeout=300
    )
    assert completed.returncode == 0
    assert completed.stderr == b""
    assert completed.stdout == b"no problems found\n"


def test_commands_that_change_the_cache(big: str, tmp_path: Path) -> None:
    with diskstore.inspect_cache(big) as inspection:
        last = max(e.expire_time or 0.0 for e in inspection.entries() if e.key == "short-lived-99")
    time.sleep(max(0.0, last - time.time() + 0.05))  # let the short-lived items expire
    assert run("expire", big) == (0, "removed 100 expired item(s)\n")
    assert run("delete", big, "key-3") == (0, "deleted 'key-3'\n")
    assert run("delete", big, "key-3")[0] == 1
    assert run("delete", big, "7", "--literal") == (0, "deleted 7\n")
    assert run("evict", big, "batch") == (0, "removed 100 item(s) tagged 'batch'\n")
    status, out = run("cull", big)
    assert status == 0 and "removed 0 item(s)" in out
    assert run("check", big, "--fix") == (0, "no problems found\n")
    assert run("clear", big, "--namespace", "sessions")[1].startswith("removed 1 item(s)")
    status, out = run("clear", big)
    assert status == 0 and f"removed {ITEMS + 10} item(s)" in out  # with memoized results
    status, out = run("vacuum", big)
    assert status == 0 and "volume" in out
    assert run_json("stats", big)["items"] == 0


def test_migrate_copies_200000_diskcache_items_with_a_progress_bar(tmp_path: Path) -> None:
    import diskcache  # type: ignore[import-untyped]

    old = str(tmp_path / "old")
    with diskcache.Cache(old) as source:
        with source.transact():
            for i in range(ITEMS):
                source[f"key-{i}"] = i
        source.set(("pickled", "key"), {"pickled": "value"}, tag="t")
    new = str(tmp_path / "new")
    argv = [sys.executable, "-m", "diskstore", "migrate", old, new, "--trust"]
    status, output = in_pseudo_terminal(argv)
    text = output.decode("utf-8", "replace")
    assert status == 0, text
    assert "copying" in text and f"{ITEMS + 1}/{ITEMS + 1}" in text
    assert f"copied {ITEMS + 1} item(s)" in text
    with diskstore.Cache(new, read_only=True) as cache:
        assert len(cache) == ITEMS + 1
        assert cache["key-199999"] == 199999
        assert cache.get(("pickled", "key"), tag=True) == ({"pickled": "value"}, "t")
