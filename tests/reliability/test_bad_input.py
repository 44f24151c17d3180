"""Item 8: bad input raises a documented error that names the argument, and persists nothing.

Each case runs against a populated cache; afterwards every table of the database and every
value file must be exactly as before, the cache must still work, and reopening the
directory must find the original settings.
"""

from __future__ import annotations

import io
import os
import threading

import pytest

import diskstore

from ._support import data_files, table_rows

NAN = float("nan")


class ReadsText:
    """A ``read=True`` source whose ``read`` returns the wrong type."""

    def read(self, size: int = -1) -> str:
        return "not bytes"


def _open(directory: str, **options) -> None:
    diskstore.Cache(directory, **options).close()


Settings = diskstore.SettingsError

# (id, action on (cache, directory), expected exception, pattern its message must match)
CASES = [
    # NaN keys: never equal to themselves, so a stored one could never be found again.
    ("nan-key-set", lambda c, d: c.set(NAN, 1), ValueError, "key.*NaN"),
    ("nan-key-add", lambda c, d: c.add(NAN, 1), ValueError, "key.*NaN"),
    ("nan-key-incr", lambda c, d: c.incr(NAN), ValueError, "key.*NaN"),
    ("nan-key-get", lambda c, d: c.get(NAN), ValueError, "key.*NaN"),
    ("nan-key-setitem", lambda c, d: c.__setitem__(NAN, 1), ValueError, "key.*NaN"),
    ("nan-key-view", lambda c, d: c.namespace("v").set(NAN, 1), ValueError, "key.*NaN"),
    # Settings: validated before anything is written, whether at open or through reset().
    ("size-limit-text", lambda c, d: _open(d, size_limit="big"), Settings, "size_limit.*'big'"),
    ("size-limit-reset", lambda c, d: c.reset("size_limit", "big"), Settings, "size_limit.*big"),
    ("size-limit-negative", lambda c, d: _open(d, size_limit=-1), Settings, "size_limit.*-1"),
    ("size-limit-float", lambda c, d: _open(d, size_limit=1.5), Settings, "size_limit.*1.5"),
    ("cull-limit-negative", lambda c, d: _open(d, cull_limit=-1), Settings, "cull_limit.*-1"),
    ("cull-limit-reset", lambda c, d: c.reset("cull_limit", -5), Settings, "cull_limit.*-5"),
    ("policy-unknown", lambda c, d: _open(d, eviction_policy="lru"), Settings, "eviction_policy"),
    ("policy-reset", lambda c, d: c.reset("eviction_policy", "x"), Settings, "eviction_policy"),
    ("statistics-text", lambda c, d: _open(d, statistics="yes"), Settings, "statistics.*yes"),
    ("journal-mode", lambda c, d: _open(d, sqlite_journal_mode="x"), Settings, "journal_mode"),
    ("synchronous", lambda c, d: _open(d, sqlite_synchronous=9), Settings, "synchronous.*9"),
    ("min-file-size", lambda c, d: _open(d, disk_min_file_size=-1), Settings, "min_file_size"),
    ("misspelt-setting", lambda c, d: _open(d, size_limt=1), Settings, "size_limt.*size_limit"),
    ("reset-unknown", lambda c, d: c.reset("no_such", 1), Settings, "no_such"),
    ("timeout-negative", lambda c, d: _open(d, timeout=-1), ValueError, "timeout.*-1"),
    ("timeout-nan", lambda c, d: _open(d, timeout=NAN), ValueError, "timeout.*nan"),
    ("timeout-text", lambda c, d: _open(d, timeout="10"), ValueError, "timeout.*'10'"),
    ("disk-not-a-disk", lambda c, d: _open(d, disk=int), ValueError, "disk"),
    ("secret-empty", lambda c, d: _open(d, secret=b""), ValueError, "secret"),
    ("secret-type", lambda c, d: _open(d, secret=1), TypeError, "secret"),
    # Expiry and tags.
    ("expire-negative", lambda c, d: c.set("k", 1, expire=-1), ValueError, "expire.*-1"),
    ("expire-nan", lambda c, d: c.set("k", 1, expire=NAN), ValueError, "expire.*nan"),
    ("expire-text", lambda c, d: c.set("k", 1, expire="10"), TypeError, "expire.*'10'"),
    ("add-expire-nan", lambda c, d: c.add("new", 1, expire=NAN), ValueError, "expire"),
    ("touch-expire-nan", lambda c, d: c.touch("a", NAN), ValueError, "expire"),
    ("push-expire", lambda c, d: c.push(1, expire=-1), ValueError, "expire.*-1"),
    ("tag-list", lambda c, d: c.set("k", 1, tag=[1]), TypeError, "tag.*list"),
    ("tag-nan", lambda c, d: c.set("k", 1, tag=NAN), ValueError, "tag.*NaN"),
    ("evict-tag-list", lambda c, d: c.evict([1]), TypeError, "tag"),
    ("expire-now-text", lambda c, d: c.expire(now="x"), TypeError, "now.*'x'"),
    # Values and keys that cannot be stored.
    ("unpicklable-value", lambda c, d: c.set("k", threading.Lock()), TypeError, "pickle"),
    (
        "unpicklable-after-megabytes",
        lambda c, d: c.set("k", [os.urandom(5 << 20), threading.Lock()]),
        TypeError,
        "pickle",
    ),
    ("unpicklable-key", lambda c, d: c.set(threading.Lock(), 1), TypeError, "pickle"),
    ("unpicklable-push", lambda c, d: c.push(threading.Lock()), TypeError, "pickle"),
    # Queues.
    ("push-side", lambda c, d: c.push(1, side="middle"), ValueError, "side.*'middle'"),
    ("pull-side", lambda c, d: c.pull(side="up"), ValueError, "side.*'up'"),
    ("peek-side", lambda c, d: c.peek(side=None), ValueError, "side.*None"),
    ("push-prefix", lambda c, d: c.push(1, prefix=5), TypeError, "prefix"),
    # read=True with something that is not a binary file.
    ("read-str", lambda c, d: c.set("k", "text", read=True), TypeError, "read=True"),
    ("read-text-io", lambda c, d: c.set("k", io.StringIO("x"), read=True), TypeError, "bytes"),
    ("read-wrong-type", lambda c, d: c.set("k", ReadsText(), read=True), TypeError, "bytes"),
    # Arithmetic on a value that is not a number leaves it alone.
    ("incr-text-value", lambda c, d: c.incr("text"), TypeError, "str"),
    ("incr-text-delta", lambda c, d: c.incr("a", "1"), TypeError, "str"),
    # Other arguments.
    ("namespace-type", lambda c, d: c.namespace(1), TypeError, "namespace"),
    ("namespace-empty", lambda c, d: c.namespace(""), ValueError, "namespace"),
    ("stats-enable", lambda c, d: c.stats(enable="yes"), TypeError, "enable.*'yes'"),
]


def snapshot(directory: str) -> dict[str, object]:
    return {
        "items": table_rows(directory, "Cache"),
        "settings": table_rows(directory, "Settings"),
        "own settings": table_rows(directory, "diskstore_settings"),
        "namespaces": table_rows(directory, "diskstore_namespaces"),
        "files": data_files(directory),
    }


@pytest.fixture
def populated(cache_dir):
    with diskstore.Cache(cache_dir) as cache:
        cache.set("a", 1)
        cache.set("text", "not a number")
        cache.set("big", b"\x01" * 100_000)
        cache.set("pickled", {"x": [1, 2]}, tag="t", expire=3600)
        cache.push("queued")
        cache.namespace("v").set("in-view", 2)
        yield cache


def test_the_table_has_enough_cases():
    assert len(CASES) >= 30
    assert len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("action", "error", "pattern"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_bad_input_is_refused_and_nothing_persists(populated, figures, action, error, pattern):
    cache = populated
    directory = cache.directory
    before = snapshot(directory)
    settings_before = {name: getattr(cache, name) for name in diskstore.DEFAULT_SETTINGS}

    with pytest.raises(error, match=pattern) as caught:
        action(cache, directory)
    figures.add("bad input: cases refused with a documented error", 1)
    assert not isinstance(caught.value, KeyError)

    assert snapshot(directory) == before
    assert {name: getattr(cache, name) for name in diskstore.DEFAULT_SETTINGS} == settings_before
    # The cache still works, in this process and after reopening.
    cache.set("after", "works")
    assert cache.get("after") == "works"
    with diskstore.Cache(directory) as reopened:
        assert reopened.get("a") == 1
        assert reopened.get("big") == b"\x01" * 100_000
        assert reopened.namespace("v").get("in-view") == 2
        for name, value in settings_before.items():
            assert getattr(reopened, name) == value, name


@pytest.mark.parametrize(
    "options",
    [
        {"size_limit": "big"},
        {"cull_limit": -1},
        {"eviction_policy": "nope"},
        {"size_limt": 10},
        {"timeout": -1},
    ],
    ids=["size_limit", "cull_limit", "eviction_policy", "misspelt", "timeout"],
)
def test_bad_settings_on_a_fresh_directory_create_no_database(tmp_path, options):
    directory = tmp_path / "fresh"
    with pytest.raises(ValueError):
        diskstore.Cache(str(directory), **options)
    assert not directory.exists() or list(directory.iterdir()) == []
    with diskstore.Cache(str(directory)) as cache:
        assert cache.size_limit == diskstore.DEFAULT_SETTINGS["size_limit"]
        cache.set("k", 1)
        assert cache.get("k") == 1


@pytest.mark.parametrize(
    "key",
    [10**30, -(2**70), 2**63, "k" * (4 << 20), b"\x00" * (4 << 20), (1, "two", 3.0, b"4")],
    ids=["huge-int", "huge-negative-int", "int64-overflow", "4MB-str", "4MB-bytes", "tuple"],
)
def test_huge_keys_round_trip(cache, key):
    cache.set(key, "value")
    assert cache.get(key) == "value"
    assert key in cache
    assert list(cache) == [key]
    assert cache.delete(key) is True
    assert len(cache) == 0
