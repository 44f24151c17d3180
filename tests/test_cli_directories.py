"""The command line on every directory diskstore or diskcache makes, and its one-line errors.

A ``FanoutCache`` directory (and so a Django ``LOCATION``) is opened across its shards by
every command; expired items are left out of ``keys`` and ``stats`` unless asked for;
``--inspect`` shows expiry and tag; a misspelt command or option names the closest one;
every command prints JSON with ``--json``; errors are one line that says how to go on.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import diskstore
from diskstore import _cli
from diskstore._cli._open import find_cache

ROOT = Path(__file__).resolve().parent.parent
FORK = multiprocessing.get_context("fork")
NOBODY = 65534


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    status = _cli.main(list(argv), out=out)
    return status, out.getvalue()


def run_json(*argv: str) -> Any:
    status, out = run(*argv, "--json")
    assert status == 0, out
    return json.loads(out)


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


# -- what a directory holds -------------------------------------------------------------------
def test_a_directory_with_either_database_name_is_a_cache(tmp_path: Path) -> None:
    for name in ("diskstore.db", "cache.db"):
        directory = tmp_path / name.replace(".", "-")
        directory.mkdir()
        (directory / name).write_bytes(b"")
        assert find_cache(str(directory)).shards == 0


def test_numbered_subdirectories_holding_databases_are_shards(tmp_path: Path) -> None:
    for number, name in enumerate(("diskstore.db", "cache.db", "diskstore.db")):
        (tmp_path / f"{number:03d}").mkdir()
        (tmp_path / f"{number:03d}" / name).write_bytes(b"")
    (tmp_path / "cache" / "named").mkdir(parents=True)  # a FanoutCache's sub-collection
    found = find_cache(str(tmp_path))
    assert (found.path, found.shards) == (str(tmp_path), 3)


def test_a_missing_shard_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for number in (0, 2):
        (tmp_path / f"{number:03d}").mkdir()
        (tmp_path / f"{number:03d}" / "diskstore.db").write_bytes(b"")
    assert run("stats", str(tmp_path))[0] == 2
    assert "001" in one_line_error(capsys)


@pytest.fixture
def fanout(tmp_path: Path) -> Iterator[str]:
    """A FanoutCache of 4 shards: 40 items, 5 of them tagged, 3 expiring at once, one
    namespace, one memoized function; a size limit that is not the default."""
    directory = str(tmp_path / "fanout")
    with diskstore.FanoutCache(directory, shards=4, size_limit=4 * 2**20) as cache:
        for i in range(40):
            cache.set(f"key-{i}", i, tag="five" if i < 5 else None)
        cache.namespace("sessions")["user-1"] = {"cart": [1]}
        square = cache.memoize(name="app.square")(lambda x: x * x)
        square(3)
        # Last: a write removes the items of its shard that have already expired.
        for i in range(3):
            cache.set(f"brief-{i}", i, expire=0.2)
    time.sleep(0.3)
    yield directory


def _shard_limits(directory: str) -> list[int]:
    limits = []
    for number in range(4):
        with diskstore.Cache(os.path.join(directory, f"{number:03d}"), read_only=True) as shard:
            limits.append(shard.size_limit)
    return limits


def test_every_command_opens_a_fanout_cache_across_its_shards(fanout: str) -> None:
    limits = _shard_limits(fanout)
    assert limits == [2**20] * 4
    stats = run_json("stats", fanout)
    assert stats["shards"] == 4
    assert (stats["items"], stats["expired"]) == (41, 3)  # 40 keys and a memoized result
    assert stats["items_all_namespaces"] == 42
    assert run_json("stats", fanout, "--include-expired")["items"] == 44
    keys = run_json("keys", fanout)["keys"]
    assert {f"key-{i}" for i in range(40)} < set(keys) and len(keys) == 41
    assert run("get", fanout, "key-7") == (0, "7\n")
    assert run_json("keys", fanout, "--namespace", "sessions")["keys"] == ["user-1"]
    assert run("get", fanout, "user-1", "--namespace", "sessions") == (0, "{'cart': [1]}\n")
    names = {row["name"]: row["items"] for row in run_json("namespaces", fanout)}
    assert names == {"": 44, "sessions": 1}
    assert [f["name"] for f in run_json("functions", fanout)] == ["app.square"]
    inspected = run_json("keys", fanout, "--inspect", "key-3")["entries"]
    assert [(e["key"], e["tag"]) for e in inspected] == [("key-3", "five")]
    assert run_json("check", fanout) == {"found": [], "remaining": [], "fixed": False}
    assert run_json("delete", fanout, "key-7") == {"deleted": "key-7"}
    assert run_json("evict", fanout, "five") == {"removed": 5, "tag": "five"}
    assert run_json("expire", fanout) == {"removed": 3}
    assert run_json("cull", fanout) == {"removed": 0}
    assert set(run_json("vacuum", fanout)) == {"volume_before", "volume_after"}
    cleared = run_json("clear", fanout)
    assert cleared == {"removed": 35, "namespace": "", "other_namespaces": 1}
    assert _shard_limits(fanout) == limits  # opening it changed no setting
    with diskstore.FanoutCache(fanout, shards=4) as cache:
        assert len(cache) == 0 and cache.namespace("sessions")["user-1"] == {"cart": [1]}


def test_a_django_location_is_a_fanout_cache(tmp_path: Path) -> None:
    from diskstore.djangocache import DjangoCache

    location = str(tmp_path / "django")
    backend = DjangoCache(location, {"SHARDS": 3, "TIMEOUT": 300})
    try:
        backend.set("greeting", "hello")
        backend.set("answer", 42)
    finally:
        backend.close()
    assert run_json("stats", location)["shards"] == 3
    keys = run_json("keys", location)["keys"]
    assert sorted(keys) == [":1:answer", ":1:greeting"]  # Django's key prefix and version
    assert run("get", location, ":1:greeting") == (0, "'hello'\n")


# -- expired items ----------------------------------------------------------------------------
@pytest.fixture
def with_expired(cache_dir: str) -> str:
    with diskstore.Cache(cache_dir) as cache:
        cache.set("kept", 1, expire=3600, tag="hourly")
        cache.set("gone", 2, expire=0.01, tag="brief")
        cache["plain"] = 3
    time.sleep(0.05)
    return cache_dir


def test_expired_items_are_left_out_of_keys_and_stats_unless_asked_for(
    with_expired: str,
) -> None:
    assert run("keys", with_expired) == (0, "'kept'\n'plain'\n")
    assert run("keys", with_expired, "--include-expired") == (0, "'kept'\n'gone'\n'plain'\n")
    assert run("get", with_expired, "gone")[0] == 1  # as get sees it
    stats = run_json("stats", with_expired)
    assert (stats["items"], stats["expired"], stats["items_all_namespaces"]) == (2, 1, 2)
    assert run_json("stats", with_expired, "--include-expired")["items"] == 3
    assert "expired                  1 not yet removed" in run("stats", with_expired)[1]
    entries = run_json("keys", with_expired, "--inspect")["entries"]
    assert [e["key"] for e in entries] == ["kept", "plain"]
    every = run_json("keys", with_expired, "--inspect", "--include-expired")["entries"]
    assert [e["key"] for e in every] == ["kept", "gone", "plain"]


def test_inspect_shows_expiry_and_tag(with_expired: str) -> None:
    status, out = run("keys", with_expired, "--inspect", "--include-expired")
    assert status == 0
    kept, gone, plain = out.splitlines()
    assert kept.startswith("'kept'  native, 1 B, expires in 60 min") and "tag 'hourly'" in kept
    assert "expired " in gone and gone.endswith(" ago, tag 'brief'")
    assert plain == "'plain'  native, 1 B"


def test_json_says_when_the_limit_cut_the_list(with_expired: str) -> None:
    assert run_json("keys", with_expired, "--limit", "1") == {"keys": ["kept"], "truncated": True}
    assert run_json("keys", with_expired, "--limit", "2")["truncated"] is False
    assert run_json("keys", with_expired, "--inspect", "--limit", "1")["truncated"] is True
    assert run("keys", with_expired, "--limit", "1")[1].splitlines() == [
        "'kept'",
        "... (the first 1; there are more)",
    ]


# -- --json everywhere -----------------------------------------------------------------------
def test_every_command_takes_json(with_expired: str, tmp_path: Path) -> None:
    import diskcache  # type: ignore[import-untyped]

    from diskstore._cli._parser import subcommands

    old = str(tmp_path / "old")
    with diskcache.Cache(old) as source:
        source["k"] = "v"
    arguments = {
        "get": ["kept"],
        "delete": ["plain"],
        "evict": ["hourly"],
        "migrate": [],
        "adopt": ["--trust"],
    }
    for name, sub in subcommands(_cli.build_parser()).items():
        options = [o for action in sub._actions for o in action.option_strings]
        assert "--json" in options, f"{name} does not take --json"
        if name == "demo":
            continue  # runs two processes; its JSON is checked below
        if name == "migrate":
            argv = [name, old, str(tmp_path / "new")]
        elif name == "version":
            argv = [name]
        else:
            copy = str(tmp_path / f"copy-{name}")
            shutil.copytree(with_expired, copy)
            argv = [name, copy, *arguments.get(name, [])]
        status, out = run(*argv, "--json")
        assert status == 0, (name, out)
        json.loads(out)


@pytest.mark.timeout(120)
def test_demo_json_reports_its_figures() -> None:
    report = run_json("demo")
    assert report["first"]["result"] == 144 and report["removed"] is True


# -- did you mean -----------------------------------------------------------------------------
def test_a_misspelt_command_names_the_closest(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("stat", "somewhere") == (2, "")
    err = capsys.readouterr().err
    assert "unknown command 'stat'; did you mean 'stats'?" in err


def test_a_misspelt_option_names_the_closest(
    with_expired: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("keys", with_expired, "--limt", "3") == (2, "")
    err = capsys.readouterr().err
    assert "unrecognized option '--limt'; did you mean '--limit'?" in err
    assert "usage: diskstore keys" in err
    assert run("stats", with_expired, "--include-expird")[0] == 2
    assert "did you mean '--include-expired'?" in capsys.readouterr().err


# -- errors in one line, with the fix ---------------------------------------------------------
def test_not_a_directory_points_at_the_directory(
    cache_dir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    diskstore.Cache(cache_dir).close()
    database = os.path.join(cache_dir, "cache.db")
    assert run("keys", database)[0] == 2
    err = one_line_error(capsys)
    assert (
        "not a directory" in err
        and f"the directory that holds it: diskstore ... {cache_dir}" in err
    )


def test_a_diskcache_directory_is_read_in_place_and_adopted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import diskcache

    with diskcache.Cache(str(tmp_path)) as old:
        old["k"] = 1
        old["t"] = (1, 2)  # pickled by diskcache
    assert run_json("keys", str(tmp_path))["keys"] == ["k", "t"]
    assert run("get", str(tmp_path), "t")[0] == 1  # not yet trusted: a miss
    assert "adopt" in one_line_error(capsys)
    assert run("adopt", str(tmp_path))[0] == 2
    assert "--trust" in one_line_error(capsys)
    assert run_json("adopt", str(tmp_path), "--trust")["adopted"] == 1
    assert run("get", str(tmp_path), "t") == (0, "(1, 2)\n")


def test_a_value_whose_class_cannot_be_imported_is_one_line(
    cache_dir: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = tmp_path / "modules" / "elsewhere_only.py"
    module.parent.mkdir()
    module.write_text("class Thing:\n    pass\n")
    store = (
        "import diskstore, elsewhere_only\n"
        f"with diskstore.Cache({cache_dir!r}) as cache:\n"
        "    cache['thing'] = elsewhere_only.Thing()\n"
    )
    subprocess.run(
        [sys.executable, "-c", store],
        # No bytecode: rewritten below within the same second and at the same size, the
        # module would otherwise be read back from the stale cached bytecode.
        env={
            **os.environ,
            "PYTHONPATH": f"{module.parent}{os.pathsep}{ROOT}",
            "PYTHONDONTWRITEBYTECODE": "1",
        },
        check=True,
        timeout=60,
    )
    assert run("get", cache_dir, "thing")[0] == 1
    err = one_line_error(capsys)
    assert "module 'elsewhere_only'" in err and "--inspect" in err
    # The module is importable, but the class has gone from it.
    module.write_text("class Other:\n    pass\n")
    monkeypatch.syspath_prepend(str(module.parent))
    assert run("get", cache_dir, "thing")[0] == 1
    err = one_line_error(capsys)
    assert "Can't get attribute 'Thing'" in err and "--inspect" in err


def _as_nobody(argv: list[str], results: Any) -> None:
    """Run the command as ``nobody`` (root ignores permission bits) and report its outcome."""
    err = io.StringIO()
    sys.stderr = err
    try:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        status = _cli.main(argv, out=io.StringIO())
        results.put((status, err.getvalue()))
    except BaseException as exc:
        results.put((-1, repr(exc)))


def _run_as_nobody(argv: list[str]) -> tuple[int, str]:
    results = FORK.Queue()
    child = FORK.Process(target=_as_nobody, args=(argv, results))
    child.start()
    try:
        return results.get(timeout=60)  # type: ignore[no-any-return]
    finally:
        child.join(10)


@pytest.fixture
def shared_cache() -> Iterator[str]:
    """A cache, written by root, below a directory ``nobody`` can reach; signing off, so
    that ``nobody`` needs no secret."""
    base = tempfile.mkdtemp(prefix="diskstore-cli-perm-")
    os.chmod(base, 0o755)
    directory = os.path.join(base, "cache")
    with diskstore.Cache(directory, secret=False) as cache:
        cache["k"] = "v"
    try:
        yield directory
    finally:
        os.chmod(directory, 0o700)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.timeout(120)
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to run as nobody")
def test_permission_errors_name_the_owner_and_the_fix(shared_cache: str) -> None:
    os.chmod(shared_cache, 0o000)
    status, err = _run_as_nobody(["keys", shared_cache])
    assert status == 2
    assert err.count("\n") == 1 and "Errno" not in err
    assert "permission denied: nobody cannot read" in err and "owned by root, mode 0000" in err
    assert "sudo -u root diskstore" in err
    os.chmod(shared_cache, 0o755)
    status, err = _run_as_nobody(["expire", shared_cache])
    assert status == 2
    assert "nobody cannot change" in err and "read_only=True" not in err
