"""The ``diskstore`` command line (``diskstore/_cli.py``) and its demo (``diskstore/_demo.py``)."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import sqlite3
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from _cache_support import in_pseudo_terminal, memoized_calls_worker, run_processes

import diskstore
from diskstore import _cli, _demo
from diskstore.__main__ import main as entry_point

ROOT = Path(__file__).resolve().parent.parent
DIR_COMMANDS = ("stats", "check", "clear", "get", "keys")


def run(*argv: str) -> tuple[int, str]:
    """Run the command in this process; return its exit status and standard output."""
    out = io.StringIO()
    status = _cli.main(list(argv), out=out)
    return status, out.getvalue()


def run_json(*argv: str) -> Any:
    """Run the command with ``--json``; require success and return the parsed output."""
    status, out = run(*argv, "--json")
    assert status == 0, out
    return json.loads(out)


def _args(command: str, directory: str) -> list[str]:
    return [command, directory, "some-key"] if command == "get" else [command, directory]


@pytest.fixture
def filled(cache_dir: str) -> str:
    with diskstore.Cache(cache_dir) as cache:
        cache["greeting"] = "hello"
        cache[("user", 42)] = {"name": "Ann"}
        cache[7] = b"\x00raw"
        cache.namespace("sessions")["user-17"] = {"cart": []}
    return cache_dir


# -- entry points ---------------------------------------------------------------------------
def test_version_names_diskstore_python_and_sqlite() -> None:
    status, out = run("version")
    assert status == 0
    assert out.startswith(f"diskstore {diskstore.__version__} ")
    assert sqlite3.sqlite_version in out


def test_the_entry_point_is_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert entry_point(["version"]) == 0
    assert diskstore.__version__ in capsys.readouterr().out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli.main([]) == 2
    assert "COMMAND" in capsys.readouterr().err


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli.main(["--help"]) == 0
    help_text = capsys.readouterr().out
    for command in ("demo", "stats", "check", "clear", "get", "keys", "version"):
        assert command in help_text


@pytest.mark.timeout(60)
def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "diskstore", "version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"diskstore {diskstore.__version__}")


@pytest.mark.timeout(60)
def test_the_console_script_runs_the_cli() -> None:
    script = Path(sys.executable).with_name("diskstore")
    if not script.exists():
        pytest.skip("the diskstore console script is not installed (pip install -e .)")
    result = subprocess.run(
        [str(script), "version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"diskstore {diskstore.__version__}")


# -- directories that are not caches --------------------------------------------------------
@pytest.mark.parametrize("command", DIR_COMMANDS)
def test_a_missing_directory_is_a_usage_error_and_is_not_created(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere"
    status, out = run(*_args(command, str(missing)))
    assert status == 2
    assert out == ""
    assert "no such directory" in capsys.readouterr().err
    assert not missing.exists()


@pytest.mark.parametrize("command", DIR_COMMANDS)
def test_a_directory_without_a_cache_is_refused_and_left_alone(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    status, _ = run(*_args(command, str(tmp_path)))
    assert status == 2
    assert "not a diskstore cache" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]


def test_a_diskcache_directory_opens_in_place(tmp_path: Path) -> None:
    import diskcache  # type: ignore[import-untyped]

    with diskcache.Cache(str(tmp_path)) as old:
        old["k"] = "written by diskcache"
    status, out = run("get", str(tmp_path), "k")
    assert (status, out.strip()) == (0, "'written by diskcache'")


def test_a_file_is_not_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "file"
    path.write_text("")
    assert run("keys", str(path))[0] == 2
    assert "not a directory" in capsys.readouterr().err


# -- stats ----------------------------------------------------------------------------------
def test_stats_reports_counts_volume_and_settings(filled: str) -> None:
    status, out = run("stats", filled)
    assert status == 0
    assert re.search(r"^items\s+3 \(all namespaces: 4\)$", out, re.MULTILINE)
    assert re.search(r"^volume\s+.* \(\d+ bytes\)$", out, re.MULTILINE)
    assert re.search(r"^hits\s+0\b", out, re.MULTILINE)
    assert re.search(r"^\s+eviction_policy\s+'least-recently-stored'$", out, re.MULTILINE)
    for name in diskstore.DEFAULT_SETTINGS:
        assert name in out


def test_stats_json_matches_the_cache(filled: str) -> None:
    status, out = run("stats", filled, "--json")
    assert status == 0
    report = json.loads(out)
    with diskstore.Cache(filled) as cache:
        assert report["items"] == len(cache) == 3
        assert report["items_all_namespaces"] == 4
        assert report["volume"] == cache.volume()
        assert report["settings"] == {n: getattr(cache, n) for n in diskstore.DEFAULT_SETTINGS}
    assert report["directory"] == os.path.abspath(filled)


def test_stats_counts_hits_and_leaves_counting_as_it_was(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir, statistics=True) as cache:
        cache["k"] = 1
        cache.get("k")
        cache.get("k")
        cache.get("missing")
    report = json.loads(run("stats", cache_dir, "--json")[1])
    assert (report["hits"], report["misses"]) == (2, 1)
    assert report["settings"]["statistics"] is True
    with diskstore.Cache(cache_dir) as cache:
        assert cache.statistics is True
        cache.reset("statistics", False)
    assert json.loads(run("stats", cache_dir, "--json")[1])["settings"]["statistics"] is False
    with diskstore.Cache(cache_dir) as cache:
        assert cache.statistics is False


# -- keys -----------------------------------------------------------------------------------
def test_keys_lists_keys_in_insertion_order(filled: str) -> None:
    assert run("keys", filled) == (0, "'greeting'\n('user', 42)\n7\n")


def test_keys_limit(filled: str) -> None:
    status, out = run("keys", filled, "--limit", "2")
    assert status == 0
    assert out.splitlines() == ["'greeting'", "('user', 42)", "... (the first 2; there are more)"]
    assert run("keys", filled, "--limit", "3")[1].splitlines()[-1] == "7"


@pytest.mark.parametrize("limit", ["-1", "many", "1.5"])
def test_keys_rejects_a_bad_limit(
    filled: str, limit: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("keys", filled, "--limit", limit)[0] == 2
    assert "--limit" in capsys.readouterr().err


def test_keys_of_a_namespace(filled: str) -> None:
    assert run("keys", filled, "--namespace", "sessions") == (0, "'user-17'\n")


def test_an_unknown_namespace_is_an_error_with_a_hint(
    filled: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in (["keys"], ["get"], ["clear"], ["delete"]):
        argv = [*command, filled, *(["k"] if command in (["get"], ["delete"]) else [])]
        assert run(*argv, "--namespace", "never-used") == (1, "")
        err = capsys.readouterr().err
        assert "no namespace 'never-used'" in err
        assert "'sessions'" in err and "diskstore namespaces" in err
    with diskstore.Cache(filled) as cache:
        assert len(cache.namespace("sessions")) == 1  # nothing was created or cleared


# -- get ------------------------------------------------------------------------------------
def test_get_prints_the_repr_of_a_string_key(filled: str) -> None:
    assert run("get", filled, "greeting") == (0, "'hello'\n")
    assert run("get", filled, "greeting", "--raw") == (0, "hello")  # exactly the value


def test_get_with_a_literal_key(filled: str) -> None:
    assert run("get", filled, "('user', 42)", "--literal") == (0, "{'name': 'Ann'}\n")
    assert run("get", filled, "7", "--literal") == (0, "b'\\x00raw'\n")
    # Without --literal the key is the string "7", which is not stored.
    assert run("get", filled, "7")[0] == 1


def test_a_literal_key_is_never_evaluated(
    filled: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    assert run("get", filled, code, "--literal")[0] == 2
    assert "not a Python literal" in capsys.readouterr().err
    assert not marker.exists()


def test_get_of_a_missing_key_exits_1(filled: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("get", filled, "nope") == (1, "")
    assert "key not found: 'nope'" in capsys.readouterr().err


def test_get_in_a_namespace(filled: str) -> None:
    assert run("get", filled, "user-17", "--namespace", "sessions") == (0, "{'cart': []}\n")
    assert run("get", filled, "greeting", "--namespace", "sessions")[0] == 1


@pytest.mark.timeout(60)
def test_get_raw_writes_bytes_unchanged(filled: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "diskstore", "get", filled, "7", "--literal", "--raw"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"\x00raw"


def test_get_never_writes(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir, statistics=True) as cache:
        cache["k"] = "v"
        cache.stats(reset=True)
    assert run("get", cache_dir, "k") == (0, "'v'\n")
    assert run("get", cache_dir, "missing")[0] == 1
    with diskstore.Cache(cache_dir) as cache:
        assert cache.stats(enable=True) == (0, 0)


def test_a_cache_made_with_another_secret_exits_3_naming_the_ways_to_supply_it(
    cache_dir: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with diskstore.Cache(cache_dir, secret="the writer's secret") as cache:
        cache["settings"] = {"theme": "dark"}
    monkeypatch.setenv("DISKSTORE_SECRET", "somebody else's secret")
    for argv in (["get", cache_dir, "settings"], ["check", cache_dir, "--fix"]):
        assert run(*argv)[0] == 3
        err = capsys.readouterr().err
        assert "SecretMismatchError" not in err and "another signing secret" in err
        assert "DISKSTORE_SECRET" in err and "secret=" in err and "--inspect" in err
    # Inspection needs no secret and loads nothing.
    status, out = run("keys", cache_dir, "--inspect", "--json")
    assert status == 0
    assert json.loads(out)["entries"][0]["key"] == "settings"
    monkeypatch.delenv("DISKSTORE_SECRET")
    # The command opened the cache read-only: the entry is still there for its owner.
    with diskstore.Cache(cache_dir, secret="the writer's secret") as cache:
        assert cache["settings"] == {"theme": "dark"}


# -- check ----------------------------------------------------------------------------------
def test_check_of_a_healthy_cache(filled: str) -> None:
    assert run("check", filled) == (0, "no problems found\n")


def _plant_stray_file(directory: str) -> Path:
    with diskstore.Cache(directory) as cache:
        cache["blob"] = os.urandom(100_000)  # a value file, so data/ exists
    stray = Path(directory) / "data" / "stray.txt"
    stray.write_text("not the cache's")
    return stray


def test_check_reports_problems_and_exits_1(filled: str) -> None:
    stray = _plant_stray_file(filled)
    status, out = run("check", filled)
    assert status == 1
    assert f"UnknownFileWarning: unknown file {stray}" in out
    assert "1 problem(s) found (run with --fix to repair)" in out
    assert stray.exists()


def test_check_fix_repairs_and_exits_0(filled: str) -> None:
    stray = _plant_stray_file(filled)
    status, out = run("check", filled, "--fix")
    assert status == 0
    assert "1 problem(s) found, 1 fixed, 0 remaining" in out
    assert not stray.exists()
    assert run("check", filled) == (0, "no problems found\n")


def test_check_reports_whatever_the_warning_filters(filled: str) -> None:
    _plant_stray_file(filled)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert run("check", filled)[0] == 1


# -- functions ------------------------------------------------------------------------------
@pytest.fixture
def memoized(cache_dir: str) -> str:
    """``app.square`` called five times (three hits), ``app.load`` stored but never called."""
    with diskstore.Cache(cache_dir) as cache:
        squared = cache.memoize(name="app.square")(lambda x: x * x)
        for x in (1, 2, 1, 1, 2):
            squared(x)
        loaded = cache.memoize(name="app.load")(lambda n: b"x" * n)
        loaded.cache_set(os.urandom(100_000), 1)  # in a value file
        cache["plain"] = 1
    return cache_dir


def test_functions_lists_items_bytes_hits_misses_and_hit_rate(memoized: str) -> None:
    status, out = run("functions", memoized)
    assert status == 0
    assert out.splitlines() == [
        "function    items  file bytes  hits  misses  hit rate",
        "app.load        1    100.0 kB     0       0         -",
        "app.square      2         0 B     3       2     60.0%",
    ]


def test_functions_json_has_every_column(memoized: str) -> None:
    assert run_json("functions", memoized) == [
        {
            "file_bytes": 100_000,
            "hit_rate": None,
            "hits": 0,
            "items": 1,
            "misses": 0,
            "name": "app.load",
        },
        {
            "file_bytes": 0,
            "hit_rate": 0.6,
            "hits": 3,
            "items": 2,
            "misses": 2,
            "name": "app.square",
        },
    ]


def test_functions_sees_another_process_calls_once_it_has_closed(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir):
        pass
    run_processes(memoized_calls_worker, [(cache_dir, "squares", [2, 2, 2, 3])])
    assert run("functions", cache_dir) == (
        0,
        "function  items  file bytes  hits  misses  hit rate\n"
        "squares       2         0 B     2       2     50.0%\n",
    )


def test_functions_of_a_cache_without_any(filled: str) -> None:
    assert run("functions", filled) == (0, "no memoized functions\n")
    assert run_json("functions", filled) == []


# -- clear ----------------------------------------------------------------------------------
def test_clear_empties_the_plain_cache_and_reports_other_namespaces(filled: str) -> None:
    status, out = run("clear", filled)
    assert status == 0
    assert out == "removed 3 item(s)\n1 item(s) remain in other namespaces (see --namespace)\n"
    with diskstore.Cache(filled) as cache:
        assert len(cache) == 0
        assert cache.namespace("sessions")["user-17"] == {"cart": []}


def test_clear_a_namespace(filled: str) -> None:
    status, out = run("clear", filled, "--namespace", "sessions")
    assert status == 0
    assert out.splitlines()[0] == "removed 1 item(s) from namespace 'sessions'"
    with diskstore.Cache(filled) as cache:
        assert len(cache.namespace("sessions")) == 0
        assert len(cache) == 3


# -- errors and output ----------------------------------------------------------------------
def test_human_bytes() -> None:
    assert _cli.human_bytes(0) == "0 B"
    assert _cli.human_bytes(999) == "999 B"
    assert _cli.human_bytes(45_056) == "45.1 kB"
    assert _cli.human_bytes(1_500_000) == "1.5 MB"
    assert _cli.human_bytes(3 * 10**15) == "3000.0 TB"


@pytest.mark.timeout(60)
def test_a_closed_pipe_ends_the_listing_quietly(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir) as cache:
        for i in range(20_000):
            cache[i] = i
    with subprocess.Popen(
        [sys.executable, "-m", "diskstore", "keys", cache_dir],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.readline() == b"0\n"
        process.stdout.close()
        errors = process.stderr.read()
        assert process.wait(timeout=60) == 1
    assert b"Traceback" not in errors and b"Error" not in errors


# -- the docs page --------------------------------------------------------------------------
def _documented_command_lines() -> list[list[str]]:
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    lines = []
    pattern = r"^\$ (?:python -m )?diskstore (.*)(?=\n(.*))"
    for match in re.finditer(pattern, text, flags=re.MULTILINE):
        if not match.group(2).startswith("usage:"):  # a usage error, shown as one
            lines.append(shlex.split(match.group(1)))
    return lines


def test_every_command_and_option_is_documented() -> None:
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    parser = _cli.build_parser()
    commands = next(
        action for action in parser._actions if action.dest == "command"
    ).choices  # the subparsers
    assert isinstance(commands, dict)
    for name, sub in commands.items():
        assert f"## {name}" in text, f"docs/cli.md has no section for {name}"
        for action in sub._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert option in text, f"docs/cli.md never mentions {name} {option}"


def test_every_documented_command_line_parses() -> None:
    parser = _cli.build_parser()
    lines = _documented_command_lines()
    assert len(lines) >= 10
    for argv in lines:
        if argv == ["--help"]:
            continue
        parser.parse_args(argv)  # exits (and fails the test) on a bad line


# -- the demo -------------------------------------------------------------------------------
@pytest.mark.timeout(120)
def test_demo_hits_the_cache_from_a_second_process() -> None:
    out = io.StringIO()
    report = _demo.run(out=out)
    assert report.first.computed and not report.second.computed
    assert report.first.pid == os.getpid() != report.second.pid
    assert report.first.result == report.second.result == 144
    assert report.pulled == ("resize photo-1.png", "resize photo-2.png", "resize photo-3.png")
    assert len(report.pushed) == 3
    assert report.hits >= 1 and report.misses >= 1
    assert 0 < report.document_disk_bytes < report.document_pickled_bytes
    assert report.items == 2  # the memoized result and the document; the queue is drained
    assert report.removed and not os.path.exists(report.directory)
    text = out.getvalue()
    assert "cache hit: function not run" in text
    assert "first in, first out" in text
    assert f"Removed {report.directory}." in text
    # docs/cli.md shows the demo's output: its figures must be the demo's.
    documented = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    stats = re.search(r"items: (\d+), hits: (\d+), misses: (\d+)", documented)
    assert stats is not None
    assert tuple(map(int, stats.groups())) == (report.items, report.hits, report.misses)


@pytest.mark.timeout(120)
def test_demo_command_runs_and_cleans_up() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "diskstore", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "cache miss: computed here" in result.stdout
    assert "cache hit: function not run" in result.stdout
    directory = re.search(r"^Removed (.+)\.$", result.stdout, flags=re.MULTILINE)
    assert directory is not None
    assert not os.path.exists(directory.group(1))


def test_format_report_flags_an_out_of_order_queue() -> None:
    call = _demo.CallReport(pid=1, result=144, seconds=0.5, computed=True)
    report = _demo.DemoReport(
        directory="/tmp/x",
        first=call,
        second=call,
        pushed=("jobs-1", "jobs-2"),
        pulled=("b", "a"),
        document_records=10,
        document_pickled_bytes=2000,
        document_disk_bytes=100,
        items=2,
        hits=1,
        misses=1,
        volume=4096,
        removed=False,
    )
    text = _demo.format_report(report)
    assert "out of order!" in text
    assert "Kept /tmp/x." in text


# -- migrate --------------------------------------------------------------------------------
def test_migrate_copies_a_diskcache_directory_only_with_trust(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import diskcache  # type: ignore[import-untyped]

    old = str(tmp_path / "old")
    with diskcache.Cache(old) as source:
        source.set("greeting", "hello", tag="words")
        source.set(("user", 42), {"name": "Ann"})
    new = str(tmp_path / "new")
    assert run("migrate", old, new) == (1, "")
    err = capsys.readouterr().err
    assert "UntrustedDataError" in err and "--trust" in err
    assert run("migrate", old, new, "--trust") == (0, f"copied 2 item(s) from {old} into {new}\n")
    with diskstore.Cache(new) as cache:
        assert cache[("user", 42)] == {"name": "Ann"}
    assert run("migrate", str(tmp_path / "nothing-here"), new)[0] == 2
    assert "not a diskcache directory" in capsys.readouterr().err


def test_cli_and_demo_do_not_import_each_other() -> None:
    import ast

    def imported(module: str) -> set[str]:
        path = ROOT / "diskstore" / module
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module.lstrip("."))
        return names

    assert not {name for name in imported("_demo.py") if name.startswith("_cli")}


# -- progress -------------------------------------------------------------------------------
class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from diskstore._cli._common import progress_bar

    terminal, pipe = _Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        with progress_bar("working", 10, stream=stream) as progress:
            progress(5, 10)
            progress(10, 10)
    assert "working" in terminal.getvalue() and "10/10" in terminal.getvalue()
    assert pipe.getvalue() == ""


def test_progress_without_tqdm_is_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from diskstore._cli._common import progress_bar

    real = importlib.import_module

    def no_tqdm(name: str, package: str | None = None) -> object:
        if name == "tqdm":
            raise ImportError("tqdm is not installed")
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", no_tqdm)
    terminal = _Terminal()
    with progress_bar("working", 10, stream=terminal) as progress:
        progress(10, 10)
    assert terminal.getvalue() == ""


@pytest.mark.timeout(60)
def test_a_terminal_that_reports_no_size_still_gets_a_bar(filled: str) -> None:
    status, output = in_pseudo_terminal(
        [sys.executable, "-m", "diskstore", "check", filled],
        size=None,  # 0 columns, 0 lines
    )
    assert status == 0
    text = output.decode("utf-8", "replace")
    assert "checking: 100%" in text and "4/4" in text, text


def _documented_output(command: str) -> str:
    """What docs/cli.md shows ``$ diskstore COMMAND`` printing (up to the next prompt)."""
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    match = re.search(
        rf"^\$ diskstore {re.escape(command)}\n(.*?)(?=^\$ |^```)", text, re.MULTILINE | re.DOTALL
    )
    assert match, f"docs/cli.md does not show `diskstore {command}`"
    return match.group(1)


def test_the_documented_keys_and_stats_sessions_are_real_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/cli.md's ``keys`` and ``stats`` examples, replayed on the cache they describe."""
    import time

    monkeypatch.chdir(tmp_path)
    with diskstore.Cache("cache", statistics=True) as cache:
        cache.set("greeting", "hello", expire=3600, tag="words")
        cache[("user", 42)] = {"name": "Ann"}
        cache[7] = b"\x00raw"
        cache.set("session-token", "abc", expire=0.01)
        cache.namespace("sessions")["user-17"] = {"cart": []}
        cache.get("greeting")
        cache.get("missing")
    time.sleep(0.05)
    for command in (
        "keys cache",
        "keys cache --include-expired",
        "keys cache --limit 1",
        "keys cache 'gree*' --json",
        "keys cache --namespace sessions",
        "keys cache --inspect --include-expired",
    ):
        status, out = run(*shlex.split(command))
        assert status == 0
        expected = _documented_output(command)
        if "--inspect" in command:  # how long ago it expired depends on the moment
            out = re.sub(r"expired [\d.]+ s ago", "expired 2.5 s ago", out)
        assert out == expected, command
    status, out = run("stats", "cache")
    documented = _documented_output("stats cache").splitlines()
    assert out.splitlines()[1:3] == documented[1:3]  # items, and the expired line
    assert [line.split()[0] for line in out.splitlines()] == [
        line.split()[0] for line in documented
    ]
