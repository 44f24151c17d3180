"""A damaged database: every public method raises diskstore's exceptions, never sqlite3's.

SQLite reports damage (``database disk image is malformed``) from whichever statement first
reads a bad page: opening, a lookup, a write, a scan. The tests overwrite pages of a closed
cache's database file, many times with different pages, and drive the whole public API of
``Cache``, ``FanoutCache``, ``Deque`` and ``Index`` over the result; the only exceptions
allowed out are :class:`~diskstore.DiskStoreError` and the ``KeyError``/``IndexError`` a
mapping or sequence raises for what it no longer finds.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import sqlite3
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import diskstore
from diskstore._fs import _filesystems
from diskstore._storage._store import DB_NAME

#: What a damaged cache may raise: its own errors, and what a missing key or item raises.
ALLOWED = (diskstore.DiskStoreError, KeyError, IndexError)
PAGE = 4096
SEEDS = 24


def _fill(cache: Any) -> None:
    for number in range(400):
        cache.set(f"key-{number}", f"value-{number}" * (number % 7), tag=f"t{number % 5}")
    for number in range(8):
        cache.set(("big", number), os.urandom(70_000))
    cache.set("counter", 5)
    for number in range(30):
        cache.push(number, prefix="q")
    view = cache.namespace("ns")
    for number in range(50):
        view[number] = {"n": number}


def _damage(path: str, seed: int, *, header: bool = False) -> None:
    """Overwrite a few random pages with garbage or zeros (the header page with *header*)."""
    generator = random.Random(seed)
    pages = os.path.getsize(path) // PAGE
    with open(path, "r+b") as handle:
        if header:
            handle.seek(generator.randrange(0, 100))
            handle.write(generator.randbytes(generator.randint(4, 100)))
        for page in generator.sample(range(1, pages), min(pages - 1, generator.randint(1, 4))):
            handle.seek(page * PAGE + generator.randrange(0, PAGE // 2))
            garbage = (
                bytes(PAGE // 2) if generator.random() < 0.3 else generator.randbytes(PAGE // 2)
            )
            handle.write(garbage)


def _cache_operations(cache: diskstore.Cache) -> Iterator[tuple[str, Callable[[], Any]]]:
    yield "get", lambda: cache.get("key-3")
    yield "get full", lambda: cache.get("key-5", expire_time=True, tag=True)
    yield "getitem", lambda: cache["key-10"]
    yield "get file", lambda: cache.get(("big", 1))
    yield "read", lambda: cache.read(("big", 2)).close()
    yield "contains", lambda: "key-20" in cache
    yield "len", lambda: len(cache)
    yield "iter", lambda: list(cache)
    yield "reversed", lambda: list(reversed(cache))
    yield "iterkeys", lambda: list(cache.iterkeys(reverse=True))
    yield "set", lambda: cache.set("new", "x")
    yield "set file", lambda: cache.set("new big", b"b" * 100_000)
    yield "set read", lambda: cache.set("from file", io.BytesIO(b"r" * 5000), read=True)
    yield "setitem", lambda: cache.__setitem__("key-30", 3)
    yield "add", lambda: cache.add("key-31", 1)
    yield "touch", lambda: cache.touch("key-32", expire=100)
    yield "incr", lambda: cache.incr("counter")
    yield "decr", lambda: cache.decr("counter")
    yield "delete", lambda: cache.delete("key-33")
    yield "delitem", lambda: cache.__delitem__("key-34")
    yield "pop", lambda: cache.pop("key-35")
    yield "push", lambda: cache.push("p", prefix="q")
    yield "pull", lambda: cache.pull(prefix="q")
    yield "pull back", lambda: cache.pull(prefix="q", side="back")
    yield "peek", lambda: cache.peek(prefix="q")
    yield "peekitem", lambda: cache.peekitem()
    yield "transact", lambda: _in_transaction(cache)
    yield "namespace get", lambda: cache.namespace("ns").get(3)
    yield "namespace set", lambda: cache.namespace("ns").set(3, "three")
    yield "namespace len", lambda: len(cache.namespace("ns"))
    yield "namespace clear", lambda: cache.namespace("ns").clear()
    yield "new namespace", lambda: cache.namespace("other").set(1, 1)
    yield "memoize", lambda: cache.memoize()(lambda x: x + 1)(1)
    yield "memoized_functions", lambda: cache.memoized_functions()
    yield "volume", cache.volume
    yield "stats", lambda: cache.stats(enable=True, reset=True)
    yield "reset", lambda: cache.reset("cull_limit", 5)
    yield "create_tag_index", cache.create_tag_index
    yield "drop_tag_index", cache.drop_tag_index
    yield "evict", lambda: cache.evict("t1")
    yield "expire", cache.expire
    yield "cull", cache.cull
    yield "check", lambda: cache.check()
    yield "check fix", lambda: cache.check(fix=True)
    yield "clear", cache.clear
    yield "close", cache.close
    yield "get after close", lambda: cache.get("key-1")


def _in_transaction(cache: diskstore.Cache) -> None:
    with cache.transact():
        cache.set("in txn", 1)
        cache.get("key-2")


def _drive(
    make: Callable[[], Any],
    operations: Callable[[Any], Any],
    damage_open: Callable[[], None] | None = None,
) -> tuple[int, int]:
    """Open with *make* and run every operation; return (operations run, errors seen).

    With *damage_open*, the damage is done after opening, under the open connections.
    Fails the test on an exception that is not diskstore's (a raw ``sqlite3`` error).
    """
    run = errors = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # damage found in a row is a CorruptionWarning
        try:
            opened = make()
        except ALLOWED:
            return 0, 1
        if damage_open is not None:
            damage_open()
        try:
            for name, operation in operations(opened):
                run += 1
                try:
                    operation()
                except ALLOWED:
                    errors += 1
                except ValueError as exc:
                    if "not in deque" not in str(exc):  # what deque.remove() raises
                        raise AssertionError(f"{name} raised ValueError: {exc}") from exc
                    errors += 1
                except BaseException as exc:
                    raise AssertionError(
                        f"{name} raised {type(exc).__module__}.{type(exc).__name__}: {exc}"
                    ) from exc
        finally:
            _close(opened)
    return run, errors


def _close(opened: Any) -> None:
    closer = getattr(opened, "close", None) or opened.cache.close
    try:
        closer()
    except ALLOWED:
        pass


@pytest.fixture(scope="module", params=["wal", "delete"])
def pristine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A filled cache, in WAL mode or with the rollback journal of single-host mode."""
    directory = str(tmp_path_factory.mktemp("pristine") / "cache")
    with diskstore.Cache(directory, sqlite_journal_mode=request.param) as cache:
        _fill(cache)
    return directory


def _damaged_copy(pristine: str, tmp_path: Path, seed: int) -> str:
    directory = str(tmp_path / f"damaged-{seed}")
    shutil.copytree(pristine, directory)
    _damage(os.path.join(directory, DB_NAME), seed)
    return directory


def test_damaged_cache_raises_only_diskstore_errors(pristine: str, tmp_path: Path) -> None:
    opened = ran = errors = 0
    for seed in range(SEEDS):
        directory = _damaged_copy(pristine, tmp_path, seed)
        run, seen = _drive(lambda d=directory: diskstore.Cache(d), _cache_operations)
        opened += run > 0
        ran += run
        errors += seen
    for seed in range(SEEDS):  # damaged under an open cache, the header page too
        directory = str(tmp_path / f"open-{seed}")
        shutil.copytree(pristine, directory)
        path = os.path.join(directory, DB_NAME)
        damage = lambda p=path, s=seed: _damage(p, s, header=s % 2 == 0)  # noqa: E731
        ran += _drive(lambda d=directory: diskstore.Cache(d), _cache_operations, damage)[0]
    # The damage must have been met by operations on an open cache, not only at open.
    assert opened > 0 and ran > 0 and errors > 0


def test_damage_is_an_integrity_error_that_points_at_the_docs(
    pristine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = str(tmp_path / "wrecked")
    shutil.copytree(pristine, directory)
    path = os.path.join(directory, DB_NAME)
    with open(path, "r+b") as handle:
        handle.seek(PAGE)
        handle.write(os.urandom(os.path.getsize(path) - PAGE))
    with pytest.raises(diskstore.IntegrityError, match=r"malformed|not a database") as caught:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            diskstore.Cache(directory).get("key-1")
    assert "docs/reliability.md" in str(caught.value)
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)
    # On a network filesystem the message says so.
    sshfs = _filesystems.Mount("/mnt/share", "fuse.sshfs", "ann@build:/srv", "0:99", 7)
    monkeypatch.setattr(_filesystems, "detect", lambda *args, **kwargs: sshfs)
    with pytest.raises(diskstore.IntegrityError) as caught:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            diskstore.Cache(directory, network_fs="single-host").get("key-1")
    message = str(caught.value)
    assert "network filesystem (fuse.sshfs mounted at /mnt/share)" in message
    assert "Network filesystems" in message


def test_store_begin_translates_damage(pristine: str, tmp_path: Path) -> None:
    """``Store.begin`` once let a plain ``sqlite3.DatabaseError`` out."""
    for seed in range(SEEDS):
        directory = _damaged_copy(pristine, tmp_path, 1000 + seed)
        path = os.path.join(directory, DB_NAME)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cache = diskstore.Cache(directory)
        except diskstore.DiskStoreError:
            continue
        _damage(path, seed, header=True)
        try:
            store = cache._store
            conn = store.enter()
            try:
                try:
                    if store.begin(conn, retry=False):
                        store.end(conn, True, True)
                except diskstore.DiskStoreError:
                    pass
            finally:
                conn.depth -= 1
        finally:
            cache.close()


def _fanout_operations(cache: diskstore.FanoutCache) -> Iterator[tuple[str, Callable[[], Any]]]:
    yield "get", lambda: cache.get("key-3")
    yield "set", lambda: cache.set("key-3", "x" * 5000)
    yield "incr", lambda: cache.incr("counter")
    yield "len", lambda: len(cache)
    yield "iter", lambda: list(cache)
    yield "delete", lambda: cache.delete("key-4")
    yield "pop", lambda: cache.pop("key-5")
    yield "evict", lambda: cache.evict("t2")
    yield "cull", cache.cull
    yield "check", lambda: cache.check(fix=True)
    yield "stats", cache.stats
    yield "volume", cache.volume
    yield "clear", cache.clear


def _deque_operations(deque: diskstore.Deque) -> Iterator[tuple[str, Callable[[], Any]]]:
    yield "len", lambda: len(deque)
    yield "iter", lambda: list(deque)
    yield "index", lambda: deque[3]
    yield "append", lambda: deque.append("a")
    yield "appendleft", lambda: deque.appendleft("b")
    yield "pop", deque.pop
    yield "popleft", deque.popleft
    yield "rotate", lambda: deque.rotate(2)
    yield "count", lambda: deque.count(3)
    yield "remove", lambda: deque.remove(7)
    yield "clear", deque.clear


def _index_operations(index: diskstore.Index) -> Iterator[tuple[str, Callable[[], Any]]]:
    yield "getitem", lambda: index[3]
    yield "setitem", lambda: index.__setitem__(3, "x")
    yield "len", lambda: len(index)
    yield "keys", lambda: list(index.keys())
    yield "items", lambda: list(index.items())
    yield "popitem", index.popitem
    yield "pull", lambda: index.pull()
    yield "eq", lambda: index == {}
    yield "clear", index.clear


@pytest.mark.parametrize("kind", ["fanout", "deque", "index"])
def test_damaged_collections_raise_only_diskstore_errors(kind: str, tmp_path: Path) -> None:
    base = str(tmp_path / "base")
    if kind == "fanout":
        with diskstore.FanoutCache(base, shards=2) as fanout:
            for number in range(600):
                fanout.set(f"key-{number}", "v" * (number % 50), tag=f"t{number % 3}")
        make: Callable[[str], Any] = lambda d: diskstore.FanoutCache(d, shards=2)  # noqa: E731
        operations: Callable[[Any], Any] = _fanout_operations
        databases = [os.path.join("000", DB_NAME), os.path.join("001", DB_NAME)]
    elif kind == "deque":
        deque = diskstore.Deque(range(800), directory=base)
        deque.cache.close()
        make, operations, databases = (
            lambda d: diskstore.Deque(directory=d), _deque_operations, [DB_NAME]
        )  # fmt: skip
    else:
        index = diskstore.Index(base, {number: "v" * number for number in range(800)})
        index.cache.close()
        make, operations, databases = (lambda d: diskstore.Index(d), _index_operations, [DB_NAME])
    ran = 0
    for seed in range(SEEDS // 2):
        directory = str(tmp_path / f"damaged-{seed}")
        shutil.copytree(base, directory)
        for database in databases:
            _damage(os.path.join(directory, database), seed)
        ran += _drive(lambda d=directory: make(d), operations)[0]
        directory = str(tmp_path / f"open-{seed}")
        shutil.copytree(base, directory)

        def damage(directory: str = directory, seed: int = seed) -> None:
            for database in databases:
                _damage(os.path.join(directory, database), seed, header=seed % 2 == 0)

        ran += _drive(lambda d=directory: make(d), operations, damage)[0]
    assert ran > 0
