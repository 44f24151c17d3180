"""RedisCache beyond the shared behaviour suite: security, single flight across processes,
the lock's token and expiry, and faults, each against a real redis-server."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _redis_server import RedisServer, free_port

import diskstore
from diskstore.redis import RedisCache, RedisLock


@pytest.fixture
def cache(redis_server: Any) -> Iterator[RedisCache]:
    opened = RedisCache(redis_server.url, namespace=f"test-{uuid.uuid4().hex}")
    try:
        yield opened
    finally:
        opened.clear()
        opened.close()


@pytest.fixture
def own_server(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """A server of the test's own, configured by ``@pytest.mark.parametrize`` indirectly."""
    config = getattr(request, "param", ())
    server = RedisServer(*config).start()
    try:
        yield server
    finally:
        server.stop()


def test_import_diskstore_does_not_import_redis() -> None:
    code = "import sys, diskstore; print('redis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


class _Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (os.mkdir, (self.marker,))


def test_planted_pickle_is_a_miss_and_never_runs(cache: RedisCache, tmp_path: Path) -> None:
    marker = str(tmp_path / "pwned")
    rkey = cache._codec.item_key("victim")
    payload = pickle.dumps(_Exploit(marker))
    # An unsigned pickle, and one wearing a forged header, both claiming to be pickles
    # (kind d, then the mode: 3 is a pickle, 35 a signed one).
    for mode in (3, 35):
        cache.client.set(rkey, b"d" + mode.to_bytes(2, "big") + b"\x00" * 40 + payload)
        with pytest.warns(diskstore.CorruptionWarning):
            assert cache.get("victim", "default") == "default"
        assert not os.path.exists(marker)
        assert not cache.client.exists(rkey)  # dropped


def test_a_payload_moved_to_another_key_fails_verification(cache: RedisCache) -> None:
    cache.set("a", {"secret": 1})
    stored = cache.client.get(cache._codec.item_key("a"))
    cache.client.set(cache._codec.item_key("b"), stored)
    with pytest.warns(diskstore.CorruptionWarning):
        assert cache.get("b") is None
    assert cache.get("a") == {"secret": 1}


def test_check_reports_and_fixes_planted_entries(cache: RedisCache) -> None:
    cache.set("good", [1])
    cache.client.set(cache._codec.item_key("bad"), b"d\x00\x03junk")
    found = cache.check(fix=True)
    assert len(found) == 1 and issubclass(found[0].category, diskstore.CorruptionWarning)
    assert cache.check() == []
    assert cache["good"] == [1]


def test_another_secret_cannot_read_the_values(redis_server: Any, cache: RedisCache) -> None:
    cache.set("k", ["pickled"])
    other = RedisCache(redis_server.url, namespace=cache.namespace_name, secret=b"x" * 32)
    with pytest.warns(diskstore.CorruptionWarning):
        assert other.get("k") is None
    other.close()


_WORKER = textwrap.dedent(
    """
    import sys, time, redis
    import diskstore
    from diskstore.redis import RedisCache

    url, namespace = sys.argv[1], sys.argv[2]
    counter = redis.Redis.from_url(url)
    cache = RedisCache(url, namespace=namespace)

    @diskstore.memoize(cache, name="slow")
    def slow(x):
        counter.incr(namespace + ":body")
        time.sleep(1.5)
        return x * 10

    counter.incr(namespace + ":ready")
    while int(counter.get(namespace + ":ready")) < 2:
        time.sleep(0.005)
    print(slow(4))
    """
)


@pytest.mark.slow
def test_two_processes_memoizing_one_function_run_its_body_once(redis_server: Any) -> None:
    namespace = f"test-{uuid.uuid4().hex}"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, redis_server.url, namespace],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=60)[0].strip() for worker in workers]
    assert outputs == ["40", "40"]
    client = redis_server.client()
    assert int(client.get(namespace + ":body")) == 1
    client.delete(namespace + ":body", namespace + ":ready")
    RedisCache(redis_server.url, namespace=namespace).clear()


def test_lock_of_an_expired_holder_cannot_release_the_next_holders(redis_server: Any) -> None:
    client = redis_server.client()
    name = f"test-lock-{uuid.uuid4().hex}".encode()
    first = RedisLock(client, name, ttl=0.2)
    assert first.acquire(timeout=1)
    first._stop.set()  # the holder hangs: no more renewals, so the lock expires
    second = RedisLock(client, name, ttl=30)
    assert second.acquire(timeout=10)
    first.release()  # too late: must not release the second holder's lock
    assert client.get(name) == second._token
    third = RedisLock(client, name, ttl=30)
    assert third.acquire(timeout=0.1) is False
    second.release()
    assert client.get(name) is None


def test_a_held_lock_is_renewed_while_its_holder_computes(redis_server: Any) -> None:
    client = redis_server.client()
    name = f"test-lock-{uuid.uuid4().hex}".encode()
    holder = RedisLock(client, name, ttl=0.3)
    assert holder.acquire(timeout=1)
    time.sleep(1.0)
    assert client.get(name) == holder._token
    holder.release()


def test_a_crashed_holders_lock_expires(redis_server: Any) -> None:
    name = f"test-lock-{uuid.uuid4().hex}"
    code = textwrap.dedent(
        f"""
        import os, redis
        from diskstore.redis import RedisLock
        lock = RedisLock(redis.Redis.from_url({redis_server.url!r}), {name!r}.encode(), ttl=0.5)
        assert lock.acquire(timeout=5)
        os.kill(os.getpid(), 9)
        """
    )
    subprocess.run([sys.executable, "-c", code], check=False)
    client = redis_server.client()
    assert client.exists(name)
    assert RedisLock(client, name.encode(), ttl=30).acquire(timeout=20)
    client.delete(name)


# -- faults --------------------------------------------------------------------------------


def test_server_down_at_start_fails_at_first_use_not_at_construction() -> None:
    cache = RedisCache(f"redis://127.0.0.1:{free_port()}/0", timeout=1)
    with pytest.raises(diskstore.ServerUnavailableError) as raised:
        cache.get("k")
    assert isinstance(raised.value, ConnectionError)
    assert isinstance(raised.value, diskstore.DiskStoreError)
    with pytest.raises(ConnectionError):
        cache.set("k", 1)
    cache.close()


def test_server_restarted_mid_run(own_server: RedisServer) -> None:
    cache = RedisCache(own_server.url, timeout=2)
    cache.set("k", 1)
    own_server.stop()
    with pytest.raises(diskstore.ServerUnavailableError):
        cache.set("k", 2)
    with pytest.raises(diskstore.ServerUnavailableError):
        cache.get("k")
    own_server.start()
    assert cache.get("k") is None  # the server kept nothing (no persistence configured)
    cache.set("k", 3)
    assert cache["k"] == 3
    cache.close()


def test_a_stalled_server_times_out_instead_of_hanging(own_server: RedisServer) -> None:
    cache = RedisCache(own_server.url, timeout=0.5)
    cache.set("k", 1)
    assert own_server.process is not None
    os.kill(own_server.process.pid, signal.SIGSTOP)
    try:
        with pytest.raises(diskstore.ServerUnavailableError):
            cache.get("k")
    finally:
        os.kill(own_server.process.pid, signal.SIGCONT)
    assert cache.get("k") == 1
    cache.close()


@pytest.mark.parametrize(
    "own_server", [("--maxmemory", "3mb", "--maxmemory-policy", "allkeys-lru")], indirect=True
)
def test_items_evicted_by_the_server_read_as_misses(own_server: RedisServer) -> None:
    cache = RedisCache(own_server.url)
    for number in range(60):
        cache.set(number, os.urandom(100_000))
    missing = [number for number in range(60) if cache.get(number) is None]
    assert missing  # the server evicted some
    assert len(cache) == 60 - len(missing)
    cache.close()


@pytest.mark.parametrize(
    "own_server", [("--maxmemory", "3mb", "--maxmemory-policy", "noeviction")], indirect=True
)
def test_a_full_server_without_eviction_raises_storage_full(own_server: RedisServer) -> None:
    cache = RedisCache(own_server.url)
    with pytest.raises(diskstore.StorageFullError):
        for number in range(60):
            cache.set(number, os.urandom(100_000))
    assert cache.delete(0) is True  # deleting still works
    cache.close()


@pytest.mark.parametrize("own_server", [("--proto-max-bulk-len", "1mb")], indirect=True)
def test_a_value_larger_than_the_server_accepts(own_server: RedisServer) -> None:
    cache = RedisCache(own_server.url)
    with pytest.raises(ValueError, match="proto-max-bulk-len"):
        cache.set("big", os.urandom(2 * 2**20))
    cache.set("small", b"ok")
    assert cache["small"] == b"ok"
    cache.close()


# -- arguments -----------------------------------------------------------------------------


def test_sqlite_only_settings_are_refused_with_the_server_equivalent() -> None:
    with pytest.raises(diskstore.SettingsError, match="maxmemory"):
        RedisCache("redis://127.0.0.1:1/0", size_limit=2**20)
    with pytest.raises(diskstore.SettingsError, match="nope"):
        RedisCache("redis://127.0.0.1:1/0", nope=1)
    with pytest.raises(ValueError, match="namespace"):
        RedisCache("redis://127.0.0.1:1/0", namespace="a{b}")
    with pytest.raises(ValueError, match="timeout"):
        RedisCache("redis://127.0.0.1:1/0", timeout=0)

    class FileHooks(diskstore.Disk):
        def filename(self, key: Any = None, value: Any = None) -> Any:
            return super().filename(key, value)

    with pytest.raises(TypeError, match="dumps/loads"):
        RedisCache("redis://127.0.0.1:1/0", disk=FileHooks)


def test_writes_that_need_a_result_are_refused_inside_transact(cache: RedisCache) -> None:
    with pytest.raises(diskstore.UnsupportedError, match="incr"):
        with cache.transact():
            cache.set("a", 1)
            cache.incr("n")
    assert "a" not in cache


def test_async_near_cache_serves_reads_and_sees_other_writers(redis_server: Any) -> None:
    import asyncio

    from diskstore.redis import AsyncRedisCache

    namespace = f"test-{uuid.uuid4().hex}"
    other = RedisCache(redis_server.url, namespace=namespace)

    async def main() -> None:
        async with AsyncRedisCache(redis_server.url, namespace=namespace, near_items=100) as near:
            kept = near.cache._shared.near
            assert _eventually(lambda: kept.ready)
            await near.set("k", [1])
            for _ in range(200):  # the server's invalidation of this write may drop a copy
                if await near.get("k") == [1] and len(kept) == 1:
                    break
                await asyncio.sleep(0.005)
            assert len(kept) == 1
            first, second = await near.get("k"), await near.get("k")
            assert first == second == [1] and first is not second
            other.set("k", [2])  # another machine writes
            for _ in range(2000):
                if await near.get("k") == [2]:
                    break
                await asyncio.sleep(0.005)
            assert await near.get("k") == [2]
            await near.set("mine", 1)
            await near.get("mine")
            await near.set("mine", 2)  # this process's own write is visible at once
            assert await near.get("mine") == 2
            await near.delete("mine")
            assert await near.get("mine") is None
            await near.clear()

    asyncio.run(main())
    other.close()


def test_peekitem_is_refused_with_the_reason(cache: RedisCache) -> None:
    cache.set("k", 1)
    with pytest.raises(diskstore.UnsupportedError, match="insertion order"):
        cache.peekitem()


def test_password_is_not_shown(redis_server: Any) -> None:
    shown = repr(RedisCache(f"redis://user:hunter2@127.0.0.1:{redis_server.port}/0"))
    assert "hunter2" not in shown


# -- near cache ----------------------------------------------------------------------------


def _eventually(condition: Any, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return bool(condition())


def _near_cache(url: str, namespace: str) -> RedisCache:
    cache = RedisCache(url, namespace=namespace, near_items=100)
    assert _eventually(lambda: cache._shared.near.ready)
    return cache


def test_near_cache_serves_reads_and_sees_other_writers(redis_server: Any) -> None:
    namespace = f"test-{uuid.uuid4().hex}"
    near = _near_cache(redis_server.url, namespace)
    other = RedisCache(redis_server.url, namespace=namespace)
    near.set("k", [1])
    # The server's invalidation of this very write arrives asynchronously and may drop the
    # first read's copy: keep reading until one stays.
    assert _eventually(lambda: near.get("k") == [1] and len(near._shared.near) == 1)
    first, second = near.get("k"), near.get("k")
    assert first == second and first is not second  # decoded afresh on every hit
    other.set("k", [2])  # another machine writes
    assert _eventually(lambda: near.get("k") == [2])
    other.delete("k")
    assert _eventually(lambda: near.get("k") is None)
    near.set("mine", 1)
    near.get("mine")
    near.set("mine", 2)  # this process's own write is visible at once
    assert near.get("mine") == 2
    near.clear()
    near.close()
    other.close()


def test_a_near_cache_dropped_without_close_stops_its_thread(redis_server: Any) -> None:
    import gc

    near = _near_cache(redis_server.url, f"test-{uuid.uuid4().hex}")
    thread = near._shared.near._thread
    view = near.namespace("view")
    del near
    gc.collect()
    assert thread.is_alive()  # a view still uses it
    del view
    gc.collect()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_near_cache_honours_expiry(redis_server: Any) -> None:
    near = _near_cache(redis_server.url, f"test-{uuid.uuid4().hex}")
    near.set("k", 1, expire=0.3)
    assert near.get("k") == 1
    assert _eventually(lambda: near.get("k") is None)
    near.close()


def test_near_cache_is_emptied_when_its_invalidation_connection_drops(
    redis_server: Any,
) -> None:
    namespace = f"test-{uuid.uuid4().hex}"
    near = _near_cache(redis_server.url, namespace)
    near.set("k", 1)
    assert _eventually(lambda: near.get("k") == 1 and len(near._shared.near) == 1)
    redis_server.client().client_kill_filter(_type="pubsub")
    assert _eventually(lambda: len(near._shared.near) == 0)
    assert _eventually(lambda: near._shared.near.ready)  # reconnected
    RedisCache(redis_server.url, namespace=namespace).set("k", 2)
    assert _eventually(lambda: near.get("k") == 2)
    near.clear()
    near.close()


def test_near_cache_forgets_everything_when_the_server_restarts(own_server: RedisServer) -> None:
    near = _near_cache(own_server.url, "restart")
    near.set("k", 1)
    assert near.get("k") == 1
    own_server.stop()
    own_server.start()

    def gone() -> bool:
        try:
            return near.get("k") is None
        except diskstore.ServerUnavailableError:
            return False

    assert _eventually(gone)
    near.close()


def test_async_cache_faults_and_planted_values(own_server: RedisServer) -> None:
    import asyncio

    from diskstore.redis import AsyncRedisCache

    async def main() -> None:
        down = AsyncRedisCache(f"redis://127.0.0.1:{free_port()}/0", timeout=1)
        with pytest.raises(diskstore.ServerUnavailableError):
            await down.get("k")
        await down.close()
        async with AsyncRedisCache(own_server.url, timeout=2) as cache:
            rkey = cache.cache._codec.item_key("planted")
            await asyncio.to_thread(cache.cache.client.set, rkey, b"d\x00\x03\x80\x04K\x01.")
            with pytest.warns(diskstore.CorruptionWarning):
                assert await cache.get("planted", "miss") == "miss"
            await cache.set("k", 1)
            own_server.stop()
            with pytest.raises(diskstore.ServerUnavailableError):
                await cache.set("k", 2)
            own_server.start()
            assert await cache.get("k") is None

    asyncio.run(main())


def test_the_async_cache_takes_the_sync_caches_parameters() -> None:
    """Every awaitable method that ``RedisCache`` also has takes the same parameters."""
    import inspect

    from diskstore.redis import AsyncRedisCache

    def shape(method: Any) -> list[tuple[str, Any, Any]]:
        parameters = list(inspect.signature(method).parameters.values())[1:]
        return [(p.name, p.kind, p.default) for p in parameters]

    shared = [
        name
        for name, member in vars(AsyncRedisCache).items()
        if not name.startswith("_")
        and inspect.iscoroutinefunction(member)
        and callable(getattr(RedisCache, name, None))
    ]
    assert {"get", "set", "touch", "push", "pull", "clear", "check"} <= set(shared)
    drifted = {
        name: (shape(getattr(AsyncRedisCache, name)), shape(getattr(RedisCache, name)))
        for name in shared
        if shape(getattr(AsyncRedisCache, name)) != shape(getattr(RedisCache, name))
    }
    assert not drifted
