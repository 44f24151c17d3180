"""Item 4: a populated cache in a read-only directory can be read, and writes fail clearly.

The directory and its files lose their write permission. Root ignores permission bits, so
when the tests run as root the reading process also drops to the ``nobody`` user (the cache
is handed to that user first, so only the missing write bits stand in its way). The cache
is written by another process, as in real use, and left in one of three states:

- ``closed``: closed by diskstore, the write-ahead log and shared-memory files still there;
- ``checkpointed``: the last connection checkpointed and removed both (as ``sqlite3`` or
  a copy of the database file leaves it), so a reader cannot create the shared memory;
- ``crashed``: the writer was killed, so committed data sits only in the write-ahead log.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import queue
import shutil
import stat
import tempfile
import traceback

import pytest

import diskstore

from ._support import raw_connection, start_forked

FORK = multiprocessing.get_context("fork")
SECRET = b"reliability-read-only-test-secret"
NOBODY = 65534
EXPECTED = {
    "int": 42,
    "pickled": {"nested": [1, 2.5, "three"]},
    "text": "short text",
    "file": bytes(range(256)) * 400,
}
VIEW_KEY, VIEW_VALUE = "in-view", ("namespaced", 1)


def populate(directory: str, state: str) -> None:
    """Write the cache in another process and leave it in *state*."""
    writer = FORK.Process(target=_write, args=(directory, state))
    start_forked(writer)
    writer.join(60)
    assert writer.exitcode == 0
    wal = os.path.join(directory, "cache.db-wal")
    if state == "checkpointed":
        assert not os.path.exists(wal)
    if state == "crashed":
        assert os.path.getsize(wal) > 0


def _write(directory: str, state: str) -> None:
    cache = diskstore.Cache(directory, secret=SECRET)
    for key, value in EXPECTED.items():
        cache.set(key, value)
    cache.namespace("view").set(VIEW_KEY, VIEW_VALUE)
    if state == "crashed":
        os._exit(0)
    cache.close()
    if state == "checkpointed":
        del cache
        gc.collect()
        raw_connection(directory, read_only=False).close()  # the last one out checkpoints
    os._exit(0)


def make_read_only(directory: str) -> None:
    if os.geteuid() == 0:
        for root, dirs, files in os.walk(directory):
            for name in dirs + files:
                os.chown(os.path.join(root, name), NOBODY, NOBODY)
        os.chown(directory, NOBODY, NOBODY)
    for root, dirs, files in os.walk(directory):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o555)
        for name in files:
            os.chmod(os.path.join(root, name), 0o444)
    os.chmod(directory, 0o555)


def snapshot(directory: str) -> dict[str, tuple[int, int, int]]:
    found = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            info = os.lstat(os.path.join(root, name))
            found[os.path.relpath(os.path.join(root, name), directory)] = (
                info.st_size,
                info.st_mtime_ns,
                stat.S_IMODE(info.st_mode),
            )
    return found


WRITES = {
    "set": lambda c: c.set("new", 1),
    "setitem": lambda c: c.__setitem__("new", 1),
    "add": lambda c: c.add("new", 1),
    "incr": lambda c: c.incr("int"),
    "decr": lambda c: c.decr("int"),
    "delete": lambda c: c.delete("int"),
    "delitem": lambda c: c.__delitem__("int"),
    "pop": lambda c: c.pop("int"),
    "touch": lambda c: c.touch("int", 10),
    "push": lambda c: c.push("value"),
    "pull": lambda c: c.pull(),
    "clear": lambda c: c.clear(),
    "cull": lambda c: c.cull(),
    "evict": lambda c: c.evict("tag"),
    "expire": lambda c: c.expire(),
    "reset": lambda c: c.reset("cull_limit", 0),
    "transact": lambda c: c.transact().__enter__(),
    "check-fix": lambda c: c.check(fix=True),
    "view-set": lambda c: c.namespace("view").set("x", 1),
}


def _describe(exc: BaseException) -> tuple[str, bool, str]:
    return (type(exc).__name__, isinstance(exc, diskstore.ReadOnlyError), str(exc))


def _examine(directory: str) -> dict[str, object]:
    """Runs in the unprivileged child: everything the parent asserts on."""
    report: dict[str, object] = {}
    try:
        diskstore.Cache(directory, secret=SECRET).close()
    except Exception as exc:
        report["open_default"] = _describe(exc)
    else:
        report["open_default"] = None
    cache = diskstore.Cache(directory, secret=SECRET, read_only=True)
    report["values"] = {key: cache.get(key) for key in EXPECTED}
    report["view"] = cache.namespace("view").get(VIEW_KEY)
    with cache.read("file") as handle:
        report["read"] = handle.read()
    report["len"] = len(cache)
    report["keys"] = sorted(cache)
    report["contains"] = "int" in cache
    report["writes"] = {}
    for name, write in WRITES.items():
        try:
            write(cache)
        except Exception as exc:
            report["writes"][name] = _describe(exc)  # type: ignore[index]
        else:
            report["writes"][name] = None  # type: ignore[index]
    report["after_writes"] = {key: cache.get(key) for key in EXPECTED}
    cache.close()
    return report


def _child(directory: str, results) -> None:
    try:
        # Once it is nobody, the child may no longer read the interpreter's own library (a
        # pyenv build under /root): what the cache imports lazily is imported first.
        import hmac  # noqa: F401

        if os.geteuid() == 0:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        results.put(("ok", _examine(directory)))
    except BaseException:
        results.put(("error", traceback.format_exc()))


@pytest.fixture
def world_traversable_dir():
    """A directory that an unprivileged user can reach (pytest's tmp_path is private)."""
    base = tempfile.mkdtemp(prefix="diskstore-ro-")
    os.chmod(base, 0o755)
    try:
        yield base
    finally:
        for root, dirs, _files in os.walk(base):
            for name in dirs:
                os.chmod(os.path.join(root, name), 0o700)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("state", ["closed", "checkpointed", "crashed"])
def test_read_only_directory(world_traversable_dir, figures, state):
    directory = os.path.join(world_traversable_dir, "cache")
    populate(directory, state)
    make_read_only(directory)
    before = snapshot(directory)

    results = FORK.Queue()
    child = FORK.Process(target=_child, args=(directory, results))
    start_forked(child)
    try:
        status, report = results.get(timeout=60)
    except queue.Empty:
        raise AssertionError("the read-only reader hung") from None
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
            child.join(5)
    assert status == "ok", report

    writes = report["writes"]
    refused = sum(1 for outcome in writes.values() if outcome and outcome[1])
    figures.record(f"read-only ({state}): writes refused with ReadOnlyError", refused)
    figures.record(f"read-only ({state}): writes tried", len(writes))

    assert report["values"] == EXPECTED
    assert report["view"] == VIEW_VALUE
    assert report["read"] == EXPECTED["file"]
    assert report["len"] == len(EXPECTED)
    assert report["keys"] == sorted(EXPECTED)
    assert report["contains"] is True
    assert {name: outcome and outcome[1] for name, outcome in writes.items()} == {
        name: True for name in WRITES
    }, writes
    assert all("read-only" in outcome[2] for outcome in writes.values())
    assert report["after_writes"] == EXPECTED
    assert snapshot(directory) == before

    # Without read_only=True the cache cannot do what a writable cache does: say so at once.
    opened = report["open_default"]
    assert opened is not None, "Cache() without read_only=True opened a read-only directory"
    assert opened[1], opened
    assert "read-only" in opened[2] or "read_only" in opened[2]
