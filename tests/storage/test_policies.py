"""Eviction policies: one contract run over every policy, plus the policy registry.

Each scenario stores 40 file-backed items one fake second apart, then reads keys 0-9 three
times each (old and frequent), then keys 30-39 once each (recent and rare); keys 10-29 are
never read. Culling 20 items must then remove victims in the policy's order, only as many
as needed (give or take one batch of ten, as diskcache does):

- least-recently-stored removes 0-19 whatever was read;
- least-recently-used removes 10-29, then the reads of 0-9 (older than those of 30-39);
- least-frequently-used removes 10-29, then 30-39 (one read), then 0-9 (three reads).
"""

from __future__ import annotations

import os
import sqlite3

import diskcache  # type: ignore[import-untyped]
import pytest
from _cache_support import Clock, install_clock

import diskstore

ITEMS = 40
SIZE = 40_000  # file-backed, so the volume shrinks by about SIZE per removal
MUST_GO = 20
NEVER_READ = list(range(10, 30))
OFTEN = list(range(10))
RECENT = list(range(30, 40))

#: Victims first, in groups whose inner order the policy leaves open.
RANKING = {
    "least-recently-stored": [[key] for key in range(ITEMS)],
    "least-recently-used": [[key] for key in [*NEVER_READ, *OFTEN, *RECENT]],
    "least-frequently-used": [NEVER_READ, RECENT, OFTEN],
}
#: What each policy must keep, and what it must remove, when MUST_GO items go.
KEPT = {
    "least-recently-stored": RECENT,
    "least-recently-used": RECENT,
    "least-frequently-used": OFTEN,
}
GONE = {
    "least-recently-stored": OFTEN,
    "least-recently-used": NEVER_READ,
    "least-frequently-used": NEVER_READ,
}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return install_clock(monkeypatch)


def fill_and_read(cache: diskstore.Cache, clock: Clock) -> None:
    for key in range(ITEMS):
        cache[key] = os.urandom(SIZE)
        clock.advance(1)
    for _ in range(3):
        for key in OFTEN:
            assert cache.get(key) is not None
            clock.advance(1)
    for key in RECENT:
        assert cache.get(key) is not None
        clock.advance(1)


def cull_to_remove(cache: diskstore.Cache, count: int) -> int:
    """Lower size_limit so that *count* items must go, cull, and return how many went."""
    cache.reset("size_limit", cache.volume() - count * SIZE + SIZE // 2)
    return cache.cull()


def is_victim_prefix(removed: set[int], groups: list[list[int]]) -> bool:
    """True if *removed* is whole groups in ranking order plus part of the next group."""
    left = set(removed)
    for group in groups:
        members = set(group)
        if members <= left:
            left -= members
        else:
            return left <= members
    return not left


@pytest.mark.parametrize("policy", sorted(RANKING))
def test_cull_evicts_in_policy_order(cache_dir: str, clock: Clock, policy: str) -> None:
    with diskstore.Cache(cache_dir, eviction_policy=policy, cull_limit=0) as cache:
        fill_and_read(cache, clock)
        removed_count = cull_to_remove(cache, MUST_GO)
        survivors = set(cache)
        removed = set(range(ITEMS)) - survivors
        assert cache.volume() <= cache.size_limit
        assert removed_count == len(removed)
        assert MUST_GO <= len(removed) < MUST_GO + 10
        assert is_victim_prefix(removed, RANKING[policy]), sorted(removed)
        assert set(KEPT[policy]) <= survivors
        assert not set(GONE[policy]) & survivors


def test_policy_none_never_evicts(cache_dir: str, clock: Clock) -> None:
    with diskstore.Cache(cache_dir, eviction_policy="none", size_limit=SIZE) as cache:
        for key in range(10):
            cache[key] = os.urandom(SIZE)
        cache.set("expiring", os.urandom(SIZE), expire=1)
        assert len(cache) == 11
        assert cache.cull() == 0
        assert len(cache) == 11
        clock.advance(2)
        cache.cull()  # expired items still go
        assert list(cache) == list(range(10))
        assert cache.volume() > cache.size_limit


@pytest.mark.parametrize("policy", sorted(RANKING))
def test_per_set_culling_follows_the_policy(cache_dir: str, clock: Clock, policy: str) -> None:
    with diskstore.Cache(cache_dir, eviction_policy=policy, cull_limit=0) as cache:
        fill_and_read(cache, clock)
        cache.reset("size_limit", cache.volume() + 2 * SIZE)
        cache.reset("cull_limit", 10)
        for key in range(100, 110):
            cache[key] = os.urandom(SIZE)
            clock.advance(1)
        assert set(range(100, 110)) <= set(cache)
        gone = set(range(ITEMS)) - set(cache)
        assert 8 <= len(gone) < 20
        assert is_victim_prefix(gone, RANKING[policy]), sorted(gone)


def test_reads_in_another_instance_count_once_flushed(cache_dir: str, clock: Clock) -> None:
    with diskstore.Cache(cache_dir, eviction_policy="least-recently-used", cull_limit=0) as cache:
        for key in range(30):
            cache[key] = os.urandom(SIZE)
            clock.advance(1)
        with diskstore.Cache(cache_dir) as other:
            assert other.eviction_policy == "least-recently-used"
            for key in range(10):
                other.get(key)
                clock.advance(1)
        cull_to_remove(cache, 15)
        assert set(range(10)) <= set(cache)
        assert not set(range(10, 25)) & set(cache)


def test_changing_the_policy_persists_and_takes_effect(cache_dir: str, clock: Clock) -> None:
    with diskstore.Cache(cache_dir, cull_limit=0) as cache:
        assert cache.eviction_policy == "least-recently-stored"
        assert cache.reset("eviction_policy", "least-frequently-used") == "least-frequently-used"
    with diskstore.Cache(cache_dir) as cache:
        assert cache.eviction_policy == "least-frequently-used"
        fill_and_read(cache, clock)
        cull_to_remove(cache, MUST_GO)
        assert set(OFTEN) <= set(cache)
        cache.reset("eviction_policy", "least-recently-stored")
        cull_to_remove(cache, len(OFTEN))
        assert not set(OFTEN) & set(cache)


def test_policy_indexes(cache_dir: str) -> None:
    def indexes() -> set[str]:
        con = sqlite3.connect(os.path.join(cache_dir, "cache.db"))
        try:
            rows = con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
            return {row[0] for row in rows}
        finally:
            con.close()

    for name, policy in diskstore.EVICTION_POLICY.items():
        with diskstore.Cache(cache_dir, eviction_policy=name):
            found = indexes()
        policy_indexes = {
            index
            for index in found
            if index in ("Cache_store_time", "Cache_access_time", "Cache_access_count")
        }
        expected = set() if policy.index_name is None else {policy.index_name}
        assert policy_indexes == expected, name


def test_registry() -> None:
    assert set(diskstore.EVICTION_POLICY) == set(diskcache.EVICTION_POLICY)
    for name, policy in diskstore.EVICTION_POLICY.items():
        assert isinstance(policy, diskstore.EvictionPolicy)
        assert policy.name == name
        with pytest.raises(AttributeError, match="frozen"):
            policy.name = "other"  # type: ignore[misc]
    assert diskstore.EVICTION_POLICY["none"].order_column is None
    assert diskstore.EVICTION_POLICY["least-recently-stored"].on_read == "none"


# -- custom policies ------------------------------------------------------------------------
LRU_OLDER_THAN_A_SECOND = {
    "init": "CREATE INDEX IF NOT EXISTS Cache_access_time ON Cache (access_time)",
    "get": "access_time = {now}",
    "cull": (
        "SELECT {fields} FROM Cache WHERE access_time < ({now} - 1) ORDER BY access_time LIMIT ?"
    ),
}


@pytest.fixture
def registry() -> object:
    """The registry, restored after the test (it is process-wide)."""
    saved = dict(diskstore.EVICTION_POLICY)
    yield diskstore.EVICTION_POLICY
    diskstore.EVICTION_POLICY.clear()
    diskstore.EVICTION_POLICY.update(saved)


def test_a_diskcache_style_policy_is_translated_and_used(
    cache_dir: str, clock: Clock, registry: object
) -> None:
    diskstore.EVICTION_POLICY["lru-gt-1s"] = LRU_OLDER_THAN_A_SECOND
    policy = diskstore.EVICTION_POLICY["lru-gt-1s"]
    assert isinstance(policy, diskstore.EvictionPolicy) and policy.on_read == "access_time"
    assert policy.cull_sql is not None and "FROM Cache" in policy.cull_sql
    with diskstore.Cache(cache_dir, eviction_policy="lru-gt-1s", cull_limit=0) as cache:
        cache.reset("size_limit", 200_000)
        for key in range(10):
            cache[key] = os.urandom(SIZE)
        assert cache.cull() == 0  # nothing was read more than a second ago
        clock.advance(5)
        for key in range(5, 10):
            assert len(cache[key]) == SIZE  # recorded as read now
        # Still over the limit, but what was read within the second is never a victim.
        assert cache.cull() == 5 and sorted(cache) == list(range(5, 10))
        assert cache.volume() > 200_000
        indexes = {row[1] for row in cache._store.run("PRAGMA index_list(Cache)")}
        assert "Cache_access_time" in indexes
    with diskstore.Cache(cache_dir) as again:  # another Cache() still opens
        assert again.eviction_policy == "lru-gt-1s"


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"get": "access_time = 0", "cull": None}, ValueError),
        ({"cull": 3}, TypeError),
        ({"evict": "SELECT 1"}, ValueError),
        ("not a policy", TypeError),
    ],
)
def test_a_bad_registration_is_refused_at_once(
    cache_dir: str, registry: object, spec: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        diskstore.EVICTION_POLICY["bad"] = spec  # type: ignore[assignment]
    assert "bad" not in diskstore.EVICTION_POLICY
    with diskstore.Cache(cache_dir) as cache:  # later caches are unaffected
        cache["k"] = 1
        assert cache["k"] == 1
