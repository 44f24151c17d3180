"""Tests for diskstore._memo._hashing.stable_hash: by content, order-free where order is
meaningless."""

from __future__ import annotations

import collections
import dataclasses
import enum
import json
import math
import os
import subprocess
import sys
import textwrap
import threading
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from diskstore._memo._hashing import stable_hash


@dataclasses.dataclass(frozen=True)
class Point:
    x: Any
    y: Any


@dataclasses.dataclass(frozen=True)
class OtherPoint:
    x: Any
    y: Any


class Color(enum.Enum):
    RED = 1
    BLUE = 2


Pair = collections.namedtuple("Pair", "x y")


class Plain:
    """Hashed through its pickled state."""

    def __init__(self, value: Any) -> None:
        self.value = value


# One value of every kind the encoder distinguishes, used across processes below.
SAMPLE: dict[str, Any] = {
    "names": {"alpha", "beta", "gamma", "delta"},
    "frozen": frozenset({"x", "y", "z"}),
    "mapping": {"b": [1, 2.5, None], "a": (True, b"raw"), "c": {"nested": {"k": "v"}}},
    "floats": [0.0, -0.0, math.inf, -math.inf, 1e-300],
    "big": 2**100,
    "point": Point(1, "one"),
    "color": Color.BLUE,
    "pair": Pair(1, 2),
}


class TestTypes:
    def test_equal_looking_values_of_different_types_differ(self) -> None:
        values = [1, 1.0, True, "1", b"1", bytearray(b"1"), None, [1], (1,), {1}, frozenset({1})]
        digests = {stable_hash(v) for v in values}
        assert len(digests) == len(values)

    def test_digest_is_hex_sha256(self) -> None:
        digest = stable_hash("x")
        assert len(digest) == 64
        int(digest, 16)

    def test_nan_is_one_value_and_signed_zero_is_two(self) -> None:
        assert stable_hash(float("nan")) == stable_hash(-float("nan")) == stable_hash(math.nan)
        assert stable_hash(0.0) != stable_hash(-0.0)
        assert stable_hash(math.inf) != stable_hash(-math.inf)

    def test_complex(self) -> None:
        assert stable_hash(1 + 2j) == stable_hash(complex(1, 2)) != stable_hash(2 + 1j)

    def test_sequences_are_ordered(self) -> None:
        assert stable_hash([1, 2]) != stable_hash([2, 1])
        assert stable_hash((1, (2, 3))) != stable_hash((1, 2, 3))

    def test_concatenations_do_not_collide(self) -> None:
        assert stable_hash(["ab", "c"]) != stable_hash(["a", "bc"])
        assert stable_hash([b"ab", b"c"]) != stable_hash([b"a", b"bc"])

    def test_enums_dataclasses_and_named_tuples_carry_their_type(self) -> None:
        assert stable_hash(Color.RED) != stable_hash(Color.BLUE) != stable_hash(2)
        assert stable_hash(Point(1, [2])) == stable_hash(Point(1, [2]))
        assert stable_hash(Point(1, 2)) != stable_hash(OtherPoint(1, 2))
        assert stable_hash(Point(1, 2)) != stable_hash(Point(1, 3))
        assert stable_hash(Pair(1, 2)) != stable_hash((1, 2))

    def test_other_objects_hash_by_pickled_content(self) -> None:
        assert stable_hash(Plain([1, 2])) == stable_hash(Plain([1, 2]))
        assert stable_hash(Plain([1, 2])) != stable_hash(Plain([1, 3]))


class TestOrder:
    def test_mapping_and_set_order_do_not_matter(self) -> None:
        first = {"a": 1, "b": {"x", "y"}, "c": {3: "three", 1: "one"}}
        second = {"c": {1: "one", 3: "three"}, "b": {"y", "x"}, "a": 1}
        assert stable_hash(first) == stable_hash(second)

    def test_mapping_types_are_distinguished(self) -> None:
        ordered = collections.OrderedDict(a=1)
        assert stable_hash(ordered) == stable_hash(collections.OrderedDict(a=1))
        assert stable_hash(ordered) != stable_hash({"a": 1})

    @given(st.dictionaries(st.text(max_size=8), st.integers(), max_size=12), st.randoms())
    def test_any_insertion_order_gives_the_same_digest(
        self, mapping: dict[str, int], rng: Any
    ) -> None:
        items = list(mapping.items())
        rng.shuffle(items)
        assert stable_hash(dict(items)) == stable_hash(mapping)
        assert stable_hash(set(mapping)) == stable_hash({k for k, _ in items})

    @given(st.lists(st.integers(), min_size=2, max_size=8, unique=True))
    def test_list_order_matters(self, values: list[int]) -> None:
        assert stable_hash(values) != stable_hash(values[::-1])


class TestNumpy:
    def test_arrays_hash_by_dtype_shape_and_data(self) -> None:
        array = np.arange(12.0).reshape(3, 4)
        assert stable_hash(array) == stable_hash(array.copy())
        assert stable_hash(array) != stable_hash(array.reshape(4, 3))
        assert stable_hash(array) != stable_hash(array.astype(np.float32))
        changed = array.copy()
        changed[1, 1] = -1
        assert stable_hash(array) != stable_hash(changed)

    def test_layout_does_not_matter(self) -> None:
        array = np.arange(12).reshape(3, 4)
        assert stable_hash(array.T) == stable_hash(np.ascontiguousarray(array.T))
        assert stable_hash(np.asfortranarray(array)) == stable_hash(array)

    def test_object_and_datetime_arrays(self) -> None:
        objects = np.array([1, "x", None], dtype=object)
        assert stable_hash(objects) == stable_hash(np.array([1, "x", None], dtype=object))
        assert stable_hash(objects) != stable_hash(np.array([1, "y", None], dtype=object))
        days = np.array(["2024-01-01", "2024-01-02"], dtype="datetime64[D]")
        assert stable_hash(days) != stable_hash(days.astype("datetime64[s]"))

    def test_scalars_are_not_python_numbers(self) -> None:
        assert stable_hash(np.float64(1.5)) == stable_hash(np.float64(1.5))
        assert stable_hash(np.float64(1.5)) != stable_hash(1.5)
        assert stable_hash(np.int32(7)) != stable_hash(np.int64(7))

    def test_numpy_and_pandas_are_not_imported_by_hashing(self) -> None:
        script = textwrap.dedent(
            """
            import sys
            from diskstore._memo._hashing import stable_hash
            stable_hash({"a": [1, 2.0, "x"], "b": object.__name__})
            print("numpy" in sys.modules, "pandas" in sys.modules)
            """
        )
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        )
        assert result.stdout.split() == ["False", "False"]


class TestPandas:
    def test_frames_and_series(self) -> None:
        pd = pytest.importorskip("pandas")
        frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
        assert stable_hash(frame) == stable_hash(frame.copy())
        assert stable_hash(frame) != stable_hash(frame.rename(columns={"b": "c"}))
        assert stable_hash(frame) != stable_hash(frame.assign(a=[1, 3]))
        assert stable_hash(frame) != stable_hash(frame.set_axis([5, 6]))
        assert stable_hash(frame["a"]) != stable_hash(frame["a"].rename("z"))
        assert stable_hash(frame.index) == stable_hash(pd.RangeIndex(2))


class TestErrors:
    def test_unpicklable_value_names_the_input(self) -> None:
        with pytest.raises(TypeError, match=r"cannot hash input 'conn': .*lock"):
            stable_hash(threading.Lock(), name="conn")

    def test_unpicklable_value_inside_a_container(self) -> None:
        with pytest.raises(TypeError, match="cannot hash dict value"):
            stable_hash({"ok": 1, "bad": [threading.Lock()]})

    def test_self_reference_is_rejected(self) -> None:
        loop: list[Any] = [1]
        loop.append(loop)
        with pytest.raises(TypeError, match="reference to itself"):
            stable_hash(loop)

    def test_shared_references_are_not_cycles(self) -> None:
        shared = [1, 2]
        assert stable_hash([shared, shared]) == stable_hash([[1, 2], [1, 2]])


def test_digests_agree_across_processes_and_hash_seeds() -> None:
    script = textwrap.dedent(
        """
        import json, sys
        sys.path.insert(0, sys.argv[1])
        from test_hashing import SAMPLE
        from diskstore._memo._hashing import stable_hash
        print(json.dumps({name: stable_hash(value) for name, value in SAMPLE.items()}))
        """
    )
    expected = {name: stable_hash(value) for name, value in SAMPLE.items()}
    here = os.path.dirname(os.path.abspath(__file__))
    for seed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-c", script, here],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(result.stdout) == expected


def test_encoding_is_frozen() -> None:
    # Stored task results are found by these digests; changing the encoding orphans them all.
    assert stable_hash({"b": [1, 2.5], "a": ("x", None, True)}) == (
        "af39431f7173e4a04313eeaa478594b3cf5a54cf7304719aab94f2990c05929f"
    )
