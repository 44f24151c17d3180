"""Tests for diskstore._values._diskcache_disk: Disk subclasses written for diskcache run
unchanged."""

from __future__ import annotations

import hashlib
import io
import os
import sqlite3
import warnings
import zlib
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

import diskstore
from diskstore._storage import _sql
from diskstore.core import MODE_BINARY, MODE_PICKLE, MODE_RAW, MODE_TEXT, UNKNOWN, Disk


class CloudpickleDisk(Disk):
    """The shape of a well-known program's serializer: keys and values through cloudpickle,
    with diskcache's constructor, ``put``/``get`` and ``store``/``fetch`` signatures."""

    calls: list[str] = []

    def __init__(self, directory: str, compress_level: int = 1, **kwargs: Any) -> None:
        self.level = compress_level
        super().__init__(directory, **kwargs)

    def put(self, key: Any) -> tuple[Any, bool]:
        return super().put(zlib.compress(cloudpickle.dumps(key), self.level))

    def get(self, key: Any, raw: bool) -> Any:
        return cloudpickle.loads(zlib.decompress(super().get(key, raw)))

    def store(self, value: Any, read: bool, key: Any = UNKNOWN) -> tuple[int, int, Any, Any]:
        self.calls.append("store")
        if not read:
            value = zlib.compress(cloudpickle.dumps(value), self.level)
        return super().store(value, read, key=key)

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        self.calls.append(f"fetch {mode}")
        data = super().fetch(mode, filename, value, read)
        return data if read else cloudpickle.loads(zlib.decompress(data))


class StrictDisk(Disk):
    """Takes only diskcache's constructor arguments and names its own files."""

    def __init__(self, directory: str, min_file_size: int = 0, pickle_protocol: int = 0) -> None:
        super().__init__(directory, min_file_size=min_file_size, pickle_protocol=pickle_protocol)

    def filename(self, key: Any = UNKNOWN, value: Any = UNKNOWN) -> tuple[str, str]:
        name = "named-" + hashlib.sha256(repr(key).encode()).hexdigest()[:16]
        return name, os.path.join(self._directory, name)


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    CloudpickleDisk.calls.clear()


def test_hooks_are_called_on_every_write_and_read(tmp_path: Path) -> None:
    with diskstore.Cache(str(tmp_path), disk=CloudpickleDisk, disk_compress_level=6) as cache:
        assert type(cache.disk) is CloudpickleDisk and cache.disk.level == 6
        assert CloudpickleDisk.hooked and not Disk.hooked
        square = lambda x: x * x  # noqa: E731  (cloudpickle stores lambdas)
        cache[("a", 1)] = square
        cache["small"] = 7  # a small value: diskcache would still call fetch on it
        cache["big"] = os.urandom(100_000)
        assert cache[("a", 1)](3) == 9
        assert cache["small"] == 7
        assert len(cache["big"]) == 100_000
        assert CloudpickleDisk.calls == ["store", "store", "store", *["fetch " + str(MODE_RAW)] * 2,
                               "fetch " + str(MODE_BINARY)]  # fmt: skip
        assert sorted(cache, key=repr) == sorted([("a", 1), "small", "big"], key=repr)
        assert cache.pop("small") == 7 and cache.incr("n") == 1 and cache.incr("n") == 2
        cache.push({"job": 1})
        assert cache.pull()[1] == {"job": 1}
        assert cache.check() == []


def test_a_strict_subclass_gets_its_files_where_filename_says(tmp_path: Path) -> None:
    with diskstore.Cache(str(tmp_path), disk=StrictDisk, disk_min_file_size=1000) as cache:
        cache["text"] = "t" * 5000
        cache["blob"] = b"b" * 5000
        cache["obj"] = {"list": list(range(2000))}
        cache.set("stream", io.BytesIO(b"s" * 5000), read=True)
        for key, mode in (("text", MODE_TEXT), ("blob", MODE_BINARY), ("obj", MODE_PICKLE)):
            name = "named-" + hashlib.sha256(repr(key).encode()).hexdigest()[:16]
            assert os.path.isfile(tmp_path / name), key
            stored = cache._store.run("SELECT mode FROM Cache WHERE key = ?", (key,))[0][0]
            assert stored & 7 == mode and stored != mode, key  # diskcache's mode, hooked
        assert (tmp_path / ("named-" + hashlib.sha256(b"'text'").hexdigest()[:16])).read_text() == (
            "t" * 5000
        )
        with cache.get("stream", read=True) as handle:
            assert Path(handle.name).read_bytes() == b"s" * 5000
        assert cache["obj"]["list"][-1] == 1999
        cache.delete("text")
        assert not (tmp_path / ("named-" + hashlib.sha256(b"'text'").hexdigest()[:16])).exists()
        with pytest.raises(FileExistsError):  # a fixed name is never overwritten, as in diskcache
            cache["blob"] = b"x" * 5000
        assert cache["blob"] == b"b" * 5000
        assert sorted(p.name for p in tmp_path.glob("named-*")) == sorted(
            "named-" + hashlib.sha256(repr(k).encode()).hexdigest()[:16]
            for k in ("blob", "obj", "stream")
        )
        cache.clear()
        assert list(tmp_path.glob("named-*")) == []


def test_rows_and_files_of_hooks_are_signed(tmp_path: Path) -> None:
    with diskstore.Cache(str(tmp_path), disk=StrictDisk, disk_min_file_size=1000) as cache:
        cache["inline"] = {"small": 1}
        cache["filed"] = {"big": "x" * 5000}
        con = sqlite3.connect(tmp_path / "cache.db")
        (value,) = con.execute("SELECT value FROM Cache WHERE key = 'inline'").fetchone()
        tampered = bytearray(value)
        tampered[-3] ^= 1
        con.execute("UPDATE Cache SET value = ? WHERE key = 'inline'", (bytes(tampered),))
        con.commit()
        con.close()
        name = "named-" + hashlib.sha256(b"'filed'").hexdigest()[:16]
        data = bytearray((tmp_path / name).read_bytes())
        data[10] ^= 1
        (tmp_path / name).write_bytes(bytes(data))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert cache.get("inline") is None
            assert cache.get("filed") is None
        assert [w.category for w in caught] == [diskstore.CorruptionWarning] * 2
        assert len(cache) == 2  # a read deletes nothing; check(fix=True) does
        cache.check(fix=True)
        assert len(cache) == 0


def test_a_file_name_outside_the_directory_is_refused(tmp_path: Path) -> None:
    class Escaping(Disk):
        def filename(self, key: Any = UNKNOWN, value: Any = UNKNOWN) -> tuple[str, str]:
            return "../outside.val", os.path.join(self._directory, "../outside.val")

    directory = tmp_path / "cache"
    with diskstore.Cache(str(directory), disk=Escaping) as cache:
        with pytest.raises(diskstore.IntegrityError, match="refusing"):
            cache["k"] = b"x" * 100_000
        assert "k" not in cache
    assert not (tmp_path / "outside.val").exists()


def test_a_store_that_returns_a_wrong_shape_is_a_type_error(tmp_path: Path) -> None:
    class Wrong(Disk):
        def store(self, value: Any, read: bool, key: Any = UNKNOWN) -> Any:
            return 0, 9, None, value

    with diskstore.Cache(str(tmp_path), disk=Wrong) as cache:
        with pytest.raises(TypeError, match="MODE_"):
            cache["k"] = 1
        assert len(cache) == 0


def test_fanout_routes_by_an_overridden_hash(tmp_path: Path) -> None:
    class FirstShard(Disk):
        def hash(self, key: Any) -> int:
            return 0

    with diskstore.FanoutCache(str(tmp_path), shards=4, disk=FirstShard) as cache:
        for number in range(20):
            cache[number] = number
        assert len(cache._shards[0]) == 20


def test_the_memory_tier_stays_off_for_hooked_disks(tmp_path: Path) -> None:
    with diskstore.Cache(str(tmp_path), disk=CloudpickleDisk, memory_items=10) as cache:
        cache["k"] = 1
        assert cache["k"] == cache["k"] == 1
        assert CloudpickleDisk.calls.count("fetch 1") == 2  # every read reaches the hook


def test_rows_read_back_after_reopening(tmp_path: Path) -> None:
    with diskstore.Cache(str(tmp_path), disk=CloudpickleDisk) as cache:
        cache["k"] = [1, 2, 3]
    with diskstore.Cache(str(tmp_path), disk=CloudpickleDisk) as cache:
        assert cache["k"] == [1, 2, 3]
    with diskstore.Cache(str(tmp_path)) as plain:  # a reader without the hooks: a miss
        with pytest.warns(diskstore.CorruptionWarning):
            assert plain.get(next(iter(_keys(tmp_path)))) is None


def _keys(directory: Path) -> list[Any]:
    con = sqlite3.connect(directory / "cache.db")
    try:
        return [row[1] for row in con.execute(_sql.ITER_FORWARD, (0, 2**63 - 1, 10))]
    finally:
        con.close()
