"""Tests for diskstore.fanout.FanoutCache."""

from __future__ import annotations

import doctest
import io
import multiprocessing
import os
import pickle
import subprocess
import sys
import threading
import time

import pytest

import diskstore
import diskstore.fanout
from diskstore.fanout import FanoutCache, shard_index
from diskstore.persistent import Deque, Index

SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture
def fanout(tmp_path):
    with FanoutCache(str(tmp_path / "fanout"), shards=4) as cache:
        yield cache


def keys_by_shard(shards, wanted=5):
    """Return ``wanted`` integer keys for each shard."""
    found = {number: [] for number in range(shards)}
    candidate = 0
    while any(len(keys) < wanted for keys in found.values()):
        number = shard_index(candidate, shards)
        if len(found[number]) < wanted:
            found[number].append(candidate)
        candidate += 1
    return found


def test_exported_from_package():
    assert diskstore.FanoutCache is FanoutCache


def test_docstring_examples_run():
    result = doctest.testmod(diskstore.fanout, verbose=False)
    assert result.attempted >= 1
    assert result.failed == 0


class TestConstruction:
    @pytest.mark.parametrize("shards", [0, -1])
    def test_non_positive_shards_is_a_value_error(self, tmp_path, shards):
        with pytest.raises(ValueError, match=rf"shards.*{shards}"):
            FanoutCache(str(tmp_path), shards=shards)
        assert not any(tmp_path.iterdir())

    @pytest.mark.parametrize("shards", ["8", 2.0, True, None])
    def test_non_integer_shards_is_a_type_error(self, tmp_path, shards):
        with pytest.raises(TypeError, match="shards"):
            FanoutCache(str(tmp_path), shards=shards)

    def test_shards_live_in_numbered_subdirectories(self, tmp_path):
        with FanoutCache(str(tmp_path), shards=3) as cache:
            assert cache.shards == 3
            assert cache.directory == str(tmp_path)
        assert sorted(os.listdir(tmp_path)) == ["000", "001", "002"]
        for name in ("000", "001", "002"):
            assert (tmp_path / name / "cache.db").is_file()

    def test_default_directory_and_shards(self):
        cache = FanoutCache()
        try:
            assert cache.shards == 8
            assert len(os.listdir(cache.directory)) == 8
            assert cache.timeout == pytest.approx(0.010)
        finally:
            cache.close()

    def test_path_objects_and_user_expansion(self, tmp_path, monkeypatch):
        monkeypatch.setenv("HOME", str(tmp_path))
        with FanoutCache("~/expanded", shards=1) as cache:
            assert cache.directory == str(tmp_path / "expanded")
        with FanoutCache(tmp_path / "pathlike", shards=1) as cache:
            assert cache.directory == str(tmp_path / "pathlike")

    def test_size_limit_is_split_across_shards(self, tmp_path):
        with FanoutCache(str(tmp_path), shards=4, size_limit=4000) as cache:
            assert cache.size_limit == 1000
        with FanoutCache(str(tmp_path / "default"), shards=8) as cache:
            assert cache.size_limit == 2**30 // 8

    def test_float_size_limit_is_split_into_whole_bytes(self, tmp_path):
        with FanoutCache(str(tmp_path), shards=4, size_limit=1e9) as cache:
            assert cache.size_limit == 250_000_000

    def test_cache_options_reach_every_shard_and_survive_pickling(self, tmp_path):
        with FanoutCache(str(tmp_path), shards=2) as cache:
            cache["kept"] = 1
        with FanoutCache(str(tmp_path), shards=2, read_only=True) as cache:
            assert cache["kept"] == 1
            for key in range(4):
                with pytest.raises(diskstore.ReadOnlyError):
                    cache[key] = "refused"
            clone = pickle.loads(pickle.dumps(cache))
            try:
                with pytest.raises(diskstore.ReadOnlyError):
                    clone["kept"] = 2
            finally:
                clone.close()

    def test_settings_are_passed_to_every_shard(self, tmp_path):
        with FanoutCache(str(tmp_path), shards=2, eviction_policy="none", cull_limit=0) as cache:
            assert cache.eviction_policy == "none"
            assert cache.cull_limit == 0
            for number in ("000", "001"):
                with diskstore.Cache(str(tmp_path / number)) as shard:
                    assert shard.eviction_policy == "none"
                    assert shard.cull_limit == 0

    def test_unknown_attribute(self, fanout):
        with pytest.raises(AttributeError, match="no_such_setting"):
            fanout.no_such_setting  # noqa: B018

    def test_repr(self, fanout):
        assert repr(fanout) == f"FanoutCache({fanout.directory!r}, shards=4)"


class TestRouting:
    def test_each_key_lives_in_its_own_shard_only(self, tmp_path):
        with FanoutCache(str(tmp_path), shards=4) as cache:
            keys = ["alpha", b"beta", 3, 4.5, ("tuple", 1), None]
            for key in keys:
                cache[key] = repr(key)
        for key in keys:
            expected = shard_index(key, 4)
            for number in range(4):
                with diskstore.Cache(str(tmp_path / f"{number:03d}")) as shard:
                    assert (key in shard) == (number == expected), (key, number)

    def test_keys_spread_over_every_shard(self):
        counts = [0] * 8
        for number in range(2000):
            counts[shard_index(f"key-{number}", 8)] += 1
        assert min(counts) > 150

    def test_integer_and_equal_float_share_a_shard(self, fanout):
        for number in range(50):
            assert shard_index(number, 7) == shard_index(float(number), 7)
        fanout[12] = "twelve"
        assert fanout[12.0] == "twelve"

    def test_routing_is_stable_across_processes_and_hash_seeds(self):
        keys = ["alpha", "β", b"bytes", 17, -3.25, ("nested", (1, "x")), None, True]
        here = [shard_index(key, 8) for key in keys]
        script = (
            "from diskstore.fanout import shard_index\n"
            f"print([shard_index(key, 8) for key in {keys!r}])\n"
        )
        for seed in ("0", "12345"):
            env = dict(os.environ, PYTHONHASHSEED=seed)
            output = subprocess.run(
                [sys.executable, "-c", script],
                env=env,
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            ).stdout
            assert output.strip() == repr(here)


class TestItems:
    def test_set_get_delete(self, fanout):
        assert fanout.set("a", 1) is True
        assert fanout.get("a") == 1
        assert fanout.get("missing") is None
        assert fanout.get("missing", "default") == "default"
        assert fanout.delete("a") is True
        assert fanout.delete("a") is False

    def test_mapping_protocol(self, fanout):
        fanout["k"] = "v"
        assert fanout["k"] == "v"
        assert "k" in fanout
        del fanout["k"]
        assert "k" not in fanout
        with pytest.raises(KeyError):
            fanout["k"]
        with pytest.raises(KeyError):
            del fanout["k"]

    def test_add(self, fanout):
        assert fanout.add("once", 1) is True
        assert fanout.add("once", 2) is False
        assert fanout["once"] == 1

    def test_incr_and_decr(self, fanout):
        assert fanout.incr("n") == 1
        assert fanout.incr("n", 10) == 11
        assert fanout.decr("n", 2) == 9
        assert fanout.decr("fresh", default=5) == 4
        with pytest.raises(KeyError):
            fanout.incr("absent", default=None)

    def test_pop(self, fanout):
        fanout.set("p", "value", tag="t")
        assert fanout.pop("p", tag=True) == ("value", "t")
        assert fanout.pop("p") is None
        assert fanout.pop("p", default=0) == 0

    def test_get_with_expire_time_and_tag(self, fanout):
        before = time.time()
        fanout.set("x", 1, expire=100, tag="label")
        value, expire_time, tag = fanout.get("x", expire_time=True, tag=True)
        assert value == 1
        assert tag == "label"
        assert before + 99 < expire_time < time.time() + 101

    def test_touch(self, fanout):
        fanout.set("t", 1, expire=100)
        assert fanout.touch("t", expire=None) is True
        assert fanout.get("t", expire_time=True) == (1, None)
        assert fanout.touch("missing") is False

    def test_read_and_set_from_file(self, fanout):
        fanout.set("blob", io.BytesIO(b"payload" * 10_000), read=True)
        with fanout.read("blob") as handle:
            assert handle.read() == b"payload" * 10_000
        with pytest.raises(KeyError):
            fanout.read("missing")

    def test_len_iter_and_reversed(self, fanout):
        keys = [f"k{number}" for number in range(40)]
        for key in keys:
            fanout[key] = key
        assert len(fanout) == 40
        assert sorted(fanout) == sorted(keys)
        assert list(reversed(fanout)) == list(reversed(list(fanout)))


class TestWholeCache:
    def test_clear_counts_every_shard(self, fanout):
        for number in range(30):
            fanout[number] = number
        assert fanout.clear() == 30
        assert len(fanout) == 0

    def test_expire(self, tmp_path):
        with FanoutCache(str(tmp_path), shards=3, cull_limit=0) as cache:
            for number in range(10):
                cache.set(number, number, expire=0.001 if number % 2 else None)
            time.sleep(0.05)
            assert cache.expire() == 5
            assert sorted(cache) == [0, 2, 4, 6, 8]
            assert cache.expire() == 0

    def test_evict_and_tag_index(self, fanout):
        fanout.create_tag_index()
        assert fanout.tag_index
        for number in range(12):
            fanout.set(number, number, tag="odd" if number % 2 else "even")
        assert fanout.evict("odd") == 6
        assert sorted(fanout) == [0, 2, 4, 6, 8, 10]
        fanout.drop_tag_index()
        assert not fanout.tag_index

    def test_cull_respects_the_per_shard_limit(self, tmp_path):
        with FanoutCache(str(tmp_path), shards=2, size_limit=0, cull_limit=0) as cache:
            for number in range(10):
                cache[number] = b"x" * 100_000
            assert cache.cull() == 10
            assert len(cache) == 0

    def test_stats_sum_over_shards(self, fanout):
        assert fanout.stats(enable=True) == (0, 0)
        fanout["present"] = 1
        for _ in range(3):
            fanout.get("present")
        fanout.get("absent")
        fanout.get("other-absent")
        assert fanout.stats() == (3, 2)
        assert fanout.stats(reset=True) == (3, 2)
        assert fanout.stats(enable=False) == (0, 0)

    def test_volume_and_check(self, fanout):
        fanout["big"] = os.urandom(200_000)  # incompressible
        assert fanout.volume() >= 200_000
        assert fanout.check() == []

    def test_reset_applies_to_every_shard(self, fanout, tmp_path):
        assert fanout.reset("cull_limit", 3) == 3
        assert fanout.cull_limit == 3
        for number in range(4):
            with diskstore.Cache(str(tmp_path / "fanout" / f"{number:03d}")) as shard:
                assert shard.cull_limit == 3
        assert fanout.reset("cull_limit") == 3

    def test_transact_is_atomic_over_all_shards(self, fanout):
        with fanout.transact():
            fanout.incr("total", 123)
            fanout.incr("count", 1)
        with fanout.transact():
            assert fanout["total"] / fanout["count"] == 123

    def test_transact_requires_retry(self, fanout):
        with pytest.raises(ValueError, match="retry"), fanout.transact(retry=False):
            pass

    def test_close_and_context_manager(self, tmp_path):
        with FanoutCache(str(tmp_path), shards=2) as cache:
            cache["kept"] = True
        with FanoutCache(str(tmp_path), shards=2) as reopened:
            assert reopened["kept"] is True


def hold_write_lock(directory, ready, release):
    """Hold the write lock of the shard in ``directory`` until ``release`` is set."""
    with diskstore.Cache(directory) as shard, shard.transact():
        ready.set()
        release.wait(30)


@pytest.mark.timeout(60)
class TestShardTimeout:
    @pytest.fixture
    def locked(self, tmp_path):
        """A FanoutCache with shard 0 write-locked by another thread's connection."""
        cache = FanoutCache(str(tmp_path), shards=2, timeout=0.01)
        keys = keys_by_shard(2)
        for key in keys[0][:4] + keys[1][:4]:
            cache[key] = "stored"
        ready, release = threading.Event(), threading.Event()
        holder = threading.Thread(
            target=hold_write_lock, args=(str(tmp_path / "000"), ready, release)
        )
        holder.start()
        assert ready.wait(30)
        yield cache, keys, release
        release.set()
        holder.join(30)
        cache.close()

    def test_writes_fail_on_the_locked_shard(self, locked):
        cache, keys, release = locked
        blocked, free = keys[0][0], keys[1][0]
        assert cache.set(blocked, "new") is False
        assert cache.add(keys[0][4], "new") is False
        assert cache.delete(blocked) is False
        assert cache.touch(blocked, expire=10) is False
        assert cache.incr(keys[0][2]) is None
        assert cache.decr(keys[0][2]) is None
        assert cache.pop(keys[0][3], default="default") == "default"
        # The other shard is unaffected.
        assert cache.set(free, "new") is True
        assert cache.add(keys[1][4], "new") is True
        assert cache.get(free) == "new"
        # Nothing was written to the locked shard.
        release.set()
        assert cache.get(blocked, retry=True) == "stored"
        assert cache.get(keys[0][3], retry=True) == "stored"
        assert keys[0][4] not in cache

    def test_reads_return_the_default_when_the_shard_times_out(self, locked, monkeypatch):
        cache, keys, _ = locked
        blocked, free = keys[0][0], keys[1][0]
        # A reader only meets the lock in rare moments (in write-ahead-log mode readers do
        # not wait for writers), so the shard's read is made to time out here.
        shard = cache._shard(blocked)

        def timing_out(*args, **kwargs):
            raise diskstore.Timeout("database stayed locked")

        monkeypatch.setattr(shard, "get", timing_out)
        assert cache.get(blocked) is None
        assert cache.get(blocked, default="default") == "default"
        assert cache.get(blocked, "default", expire_time=True) == "default"
        assert cache.get(free) == "stored"
        with pytest.raises(diskstore.Timeout):
            cache[blocked]

    def test_retry_waits_for_the_lock(self, locked):
        cache, keys, release = locked
        threading.Timer(0.2, release.set).start()
        assert cache.set(keys[0][0], "waited", retry=True) is True
        assert cache.get(keys[0][0], retry=True) == "waited"

    def test_transact_on_the_fanout_blocks_every_shard(self, tmp_path):
        cache = FanoutCache(str(tmp_path / "all"), shards=3, timeout=0.01)
        other = FanoutCache(str(tmp_path / "all"), shards=3, timeout=0.01)
        entered, release = threading.Event(), threading.Event()

        def hold():
            with other.transact():
                entered.set()
                release.wait(30)

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert entered.wait(30)
            for key in range(12):
                assert cache.set(key, key) is False
        finally:
            release.set()
            holder.join(30)
        assert all(cache.set(key, key) for key in range(12))
        cache.close()
        other.close()


class TestSubCollections:
    def test_named_cache(self, fanout):
        named = fanout.cache("things/nested")
        assert named is fanout.cache("things/nested")
        assert named.directory == os.path.join(fanout.directory, "cache", "things", "nested")
        named["a"] = 1
        assert "a" not in fanout
        assert named.timeout == 60

    def test_named_deque(self, fanout):
        queue = fanout.deque("jobs", maxlen=2)
        assert isinstance(queue, Deque)
        assert queue is fanout.deque("jobs")
        queue.extend("abc")
        assert list(queue) == ["b", "c"]
        assert queue.directory == os.path.join(fanout.directory, "deque", "jobs")
        assert queue.cache.eviction_policy == "none"

    def test_named_index(self, fanout):
        table = fanout.index("table")
        assert isinstance(table, Index)
        assert table is fanout.index("table")
        table.update(a=1, b=2)
        assert table.popitem() == ("b", 2)
        assert table.directory == os.path.join(fanout.directory, "index", "table")
        assert table.cache.eviction_policy == "none"

    def test_sub_collections_persist(self, tmp_path):
        with FanoutCache(str(tmp_path), shards=2) as cache:
            cache.deque("q").append(1)
            cache.index("i")["k"] = "v"
            cache.cache("c")["x"] = "y"
        with FanoutCache(str(tmp_path), shards=2) as cache:
            assert list(cache.deque("q")) == [1]
            assert cache.index("i")["k"] == "v"
            assert cache.cache("c")["x"] == "y"

    @pytest.mark.parametrize(
        "name",
        [
            "",
            "..",
            "../escape",
            "a/../../escape",
            "/absolute",
            "a//b",
            "trailing/",
            ".",
            "a/./b",
            "back\\slash",
            "nul\x00byte",
        ],
    )
    @pytest.mark.parametrize("kind", ["cache", "deque", "index"])
    def test_names_cannot_escape_the_directory(self, fanout, tmp_path, name, kind):
        with pytest.raises(ValueError, match="name"):
            getattr(fanout, kind)(name)
        assert not (tmp_path / "escape").exists()

    @pytest.mark.parametrize("kind", ["cache", "deque", "index"])
    def test_names_must_be_strings(self, fanout, kind):
        with pytest.raises(TypeError, match="name"):
            getattr(fanout, kind)(b"bytes")


class TestNamespaces:
    def test_namespace_keys_are_isolated(self, fanout):
        fanout["shared"] = "plain"
        users = fanout.namespace("users")
        users["shared"] = "user"
        users["only"] = 1
        assert fanout["shared"] == "plain"
        assert "only" not in fanout
        assert len(users) == 2
        assert sorted(users) == ["only", "shared"]
        assert users.clear() == 2
        assert fanout["shared"] == "plain"
        assert len(fanout) == 1

    def test_namespace_survives_pickling(self, fanout):
        users = fanout.namespace("users")
        users["u1"] = "alice"
        clone = pickle.loads(pickle.dumps(users))
        try:
            assert clone["u1"] == "alice"
            assert "u1" not in pickle.loads(pickle.dumps(fanout))
            assert repr(clone).endswith(", namespace='users')")
            assert clone.namespace_name == "users"
        finally:
            clone.close()


def test_memoize_stores_results_in_the_fanout(fanout):
    calls = []

    @fanout.memoize()
    def square(number):
        calls.append(number)
        return number * number

    assert square(7) == 49
    assert square(7) == 49
    assert calls == [7]


def test_pickle_keeps_directory_shards_and_settings(tmp_path):
    with FanoutCache(str(tmp_path), shards=3, size_limit=3 * 2**24, timeout=0.5) as cache:
        cache["a"] = 1
        clone = pickle.loads(pickle.dumps(cache))
        try:
            assert clone.directory == cache.directory
            assert clone.shards == 3
            assert clone.timeout == pytest.approx(0.5)
            assert clone.size_limit == 2**24
            assert clone["a"] == 1
        finally:
            clone.close()


def fanout_child(cache, results):
    cache["from-child"] = sorted(key for key in cache if key != "from-child")
    results.put(cache.shards)


@pytest.mark.timeout(120)
def test_pickled_fanout_opens_the_same_data_in_another_process(tmp_path):
    with FanoutCache(str(tmp_path), shards=5) as cache:
        for number in range(20):
            cache[number] = number
        results = SPAWN.Queue()
        process = SPAWN.Process(target=fanout_child, args=(cache, results))
        process.start()
        shards = results.get(timeout=90)
        process.join(30)
        assert process.exitcode == 0
        assert shards == 5
        assert cache["from-child"] == list(range(20))


def fanout_writer(directory, worker):
    cache = FanoutCache(directory, shards=4)
    for number in range(100):
        assert cache.set((worker, number), number, retry=True)
        cache.incr("total", retry=True)
    cache.close()


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_four_processes_write_through_the_shards(tmp_path):
    directory = str(tmp_path)
    processes = [SPAWN.Process(target=fanout_writer, args=(directory, w)) for w in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    hung = [process for process in processes if process.is_alive()]
    for process in hung:
        process.kill()
    assert not hung
    assert [process.exitcode for process in processes] == [0] * 4
    with FanoutCache(directory, shards=4) as cache:
        assert cache["total"] == 400
        assert len(cache) == 401
        for worker in range(4):
            for number in range(100):
                assert cache[(worker, number)] == number
