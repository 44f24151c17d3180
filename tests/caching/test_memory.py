"""The in-memory tier: coherent with other threads and processes, bounded, fresh copies."""

from __future__ import annotations

import multiprocessing
import os
import threading
from pathlib import Path

import pytest

import diskstore
from diskstore._caching._memory import MemoryTier, TierEntry
from diskstore._common import _clock
from diskstore._fs._changes import ChangeCounter


def _overwrite(directory: str, key: str, value: object) -> None:
    with diskstore.Cache(directory) as other:
        other.set(key, value)


def _tier(cache: diskstore.Cache) -> MemoryTier:
    tier = cache._shared.tier
    assert tier is not None
    return tier


@pytest.fixture
def tiered(cache_dir: str):
    with diskstore.Cache(cache_dir, memory_items=100) as cache:
        yield cache


def test_hits_come_from_memory(tiered: diskstore.Cache) -> None:
    tiered.set("k", b"value")
    assert tiered.get("k") == b"value"
    assert len(_tier(tiered)) == 1
    # Change the row behind the tier's back (no counted write): a hit proves memory served it.
    tiered._store.run("UPDATE Cache SET value = ?", (b"changed",))
    assert tiered.get("k") == b"value"


@pytest.mark.timeout(60)
def test_a_write_by_another_process_is_seen_at_once(tiered: diskstore.Cache) -> None:
    tiered.set("k", "from A")
    assert tiered.get("k") == "from A"
    context = multiprocessing.get_context("spawn")
    writer = context.Process(target=_overwrite, args=(tiered.directory, "k", "from B"))
    writer.start()
    writer.join(30)
    assert writer.exitcode == 0
    assert tiered.get("k") == "from B"


def test_a_write_by_another_thread_is_seen_at_once(tiered: diskstore.Cache) -> None:
    tiered.set("k", 1)
    assert tiered.get("k") == 1
    thread = threading.Thread(target=tiered.set, args=("k", 2))
    thread.start()
    thread.join()
    assert tiered.get("k") == 2


def test_a_write_through_another_cache_object_is_seen(tiered: diskstore.Cache) -> None:
    tiered.set("k", 1)
    assert tiered.get("k") == 1
    _overwrite(tiered.directory, "k", 2)
    assert tiered.get("k") == 2


def test_own_writes_keep_other_entries(tiered: diskstore.Cache) -> None:
    tiered.set("a", 1)
    tiered.set("b", 2)
    assert tiered.get("a") == 1
    assert tiered.get("b") == 2
    tiered.set("a", 10)
    tier = _tier(tiered)
    assert (0, "b", True) in tier._entries  # untouched by the write to "a"
    assert (0, "a", True) not in tier._entries
    assert tiered.get("a") == 10


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c.delete("k"),
        lambda c: c.pop("k"),
        lambda c: c.incr("k", 1),
        lambda c: c.clear(),
        lambda c: c.evict("t"),
        lambda c: c.touch("k", 0),
    ],
    ids=["delete", "pop", "incr", "clear", "evict", "touch"],
)
def test_every_kind_of_write_invalidates(tiered: diskstore.Cache, mutate) -> None:
    tiered.set("k", 5, tag="t")
    assert tiered.get("k") == 5
    mutate(tiered)
    expected = 6 if mutate.__code__.co_names == ("incr",) else None
    assert tiered.get("k") == expected


def test_expiry_is_decided_on_every_hit(tiered: diskstore.Cache, monkeypatch) -> None:
    now = [1_000_000.0]
    monkeypatch.setattr(_clock, "now", lambda: now[0])
    tiered.set("k", "v", expire=10)
    assert tiered.get("k") == "v"
    assert tiered.get("k", expire_time=True) == ("v", 1_000_010.0)
    now[0] += 11
    assert tiered.get("k") is None
    assert tiered.get("k", default="gone") == "gone"


def test_returned_values_are_fresh_objects(tiered: diskstore.Cache) -> None:
    tiered.set("k", {"items": [1, 2]})
    first = tiered.get("k")
    first["items"].append(3)
    second = tiered.get("k")
    assert second == {"items": [1, 2]}
    assert second is not first


def test_bounded_by_items_and_bytes(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir, memory_items=3, memory_bytes=10_000) as cache:
        for index in range(10):
            cache.set(index, index)
            cache.get(index)
        assert len(_tier(cache)) == 3
        cache.set("big", b"x" * 5_000)
        cache.set("big2", b"y" * 5_000)
        cache.get("big")
        cache.get("big2")
        assert _tier(cache).nbytes <= 10_000


def test_files_and_tags_bypass_the_tier(tiered: diskstore.Cache) -> None:
    tiered.set("file", b"z" * 100_000)
    tiered.set("tagged", 1, tag="t")
    assert tiered.get("file") == b"z" * 100_000
    assert tiered.get("tagged", tag=True) == (1, "t")
    assert (0, "file", True) not in _tier(tiered)._entries


def test_statistics_count_tier_hits(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir, memory_items=10, statistics=True) as cache:
        cache.set("k", 1)
        for _ in range(5):
            cache.get("k")
        cache.get("missing")
        assert cache.stats() == (5, 1)


def test_a_crashed_writer_disables_the_tier_until_the_next_write(tiered: diskstore.Cache) -> None:
    tiered.set("k", 1)
    assert tiered.get("k") == 1
    counter = ChangeCounter(tiered.directory)
    counter.begin()  # a writer that died before finishing: begun != done
    tiered._store.run("UPDATE Cache SET value = 2")
    assert tiered.get("k") == 2  # not served from memory while a write is unfinished
    tiered.set("other", 0)  # the next write completes the counter
    assert counter.read()[0] == counter.read()[1]
    assert tiered.get("k") == 2


def test_a_read_racing_a_write_is_not_kept() -> None:
    tier = MemoryTier(10, 10_000)
    epoch = tier.epoch
    tier.discard((0, "k", True))  # a write happened while the value was being read
    tier.put((0, "k", True), TierEntry(1, "stale", False, None, 10), epoch)
    assert tier.get((0, "k", True)) is None


def test_bad_limits_are_rejected(cache_dir: str) -> None:
    with pytest.raises(ValueError, match="memory_items"):
        diskstore.Cache(cache_dir, memory_items=-1)
    with pytest.raises(ValueError, match="memory_bytes"):
        diskstore.Cache(cache_dir, memory_items=1, memory_bytes="big")  # type: ignore[arg-type]


def test_the_change_counter_file_is_private(tiered: diskstore.Cache) -> None:
    mode = os.stat(Path(tiered.directory) / "cache.db-changes").st_mode & 0o777
    assert mode == 0o600
