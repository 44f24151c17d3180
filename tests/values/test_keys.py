"""Keys: the canonical encoding (``diskstore._values._keys``) and how the Cache finds keys by it."""

from __future__ import annotations

import math
import os
import struct
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import diskstore
from diskstore._values import _keys

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20)
)
HASHABLE = st.recursive(
    SCALARS,
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=4),
    max_leaves=10,
)
KEYS = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.frozensets(HASHABLE, max_size=4)
        | st.sets(HASHABLE, max_size=4)
        | st.dictionaries(HASHABLE, inner, max_size=4)
    ),
    max_leaves=12,
)


def identity(key: Any) -> Any:
    """What makes two keys the same row: native numbers by value, the rest by encoding."""
    if type(key) is float or (type(key) is int and _keys.INT64_MIN <= key <= _keys.INT64_MAX):
        return ("number", float(key))
    return ("encoded", _keys.encode_canonical(key))


def same(left: Any, right: Any) -> bool:
    """Equal, with equal types all the way down (1 and True and 1.0 differ)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, (list, tuple)):
        return len(left) == len(right) and all(map(same, left, right))
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(same(left[k], right[k]) for k in left)
    if isinstance(left, float):
        return left == right or (math.isnan(left) and math.isnan(right))
    return bool(left == right)


class TestCanonicalEncoding:
    @given(KEYS)
    def test_round_trip(self, key: Any) -> None:
        encoded = _keys.encode_canonical(key)
        assert isinstance(encoded, bytes)
        assert same(_keys.decode_canonical(encoded), key)

    @given(st.sets(HASHABLE, max_size=6), st.randoms())
    def test_sets_encode_the_same_whatever_the_order(self, members: set[Any], rng: Any) -> None:
        ordered = list(members)
        rng.shuffle(ordered)
        assert _keys.encode_canonical(set(ordered)) == _keys.encode_canonical(members)
        assert _keys.encode_canonical(frozenset(ordered)) == _keys.encode_canonical(
            frozenset(members)
        )

    @given(st.dictionaries(st.text(max_size=5), st.integers(), max_size=6), st.randoms())
    def test_dicts_encode_the_same_whatever_the_order(
        self, mapping: dict[str, int], rng: Any
    ) -> None:
        items = list(mapping.items())
        rng.shuffle(items)
        assert _keys.encode_canonical(dict(items)) == _keys.encode_canonical(mapping)

    @given(KEYS, KEYS)
    def test_distinct_keys_encode_differently(self, left: Any, right: Any) -> None:
        if not same(_keys.decode_canonical(_keys.encode_canonical(left)), right):
            assert _keys.encode_canonical(left) != _keys.encode_canonical(right)

    def test_types_are_kept_apart(self) -> None:
        encodings = {
            _keys.encode_canonical(key)
            for key in (1, 1.0, True, "1", b"1", (1,), [1], frozenset({1}), {1}, None, False, 0)
        }
        assert len(encodings) == 12

    def test_negative_zero_and_nan_have_one_encoding(self) -> None:
        assert _keys.encode_canonical(-0.0) == _keys.encode_canonical(0.0)
        other_nan = struct.unpack(">d", b"\x7f\xf8\x00\x00\x00\x00\x00\x01")[0]
        assert math.isnan(other_nan)
        assert _keys.encode_canonical(math.nan) == _keys.encode_canonical(other_nan)

    def test_stable_across_hash_seeds(self) -> None:
        key = ({"b", "a", "c", "d"}, {"x": 1, "y": frozenset({"p", "q"})}, ("t", 2**80))
        code = (
            "import sys; from diskstore import _keys; "
            f"sys.stdout.write(_keys.encode_canonical({key!r}).hex())"
        )
        outputs = set()
        for seed in ("0", "1", "12345"):
            env = {**os.environ, "PYTHONHASHSEED": seed}
            result = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
            )
            assert result.returncode == 0, result.stderr
            outputs.add(result.stdout)
        assert outputs == {_keys.encode_canonical(key).hex()}

    @pytest.mark.parametrize(
        "data",
        [
            b"",
            b"s",
            b"s\x00\x00\x00\x05ab",
            b"i\x00\x00\x00\x01x",
            b"NN",
            b"?",
            b"(\x00\x00\x00\x02N",
        ],
    )
    def test_malformed_encodings_raise_valueerror(self, data: bytes) -> None:
        with pytest.raises(ValueError):
            _keys.decode_canonical(data)

    def test_unsupported_types_are_not_canonical(self) -> None:
        with pytest.raises(_keys.NotCanonical):
            _keys.encode_canonical(object())
        with pytest.raises(TypeError):
            _keys.encode_canonical((1, complex(1, 2)))

    def test_encode_key_falls_back_to_a_stable_pickle(self) -> None:
        assert _keys.encode_key(("a", 1)) == _keys.encode_canonical(("a", 1))
        fallback = _keys.encode_key(complex(1, 2))
        assert fallback.startswith(_keys.TAG_SERIALIZED)
        assert fallback == _keys.encode_key(complex(1, 2))

    def test_signature_key_names_integral_floats_as_ints(self) -> None:
        assert _keys.signature_key(1.0, True) == _keys.signature_key(1, True)
        assert _keys.signature_key(1.5, True) != _keys.signature_key(1, True)
        assert _keys.signature_key(b"abc", False) != _keys.signature_key(b"abc", True)


class Point:
    """A key type with no canonical encoding: stored through the serializer."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    def __hash__(self) -> int:
        return hash((self.x, self.y))


class TestCacheKeys:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(KEYS, max_size=8, unique_by=identity))
    def test_any_canonical_key_is_found_again(self, tmp_path_factory: Any, keys: list[Any]) -> None:
        directory = str(tmp_path_factory.mktemp("keys"))
        with diskstore.Cache(directory) as cache:
            for index, key in enumerate(keys):
                cache[key] = index
            stored = list(cache)
        with diskstore.Cache(directory) as cache:
            for index, key in enumerate(keys):
                assert cache[key] == index
            assert len(stored) == len(cache)
            # Python equates 1 and 1.0 for native keys only; containers keep their types.
            for original, back in zip(keys, stored, strict=True):
                if type(original) not in (int, float):
                    assert same(original, back)

    def test_sets_and_dicts_find_the_same_row_in_any_order(self, cache: diskstore.Cache) -> None:
        cache[frozenset(["a", "b", "c"])] = "set"
        cache[(("k", {"x": 1, "y": 2}),)] = "dict"
        assert cache[frozenset(["c", "b", "a"])] == "set"
        assert cache[(("k", {"y": 2, "x": 1}),)] == "dict"
        assert len(cache) == 2

    def test_containers_keep_element_types(self, cache: diskstore.Cache) -> None:
        # As in diskcache, only native int/float keys compare across types.
        cache[(1,)] = "int"
        cache[(1.0,)] = "float"
        cache[(True,)] = "bool"
        assert (cache[(1,)], cache[(1.0,)], cache[(True,)]) == ("int", "float", "bool")

    def test_large_ints_are_exact(self, cache: diskstore.Cache) -> None:
        for key in (2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**30):
            cache[key] = key
        for key in (2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**30):
            assert cache[key] == key
        assert cache.get(2**63 + 1) is None
        assert len(cache) == 5

    def test_float_keys(self, cache: diskstore.Cache) -> None:
        cache[0.0] = "zero"
        assert cache[-0.0] == "zero"
        cache[math.inf] = "inf"
        cache[0.1] = "tenth"
        assert (cache[math.inf], cache[0.1]) == ("inf", "tenth")
        assert cache.get(0.1 + 1e-16) is None

    def test_serialized_keys(self, cache_dir: str) -> None:
        with diskstore.Cache(cache_dir) as cache:
            cache[Point(1, 2)] = "point"
            cache[(Point(3, 4), "nested")] = "nested"
            assert cache[Point(1, 2)] == "point"
            assert list(cache) == [Point(1, 2), (Point(3, 4), "nested")]
        with diskstore.Cache(cache_dir) as cache:
            assert cache[Point(1, 2)] == "point"
            assert cache[(Point(3, 4), "nested")] == "nested"
            assert Point(2, 1) not in cache

    def test_empty_and_unusual_native_keys(self, cache: diskstore.Cache) -> None:
        keys = ["", b"", "\x00", b"\x00", "é", "a" * 100_000, b"b" * 100_000]
        for index, key in enumerate(keys):
            cache[key] = index
        assert [cache[key] for key in keys] == list(range(len(keys)))
        assert list(cache) == keys

    @pytest.mark.parametrize("key", [math.nan, (1, math.nan), float("-nan")])
    def test_nan_keys(self, cache: diskstore.Cache, key: Any) -> None:
        if isinstance(key, float):
            with pytest.raises(ValueError, match="key"):
                cache[key] = 1
            assert len(cache) == 0
        else:
            # Inside a container NaN has one canonical encoding, so the key is found again.
            cache[key] = 1
            assert cache[(1, math.nan)] == 1
