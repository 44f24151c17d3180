"""Item 2: a writer SIGKILLed at random moments loses nothing it acknowledged.

The writer logs each operation's intent before it and its acknowledgement after it, with
unbuffered writes that survive ``kill -9``. After each kill the cache must open, pass
``PRAGMA integrity_check``, return every acknowledged value byte for byte (the one operation
in flight may have happened or not), hold no partial file under a final name, and be clean
after a single ``check(fix=True)`` pass. The same writer is run against diskcache 5.6.3 for
comparison; only diskstore's figures are asserted.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sqlite3
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import diskcache
import pytest

import diskstore

from ._support import BIG, payload, start_forked

FORK = multiprocessing.get_context("fork")

INLINE_KEYS = 40
FILE_KEYS = 8
EPHEMERAL_KEYS = 8
QUEUE = "q"
# Operation mix: many file writes, since crashes there are the ones that leave debris.
OPERATIONS = {
    "set_inline": 20,
    "set_file": 20,
    "set_ephemeral": 8,
    "delete": 12,
    "push": 8,
    "pull": 8,
    "incr": 8,
    "cull": 4,
    "evict": 2,
}


# -- the two libraries, seen from outside -------------------------------------------------
@dataclass(frozen=True)
class Backend:
    name: str
    database: str
    items_query: str

    def open(self, directory: str) -> Any:
        if self.name == "diskstore":
            return diskstore.Cache(directory)
        return diskcache.Cache(directory)

    def files_root(self, directory: str) -> str:
        return os.path.join(directory, "data") if self.name == "diskstore" else directory

    def value_files(self, directory: str) -> dict[str, int]:
        """Value files by the name their rows give (relative to the directory, for both)."""
        root = self.files_root(directory)
        found: dict[str, int] = {}
        for dirpath, _dirnames, filenames in os.walk(root):
            for name in filenames:
                path = os.path.join(dirpath, name)
                if os.sep not in os.path.relpath(path, root):
                    continue  # the database and its journals
                relative = os.path.relpath(path, directory)
                found[relative] = os.path.getsize(path)
        return found

    def connect(self, directory: str) -> sqlite3.Connection:
        return sqlite3.connect(os.path.join(directory, self.database), timeout=30)

    def referenced(self, directory: str) -> set[str]:
        con = self.connect(directory)
        try:
            return {row[0] for row in con.execute(self.items_query)}
        finally:
            con.close()

    def integrity(self, directory: str) -> list[str]:
        con = self.connect(directory)
        try:
            return [row[0] for row in con.execute("PRAGMA integrity_check")]
        finally:
            con.close()

    def check(self, cache: Any, fix: bool) -> list[Any]:
        if self.name == "diskstore":
            return list(cache.check(fix=fix))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cache.check(fix=fix)
        return caught


DISKSTORE = Backend(
    "diskstore", "cache.db", "SELECT filename FROM Cache WHERE filename IS NOT NULL"
)
DISKCACHE = Backend(
    "diskcache", "cache.db", "SELECT filename FROM Cache WHERE filename IS NOT NULL"
)


# -- the writer ---------------------------------------------------------------------------
def writer(
    backend: Backend, directory: str, log_path: str, seed: int, tag: str, ready: Any
) -> None:
    """Run random operations forever, logging intent and acknowledgement of each."""
    cache = backend.open(directory)
    rng = random.Random(seed)
    names = list(OPERATIONS)
    weights = list(OPERATIONS.values())
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def log(*parts: object) -> None:
        os.write(fd, (" ".join(map(str, parts)) + "\n").encode())

    ready.set()
    seq = 0
    while True:
        seq += 1
        op = rng.choices(names, weights)[0]
        version = f"{tag}.{seq}"
        if op == "set_inline":
            key, size = f"i{rng.randrange(INLINE_KEYS)}", rng.randrange(1, 4000)
            log("I", seq, op, key, version, size)
            cache.set(key, payload(key, version, size))
            log("A", seq)
        elif op == "set_file":
            key = f"f{rng.randrange(FILE_KEYS)}"
            log("I", seq, op, key, version, BIG)
            cache.set(key, payload(key, version, BIG))
            log("A", seq)
        elif op == "set_ephemeral":
            key = f"e{rng.randrange(EPHEMERAL_KEYS)}"
            log("I", seq, op, key, version, BIG)
            cache.set(key, payload(key, version, BIG), expire=0.02, tag="eph")
            log("A", seq)
        elif op == "delete":
            key = rng.choice([f"i{rng.randrange(INLINE_KEYS)}", f"f{rng.randrange(FILE_KEYS)}"])
            log("I", seq, op, key, version, 0)
            cache.delete(key)
            log("A", seq)
        elif op == "push":
            size = rng.choice([100, BIG])
            log("I", seq, op, QUEUE, version, size)
            pushed = cache.push(payload(QUEUE, version, size), prefix=QUEUE)
            log("A", seq, pushed)
        elif op == "pull":
            log("I", seq, op, QUEUE, version, 0)
            pulled, _value = cache.pull(prefix=QUEUE)
            log("A", seq, pulled)
        elif op == "incr":
            log("I", seq, op, "n", version, 0)
            log("A", seq, cache.incr("n"))
        elif op == "cull":
            log("I", seq, op, "-", version, 0)
            cache.cull()
            log("A", seq)
        else:
            log("I", seq, op, "-", version, 0)
            cache.evict("eph")
            log("A", seq)


# -- what the parent knows -----------------------------------------------------------------
Value = tuple[str, int]  # (version, size): the bytes are payload(key, version, size)


@dataclass
class Model:
    """What must be in the cache, given every acknowledged operation so far."""

    keys: dict[str, Value | None] = field(default_factory=dict)
    ephemeral: dict[str, Value] = field(default_factory=dict)
    queue: dict[str, Value] = field(default_factory=dict)
    counter: int = 0

    def apply(self, op: str, key: str, value: Value, result: str | None) -> None:
        if op in ("set_inline", "set_file"):
            self.keys[key] = value
        elif op == "set_ephemeral":
            self.ephemeral[key] = value
        elif op == "delete":
            self.keys[key] = None
        elif op == "push":
            assert result is not None
            self.queue[result] = value
        elif op == "pull":
            if result not in (None, "None"):
                del self.queue[result]
        elif op == "incr":
            self.counter = int(result or 0)


def read_log(path: str) -> tuple[list[tuple[str, str, Value, str | None]], Any]:
    """Return the acknowledged operations in order, and the one in flight (or None)."""
    intents: dict[int, tuple[str, str, Value]] = {}
    acked: list[tuple[str, str, Value, str | None]] = []
    with open(path) as handle:
        lines = handle.read().split("\n")
    for line in lines:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "I" and len(parts) == 6:
            seq = int(parts[1])
            intents[seq] = (parts[2], parts[3], (parts[4], int(parts[5])))
        elif parts[0] == "A" and len(parts) in (2, 3):
            seq = int(parts[1])
            op, key, value = intents.pop(seq)
            acked.append((op, key, value, parts[2] if len(parts) == 3 else None))
    assert len(intents) <= 1, f"more than one operation in flight: {intents}"
    pending = next(iter(intents.values()), None)
    return acked, pending


@dataclass
class Tally:
    kills: int = 0
    orphans_before_fix: int = 0
    partial_final: int = 0
    problems_reported: int = 0
    lost_acknowledged: int = 0
    integrity_failures: int = 0
    orphans_after_fix: int = 0
    unconverged_fix: int = 0
    open_failures: int = 0
    details: list[str] = field(default_factory=list)


def _matches(actual: Any, key: str, value: Value | None) -> bool:
    if value is None:
        return actual is None
    return isinstance(actual, bytes) and actual == payload(key, *value)


def verify(backend: Backend, directory: str, model: Model, pending: Any, tally: Tally) -> None:
    """Check one crashed directory against *model*, then sync the model to what is there."""
    files = backend.value_files(directory)
    try:
        cache = backend.open(directory)
    except Exception as exc:
        tally.open_failures += 1
        tally.details.append(f"open failed: {exc!r}")
        return
    try:
        if backend.integrity(directory) != ["ok"]:
            tally.integrity_failures += 1
        referenced = backend.referenced(directory)
        tally.orphans_before_fix += sum(1 for name in files if name not in referenced)
        tally.partial_final += sum(
            1 for name, size in files.items() if name.endswith(".val") and size != BIG
        )
        p_op, p_key, p_value = pending if pending else (None, None, None)

        for key, value in model.keys.items():
            actual = cache.get(key)
            allowed = [value]
            if key == p_key:
                allowed.append(None if p_op == "delete" else p_value)
            if not any(_matches(actual, key, option) for option in allowed):
                tally.lost_acknowledged += 1
                tally.details.append(f"{backend.name}: {key} lost (expected {value})")
        if p_op in ("set_inline", "set_file") and p_key not in model.keys:
            actual = cache.get(p_key)
            if not (_matches(actual, p_key, None) or _matches(actual, p_key, p_value)):
                tally.lost_acknowledged += 1
        for key, value in model.ephemeral.items():
            actual = cache.get(key)
            options = [None, value] + ([p_value] if key == p_key else [])
            if not any(_matches(actual, key, option) for option in options):
                tally.lost_acknowledged += 1
                tally.details.append(f"{backend.name}: {key} holds a wrong value")

        present = sorted(k for k in cache if isinstance(k, str) and k.startswith(QUEUE + "-"))
        expected = sorted(model.queue)
        extra = [k for k in present if k not in model.queue]
        missing = [k for k in expected if k not in present]
        ok_extra = p_op == "push" and len(extra) <= 1
        ok_missing = p_op == "pull" and missing in ([], expected[:1])
        if (extra and not ok_extra) or (missing and not ok_missing):
            tally.lost_acknowledged += len(missing) + len(extra)
            tally.details.append(f"{backend.name}: queue extra {extra} missing {missing}")
        for k in present:
            value = model.queue.get(k, p_value)
            if not _matches(cache.get(k), QUEUE, value):
                tally.lost_acknowledged += 1
                tally.details.append(f"{backend.name}: queue item {k} differs")

        counter = cache.get("n", 0)
        if counter != model.counter and not (p_op == "incr" and counter == model.counter + 1):
            tally.lost_acknowledged += 1
            tally.details.append(f"{backend.name}: counter {counter}, acknowledged {model.counter}")

        tally.problems_reported += len(backend.check(cache, fix=False))
        backend.check(cache, fix=True)
        if backend.check(cache, fix=False):
            tally.unconverged_fix += 1
        referenced = backend.referenced(directory)
        tally.orphans_after_fix += sum(
            1 for name in backend.value_files(directory) if name not in referenced
        )

        # Continue from what is there: the operation in flight happened or it did not.
        for key in list(model.keys) + ([p_key] if p_op in ("set_inline", "set_file") else []):
            actual = cache.get(key)
            if actual is None:
                model.keys[key] = None
            elif key == p_key and p_op != "delete" and _matches(actual, key, p_value):
                model.keys[key] = p_value
        if p_op == "set_ephemeral":
            model.ephemeral[p_key] = p_value
        model.queue = {k: model.queue.get(k, p_value) for k in present}
        model.counter = cache.get("n", 0)
    finally:
        cache.close()


def run_kills(backend: Backend, directory: str, kills: int, seed: int) -> Tally:
    rng = random.Random(seed)
    model = Model()
    tally = Tally()
    for number in range(kills):
        log_path = os.path.join(os.path.dirname(directory), f"log-{backend.name}-{number}")
        ready = FORK.Event()
        process = FORK.Process(
            target=writer,
            args=(backend, directory, log_path, rng.randrange(2**32), f"r{number}", ready),
        )
        start_forked(process)
        try:
            assert ready.wait(30), "writer did not start"
            time.sleep(rng.uniform(0.01, 0.2))
            assert process.is_alive(), f"writer exited early with {process.exitcode}"
            os.kill(process.pid, signal.SIGKILL)
            process.join(30)
        finally:
            if process.is_alive():
                process.kill()
                process.join(5)
        assert process.exitcode == -signal.SIGKILL
        tally.kills += 1
        acked, pending = read_log(log_path)
        for op, key, value, result in acked:
            model.apply(op, key, value, result)
        verify(backend, directory, model, pending, tally)
    return tally


def _record(figures: Any, tally: Tally, backend: Backend, label: str) -> None:
    rows = {
        f"kill -9 ({label}): orphan files before fix": tally.orphans_before_fix,
        f"kill -9 ({label}): problems check() reported before fix": tally.problems_reported,
        f"kill -9 ({label}): partial files under a final name": tally.partial_final,
        f"kill -9 ({label}): orphan files after one fix pass": tally.orphans_after_fix,
        f"kill -9 ({label}): acknowledged writes lost": tally.lost_acknowledged,
        f"kill -9 ({label}): integrity_check failures": tally.integrity_failures,
    }
    for name, value in rows.items():
        if backend is DISKSTORE:
            figures.record(name, value)
        else:
            figures.record_diskcache(name, value)


def _assert_clean(tally: Tally) -> None:
    assert tally.open_failures == 0, tally.details
    assert tally.integrity_failures == 0
    assert tally.lost_acknowledged == 0, tally.details
    assert tally.partial_final == 0
    assert tally.unconverged_fix == 0
    assert tally.orphans_after_fix == 0


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_kill9_loses_nothing_acknowledged(tmp_path, figures):
    directory = str(tmp_path / "cache")
    tally = run_kills(DISKSTORE, directory, kills=30, seed=1)
    _record(figures, tally, DISKSTORE, "30 kills")
    _assert_clean(tally)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_diskcache_under_the_same_kills(tmp_path, figures):
    """Measured for the comparison table only: diskcache's figures are not asserted."""
    directory = str(tmp_path / "cache")
    tally = run_kills(DISKCACHE, directory, kills=30, seed=1)
    _record(figures, tally, DISKCACHE, "30 kills")
    assert tally.kills == 30


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_kill9_many_times(tmp_path, figures):
    directory = str(tmp_path / "cache")
    tally = run_kills(DISKSTORE, directory, kills=150, seed=2)
    _record(figures, tally, DISKSTORE, "150 kills")
    _assert_clean(tally)
