"""Importing diskcache 5.6.3 directories, written by the installed diskcache itself."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import diskcache
import pytest

import diskstore
from diskstore._common import _clock


class Point:
    """A value class only pickle can store."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (other.x, other.y) == (self.x, self.y)

    def __hash__(self) -> int:
        return hash((self.x, self.y))


BIG_BYTES = os.urandom(100_000)  # diskcache puts these in value files
BIG_TEXT = "text in a file " * 10_000
ITEMS: dict[Any, Any] = {
    1: "int key",
    2**40: 1.5,
    "str": "value",
    b"bytes": b"value",
    1.25: -7,
    ("tuple", 1): {"pickled": [1, 2]},
    Point(1, 2): Point(3, 4),
    "big-bytes": BIG_BYTES,
    "big-text": BIG_TEXT,
    "big-pickle": [BIG_TEXT],
    "huge-int": 2**80,
}


def _write(cache: Any) -> None:
    for key, value in ITEMS.items():
        cache.set(key, value)
    cache.set("tagged", "x", tag="group", expire=3600)
    cache.set("expired", "gone", expire=0.001)


def _assert_copied(cache: Any) -> None:
    for key, value in ITEMS.items():
        assert cache[key] == value, key
    value, expire_time, tag = cache.get("tagged", expire_time=True, tag=True)
    assert (value, tag) == ("x", "group")
    assert 3500 < expire_time - _clock.now() <= 3600
    assert "expired" not in cache
    assert len(cache) == len(ITEMS) + 1


@pytest.fixture
def source(tmp_path: Path) -> str:
    directory = str(tmp_path / "diskcache")
    with diskcache.Cache(directory) as old:
        _write(old)
    return directory


def test_a_diskcache_directory_is_copied_item_by_item(source: str, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    with diskstore.Cache(str(tmp_path / "new")) as cache:
        copied = cache.import_diskcache(
            source, trust=True, progress=lambda d, t: seen.append((d, t))
        )
        assert copied == len(ITEMS) + 1
        _assert_copied(cache)
    assert seen[-1] == (len(ITEMS) + 2, len(ITEMS) + 2)


def test_pickles_are_refused_without_trust_and_nothing_is_copied(
    source: str, tmp_path: Path
) -> None:
    with diskstore.Cache(str(tmp_path / "new")) as cache:
        with pytest.raises(diskstore.UntrustedDataError) as raised:
            cache.import_diskcache(source)
        assert "trust=True" in str(raised.value)
        assert "CVE-2025-69872" in str(raised.value)
        assert "unsigned" in str(raised.value)
        assert len(cache) == 0


def test_a_directory_without_pickles_needs_no_trust(tmp_path: Path) -> None:
    with diskcache.Cache(str(tmp_path / "old")) as old:
        old.set("a", 1)
        old.set("b", BIG_BYTES, tag="t")
    with diskstore.Cache(str(tmp_path / "new")) as cache:
        assert cache.import_diskcache(str(tmp_path / "old")) == 2
        assert cache.get("b", tag=True) == (BIG_BYTES, "t")


def test_a_fanout_directory_is_copied_from_every_shard(tmp_path: Path) -> None:
    with diskcache.FanoutCache(str(tmp_path / "old"), shards=4) as old:
        _write(old)
    assert sorted(os.listdir(tmp_path / "old")) == ["000", "001", "002", "003"]
    with diskstore.FanoutCache(str(tmp_path / "new"), shards=3) as cache:
        assert cache.import_diskcache(str(tmp_path / "old"), trust=True) == len(ITEMS) + 1
        _assert_copied(cache)
    with diskstore.Cache(str(tmp_path / "plain")) as plain:
        assert plain.import_diskcache(str(tmp_path / "old"), trust=True) == len(ITEMS) + 1
        _assert_copied(plain)


def test_deque_and_index_directories_keep_their_order(tmp_path: Path) -> None:
    old_deque = diskcache.Deque(["a", 2, ("three",), BIG_BYTES], directory=str(tmp_path / "dq"))
    old_deque.appendleft("first")
    old_index = diskcache.Index(str(tmp_path / "ix"), [("z", 1), ("a", Point(0, 0)), (3, "c")])
    old_deque.cache.close()  # diskcache leaves its connections to the garbage collector
    old_index.cache.close()
    deque = diskstore.Deque(directory=str(tmp_path / "new-dq"))
    assert deque.import_diskcache(str(tmp_path / "dq"), trust=True) == 5
    assert list(deque) == ["first", "a", 2, ("three",), BIG_BYTES]
    deque.append("appended")
    assert deque[-1] == "appended"
    index = diskstore.Index(str(tmp_path / "new-ix"))
    assert index.import_diskcache(str(tmp_path / "ix"), trust=True) == 3
    assert list(index.items()) == [("z", 1), ("a", Point(0, 0)), (3, "c")]


def test_a_tampered_file_name_is_skipped_not_followed(source: str, tmp_path: Path) -> None:
    import sqlite3

    secret = tmp_path / "secret.txt"
    secret.write_text("not for the cache")
    con = sqlite3.connect(os.path.join(source, "cache.db"))
    with con:
        con.execute("UPDATE Cache SET filename = ? WHERE key = 'big-bytes'", (str(secret),))
    con.close()
    with diskstore.Cache(str(tmp_path / "new")) as cache:
        with pytest.warns(UserWarning, match="1 of 13 item"):
            cache.import_diskcache(source, trust=True)
        assert "big-bytes" not in cache
        assert cache["big-text"] == BIG_TEXT


def test_a_diskcache_directory_opens_in_place_and_a_pickle_warns_at_the_callers_line(
    source: str,
) -> None:
    with diskstore.Cache(source) as cache:
        assert cache["str"] == "value" and cache["big-text"] == BIG_TEXT
        with pytest.warns(diskstore.DiskcacheDirectoryWarning, match="adopt_diskcache") as caught:
            assert cache.get("big-pickle") is None
        assert caught[0].filename == __file__
        assert "diskstore adopt" in str(caught[0].message)
        cache.adopt_diskcache(trust=True)
        for key, value in ITEMS.items():  # everything diskcache wrote, in place
            assert cache[key] == value, key
        assert cache.get("tagged", tag=True) == ("x", "group")
        assert "expired" not in cache


def test_not_a_diskcache_directory(tmp_path: Path) -> None:
    with diskstore.Cache(str(tmp_path / "new")) as cache:
        with pytest.raises(diskstore.DiskStoreError, match="not a diskcache directory"):
            cache.import_diskcache(str(tmp_path))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(TypeError, match="trust"):
                cache.import_diskcache(str(tmp_path), trust="yes")  # type: ignore[arg-type]
