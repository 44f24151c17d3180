"""Differential test: the same random operations on ``diskcache.Cache`` and ``diskstore.Cache``.

Each seeded sequence drives both caches through the shared API (set/get/add/pop/delete/
incr/touch, queues, peekitem, evict/expire/clear, transactions, reads of value files,
hit/miss statistics, memoized calls and their results as items) under
one fake clock, and compares every result: values (type included), counters, generated
queue keys, the exception type of every error, ``len``, iteration in both directions and
``iterkeys`` order. A difference is recorded, both caches are cleared, and the sequence
goes on, so one run counts every independent difference it finds.

Every sequence adds to ``RECORD``; the last test in this module asserts that nothing
differed, writes ``build/differential.json`` and prints ``differential: N operations, M
differed`` whether or not output is captured.

Inputs stay inside the behaviour both libraries share. Deliberate differences are kept out
(see ``docs/security.md`` and the README): NaN keys and values, ``incr`` of values diskcache
keeps pickled (bools, integers beyond 64 bits), float keys inside the integer queue range,
and expiry times equal to the current instant (diskcache's ``incr``/``peekitem`` compare
with ``<`` where its ``get`` uses ``>``).
"""

from __future__ import annotations

import io
import json
import math
import random
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import diskcache  # type: ignore[import-untyped]
import diskcache.core  # type: ignore[import-untyped]
import pytest

import diskstore
import diskstore._common._clock

#: Totals over every sequence run in this session; see test_zz_summary.
RECORD: dict[str, Any] = {"operations": 0, "differed": 0, "sequences": 0, "examples": []}

START = 1_700_000_000.0
PLAIN_KEYS: list[Any] = [
    0,
    10**12,  # inside the integer queue's range, far from where pushes could reach it
    -3,
    2**62,
    -1.5,
    1e16,
    "",
    "a",
    "b",
    "key",
    "ü",
    "q-400000000000000",  # inside the "q" queue's range: queue and plain keys meet
    "q-",
    b"",
    b"a",
    b"\x01",
    ("t", 1),
    (1, (2, "x")),
    None,
    frozenset({"x"}),
]
#: Keys that hold values diskcache keeps pickled where diskstore does not; never incr'd.
VALUE_ONLY_KEYS = ["v1", "v2"]
PREFIXES = [None, "q", "r"]
TAGS = [None, "a", "b", 1, "memo"]
EXPIRES = [None, None, None, 0.5, 1.5, 3.5, 100.5]  # never lands on a whole clock second
BIG_RANDOM = random.Random(0).randbytes(40_000)


def plain_value(rng: random.Random) -> Any:
    choice = rng.randrange(12)
    if choice == 0:
        return rng.randint(-(2**62), 2**62)
    if choice == 1:
        return rng.randint(-5, 5)
    if choice == 2:
        return rng.choice([0.0, -0.0, 1.5, -2.25, math.inf, 1e300])
    if choice == 3:
        return "".join(rng.choice("abcü ") for _ in range(rng.randrange(6)))
    if choice == 4:
        return rng.randbytes(rng.randrange(6))
    if choice == 5:
        return None
    if choice == 6:
        return [rng.randint(0, 3) for _ in range(rng.randrange(4))]
    if choice == 7:
        return {"k": rng.randint(0, 3), "t": (1, "x")}
    if choice == 8:
        return rng.choice([b"z" * 5000, "y" * 3000])  # compressed by diskstore
    if choice == 9:
        return rng.choice([BIG_RANDOM, b"big " * 20_000, "text " * 10_000])  # value files
    if choice == 10:
        return (rng.randint(0, 3), "tuple")
    return rng.choice(["", "x", 42])


def odd_value(rng: random.Random) -> Any:
    return rng.choice([True, False, 2**64, -(2**70), 3.5, "plain"])


def same(a: Any, b: Any) -> bool:
    """Equality that also compares types (``1`` is not ``True`` nor ``1.0``)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """``("ok", result)`` or ``("error", exception type name)``; file results are read."""
    try:
        result = call()
    except (KeyError, TypeError, ValueError) as exc:
        return ("error", type(exc).__name__)
    if isinstance(result, (io.IOBase, io.BufferedReader)):
        with result:
            result = result.read()
    return ("ok", result)


def is_raw(key: Any) -> bool:
    """Keys both libraries store as SQLite values (and so sort alike)."""
    if type(key) is int:
        return -(2**63) <= key < 2**63
    return type(key) in (str, bytes, float)


def iterkeys_match(old: list[Any], new: list[Any]) -> bool:
    """Raw keys in the same order, then the same encoded keys (whose bytes differ)."""
    if not same([k for k in old if is_raw(k)], [k for k in new if is_raw(k)]):
        return False
    for keys in (old, new):
        first_encoded = next((i for i, k in enumerate(keys) if not is_raw(k)), len(keys))
        if not all(not is_raw(k) for k in keys[first_encoded:]):
            return False
    rest_old = sorted(repr(k) for k in old if not is_raw(k))
    rest_new = sorted(repr(k) for k in new if not is_raw(k))
    return rest_old == rest_new


MEMO_NAME = "differential.square"
MEMO_TAG = "memo"


def _memoized(cache: Any, expire: float | None = 2.5) -> Any:
    @cache.memoize(name=MEMO_NAME, expire=expire, tag=MEMO_TAG)
    def square(x: int) -> tuple[int, str]:
        return x * x, "computed"

    return square


def _named(obj: Any) -> Any:
    """*obj* with each memoized call's key (whose layout is each library's own) as its call.

    diskcache's key is ``(name, x, None)``; diskstore's ``(name, version, source hash, x)``.
    """
    if isinstance(obj, tuple) and obj and obj[0] == MEMO_NAME:
        return ("call", obj[1] if obj[-1] is None else obj[-1])
    if isinstance(obj, (tuple, list)):
        return type(obj)(_named(item) for item in obj)
    return obj


def _calls(keys: Any) -> list[Any]:
    return [_named(key) for key in keys]


class Pair:
    """Both caches, one clock, and the comparison of each operation."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
        self.clock = START
        monkeypatch.setattr(diskstore._common._clock, "now", lambda: self.clock)
        fake_time = types.SimpleNamespace(time=lambda: self.clock, sleep=lambda s: None)
        monkeypatch.setattr(diskcache.core, "time", fake_time)
        options: dict[str, Any] = {"cull_limit": 0, "statistics": True}
        self.old = diskcache.Cache(str(tmp_path / "diskcache"), **options)
        self.new = diskstore.Cache(str(tmp_path / "diskstore"), **options)
        # One memoized function per cache; its results are ordinary items of both caches.
        self.memo = {id(cache): _memoized(cache) for cache in (self.old, self.new)}
        self.seed = seed
        self.operations = 0
        self.differences: list[str] = []
        self.log: list[str] = []

    def close(self) -> None:
        self.old.close()
        self.new.close()

    def compare(self, name: str, call: Callable[[Any], Any], *, check: bool = True) -> None:
        """Run *call* on both caches; on a difference record it and start afresh."""
        self.operations += 1
        self.log.append(name)
        old = _named(outcome(lambda: call(self.old)))
        new = _named(outcome(lambda: call(self.new)))
        if check and not (old[0] == new[0] and same(old[1], new[1])):
            self.differ(name, old, new)

    def compare_views(self) -> None:
        self.operations += 1
        checks = {
            "len": (len(self.old), len(self.new)),
            "iter": (_calls(self.old), _calls(self.new)),
            "reversed": (_calls(reversed(self.old)), _calls(reversed(self.new))),
        }
        for what, (old, new) in checks.items():
            if not same(old, new):
                self.differ(what, ("ok", old), ("ok", new))
                return
        for reverse in (False, True):
            old_keys = _calls(self.old.iterkeys(reverse=reverse))
            new_keys = _calls(self.new.iterkeys(reverse=reverse))
            if reverse:
                old_keys.reverse()
                new_keys.reverse()
            if not iterkeys_match(old_keys, new_keys):
                self.differ(f"iterkeys(reverse={reverse})", ("ok", old_keys), ("ok", new_keys))
                return

    def differ(self, name: str, old: Any, new: Any) -> None:
        recent = " | ".join(self.log[-8:])
        self.differences.append(
            f"seed {self.seed} op {self.operations} {name}: diskcache={old!r:.300} "
            f"diskstore={new!r:.300} after: {recent}"
        )
        for cache in (self.old, self.new):
            cache.clear()
            cache.stats(reset=True)


def random_operation(pair: Pair, rng: random.Random) -> None:
    """Pick one operation and compare it (its arguments are drawn before either cache runs)."""
    keys = PLAIN_KEYS + VALUE_ONLY_KEYS
    key = rng.choice(PLAIN_KEYS)
    any_key = rng.choice(keys)
    expire = rng.choice(EXPIRES)
    tag = rng.choice(TAGS)
    flags = {"expire_time": rng.random() < 0.3, "tag": rng.random() < 0.3}
    choice = rng.randrange(100)
    if choice < 18:
        value = plain_value(rng)
        pair.compare(
            f"set({key!r}, {value!r:.40}, expire={expire}, tag={tag!r})",
            lambda c: c.set(key, value, expire=expire, tag=tag),
        )
    elif choice < 20:
        value = odd_value(rng)
        odd = rng.choice(VALUE_ONLY_KEYS)
        pair.compare(f"set({odd!r}, {value!r})", lambda c: c.set(odd, value, expire=expire))
    elif choice < 32:
        pair.compare(f"get({any_key!r}, {flags})", lambda c: c.get(any_key, "dflt", **flags))
    elif choice < 35:
        pair.compare(f"[{any_key!r}]", lambda c: c[any_key])
    elif choice < 37:
        pair.compare(f"{any_key!r} in", lambda c: any_key in c)
    elif choice < 41:
        value = plain_value(rng)
        pair.compare(
            f"add({key!r}, {value!r:.40}, expire={expire})",
            lambda c: c.add(key, value, expire=expire, tag=tag),
        )
    elif choice < 45:
        pair.compare(f"delete({any_key!r})", lambda c: c.delete(any_key))
    elif choice < 48:
        pair.compare(f"pop({any_key!r}, {flags})", lambda c: c.pop(any_key, "dflt", **flags))
    elif choice < 55:
        delta = rng.randint(-3, 3)
        default = rng.choice([0, 10, None])
        name = "incr" if rng.random() < 0.7 else "decr"
        pair.compare(
            f"{name}({key!r}, {delta}, default={default})",
            lambda c: getattr(c, name)(key, delta, default=default),
        )
    elif choice < 58:
        pair.compare(f"touch({any_key!r}, {expire})", lambda c: c.touch(any_key, expire=expire))
    elif choice < 66:
        prefix = rng.choice(PREFIXES)
        value = plain_value(rng)
        side = rng.choice(["back", "front"])
        pair.compare(
            f"push({value!r:.30}, prefix={prefix!r}, side={side}, expire={expire})",
            lambda c: c.push(value, prefix=prefix, side=side, expire=expire, tag=tag),
        )
    elif choice < 74:
        prefix = rng.choice(PREFIXES)
        side = rng.choice(["back", "front"])
        method = rng.choice(["pull", "peek"])
        pair.compare(
            f"{method}(prefix={prefix!r}, side={side}, {flags})",
            lambda c: getattr(c, method)(prefix=prefix, side=side, **flags),
        )
    elif choice < 77:
        last = rng.random() < 0.5
        pair.compare(f"peekitem({last}, {flags})", lambda c: c.peekitem(last=last, **flags))
    elif choice < 79:
        pair.compare(f"read({any_key!r})", lambda c: c.read(any_key))
    elif choice < 81:
        pair.compare(f"evict({tag!r})", lambda c: c.evict(tag))
    elif choice < 84:
        pair.compare("expire()", lambda c: c.expire())
    elif choice < 85:
        pair.compare("clear()", lambda c: c.clear())
    elif choice < 88:
        inner = [(rng.choice(PLAIN_KEYS), plain_value(rng)) for _ in range(3)]
        doomed = rng.choice(PLAIN_KEYS)

        def batch(cache: Any) -> Any:
            with cache.transact():
                results = [cache.set(k, v) for k, v in inner]
                results.append(cache.delete(doomed))
                results.append(cache.get(inner[0][0]))
            return results

        pair.compare(f"transact({inner!r:.60}, delete {doomed!r})", batch)
    elif choice < 95:
        pair.clock += rng.choice([0, 1, 1, 2, 5])
        pair.log.append(f"clock+ -> {pair.clock - START}")
    elif choice < 96:
        pair.compare("stats()", lambda c: c.stats())
    elif choice < 98:
        x = rng.randint(0, 5)
        what = rng.choice(["call", "item", "in"])

        def memoized(cache: Any) -> Any:
            square = pair.memo[id(cache)]
            if what == "call":
                return square(x)
            if what == "item":
                return cache[square.__cache_key__(x)]
            return square.__cache_key__(x) in cache

        pair.compare(f"memoize {what}({x})", memoized)
    else:
        pair.compare_views()


def run_sequence(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
    count: int,
    pair: Pair | None = None,
) -> None:
    """Run ``count`` random operations on ``pair`` (by default diskcache against Cache)."""
    rng = random.Random(seed)
    pair = pair if pair is not None else Pair(tmp_path, monkeypatch, seed)
    try:
        while pair.operations < count:
            random_operation(pair, rng)
            if pair.operations % 50 == 0:
                pair.compare_views()
        pair.compare_views()
    finally:
        pair.close()
        RECORD["operations"] += pair.operations
        RECORD["differed"] += len(pair.differences)
        RECORD["sequences"] += 1
        RECORD["examples"].extend(pair.differences[: 20 - len(RECORD["examples"])])
    assert pair.differences == []


@pytest.mark.timeout(120)
@pytest.mark.parametrize("seed", range(8))
def test_random_sequences(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    run_sequence(tmp_path, monkeypatch, seed, 2_500)


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("seed", range(100, 106))
def test_long_random_sequences(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    run_sequence(tmp_path, monkeypatch, seed, 12_000)


# -- RedisCache ----------------------------------------------------------------------------

#: Operations RedisCache does differently by design (see docs/redis.md): insertion order
#: (``peekitem``, ordered iteration), ``expire()`` (the server expires), transactions with
#: reads of their own writes, ``read`` of value files, and statistics of queue operations.
REDIS_SKIPPED = ("peekitem", "expire()", "transact", "stats()", "read(")


class RedisPair(Pair):
    """diskcache.Cache against RedisCache in a fresh namespace; expiry stays off (the
    server's clock cannot be faked), and keys stay out of the queues' key ranges (a
    RedisCache queue is its own index, not a key range)."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, url: str):
        from diskstore.redis import RedisCache

        super().__init__(tmp_path, monkeypatch, seed)
        self.new.close()
        self.new = RedisCache(url, namespace=f"differential-{seed}-{tmp_path.name}")
        self.new.clear()
        self.memo = {id(cache): _memoized(cache, expire=None) for cache in (self.old, self.new)}
        monkeypatch.setattr(sys.modules[__name__], "EXPIRES", [None])
        monkeypatch.setattr(
            sys.modules[__name__],
            "PLAIN_KEYS",
            [k for k in PLAIN_KEYS if k not in (0, 10**12, "q-400000000000000")],
        )

    def compare(self, name: str, call: Callable[[Any], Any], *, check: bool = True) -> None:
        if name.startswith(REDIS_SKIPPED):
            return
        super().compare(name, call, check=check)

    def compare_views(self) -> None:
        self.operations += 1
        old, new = sorted(map(repr, _calls(self.old))), sorted(map(repr, _calls(self.new)))
        if len(self.old) != len(self.new) or old != new:
            self.differ("len/iter", ("ok", old), ("ok", new))

    def close(self) -> None:
        self.new.clear()
        super().close()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("seed", range(3))
def test_redis_random_sequences(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, redis_server: Any
) -> None:
    pair = RedisPair(tmp_path, monkeypatch, seed, redis_server.url)
    run_sequence(tmp_path, monkeypatch, 1000 + seed, 1_500, pair)


def test_zz_summary(request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> None:
    """Report the totals (runs after the sequences above, being last in the module)."""
    if RECORD["sequences"] == 0:
        pytest.skip("no differential sequence ran in this session")
    line = f"differential: {RECORD['operations']} operations, {RECORD['differed']} differed"
    build = Path(request.config.rootpath) / "build"
    build.mkdir(exist_ok=True)
    (build / "differential.json").write_text(json.dumps(RECORD, indent=2) + "\n")
    with capsys.disabled():  # shown whether or not output is captured
        print(f"\n{line}")
    assert RECORD["differed"] == 0, "\n".join([line, *RECORD["examples"]])
