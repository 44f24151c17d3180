"""Cache settings: defaults, persistence, attribute access, validation (nothing bad persists)."""

from __future__ import annotations

import math
import os
import sqlite3
from typing import Any

import diskcache  # type: ignore[import-untyped]
import pytest
from _cache_support import pragma

import diskstore

#: A non-default value for every persisted setting.
CHANGED: dict[str, Any] = {
    "statistics": True,
    "tag_index": True,
    "eviction_policy": "least-frequently-used",
    "size_limit": 12_345_678,
    "cull_limit": 3,
    "sqlite_cache_size": 1_000,
    "sqlite_journal_mode": "truncate",
    "sqlite_mmap_size": 0,
    "sqlite_synchronous": 2,
    "disk_min_file_size": 100,
    "disk_pickle_protocol": 2,
}

BAD: list[tuple[dict[str, Any], str]] = [
    ({"size_limit": -1}, "size_limit"),
    ({"size_limit": "big"}, "size_limit"),
    ({"size_limit": 1.5}, "size_limit"),
    ({"size_limit": True}, "size_limit"),
    ({"size_limit": None}, "size_limit"),
    ({"cull_limit": -1}, "cull_limit"),
    ({"eviction_policy": "lru"}, "eviction_policy"),
    ({"eviction_policy": None}, "eviction_policy"),
    ({"statistics": 2}, "statistics"),
    ({"statistics": "yes"}, "statistics"),
    ({"tag_index": "no"}, "tag_index"),
    ({"sqlite_journal_mode": "bogus; DROP TABLE Cache"}, "sqlite_journal_mode"),
    ({"sqlite_synchronous": 7}, "sqlite_synchronous"),
    ({"sqlite_synchronous": "FULL; --"}, "sqlite_synchronous"),
    ({"sqlite_cache_size": "1; DROP TABLE Cache"}, "sqlite_cache_size"),
    ({"sqlite_mmap_size": -1}, "sqlite_mmap_size"),
    ({"sqlite_auto_vacuum": 9}, "sqlite_auto_vacuum"),
    ({"disk_min_file_size": -1}, "disk_min_file_size"),
    # A protocol this interpreter lacks is accepted and fails at the first pickle, as in
    # diskcache (see test_diskcache_data.py); one that is not an int is refused at once.
    ({"disk_pickle_protocol": "5"}, "disk_pickle_protocol"),
    ({"disk_pickle_protocol": 4.0}, "disk_pickle_protocol"),
    ({"size_limt": 1}, "size_limt"),
    ({"cull_limit": 5, "size_limit": -1}, "size_limit"),  # a good one beside a bad one
]


def thread_pragma(cache: diskstore.Cache, name: str) -> Any:
    """A PRAGMA as the cache's own connection for this thread sees it."""
    conn = cache._store.connect_thread()
    assert conn.con is not None
    return conn.con.execute(f"PRAGMA {name}").fetchone()[0]


def snapshot(cache: diskstore.Cache) -> dict[str, Any]:
    return {name: cache.reset(name) for name in diskstore.DEFAULT_SETTINGS}


def test_defaults_match_diskcache() -> None:
    for name, value in diskcache.DEFAULT_SETTINGS.items():
        assert diskstore.DEFAULT_SETTINGS[name] == value, name


def test_new_cache_has_default_settings(cache: diskstore.Cache) -> None:
    for name, value in diskstore.DEFAULT_SETTINGS.items():
        assert getattr(cache, name) == value, name
        assert cache.reset(name) == value, name
    assert cache.statistics is False
    assert cache.tag_index is False


@pytest.mark.parametrize(("name", "value"), sorted(CHANGED.items()))
def test_each_setting_persists_across_reopen(cache_dir: str, name: str, value: Any) -> None:
    with diskstore.Cache(cache_dir, **{name: value}) as cache:
        assert getattr(cache, name) == value
        cache["key"] = "value"
    with diskstore.Cache(cache_dir) as cache:
        assert getattr(cache, name) == value
        assert cache.reset(name) == value
        assert cache["key"] == "value"
        for other, default in diskstore.DEFAULT_SETTINGS.items():
            if other != name:
                assert getattr(cache, other) == default, other


def test_all_settings_at_once_persist(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir, **CHANGED) as cache:
        assert snapshot(cache) == {**diskstore.DEFAULT_SETTINGS, **CHANGED}
    with diskstore.Cache(cache_dir) as cache:
        assert snapshot(cache) == {**diskstore.DEFAULT_SETTINGS, **CHANGED}


def test_settings_given_on_reopen_override_stored_ones(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir, size_limit=1_000, cull_limit=1):
        pass
    with diskstore.Cache(cache_dir, size_limit=2_000) as cache:
        assert (cache.size_limit, cache.cull_limit) == (2_000, 1)
    with diskstore.Cache(cache_dir) as cache:
        assert (cache.size_limit, cache.cull_limit) == (2_000, 1)


def test_reset_persists(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir) as cache:
        for name, value in CHANGED.items():
            assert cache.reset(name, value) == value
            assert getattr(cache, name) == value
    with diskstore.Cache(cache_dir) as cache:
        assert snapshot(cache) == {**diskstore.DEFAULT_SETTINGS, **CHANGED}


def test_boolean_settings_accept_zero_and_one(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir, statistics=1, tag_index=0) as cache:
        assert cache.statistics is True
        assert cache.tag_index is False


def test_journal_mode_is_case_insensitive(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir, sqlite_journal_mode="WAL") as cache:
        assert cache.sqlite_journal_mode == "wal"


def test_pragmas_reach_the_database(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir, **CHANGED) as cache:
        assert thread_pragma(cache, "cache_size") == 1_000
        assert thread_pragma(cache, "mmap_size") == 0
        assert thread_pragma(cache, "synchronous") == 2
        assert thread_pragma(cache, "journal_mode") == "truncate"
    with diskstore.Cache(cache_dir) as cache:
        assert thread_pragma(cache, "cache_size") == 1_000
        assert thread_pragma(cache, "synchronous") == 2
        cache.reset("sqlite_cache_size", 2_000)
        cache.reset("sqlite_synchronous", 0)
        cache["touch"] = 1
        assert thread_pragma(cache, "cache_size") == 2_000
        assert thread_pragma(cache, "synchronous") == 0


def test_default_pragmas(cache: diskstore.Cache) -> None:
    assert pragma(cache, "journal_mode") == "wal"
    assert pragma(cache, "auto_vacuum") == 1
    assert thread_pragma(cache, "synchronous") == 1
    assert thread_pragma(cache, "cache_size") == 2**13


def test_auto_vacuum_is_chosen_at_creation(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir, sqlite_auto_vacuum=0) as cache:
        assert pragma(cache, "auto_vacuum") == 0
        with pytest.raises(diskstore.SettingsError, match="sqlite_auto_vacuum"):
            cache.reset("sqlite_auto_vacuum", 1)
        assert cache.sqlite_auto_vacuum == 0
    with diskstore.Cache(cache_dir) as cache:
        assert cache.sqlite_auto_vacuum == 0
        assert pragma(cache, "auto_vacuum") == 0


def test_disk_settings_reach_the_disk(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir, disk_min_file_size=100, disk_pickle_protocol=2) as cache:
        assert cache.disk.min_file_size == 100
        assert cache.disk.pickle_protocol == 2
        cache["small file"] = os.urandom(200)
        assert cache["small file"]
        assert os.listdir(os.path.join(cache_dir, "data"))


def test_attribute_access(cache: diskstore.Cache) -> None:
    for name in diskstore.DEFAULT_SETTINGS:
        assert getattr(cache, name) == cache.reset(name)
    with pytest.raises(AttributeError, match="no_such_setting"):
        cache.no_such_setting  # noqa: B018


@pytest.mark.parametrize(("bad", "name"), BAD, ids=[str(bad) for bad, _ in BAD])
def test_bad_setting_on_open_persists_nothing(
    cache_dir: str, bad: dict[str, Any], name: str
) -> None:
    with diskstore.Cache(cache_dir, cull_limit=7, size_limit=99_999) as cache:
        cache.set("key", "value", tag="t")
        before = snapshot(cache)
    with pytest.raises(diskstore.SettingsError) as info:
        diskstore.Cache(cache_dir, **bad)
    assert isinstance(info.value, ValueError)
    assert name in str(info.value)
    if name != "size_limt":
        assert repr(bad[name]).lower() in str(info.value).lower()
    with diskstore.Cache(cache_dir) as cache:
        assert snapshot(cache) == before
        assert cache.get("key", tag=True) == ("value", "t")
        assert len(cache) == 1


@pytest.mark.parametrize(("bad", "name"), BAD[:-1], ids=[str(bad) for bad, _ in BAD[:-1]])
def test_bad_setting_on_create_persists_nothing(
    tmp_path: Any, bad: dict[str, Any], name: str
) -> None:
    directory = str(tmp_path / "new")
    with pytest.raises(diskstore.SettingsError, match=name):
        diskstore.Cache(directory, **bad)
    with diskstore.Cache(directory) as cache:
        assert snapshot(cache) == dict(diskstore.DEFAULT_SETTINGS)


@pytest.mark.parametrize(("bad", "name"), BAD[:-1], ids=[str(bad) for bad, _ in BAD[:-1]])
def test_bad_reset_persists_nothing(cache_dir: str, bad: dict[str, Any], name: str) -> None:
    ((key, value),) = bad.items()
    with diskstore.Cache(cache_dir) as cache:
        cache["key"] = "value"
        before = snapshot(cache)
        with pytest.raises(diskstore.SettingsError, match=name):
            cache.reset(key, value)
        assert snapshot(cache) == before
    with diskstore.Cache(cache_dir) as cache:
        assert snapshot(cache) == before
        assert cache["key"] == "value"


def test_misspelt_setting_suggests_the_right_name(cache_dir: str, cache: diskstore.Cache) -> None:
    with pytest.raises(diskstore.SettingsError) as info:
        diskstore.Cache(cache_dir, size_limt=1)
    message = str(info.value)
    assert "'size_limt'" in message
    assert "'size_limit'" in message
    with pytest.raises(diskstore.SettingsError, match="'eviction_policy'"):
        cache.reset("eviction_polcy", "none")
    with pytest.raises(diskstore.SettingsError, match="'disk_min_file_size'"):
        diskstore.Cache(cache_dir, disk_min_filesize=1)
    with pytest.raises(diskstore.SettingsError, match="nonsense"):
        diskstore.Cache(cache_dir, nonsense=1)


def test_sqlite_settings_are_never_formatted_from_bad_text(cache_dir: str) -> None:
    with diskstore.Cache(cache_dir) as cache:
        cache["key"] = 1
    con = sqlite3.connect(os.path.join(cache_dir, "cache.db"))
    try:
        con.execute(
            "UPDATE Settings SET value = ? WHERE key = ?",
            ("0; DROP TABLE Cache", "sqlite_cache_size"),
        )
        con.commit()
    finally:
        con.close()
    with pytest.raises(diskstore.SettingsError, match="sqlite_cache_size"):
        diskstore.Cache(cache_dir)
    with diskstore.Cache(cache_dir, sqlite_cache_size=100) as cache:  # a given value repairs it
        assert cache["key"] == 1


@pytest.mark.parametrize("timeout", [-1, math.nan, "x", None, [1]])
def test_bad_timeout(tmp_path: Any, timeout: Any) -> None:
    directory = str(tmp_path / "never-created")
    with pytest.raises((TypeError, ValueError), match="timeout") as info:
        diskstore.Cache(directory, timeout=timeout)
    assert repr(timeout) in str(info.value)
    assert not os.path.exists(directory)


@pytest.mark.parametrize("timeout", [0, 0.5, 10])
def test_timeout_attribute(tmp_path: Any, timeout: float) -> None:
    with diskstore.Cache(str(tmp_path / "c"), timeout=timeout) as cache:
        assert cache.timeout == timeout


def test_bad_disk(tmp_path: Any) -> None:
    directory = str(tmp_path / "never-created")
    for disk in (object, diskcache.Disk, "Disk", diskstore.Disk(str(tmp_path))):
        with pytest.raises(ValueError, match="disk"):
            diskstore.Cache(directory, disk=disk)  # type: ignore[arg-type]
    assert not os.path.exists(directory)
