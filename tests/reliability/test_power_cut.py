"""Power cuts: a row that survives always finds its value file, whole.

Each round mounts the power-cut filesystem of ``_powercut_fs.py`` (a FUSE filesystem whose
durable image changes only through ``fsync``), runs a writer on a cache inside it (inline
and file values, deletes, reopenings, frequent checkpoints), and at a random moment kills
the writer and the filesystem together: the power cut. The durable image is then laid out
as a plain directory and opened as a cache. Over 30 cuts per directory-entry rule (strict
POSIX: a directory's entries are durable once it is synced; ext4-like: at any sync), and
over WAL at NORMAL and FULL and the rollback journal, no value may be wrong, no row may lack
its value file or find it short (at NORMAL too, where a cut may roll back the last commits),
``check()`` may report only the cut's debris (temporary files, and final-named files no row
refers to), and one ``check(fix=True)`` removes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

import diskstore
from diskstore._storage._store import DB_NAME

HERE = os.path.dirname(os.path.abspath(__file__))
CUTS = 30 * max(1, int(os.environ.get("DISKSTORE_SOAK", "1")))
MODES = (
    {},
    {"sqlite_synchronous": 2},
    {"sqlite_journal_mode": "delete"},
)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

WRITER = textwrap.dedent("""
    import hashlib, os, random, sys
    import diskstore
    from diskstore._fs import _durability
    _durability.CHECKPOINT_BYTES = 64 * 1024  # checkpoint often: that is when rows land
    _durability.CHECK_EVERY = 2
    directory, seed, settings = sys.argv[1], int(sys.argv[2]), eval(sys.argv[3])
    generator = random.Random(seed)
    versions = {}

    def value(key, version):
        head = f"{key}:{version}:".encode()
        size = generator.choice([300, 2000, 40_000, 90_000])
        body = hashlib.sha256(head).digest() * (size // 32 + 1)
        return head + body[:size]

    cache = diskstore.Cache(directory, **settings)
    print("ready", flush=True)
    while True:
        key = f"k{generator.randrange(120)}"
        roll = generator.random()
        if roll < 0.1:
            cache.delete(key)
        elif roll < 0.12:
            cache.close()
            cache = diskstore.Cache(directory, **settings)
        else:
            versions[key] = versions.get(key, 0) + 1
            cache.set(key, value(key, versions[key]))
""")


def _fuse_available() -> str | None:
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing"
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as exc:
        return f"mfusepy or libfuse is not installed: {exc}"
    if shutil.which("fusermount3") is None and shutil.which("fusermount") is None:
        return "fusermount is not installed"
    return None


def _require_fuse() -> None:
    reason = _fuse_available()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def _mounted(point: str) -> bool:
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        return any(line.split(" ")[4] == point for line in handle)


def _unmount(point: str) -> None:
    tool = shutil.which("fusermount3") or shutil.which("fusermount") or "fusermount"
    with contextlib.suppress(subprocess.SubprocessError, OSError):
        subprocess.run([tool, "-u", "-z", point], capture_output=True, timeout=30)


@contextlib.contextmanager
def _powercut_mount(base: str, rule: str) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    backing, durable, point = (os.path.join(base, name) for name in ("b", "d", "m"))
    for path in (backing, durable, point):
        os.mkdir(path)
    fs = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "_powercut_fs.py"), backing, durable, point, rule],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not _mounted(point):
            if fs.poll() is not None or time.monotonic() > deadline:
                message = fs.stderr.read().decode(errors="replace") if fs.stderr else ""
                pytest.fail(f"the power-cut filesystem did not mount: {message}")
            time.sleep(0.02)
        yield point, durable, fs
    finally:
        if fs.poll() is None:
            fs.kill()
        fs.wait()
        if fs.stderr is not None:
            fs.stderr.close()
        _unmount(point)


def _check_value(key: Any, value: Any) -> bool:
    if not isinstance(value, bytes):
        return False
    head, _, rest = value.partition(b":")
    version, _, body = rest.partition(b":")
    if head.decode(errors="replace") != key:
        return False
    prefix = f"{key}:{version.decode(errors='replace')}:".encode()
    expected = hashlib.sha256(prefix).digest() * (len(body) // 32 + 1)
    return body == expected[: len(body)]


def _verify(directory: str) -> dict[str, int]:
    """Open the image left by the cut; count what it must never hold."""
    found = {"rows": 0, "wrong": 0, "missing or short": 0, "integrity": 0, "check": 0,
             "after fix": 0}  # fmt: skip
    database = os.path.join(directory, DB_NAME)
    if not os.path.exists(database) or os.path.getsize(database) == 0:
        return found  # nothing of the cache was durable yet
    con = sqlite3.connect(database)
    try:
        found["integrity"] = con.execute("PRAGMA integrity_check").fetchone()[0] != "ok"
    finally:
        con.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with diskstore.Cache(directory) as cache:
            for key in list(cache):
                found["rows"] += 1
                value = cache.get(key)
                if value is not None and not _check_value(key, value):
                    found["wrong"] += 1
            problems = cache.check()
            cache.check(fix=True)
            found["after fix"] = len(cache.check())
    messages = [str(warning.message) for warning in caught]
    found["missing or short"] = sum(
        "is missing" in message or "holds" in message or "shorter" in message
        for message in messages
    )
    reported = [
        str(problem.message)
        for problem in problems
        if not (  # debris of the cut that check(fix=True) removes; never a damaged row
            issubclass(problem.category, diskstore.UnknownFileWarning)
            and str(problem.message).startswith(("temporary file", "unreferenced file"))
        )
    ]
    found["check"] = len(reported)
    if reported:
        print(f"check() in {directory}: {reported}")
    return found


@pytest.mark.parametrize("rule", ["posix", "ext4"])
def test_power_cuts(rule: str, figures: Any) -> None:
    _require_fuse()
    totals = dict.fromkeys(
        ("rows", "wrong", "missing or short", "integrity", "check", "after fix"), 0
    )
    generator = random.Random(f"power-cut-{rule}")
    normal_rows = 0
    for cut in range(CUTS):
        base = tempfile.mkdtemp(prefix="diskstore-powercut-")
        try:
            settings = MODES[cut % len(MODES)]
            with _powercut_mount(base, rule) as (point, durable, fs):
                directory = os.path.join(point, "cache")
                os.mkdir(directory)
                root = os.open(point, os.O_RDONLY)
                try:
                    os.fsync(root)  # the cache directory itself exists durably
                finally:
                    os.close(root)
                writer = subprocess.Popen(
                    [sys.executable, "-c", WRITER, directory, str(cut), repr(settings)],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                )  # fmt: skip
                assert writer.stdout is not None
                ready = writer.stdout.readline()
                assert ready == "ready\n", writer.communicate()[1]
                time.sleep(generator.uniform(0.3, 2.5))
                writer.kill()  # the power cut: the writer and the disk stop at once
                fs.send_signal(signal.SIGKILL)
                writer.communicate()
            image = os.path.join(base, "image")
            sys.path.insert(0, HERE)
            try:
                from _powercut_fs import materialize
            finally:
                sys.path.remove(HERE)
            materialize(durable, image)
            found = _verify(os.path.join(image, "cache"))
        finally:
            shutil.rmtree(base, ignore_errors=True)
        for name, count in found.items():
            totals[name] += int(count)
        assert found["wrong"] == 0, (cut, settings, found)
        assert found["integrity"] == 0, (cut, settings, found)
        assert found["after fix"] == 0, (cut, settings, found)
        # At NORMAL a cut may roll back the last commits, but the files they replaced or
        # deleted are still there: they are removed only after a checkpoint shows the
        # commit on disk (see diskstore/_fs/_durability.py).
        assert found["missing or short"] == 0, (cut, settings, found)
        assert found["check"] == 0, (cut, settings, found)
        if not settings:
            normal_rows += found["rows"]
    figures.record(f"power cuts ({rule}), {CUTS} cuts: rows that survived", totals["rows"])
    figures.record(f"power cuts ({rule}), WAL at NORMAL: rows that survived", normal_rows)
    figures.record(
        f"power cuts ({rule}): rows without their file or with a short one",
        totals["missing or short"],
    )
    figures.record(
        f"power cuts ({rule}): wrong values / integrity / left after check(fix=True)",
        totals["wrong"] + totals["integrity"] + totals["after fix"],
    )
