"""Model-based test: random operation sequences on a Cache, checked against a plain model.

The model is an insertion-ordered dict of ``key -> (value, expire_time, tag)`` per namespace
plus a deque of keys per queue (namespace, prefix). Time is a fake clock patched into
``diskstore._common._clock.now``, so expiry is exact: an item is live while ``expire_time > now``,
``expire()`` removes items with ``expire_time < now``. Culling is off (``cull_limit=0``), so
nothing disappears that the model does not remove. After every step the cache's ``len``,
iteration order (both directions) and ``iterkeys`` order (both directions) must match.
"""

from __future__ import annotations

import collections
import math
import os
import shutil
import tempfile
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import diskstore
import diskstore._common._clock
from diskstore._common._constants import QUEUE_START

NAMESPACES = ["", "a", "b"]
PREFIXES = [None, "q"]
START = 1_000_000.0

# Plain keys stay outside both queue ranges (0 < n < 999999999999999 and
# 'q-000000000000000' < s < 'q-999999999999999'), including keys just outside their edges.
KEYS = st.sampled_from(
    [
        0,
        -1,
        -(2**40),
        10**15,
        2**70,  # beyond 64 bits: canonically encoded
        "",
        "a",
        "key",
        "ü",
        "q",
        "q-",
        "q-!",
        "q-999999999999999x",
        b"",
        b"a",
        b"\xff",
        ("t", 1),
        (),
        (None, True),
        frozenset({"x", "y"}),
    ]
)


class Large:
    """Stands for a large value in hypothesis' reports (which print arguments)."""

    def __init__(self, name: str, value: Any) -> None:
        self.name = name
        self.value = value

    def __repr__(self) -> str:
        return self.name


LARGE = [
    Large("<5 KB of z>", b"z" * 5000),  # compressed in its row
    Large("<40 KB of y>", "y" * 40_000),  # a compressed value file
    Large("<40 KB random>", os.urandom(40_000)),  # an uncompressed value file
    Large("<nested>", ["nested", {"d": (1, 2)}]),
]
VALUES = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.none(),
    st.booleans(),
    st.lists(st.integers(-5, 5), max_size=3),
    st.sampled_from(LARGE),
)


def real(value: Any) -> Any:
    return value.value if isinstance(value, Large) else value


EXPIRES = st.sampled_from([None, None, 0, 0.5, 1, 2.5, 100])
TAGS = st.sampled_from([None, "a", "b", 1])
NS = st.sampled_from(NAMESPACES)


class Entry(NamedTuple):
    value: Any
    expire_time: float | None
    tag: Any


def same(a: Any, b: Any) -> bool:
    """Equality that also compares types (``1`` is not ``True``, ``1`` is not ``1.0``)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def same_keys(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))


class CacheModel(RuleBasedStateMachine):
    """Drives one cache (three namespace views) and the model side by side."""

    memory_items = 0

    def __init__(self) -> None:
        super().__init__()
        self.clock = START
        self.directory = tempfile.mkdtemp(prefix="diskstore-model-")
        self.cache = diskstore.Cache(self.directory, cull_limit=0, memory_items=self.memory_items)
        self.views = {name: self.cache.namespace(name) if name else self.cache
                      for name in NAMESPACES}  # fmt: skip
        self.rows: dict[str, dict[Any, Entry]] = {name: {} for name in NAMESPACES}
        self.queues: dict[tuple[str, str | None], collections.deque[Any]] = {
            (name, prefix): collections.deque() for name in NAMESPACES for prefix in PREFIXES
        }
        # Last, so that nothing can fail between patching the clock and teardown().
        self._saved_now = diskstore._common._clock.now
        diskstore._common._clock.now = lambda: self.clock

    def teardown(self) -> None:
        try:
            problems = self.cache.check()
            assert [str(w.message) for w in problems] == []
        finally:
            self.cache.close()
            diskstore._common._clock.now = self._saved_now
            shutil.rmtree(self.directory, ignore_errors=True)

    # -- model helpers ------------------------------------------------------------------------
    def live(self, entry: Entry | None) -> bool:
        return entry is not None and (entry.expire_time is None or entry.expire_time > self.clock)

    def expire_time(self, expire: float | None) -> float | None:
        return None if expire is None else self.clock + float(expire)

    def remove(self, ns: str, key: Any) -> Entry:
        entry = self.rows[ns].pop(key)
        for prefix in PREFIXES:
            queue = self.queues[(ns, prefix)]
            if key in queue and type(key) is (int if prefix is None else str):
                queue.remove(key)
        return entry

    def store(self, ns: str, key: Any, entry: Entry) -> None:
        self.rows[ns][key] = entry  # an existing key keeps its place, as its row does

    def queue_key(self, ns: str, prefix: str | None, side: str) -> Any:
        queue = self.queues[(ns, prefix)]
        if not queue:
            number = QUEUE_START
        elif side == "back":
            number = self.number(queue[-1], prefix) + 1
        else:
            number = self.number(queue[0], prefix) - 1
        return number if prefix is None else f"{prefix}-{number:015d}"

    @staticmethod
    def number(key: Any, prefix: str | None) -> int:
        return int(key) if prefix is None else int(key[len(prefix) + 1 :])

    def sort_key(self, key: Any) -> tuple[int, Any]:
        """SQLite's order of the ``key`` column: numbers, text, bytes, then encoded keys."""
        if type(key) is int and -(2**63) <= key < 2**63:
            return (0, key)
        if type(key) is str:
            return (1, key.encode("utf-8"))
        if type(key) is bytes:
            return (2, key)
        return (3, bytes(self.cache.disk.put(key)[0]))

    # -- rules --------------------------------------------------------------------------------
    @rule(ns=NS, key=KEYS, value=VALUES, expire=EXPIRES, tag=TAGS)
    def set(self, ns: str, key: Any, value: Any, expire: float | None, tag: Any) -> None:
        value = real(value)
        assert self.views[ns].set(key, value, expire=expire, tag=tag) is True
        self.store(ns, key, Entry(value, self.expire_time(expire), tag))

    @rule(ns=NS, key=KEYS, value=VALUES, expire=EXPIRES)
    def add(self, ns: str, key: Any, value: Any, expire: float | None) -> None:
        value = real(value)
        expected = not self.live(self.rows[ns].get(key))
        assert self.views[ns].add(key, value, expire=expire) is expected
        if expected:
            self.store(ns, key, Entry(value, self.expire_time(expire), None))

    @rule(ns=NS, key=KEYS, with_expire=st.booleans(), with_tag=st.booleans())
    def get(self, ns: str, key: Any, with_expire: bool, with_tag: bool) -> None:
        entry = self.rows[ns].get(key)
        got = self.views[ns].get(key, "default", expire_time=with_expire, tag=with_tag)
        value, exp, tag = entry if self.live(entry) else ("default", None, None)  # type: ignore[misc]
        if with_expire and with_tag:
            expected: Any = (value, exp, tag)
        elif with_expire:
            expected = (value, exp)
        elif with_tag:
            expected = (value, tag)
        else:
            expected = value
        assert same(got, expected), (got, expected)

    @rule(ns=NS, key=KEYS)
    def getitem_and_contains(self, ns: str, key: Any) -> None:
        entry = self.rows[ns].get(key)
        view = self.views[ns]
        assert (key in view) is self.live(entry)
        if self.live(entry):
            assert entry is not None and same(view[key], entry.value)
        else:
            with pytest.raises(KeyError):
                view[key]

    @rule(ns=NS, key=KEYS)
    def delete(self, ns: str, key: Any) -> None:
        entry = self.rows[ns].get(key)
        assert self.views[ns].delete(key) is self.live(entry)
        if self.live(entry):  # an expired item stays until expire() (as in diskcache)
            self.remove(ns, key)

    @rule(ns=NS, key=KEYS)
    def pop(self, ns: str, key: Any) -> None:
        entry = self.rows[ns].get(key)
        got = self.views[ns].pop(key, "default")
        expected = "default"
        if self.live(entry):
            assert entry is not None
            expected = entry.value
            self.remove(ns, key)
        assert same(got, expected), (got, expected)

    @rule(ns=NS, key=KEYS, delta=st.integers(-3, 3), default=st.sampled_from([0, 10, None]))
    def incr(self, ns: str, key: Any, delta: int, default: int | None) -> None:
        entry = self.rows[ns].get(key)
        view = self.views[ns]
        if not self.live(entry):
            if default is None:
                with pytest.raises(KeyError):
                    view.incr(key, delta, default=default)
                return
            assert same(view.incr(key, delta, default=default), default + delta)
            self.store(ns, key, Entry(default + delta, None, None))
            return
        assert entry is not None
        try:
            expected = entry.value + delta
        except TypeError:
            with pytest.raises(TypeError):
                view.incr(key, delta, default=default)
            return
        assert same(view.incr(key, delta, default=default), expected)
        self.store(ns, key, entry._replace(value=expected))

    @rule(ns=NS, key=KEYS, expire=EXPIRES)
    def touch(self, ns: str, key: Any, expire: float | None) -> None:
        entry = self.rows[ns].get(key)
        expected = self.live(entry)
        assert self.views[ns].touch(key, expire=expire) is expected
        if expected:
            assert entry is not None
            self.store(ns, key, entry._replace(expire_time=self.expire_time(expire)))

    # -- queues ---------------------------------------------------------------------------------
    @rule(
        ns=NS,
        prefix=st.sampled_from(PREFIXES),
        value=VALUES,
        side=st.sampled_from(["back", "front"]),
        expire=EXPIRES,
    )
    def push(
        self, ns: str, prefix: str | None, value: Any, side: str, expire: float | None
    ) -> None:
        value = real(value)
        expected = self.queue_key(ns, prefix, side)
        key = self.views[ns].push(value, prefix=prefix, side=side, expire=expire)
        assert same(key, expected), (key, expected)
        self.store(ns, key, Entry(value, self.expire_time(expire), None))
        queue = self.queues[(ns, prefix)]
        queue.append(key) if side == "back" else queue.appendleft(key)

    def _take(self, ns: str, prefix: str | None, side: str, remove: bool) -> Any:
        queue = self.queues[(ns, prefix)]
        while queue:
            key = queue[0] if side == "front" else queue[-1]
            entry = self.rows[ns][key]
            if not self.live(entry):
                self.remove(ns, key)
                continue
            if remove:
                self.remove(ns, key)
            return (key, entry.value)
        return (None, None)

    @rule(ns=NS, prefix=st.sampled_from(PREFIXES), side=st.sampled_from(["back", "front"]))
    def pull(self, ns: str, prefix: str | None, side: str) -> None:
        got = self.views[ns].pull(prefix=prefix, side=side)
        expected = self._take(ns, prefix, side, remove=True)
        assert same(got, expected), (got, expected)

    @rule(ns=NS, prefix=st.sampled_from(PREFIXES), side=st.sampled_from(["back", "front"]))
    def peek(self, ns: str, prefix: str | None, side: str) -> None:
        got = self.views[ns].peek(prefix=prefix, side=side)
        expected = self._take(ns, prefix, side, remove=False)
        assert same(got, expected), (got, expected)

    @precondition(lambda self: any(self.queues.values()))
    @rule(data=st.data())
    def delete_a_queued_key(self, data: st.DataObject) -> None:
        (ns, _prefix), queue = data.draw(
            st.sampled_from([(where, queue) for where, queue in self.queues.items() if queue])
        )
        key = data.draw(st.sampled_from(list(queue)))
        self.delete(ns, key)

    @rule(ns=NS, last=st.booleans())
    def peekitem(self, ns: str, last: bool) -> None:
        rows = self.rows[ns]
        expected: Any = KeyError
        while rows:
            key = next(reversed(rows)) if last else next(iter(rows))
            if self.live(rows[key]):
                expected = (key, rows[key].value)
                break
            self.remove(ns, key)
        if expected is KeyError:
            with pytest.raises(KeyError):
                self.views[ns].peekitem(last=last)
        else:
            got = self.views[ns].peekitem(last=last)
            assert same(got, expected), (got, expected)

    # -- bulk operations ------------------------------------------------------------------------
    @rule(ns=NS)
    def clear(self, ns: str) -> None:
        expected = len(self.rows[ns])
        assert self.views[ns].clear() == expected
        for key in list(self.rows[ns]):
            self.remove(ns, key)

    @rule(ns=NS, tag=TAGS.filter(lambda tag: tag is not None))
    def evict(self, ns: str, tag: Any) -> None:
        doomed = [
            key
            for key, entry in self.rows[ns].items()
            if entry.tag == tag and type(entry.tag) is type(tag)
        ]
        assert self.views[ns].evict(tag) == len(doomed)
        for key in doomed:
            self.remove(ns, key)

    @rule(ns=NS)
    def expire(self, ns: str) -> None:
        doomed = [
            (name, key)
            for name, rows in self.rows.items()
            for key, entry in rows.items()
            if entry.expire_time is not None and entry.expire_time < self.clock
        ]
        assert self.views[ns].expire() == len(doomed)  # every namespace, from any view
        for name, key in doomed:
            self.remove(name, key)

    @rule(seconds=st.sampled_from([0, 0.25, 0.5, 1, 2.5, 50]))
    def advance_clock(self, seconds: float) -> None:
        self.clock += seconds

    @rule(ns=NS, key=KEYS, value=VALUES, other=KEYS, fail=st.booleans())
    def transaction(self, ns: str, key: Any, value: Any, other: Any, fail: bool) -> None:
        value = real(value)
        view = self.views[ns]
        try:
            with view.transact():
                view.set(key, value)
                view.delete(other)
                if fail:
                    raise RuntimeError("roll back")
        except RuntimeError:
            assert fail
            return
        self.store(ns, key, Entry(value, None, None))
        if self.live(self.rows[ns].get(other)):
            self.remove(ns, other)

    # -- invariants -----------------------------------------------------------------------------
    @invariant()
    def sizes_and_orders_match(self) -> None:
        for ns, view in self.views.items():
            keys = list(self.rows[ns])
            assert len(view) == len(keys), ns
            assert same_keys(list(view), keys), (ns, list(view), keys)
            assert same_keys(list(reversed(view)), keys[::-1]), ns
            ordered = sorted(keys, key=self.sort_key)
            assert same_keys(list(view.iterkeys()), ordered), (ns, list(view.iterkeys()))
            assert same_keys(list(view.iterkeys(reverse=True)), ordered[::-1]), ns


class MemoryTierModel(CacheModel):
    """The same model with the in-process memory tier switched on."""

    memory_items = 64


# Shrinking a failure replays the cache hundreds of times; the default runs report the
# failing sequence as found (at most 50 steps) and leave shrinking to the slow run.
MODEL_SETTINGS = settings(
    max_examples=100,
    stateful_step_count=50,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TestCacheModel = CacheModel.TestCase
TestCacheModel.settings = MODEL_SETTINGS
TestCacheModel = pytest.mark.timeout(240)(TestCacheModel)

TestMemoryTierModel = MemoryTierModel.TestCase
TestMemoryTierModel.settings = MODEL_SETTINGS
TestMemoryTierModel = pytest.mark.timeout(240)(TestMemoryTierModel)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_longer_model_runs() -> None:
    """More and longer sequences, with fresh randomness (run by ``make test`` too)."""
    from hypothesis.stateful import run_state_machine_as_test

    for machine in (CacheModel, MemoryTierModel):
        run_state_machine_as_test(
            machine,
            settings=settings(
                MODEL_SETTINGS,
                max_examples=60,
                stateful_step_count=80,
                derandomize=False,
                phases=[Phase.explicit, Phase.generate, Phase.shrink],
            ),
        )
