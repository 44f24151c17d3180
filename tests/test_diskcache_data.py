"""One database with diskcache: directories the real diskcache 5.6.3 wrote, opened in place.

Every directory here is written by diskcache itself, in another process, and read back by
diskstore in this one (and the other way round): nothing is built from our idea of
diskcache's layout.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest

import diskstore
from diskstore import Cache, FanoutCache

pytest.importorskip("diskcache")

_WRITE = textwrap.dedent(
    """
    import json, pathlib, sys, time
    import diskcache

    root = pathlib.Path(sys.argv[1])
    marker = sys.argv[2]

    class Planted:
        # Unpickling this touches the marker file: it stands for any code a planted pickle runs.
        def __reduce__(self):
            return (pathlib.Path.touch, (pathlib.Path(marker),))

    cache = diskcache.Cache(str(root / "cache"))
    cache.set("text", "hello")
    cache.set(b"bytes", b"\\x00\\x01")
    cache.set(7, 3.5)
    cache.set("big-bytes", b"x" * 100_000)
    cache.set("big-text", "y" * 100_000)
    cache.set("tuple-value", (1, 2))
    cache.set("big-pickle", list(range(50_000)))
    cache.set(("tuple", "key"), "v")
    cache.set("tagged", 1, tag="t")
    cache.set("expiring", 2, expire=3600)
    cache.set("expired", 3, expire=0.001)
    cache.set("planted", Planted())

    @cache.memoize()
    def square(x):
        return x * x

    square(4)
    time.sleep(0.01)
    fanout = diskcache.FanoutCache(str(root / "fanout"), shards=4)
    for i in range(20):
        fanout[f"k{i}"] = i
    deque = diskcache.Deque(directory=str(root / "deque"))
    deque.extend([1, 2, 3])
    index = diskcache.Index(str(root / "index"))
    index["a"] = 1
    index["b"] = "two"
    print(json.dumps({"count": len(cache), "fanout": len(fanout)}))
    """
)

_READ_BACK = textwrap.dedent(
    """
    import json, sys
    import diskcache

    cache = diskcache.Cache(sys.argv[1])
    keys = json.loads(sys.argv[2])
    out = {key: repr(cache.get(key)) for key in keys}
    out["__len__"] = len(cache)
    out["__check__"] = [str(w.message) for w in cache.check()]
    print(json.dumps(out))
    """
)


def _run(script: str, *args: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture()
def written(tmp_path: Path) -> tuple[Path, Path, dict[str, int]]:
    """Directories the real diskcache wrote, and the marker a planted pickle would create."""
    marker = tmp_path / "planted-ran"
    counts = _run(_WRITE, str(tmp_path), str(marker))
    return tmp_path, marker, counts


def _quiet_cache(directory: Path) -> Cache:
    return Cache(str(directory))


def test_plain_values_read_in_place(written: tuple[Path, Path, dict[str, int]]) -> None:
    root, marker, counts = written
    with Cache(str(root / "cache")) as cache:
        assert cache.get("text") == "hello"
        assert cache.get(b"bytes") == b"\x00\x01"
        assert cache.get(7) == 3.5
        assert cache.get("big-bytes") == b"x" * 100_000
        assert cache.get("big-text") == "y" * 100_000
        assert cache.get("tagged", tag=True) == (1, "t")
        value, expire_time = cache.get("expiring", expire_time=True)
        assert value == 2 and expire_time is not None
        assert cache.get("expired") is None
        # diskcache counts expired rows until they are removed; so does diskstore.
        assert len(cache) == counts["count"]
        with cache.read("big-bytes") as handle:
            assert handle.read(3) == b"xxx"
    assert not marker.exists()


def test_pickles_are_misses_with_one_warning_and_never_run(
    written: tuple[Path, Path, dict[str, int]],
) -> None:
    root, marker, _ = written
    with Cache(str(root / "cache")) as cache:
        with pytest.warns(diskstore.DiskcacheDirectoryWarning, match="adopt_diskcache") as caught:
            assert cache.get("tuple-value") is None
            assert cache.get("big-pickle", default="missing") == "missing"
            assert cache.get("planted") is None
            assert "planted" in cache  # the row is there, only not loaded
        assert len([w for w in caught if w.category is diskstore.DiskcacheDirectoryWarning]) == 1
        problems = cache.check()
        assert [str(w.message) for w in problems if "not yet trusted" in str(w.message)]
        assert not [w for w in problems if w.category is diskstore.CorruptionWarning]
        cache.check(fix=True)  # never removes them
        assert cache.get("text") == "hello"
    assert not marker.exists()
    with Cache(str(root / "cache")) as cache:
        with pytest.raises(diskstore.UntrustedDataError, match="trust=True"):
            cache.adopt_diskcache()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", diskstore.DiskcacheDirectoryWarning)
            assert cache.get("tuple-value") is None  # nothing was changed
    assert not marker.exists()


def test_adoption_makes_pickles_load_and_diskcache_still_reads(
    written: tuple[Path, Path, dict[str, int]],
) -> None:
    root, marker, counts = written
    directory = root / "cache"
    with Cache(str(directory)) as cache:
        assert cache.delete("planted")  # removing an entry never loads it
        changed = cache.adopt_diskcache(trust=True)
        assert changed >= 4  # three pickled values (and the memoized result), one key
        assert cache.get("tuple-value") == (1, 2)
        assert cache.get("big-pickle") == list(range(50_000))
        assert cache[("tuple", "key")] == "v"
        assert cache.adopt_diskcache(trust=True) == 0  # nothing left to do
        assert len(cache) == counts["count"] - 1
        assert not [w for w in cache.check() if w.category is diskstore.CorruptionWarning]
    assert not marker.exists()
    back = _run(_READ_BACK, str(directory), json.dumps(["text", "tuple-value", "big-text"]))
    assert back["text"] == repr("hello")
    assert back["tuple-value"] == repr((1, 2))
    assert back["big-text"] == repr("y" * 100_000)
    assert back["__len__"] == counts["count"] - 1
    assert back["__check__"] == []


def test_fanout_deque_and_index_open_in_place(
    written: tuple[Path, Path, dict[str, int]],
) -> None:
    root, _, counts = written
    with FanoutCache(str(root / "fanout"), shards=4) as fanout:
        assert len(fanout) == counts["fanout"] == 20
        assert [fanout[f"k{i}"] for i in range(20)] == list(range(20))
    deque = diskstore.Deque(directory=str(root / "deque"))
    assert list(deque) == [1, 2, 3]
    index = diskstore.Index(str(root / "index"))
    assert index["a"] == 1 and index["b"] == "two"
    assert list(index) == ["a", "b"]


def test_what_diskstore_writes_diskcache_reads(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    with Cache(str(directory)) as cache:
        cache.set("text", "hello")
        cache.set("int", 12)
        cache.set("big-bytes", b"z" * 100_000)
        cache.set("tuple", (1, 2))  # signed: diskcache reads it as None, never crashes
        for i in range(10):
            cache[f"n{i}"] = i
        del cache["n0"]
        count = len(cache)
    keys = ["text", "int", "big-bytes", "tuple", "n5"]
    back = _run(_READ_BACK, str(directory), json.dumps(keys))
    assert back["text"] == repr("hello")
    assert back["int"] == repr(12)
    assert back["big-bytes"] == repr(b"z" * 100_000)
    assert back["tuple"] == repr(None)
    assert back["n5"] == repr(5)
    assert back["__len__"] == count
    assert back["__check__"] == []
    with Cache(str(directory)) as cache:  # diskcache's open left it as diskstore needs it
        assert len(cache) == count
        assert cache.get("tuple") == (1, 2)
        assert not cache.check()


class _HashStore(Cache):
    """A program's own SQL on diskcache's table, as a widely used data tool runs it."""

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for start in range(0, len(keys), 999):
            chunk = keys[start : start + 999]
            marks = ", ".join("?" * len(chunk))
            rows = self._sql(
                f"SELECT key, value FROM Cache WHERE key IN ({marks}) and raw = 1", chunk
            ).fetchall()
            found.update(rows)
        return found

    def get_one(self, key: str) -> Any:
        rows = self._sql("SELECT value FROM Cache WHERE key = ? and raw = 1", (key,)).fetchall()
        return rows[0][0] if rows else None

    def is_empty(self) -> bool:
        ((exists,),) = self._sql("SELECT EXISTS (SELECT 1 FROM Cache)").fetchall()
        return not exists

    def set_many(self, items: list[tuple[str, str]]) -> None:
        with self.transact(True):
            self._con.executemany(
                "INSERT INTO Cache("
                " key, raw, store_time, expire_time, access_time,"
                " tag, mode, filename, value"
                ") VALUES (?, 1, 0, null, 0, null, 1, null, ?)"
                " ON CONFLICT(key, raw) DO UPDATE SET value = excluded.value",
                items,
            )


def test_program_sql_on_the_cache_table(tmp_path: Path) -> None:
    store = _HashStore(str(tmp_path / "hashes"))
    assert store.is_empty()
    items = [(f"file{i}", f"md5-{i}") for i in range(2500)]
    store.set_many(items)
    assert len(store) == 2500
    store.set_many([("file1", "changed"), ("new", "x")])
    assert len(store) == 2501
    assert store.get_one("file1") == "changed"
    assert store.get("file7") == "md5-7"  # a mode-1 row is a plain value
    assert store.get_many([f"file{i}" for i in range(1200)])["file1199"] == "md5-1199"
    assert not store.is_empty()
    view = store.namespace("other")
    view.set("file1", "in a view")  # never matches SQL written for diskcache
    assert store.get_one("file1") == "changed"
    store.set_many([("file1", "again")])
    assert view.get("file1") == "in a view" and len(view) == 1
    assert len(store) == 2501
    del store["new"]
    assert len(store) == 2500
    con = sqlite3.connect(str(tmp_path / "hashes" / "cache.db"))
    try:
        (count,) = con.execute("SELECT count(*) FROM Cache WHERE raw IN (0, 1)").fetchone()
    finally:
        con.close()
    assert count == len(store)
    assert not store.check()
    store.close()


def test_private_names(tmp_path: Path) -> None:
    with Cache(str(tmp_path / "c"), timeout=5) as cache:
        assert cache._directory == str(tmp_path / "c")
        assert cache._timeout == 5
        assert isinstance(cache._disk, diskstore.Disk)
        assert isinstance(cache._con, sqlite3.Connection)
        cache._sql(
            "INSERT INTO Cache (key, raw, store_time, expire_time, access_time, tag, mode,"
            " filename, value) VALUES ('k', 1, 0, NULL, 0, NULL, 1, NULL, 'v')"
        )
        assert cache["k"] == "v" and len(cache) == 1
        with cache.transact():
            cache._sql_retry("DELETE FROM Cache WHERE key = 'k' AND raw = 1")
            assert cache._con.in_transaction
        assert "k" not in cache and len(cache) == 0
        with pytest.raises(TypeError, match="statement"):
            cache._sql(b"SELECT 1")  # type: ignore[arg-type]


def test_pickle_protocol_fails_where_diskcache_fails(tmp_path: Path) -> None:
    import pickle

    import diskcache

    too_high = pickle.HIGHEST_PROTOCOL + 1
    theirs = diskcache.Cache(str(tmp_path / "theirs"), disk_pickle_protocol=too_high)
    with pytest.raises(ValueError):
        theirs.set("k", (1, 2))
    theirs.close()
    ours = Cache(str(tmp_path / "ours"), disk_pickle_protocol=too_high)
    ours.set("plain", "str values need no pickle")
    with pytest.raises(ValueError):
        ours.set("k", (1, 2))
    ours.close()
    with Cache(str(tmp_path / "ours")) as again:  # never persisted
        assert again.disk_pickle_protocol == pickle.HIGHEST_PROTOCOL
        assert again["plain"] == "str values need no pickle"


_BOTH = textwrap.dedent(
    """
    import sys
    engine, directory, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if engine == "diskcache":
        import diskcache as lib
    else:
        import diskstore as lib
    cache = lib.Cache(directory, timeout=60)
    for i in range(rounds):
        cache.set(f"{engine}-{i}", f"value {i}")
        cache.set(f"{engine}-file-{i % 5}", bytes([i % 256]) * 40_000)
        cache.incr("shared", retry=True) if engine == "diskstore" else cache.incr("shared")
        if i % 3 == 0:
            cache.delete(f"{engine}-{i}")
    cache.close()
    print("{}")
    """
)


def test_both_engines_on_one_directory_at_once(tmp_path: Path) -> None:
    directory = str(tmp_path / "shared")
    Cache(directory).close()  # one engine creates it; the other opens it as it is
    rounds = 150
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _BOTH, engine, directory, str(rounds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for engine in ("diskcache", "diskstore", "diskcache", "diskstore")
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
    kept = [i for i in range(rounds) if i % 3]
    expected = {
        f"{engine}-{i}": f"value {i}" for engine in ("diskcache", "diskstore") for i in kept
    }
    with Cache(directory) as cache:
        assert cache["shared"] == 4 * rounds  # every increment of both engines counted
        for key, value in expected.items():
            assert cache[key] == value
        assert cache["diskcache-file-2"] == bytes([147 % 256]) * 40_000
        assert len(cache) == len(expected) + 10 + 1
        assert not cache.check()
    back = _run(_READ_BACK, directory, json.dumps(["shared", "diskstore-1", "diskstore-file-4"]))
    assert back["shared"] == repr(4 * rounds)
    assert back["diskstore-1"] == repr("value 1")
    assert back["diskstore-file-4"] == repr(bytes([149 % 256]) * 40_000)
    assert back["__len__"] == len(expected) + 11
    # diskstore keeps emptied value folders for reuse; diskcache only notes them.
    assert [m for m in back["__check__"] if not m.startswith("empty directory")] == []


_MEMOIZED = textwrap.dedent(
    """
    import sys
    import diskcache

    cache = diskcache.Cache(sys.argv[1])

    @cache.memoize()
    def area(width, height=1):
        return width * height

    @cache.memoize(name="perimeter", typed=True)
    def perimeter(width, height):
        return 2 * (width + height)

    print(area(3, height=4), area(5), perimeter(2, 3))
    """
)


def test_results_diskcache_memoized_are_hits_after_adoption(tmp_path: Path) -> None:
    directory = tmp_path / "memo"
    script = tmp_path / "shapes.py"
    script.write_text(_MEMOIZED)
    # The same functions, under the same module name diskcache keyed them by.
    done = subprocess.run(
        [sys.executable, str(script), str(directory)], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.split() == ["12", "5", "10"], done.stderr
    calls: list[tuple[int, int]] = []

    with Cache(str(directory)) as cache:
        cache.adopt_diskcache(trust=True)

        def area(width: int, height: int = 1) -> int:
            calls.append((width, height))
            return width * height

        area.__module__, area.__qualname__ = "__main__", "area"
        memoized = cache.memoize()(area)
        assert memoized(3, height=4) == 12 and memoized(5) == 5
        assert calls == []  # found where diskcache stored them, not computed again
        assert memoized(3, height=4) == 12 and calls == []  # now under diskstore's own key
        assert memoized(6) == 6 and calls == [(6, 1)]  # a new call is computed
        assert memoized.cache_info().hits == 3

        def perimeter(width: int, height: int) -> int:
            calls.append((width, height))
            return 2 * (width + height)

        typed = cache.memoize(name="perimeter", typed=True)(perimeter)
        assert typed(2, 3) == 10 and calls == [(6, 1)]
        before = len(cache)
    with Cache(str(directory)) as cache:  # the adopted results moved, not copied
        assert len(cache) == before
