"""The storage format (``diskstore._values._disk``): how keys and values become rows and files.

Covers round trips of every supported type in rows and in files, compressed and not; the
``mode`` column that makes each row self-describing; the canonical key encoding that makes
equal keys find the same row in every process and under every ``PYTHONHASHSEED``; and the
serializer strategies (``Disk``, ``JSONDisk``, custom subclasses).
"""

from __future__ import annotations

import ast
import collections
import contextlib
import dataclasses
import datetime
import decimal
import fractions
import functools
import json
import math
import os
import pathlib
import pickle
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import diskstore
from diskstore._values._disk import Disk
from diskstore._values._jsondisk import JSONDisk
from diskstore._values._modes import (
    FLAG_FILE,
    FLAG_SIGNED,
    FLAG_ZSTD,
    KIND_BYTES,
    KIND_CUSTOM,
    KIND_JSON,
    KIND_MASK,
    KIND_NATIVE,
    KIND_PICKLE,
    KIND_TEXT,
    from_row,
)

# Settings that place every payload in a row, or in a file, with compression on or off.
PLACEMENTS: dict[str, dict[str, Any]] = {
    "row": {"disk_min_file_size": 2**30},
    "row-raw": {"disk_min_file_size": 2**30, "disk_compress_level": 0},
    "file": {"disk_min_file_size": 0},
    "file-raw": {"disk_min_file_size": 0, "disk_compress_level": 0},
}


def db(cache: diskstore.Cache) -> sqlite3.Connection:
    return sqlite3.connect(os.path.join(cache.directory, "cache.db"), isolation_level=None)


def mode_of(cache: diskstore.Cache, key: Any) -> int:
    db_key, raw = cache.disk.put(key)
    with contextlib.closing(db(cache)) as con:
        row = con.execute(
            "SELECT mode FROM Cache WHERE key = ? AND raw = ?", (db_key, raw)
        ).fetchone()
    assert row is not None, key
    return from_row(int(row[0])) & ~64  # without the pin flag


# -- values -------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Frozen:
    name: str
    size: int


def _make_closure() -> Callable[[int], int]:
    factor = 7

    def times(x: int) -> int:
        return x * factor

    return times


def _make_local_class() -> type:
    class Local:
        def __init__(self, value: int) -> None:
            self.value = value

        def double(self) -> int:
            return self.value * 2

    return Local


def same(a: Any, b: Any) -> bool:
    """Equality that also compares types, NaN and numpy arrays."""
    if isinstance(a, np.ndarray):
        return (
            isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
        )
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, float) and a == 0.0:
        return math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


LocalClass = _make_local_class()

VALUES: dict[str, Any] = {
    "none": None,
    "true": True,
    "false": False,
    "zero": 0,
    "int64-max": 2**63 - 1,
    "int64-min": -(2**63),
    "int64-max+1": 2**63,
    "huge-negative": -(2**200),
    "float": 1.5,
    "negative-zero": -0.0,
    "inf": math.inf,
    "-inf": -math.inf,
    "nan": math.nan,
    "empty-str": "",
    "str": "text",
    "unicode": "ü€𝄞 \x00 end",
    "long-str": "long text " * 10_000,
    "empty-bytes": b"",
    "bytes": b"\x00\xff\x80",
    "long-bytes": bytes(range(256)) * 400,
    "random-bytes": os.urandom(100_000),
    "bytearray": bytearray(b"mutable"),
    "list": [1, [2, [3, None]], "x"],
    "tuple": (1, "a", (2.5, b"b")),
    "dict": {"a": {1: 2}, (1, 2): [3]},
    "set": {1, 2, 3},
    "frozenset": frozenset({"a", "b"}),
    "complex": 1 + 2j,
    "decimal": decimal.Decimal("1.10"),
    "fraction": fractions.Fraction(1, 3),
    "datetime": datetime.datetime(2024, 2, 29, 12, 30, tzinfo=datetime.timezone.utc),
    "date": datetime.date(2024, 1, 1),
    "uuid": uuid.UUID(int=12345),
    "path": pathlib.PurePosixPath("/a/b"),
    "range": range(3, 30, 3),
    "deque": collections.deque([1, 2]),
    "counter": collections.Counter("abracadabra"),
    "dataclass": Frozen("x", 3),
    "big-list": list(range(100_000)),
    "numpy-int": np.arange(10, dtype=np.int32),
    "numpy-float": np.array([[1.5, np.nan], [np.inf, -0.0]]),
    "numpy-empty": np.zeros((0, 3)),
    "numpy-0d": np.array(3.25),
    "numpy-structured": np.array([(1, 2.0), (3, 4.0)], dtype=[("a", "i4"), ("b", "f8")]),
    "numpy-large": np.linspace(0, 1, 200_000),
    "numpy-scalar": np.float64(2.5),
}


@pytest.mark.parametrize("placement", sorted(PLACEMENTS))
@pytest.mark.parametrize("name", sorted(VALUES))
def test_values_round_trip(cache_dir: str, placement: str, name: str) -> None:
    value = VALUES[name]
    with diskstore.Cache(cache_dir, **PLACEMENTS[placement]) as cache:
        assert cache.set("k", value) is True
        assert same(value, cache["k"])
        assert same(value, cache.get("k"))
        assert same(value, cache.pop("k"))
        assert cache.add("k", value)
    with diskstore.Cache(cache_dir) as cache:  # reopened: the row says how to read it
        assert same(value, cache["k"])


@pytest.mark.parametrize("placement", sorted(PLACEMENTS))
def test_functions_and_classes_round_trip(cache_dir: str, placement: str) -> None:
    offset = 3
    with diskstore.Cache(cache_dir, **PLACEMENTS[placement]) as cache:
        cache["lambda"] = lambda x: x + offset
        cache["closure"] = _make_closure()
        cache["local-class"] = LocalClass
        cache["local-instance"] = LocalClass(21)
        cache["partial"] = functools.partial(int, base=2)
        cache["builtin"] = len
        assert cache["lambda"](1) == 4
        assert cache["closure"](6) == 42
        assert cache["local-class"](5).double() == 10
        assert cache["local-instance"].double() == 42
        assert cache["partial"]("101") == 5
        assert cache["builtin"] is len


def test_a_stored_lambda_runs_in_another_process(cache_dir: str) -> None:
    factor = 6
    with diskstore.Cache(cache_dir) as cache:
        cache["f"] = lambda x: x * factor
        cache["cls"] = _make_local_class()
    script = textwrap.dedent(
        """
        import sys, diskstore
        with diskstore.Cache(sys.argv[1]) as cache:
            print(cache["f"](7), cache["cls"](4).double())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, cache_dir],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",  # the test module is not importable there: the code travels by value
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["42", "8"]


@pytest.mark.parametrize("placement", sorted(PLACEMENTS))
@pytest.mark.parametrize("value", [b"", ""], ids=["bytes", "str"])
def test_empty_values(cache_dir: str, placement: str, value: Any) -> None:
    with diskstore.Cache(cache_dir, **PLACEMENTS[placement]) as cache:
        cache["k"] = value
        assert same(value, cache["k"])
        if placement.startswith("file"):
            assert mode_of(cache, "k") & FLAG_FILE
            if isinstance(value, bytes):
                with cache.read("k") as handle:
                    assert handle.read() == b""
            else:
                assert cache.read("k") == ""  # text comes back as text, as in diskcache


FIFTY_MB = 50 * 2**20


@pytest.mark.parametrize("placement", sorted(PLACEMENTS))
@pytest.mark.parametrize("content", ["random", "zeros", "text"])
def test_fifty_megabyte_values(cache_dir: str, placement: str, content: str) -> None:
    value: Any
    if content == "random":
        value = os.urandom(FIFTY_MB)
    elif content == "zeros":
        value = bytes(FIFTY_MB)
    else:
        value = "0123456789abcdef" * (FIFTY_MB // 16)
    options = dict(PLACEMENTS[placement])
    if options["disk_min_file_size"]:
        options["disk_min_file_size"] = 2 * FIFTY_MB
    with diskstore.Cache(cache_dir, **options) as cache:
        cache["k"] = value
        mode = mode_of(cache, "k")
        assert bool(mode & FLAG_FILE) == placement.startswith("file")
        # Bytes in a file are stored as given; text and rows are compressed when it pays.
        compressible = content == "text" or (
            content == "zeros" and not placement.startswith("file")
        )
        assert bool(mode & FLAG_ZSTD) == (compressible and not placement.endswith("raw"))
        assert cache["k"] == value
        del value
        assert len(cache["k"]) == FIFTY_MB
        cache.delete("k")
        assert cache.check() == [] or all(
            w.category is diskstore.EmptyDirWarning for w in cache.check()
        )


# -- the mode column ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, KIND_NATIVE),
        (2.5, KIND_NATIVE),
        ("short", KIND_NATIVE),
        (b"short", KIND_NATIVE),
        (os.urandom(2000), KIND_NATIVE),  # incompressible: stored as itself
        # Compressed payloads are signed: they are verified before they are decompressed.
        (b"z" * 2000, KIND_BYTES | FLAG_ZSTD | FLAG_SIGNED),
        ("z" * 2000, KIND_TEXT | FLAG_ZSTD | FLAG_SIGNED),
        (os.urandom(40_000), KIND_BYTES | FLAG_FILE),
        (b"z" * 40_000, KIND_BYTES | FLAG_FILE),  # bytes in a file are stored as given
        ("z" * 40_000, KIND_TEXT | FLAG_FILE | FLAG_ZSTD | FLAG_SIGNED),
        (None, KIND_PICKLE | FLAG_SIGNED),
        (2**64, KIND_PICKLE | FLAG_SIGNED),
        (math.nan, KIND_PICKLE | FLAG_SIGNED),  # SQLite would turn NaN into NULL
        ([1, 2], KIND_PICKLE | FLAG_SIGNED),
        (["z"] * 2000, KIND_PICKLE | FLAG_ZSTD | FLAG_SIGNED),
        ([os.urandom(40_000)], KIND_PICKLE | FLAG_FILE | FLAG_SIGNED),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, int) or v > 100 else str(v),
)
def test_every_row_records_its_encoding(cache: diskstore.Cache, value: Any, expected: int) -> None:
    cache["k"] = value
    assert mode_of(cache, "k") == expected
    assert same(value, cache["k"])


def test_rows_written_under_other_settings_keep_reading(cache_dir: str) -> None:
    values = {
        "small": b"s",
        "compressible": b"c" * 5000,
        "text": "t" * 5000,
        "pickled": {"p": list(range(500))},
        "big": bytes(range(256)) * 300,
    }
    configurations: list[dict[str, Any]] = [
        {},
        {"disk_min_file_size": 0},
        {"disk_compress_level": 0},
        {"disk_compress_threshold": 10, "disk_compress_level": 19},
        {"disk_min_file_size": 2**30, "disk_pickle_protocol": 2},
    ]
    written: dict[str, Any] = {}
    modes: set[int] = set()
    for index, options in enumerate(configurations):
        with diskstore.Cache(cache_dir, **options) as cache:
            for name, value in values.items():
                cache[f"{name}-{index}"] = value
                written[f"{name}-{index}"] = value
                modes.add(mode_of(cache, f"{name}-{index}"))
            for key, value in written.items():
                assert same(value, cache[key]), (options, key)
    assert len(modes) >= 8  # the configurations really wrote different encodings


def test_pickle_protocol_setting_is_used(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir, disk_pickle_protocol=2) as cache:
        assert cache.disk.dumps([1])[:2] == b"\x80\x02"
        cache["k"] = [1, 2]
        assert cache["k"] == [1, 2]
    with diskstore.Cache(cache_dir) as cache:
        assert cache.disk_pickle_protocol == 2


# -- keys ---------------------------------------------------------------------------------
class Point:
    """A key type with no canonical encoding: stored through the serializer."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    def __hash__(self) -> int:
        return hash((self.x, self.y))

    def __repr__(self) -> str:
        return f"Point({self.x}, {self.y})"


KEYS: list[Any] = [
    "",
    "key",
    "ü€𝄞",
    b"",
    b"\x00\xff",
    0,
    -1,
    2**63 - 1,
    -(2**63),
    2**63,
    -(2**100),
    1.5,
    -2.25e300,
    math.inf,
    None,
    True,
    False,
    (),
    ("a", 1),
    ("nested", ("tuple", (None, b"x"))),
    frozenset(),
    frozenset({"a", ("b", 2)}),
    [1, [2, "x"]],
    {"dict": 1},
    {1, 2},
    Frozen("dataclass", 1),
    Point(1, 2),
    decimal.Decimal("1.5"),
]


def test_every_key_type_round_trips(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir) as cache:
        for index, key in enumerate(KEYS):
            cache[key] = index
        assert len(cache) == len(KEYS)
        for index, key in enumerate(KEYS):
            assert cache[key] == index, key
            assert key in cache
    with diskstore.Cache(cache_dir) as cache:
        stored = list(cache)
        assert len(stored) == len(KEYS)
        for original, found in zip(KEYS, stored, strict=True):
            assert same(original, found), (original, found)
        unmatched = list(cache.iterkeys())
        for original in KEYS:  # the same keys, in another order (keys may be unhashable)
            index = next(i for i, found in enumerate(unmatched) if same(original, found))
            del unmatched[index]
        assert unmatched == []


@pytest.mark.parametrize(
    ("one", "other", "equal"),
    [
        (1, 1.0, True),  # SQLite compares numbers by value, as Python does
        (0.0, -0.0, True),
        (True, 1, False),
        (False, 0, False),
        ((1,), [1], False),
        (frozenset({1}), {1}, False),
        ("1", 1, False),
        (b"a", "a", False),
        ((1, 2), (1, 2.0), False),  # inside a tuple, ints and floats encode apart
        ((0.0,), (-0.0,), True),
        ((math.nan,), (math.nan,), True),
        (2**63, 2.0**63, False),
    ],
)
def test_key_identity(cache: diskstore.Cache, one: Any, other: Any, equal: bool) -> None:
    cache[one] = "one"
    cache[other] = "other"
    assert len(cache) == (1 if equal else 2)
    assert cache[one] == ("other" if equal else "one")


def test_nan_float_key_is_refused_but_inside_a_tuple_it_is_canonical(
    cache: diskstore.Cache,
) -> None:
    with pytest.raises(ValueError, match="NaN"):
        cache[math.nan] = 1
    cache[(math.nan,)] = 1
    assert cache[(float("nan"),)] == 1


def test_equal_sets_built_in_different_orders_are_one_key(cache: diskstore.Cache) -> None:
    words = [f"w{index}" for index in range(50)]
    cache[frozenset(words)] = 1
    cache[frozenset(reversed(words))] = 2
    cache[frozenset({"x": None, "y": None})] = 3
    assert len(cache) == 2
    assert cache[frozenset(sorted(words, key=hash))] == 2


_KEY_SCRIPT = textwrap.dedent(
    """
    import sys, diskstore
    keys = [
        frozenset(f"member-{i}" for i in range(40)),
        frozenset({("t", 1), ("t", 2), ("u", None)}),
        ("tuple", 1, None, True, False, 2.5, b"b", -(2**100)),
        (frozenset({"a", "b", "c"}), ("nested", frozenset({1, 2, 3}))),
        None,
        True,
        2**100,
        {"dict": frozenset({"x", "y"})},
        {f"set-{i}" for i in range(30)},
    ]
    with diskstore.Cache(sys.argv[1]) as cache:
        for index, key in enumerate(keys):
            if sys.argv[2] == "write":
                cache[key] = index
            else:
                assert cache[key] == index, key
        for key in keys:
            db_key, raw = cache.disk.put(key)
            print(bytes(db_key).hex() if not raw else repr(db_key), cache.disk.hash(key))
        print(len(cache))
    """
)


def _run_keys(cache_dir: str, mode: str, seed: str) -> list[str]:
    env = dict(os.environ, PYTHONHASHSEED=seed)
    result = subprocess.run(
        [sys.executable, "-c", _KEY_SCRIPT, cache_dir, mode],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_keys_encode_equal_across_processes_and_hash_seeds(cache_dir: str) -> None:
    written = _run_keys(cache_dir, "write", "1")
    for seed in ("2", "12345", "random"):
        assert _run_keys(cache_dir, "read", seed) == written
    assert written[-1] == "9"  # reading added nothing: every key found its row


def test_disk_hash_is_a_stable_32_bit_value(cache: diskstore.Cache) -> None:
    disk = cache.disk
    hashes = {disk.hash(key) for key in ["a", 1, (1,), frozenset({1}), None]}
    assert len(hashes) == 5
    assert all(0 <= value < 2**32 for value in hashes)
    assert disk.hash(("x", frozenset({1, 2}))) == disk.hash(("x", frozenset({2, 1})))
    assert disk.hash(1) == disk.hash(1.0)


def test_disk_hash_of_native_keys_is_diskcaches(cache: diskstore.Cache) -> None:
    """A FanoutCache routes by it, so both engines find each other's keys in the shards."""
    import diskcache

    theirs = diskcache.Disk(cache.directory)
    for key in ["a", "ü" * 40, b"", b"\x00bytes", 0, -1, 2**63 - 1, -(2**63), 1.5, -0.25]:
        assert cache.disk.hash(key) == theirs.hash(key), key


# -- JSONDisk -----------------------------------------------------------------------------
def test_jsondisk_round_trips_json_values(cache_dir: str) -> None:
    values: dict[str, Any] = {
        "dict": {"a": [1, 2.5, None, True, "x"]},
        "list": [{"nested": {"deep": []}}],
        "big": {"items": list(range(20_000))},  # compressed, and beyond min_file_size
        "none": None,
        "bool": False,
        "int": 2**80,
    }
    with diskstore.Cache(cache_dir, disk=JSONDisk) as cache:
        for key, value in values.items():
            cache[key] = value
        for key, value in values.items():
            assert cache[key] == value
            mode = mode_of(cache, key)
            if value is not None and not isinstance(value, (bool, int)):
                assert mode & KIND_MASK == KIND_JSON and not mode & FLAG_SIGNED
        assert mode_of(cache, "big") & FLAG_ZSTD
        cache["tuple"] = (1, 2)
        assert cache["tuple"] == [1, 2]  # as with json itself


def test_jsondisk_keys_use_the_canonical_encoding(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir, disk=JSONDisk) as cache:
        keys = [("a", 1), frozenset({"x"}), None, True, (1, (2, None)), 2**70]
        for index, key in enumerate(keys):
            cache[key] = index
        assert [cache[key] for key in keys] == list(range(len(keys)))
        assert list(cache) == keys
        with pytest.raises(TypeError, match="Point"):
            cache[Point(1, 2)] = 1
        with pytest.raises(TypeError):
            cache["k"] = {1, 2}  # not JSON


def test_jsondisk_needs_no_secret(cache_dir: str, tmp_path: Path) -> None:
    config = Path(os.environ["XDG_CONFIG_HOME"])
    before = sorted(config.rglob("*")) if config.exists() else []
    with diskstore.Cache(cache_dir, disk=JSONDisk) as cache:
        assert not cache.disk.signer.enabled
        cache["k"] = [1]
    after = sorted(config.rglob("*")) if config.exists() else []
    assert after == before


def test_jsondisk_refuses_pickled_rows_without_unpickling(
    cache_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with diskstore.Cache(cache_dir) as cache:
        cache["row"] = {"pickled": True}
        cache["file"] = [os.urandom(40_000)]
        cache[Point(1, 2)] = "value under a pickled key"
        cache["native"] = "still fine"
    with diskstore.Cache(cache_dir, secret=False) as cache:
        cache["unsigned"] = {"pickled": "unsigned"}

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("JSONDisk unpickled a row")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    with diskstore.Cache(cache_dir, disk=JSONDisk) as cache:
        for key in ("row", "file", "unsigned"):
            with pytest.warns(diskstore.CorruptionWarning, match=repr(key)):
                assert cache.get(key, "miss") == "miss"
        with pytest.warns(diskstore.CorruptionWarning):
            keys = list(cache)
        assert keys == ["row", "file", "native", "unsigned"]  # misses are not deleted
        assert cache["native"] == "still fine"


def test_disk_refuses_json_rows(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir, disk=JSONDisk) as cache:
        cache["k"] = {"json": 1}
    with diskstore.Cache(cache_dir) as cache:
        with pytest.warns(diskstore.CorruptionWarning, match="'k'"):
            assert cache.get("k", "miss") == "miss"


# -- custom serializers -------------------------------------------------------------------
class LiteralDisk(Disk):
    """Stores Python literals as their ``repr``; ``literal_eval`` never runs code."""

    kind = KIND_CUSTOM
    signed = False

    def dumps(self, obj: Any) -> bytes:
        return repr(obj).encode()

    def loads(self, data: bytes) -> Any:
        return ast.literal_eval(data.decode())


class SignedLiteralDisk(LiteralDisk):
    signed = True


class OptionDisk(Disk):
    """A serializer with an option of its own, passed as ``disk_<name>=`` to the cache."""

    def __init__(self, directory: str, *args: Any, suffix: str = "", **kwargs: Any) -> None:
        super().__init__(directory, *args, **kwargs)
        self.suffix = suffix


def test_a_custom_unsigned_serializer(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir, disk=LiteralDisk) as cache:
        cache["k"] = {"a": (1, 2), "b": [None]}
        cache["big"] = ["literal"] * 5000
        cache[("t", 1)] = 1
        assert cache["k"] == {"a": (1, 2), "b": [None]}
        assert cache["big"] == ["literal"] * 5000
        assert mode_of(cache, "k") == KIND_CUSTOM
        assert mode_of(cache, "big") == KIND_CUSTOM | FLAG_ZSTD
        assert not cache.disk.signer.enabled
    with diskstore.Cache(cache_dir) as cache:  # the pickle serializer will not read them
        with pytest.warns(diskstore.CorruptionWarning):
            assert cache.get("k", "miss") == "miss"


def test_a_custom_signed_serializer(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir, disk=SignedLiteralDisk) as cache:
        cache["k"] = [1, 2, 3]
        assert mode_of(cache, "k") == KIND_CUSTOM | FLAG_SIGNED
        assert cache["k"] == [1, 2, 3]
        with contextlib.closing(db(cache)) as con:
            blob = con.execute("SELECT value FROM Cache WHERE key = 'k'").fetchone()[0]
            con.execute("UPDATE Cache SET value = ? WHERE key = 'k'", (blob[:-1] + b"4",))
        with pytest.warns(diskstore.CorruptionWarning, match="'k'"):
            assert cache.get("k", "miss") == "miss"


def test_disk_options_reach_a_custom_disk(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir, disk=OptionDisk, disk_suffix="!") as cache:
        assert isinstance(cache.disk, OptionDisk)
        assert cache.disk.suffix == "!"
    with pytest.raises(diskstore.SettingsError, match="disk_sufix"):
        diskstore.Cache(cache_dir, disk=OptionDisk, disk_sufix="!")
    with pytest.raises(diskstore.SettingsError, match="disk_suffix"):
        diskstore.Cache(cache_dir, disk_suffix="!")  # the default Disk has no such option


@pytest.mark.parametrize("disk", [object, dict, "Disk", Disk("unused")])
def test_disk_must_be_a_disk_subclass(cache_dir: str, disk: Any) -> None:
    with pytest.raises(ValueError, match="disk"):
        diskstore.Cache(cache_dir, disk=disk)


# -- diskcache's view of the format -------------------------------------------------------
def test_json_values_are_plain_json(cache_dir: str) -> None:
    """A JSON row decodes with ``json`` alone once its compression and header are removed,
    so other tools can read a JSONDisk cache."""
    with diskstore.Cache(cache_dir, disk=JSONDisk, disk_compress_level=0) as cache:
        cache["k"] = {"plain": [1, 2]}
        with contextlib.closing(db(cache)) as con:
            blob = bytes(con.execute("SELECT value FROM Cache WHERE key = 'k'").fetchone()[0])
    encoded = json.dumps({"plain": [1, 2]}, separators=(",", ":")).encode()
    assert blob.endswith(encoded)


def test_a_deeply_nested_key_reads_back_or_is_refused(cache: diskstore.Cache) -> None:
    """Every key ``set`` accepts must come back from iteration: the decoder's depth limit
    (which protects readers from hostile rows) must not strand a key the encoder wrote."""
    key: Any = ()
    for _ in range(150):
        key = (key,)
    try:
        cache[key] = 1
    except (TypeError, ValueError):
        return  # refusing it up front is fine
    assert cache[key] == 1
    assert list(cache) == [key]
    assert list(cache.iterkeys()) == [key]
    assert cache.check() == []


@pytest.mark.parametrize(
    "make",
    [
        lambda: open(os.devnull),  # noqa: SIM115
        lambda: open(os.devnull, "rb"),  # noqa: SIM115
        lambda: __import__("socket").socket(),
        lambda: __import__("threading").Lock(),
        lambda: __import__("threading").RLock(),
    ],
    ids=["text-file", "binary-file", "socket", "lock", "rlock"],
)
def test_process_resources_are_refused_as_values_and_keys(cache_dir: str, make: Any) -> None:
    resource = make()
    name = type(resource).__qualname__
    try:
        with diskstore.Cache(cache_dir) as cache:
            with pytest.raises(TypeError, match=name):
                cache.set("k", resource)
            with pytest.raises(TypeError, match=name):
                cache.set("k", {"nested": [resource]})
            with pytest.raises(TypeError, match=name):
                cache.set(("key", resource), 1)
            assert len(cache) == 0
    finally:
        close = getattr(resource, "close", None)
        if close is not None:
            close()


class TestInlineReadPath:
    """``Cache.get`` reads a small payload of the Disk's own kind through ``fetch_inline``."""

    def test_only_a_disk_that_reads_rows_its_own_way_leaves_it(self) -> None:
        class Msg(Disk):
            def loads(self, data: bytes) -> Any:
                return ("loaded", pickle.loads(data))

        class OwnRows(Disk):
            def payload(self, *args: Any, **kwargs: Any) -> bytes:
                return super().payload(*args, **kwargs)

        assert Disk.fast_inline and Msg.fast_inline and JSONDisk.fast_inline
        assert not OwnRows.fast_inline

    def test_a_subclass_loads_is_used(self, cache_dir: str) -> None:
        class Tagged(Disk):
            def loads(self, data: bytes) -> Any:
                return ("loaded", pickle.loads(data))

        with diskstore.Cache(cache_dir, disk=Tagged) as cache:
            cache.set("k", {"a": 1})
            assert cache.get("k") == ("loaded", {"a": 1})

    def test_a_subclass_reading_rows_its_own_way_is_called(self, cache_dir: str) -> None:
        calls = []

        class OwnRows(Disk):
            def fetch_row(self, mode: int, *args: Any, **kwargs: Any) -> Any:
                calls.append(mode)
                return super().fetch_row(mode, *args, **kwargs)

        with diskstore.Cache(cache_dir, disk=OwnRows) as cache:
            cache.set("k", {"a": 1})
            assert cache.get("k") == {"a": 1}
        assert len(calls) == 1

    def test_a_damaged_inline_pickle_is_one_miss_with_one_warning(self, cache_dir: str) -> None:
        with diskstore.Cache(cache_dir) as cache:
            cache.set("k", {"a": 1})
            cache.set("other", [1, 2])
        with contextlib.closing(sqlite3.connect(os.path.join(cache_dir, "cache.db"))) as con:
            (value,) = con.execute("SELECT value FROM Cache WHERE key = 'k'").fetchone()
            damaged = value[:-1] + bytes([value[-1] ^ 1])
            con.execute("UPDATE Cache SET value = ? WHERE key = 'k'", (damaged,))
            con.commit()
        with diskstore.Cache(cache_dir, statistics=True) as cache:
            with pytest.warns(diskstore.CorruptionWarning) as caught:
                assert cache.get("k", "missing") == "missing"
            assert len(caught) == 1 and "'k'" in str(caught[0].message)
            assert cache.get("other") == [1, 2]
            assert cache.stats() == (1, 1)


class TestLoneSurrogates:
    """Text that is not UTF-8 (lone surrogates) as keys and values: stored, read back."""

    @pytest.mark.parametrize(
        "value",
        ["\ud800", "caf\udce9", "x\udcff" * 700, "\ud800" * 100_000],
        ids=["one", "short", "compressible", "file"],
    )
    def test_values_round_trip(self, cache: diskstore.Cache, value: str) -> None:
        cache.set("k", value)
        assert cache.get("k") == value
        assert cache.pop("k") == value
        assert "k" not in cache

    def test_keys_round_trip_through_every_path(self, cache: diskstore.Cache) -> None:
        keys = ["\udcff.txt", "a\ud800b", "plain"]
        for number, key in enumerate(keys):
            cache[key] = number
        assert [cache[key] for key in keys] == [0, 1, 2]
        assert list(cache) == keys and list(reversed(cache)) == keys[::-1]
        assert sorted(cache.iterkeys(), key=keys.index) == keys
        assert all(key in cache for key in keys) and "\udcff" not in cache
        assert cache.check() == []
        assert cache.incr("\ud800", 5) == 5
        del cache["\udcff.txt"]
        assert "\udcff.txt" not in cache and len(cache) == 3

    def test_a_key_and_its_value_survive_reopening(self, cache_dir: str) -> None:
        with diskstore.Cache(cache_dir) as cache:
            cache["\udcff"] = "\ud800"
        with diskstore.Cache(cache_dir) as cache:
            assert list(cache) == ["\udcff"]
            assert cache["\udcff"] == "\ud800"

    # One cache for every example: each writes its own key, which must then be there.
    @settings(
        max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        key=st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=8),
        value=st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40),
    )
    def test_any_text_round_trips(self, cache_dir: str, key: str, value: str) -> None:
        with diskstore.Cache(cache_dir) as cache:
            cache[key] = value
            assert cache[key] == value
            assert key in list(cache)

    def test_a_tag_with_a_lone_surrogate_is_refused_and_nothing_is_lost(
        self, cache: diskstore.Cache
    ) -> None:
        cache.set("k", "kept", tag="t")
        with pytest.raises(ValueError, match="tag must be text"):
            cache.set("k", "new", tag="\ud800")
        assert cache.get("k", tag=True) == ("kept", "t")
        assert cache.evict("t") == 1
