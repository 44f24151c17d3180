"""RedisCache on a real 3-master Redis Cluster, beyond the shared behaviour suite (which
runs on the cluster too): where keys land, the ways to open a cache on a cluster, the near
cache's invalidations from every master, and the names errors give."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from _redis_server import free_port
from redis.cluster import RedisCluster

import diskstore
from diskstore.redis import AsyncRedisCache, RedisCache


@pytest.fixture
def cache(redis_cluster: Any) -> Iterator[RedisCache]:
    opened = RedisCache(redis_cluster.url, namespace=f"test-{uuid.uuid4().hex}")
    try:
        yield opened
    finally:
        opened.clear()
        opened.close()


def _eventually(condition: Any, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return bool(condition())


def _master_of(client: RedisCluster, rkey: bytes) -> str:
    node = client.get_node_from_key(rkey)
    return f"{node.host}:{node.port}"


def test_a_url_naming_one_node_finds_the_cluster(cache: RedisCache) -> None:
    cache.set("k", 1)
    assert cache.cluster is True
    assert isinstance(cache.client, RedisCluster)
    assert repr(cache).startswith("RedisCache('redis-cluster://127.0.0.1:")


def test_items_spread_over_every_master(cache: RedisCache) -> None:
    for number in range(300):
        cache.set(("k", number), number)
    masters = {_master_of(cache.client, cache._codec.item_key(("k", n))) for n in range(300)}
    assert len(masters) == 3
    assert len(cache) == 300
    assert sorted(key[1] for key in cache) == list(range(300))
    assert cache.volume() > 0
    assert cache.clear() == 300
    assert len(cache) == 0


def test_a_queue_and_its_items_share_one_slot(cache: RedisCache) -> None:
    client: Any = cache.client
    keys = [cache.push(number, prefix="jobs") for number in range(20)]
    keys += [cache.push(number) for number in range(5)]
    slots = {client.keyslot(cache._codec.item_key(key)) for key in keys[:20]}
    assert slots == {client.keyslot(cache._index("jobs"))}
    assert client.keyslot(cache._codec.item_key(keys[-1])) == client.keyslot(cache._index(None))
    assert cache.get(keys[3]) == 3  # queue items are ordinary items
    assert cache.pull(prefix="jobs") == (keys[0], 0)
    assert cache.pull(side="back") == (keys[-1], 4)


def test_tags_and_memoized_functions_span_masters(cache: RedisCache) -> None:
    for number in range(60):
        cache.set(("t", number), number, tag="even" if number % 2 == 0 else "odd")

    @cache.memoize(name="square")
    def square(x: int) -> int:
        return x * x

    assert [square(n) for n in range(40)] == [n * n for n in range(40)]
    masters = {_master_of(cache.client, cache._codec.item_key(("t", n))) for n in range(60)}
    assert len(masters) == 3
    assert square.cache_info().currsize == 40
    assert cache.evict("even") == 30
    assert square.cache_clear() == 40
    assert len(cache) == 30


def test_transact_writes_each_slot_atomically(cache: RedisCache) -> None:
    with cache.transact():
        for number in range(20):
            cache.set(("x", number), number, tag="batch")
        assert cache.get(("x", 0)) is None  # not applied before the block ends
    assert [cache[("x", n)] for n in range(20)] == list(range(20))
    assert cache.evict("batch") == 20


def test_a_cluster_client_can_be_given(redis_cluster: Any) -> None:
    client = redis_cluster.client()
    cache = RedisCache(client=client, namespace=f"test-{uuid.uuid4().hex}")
    cache.set("k", [1])
    assert cache["k"] == [1]
    assert repr(cache).startswith("RedisCache('redis-cluster://127.0.0.1:")
    cache.clear()
    cache.close()
    assert client.ping()  # a client passed in stays open


def test_an_async_cache_on_a_given_cluster_client(redis_cluster: Any) -> None:
    client = redis_cluster.client()

    async def main() -> list[Any]:
        cache = AsyncRedisCache(client=client, namespace=f"test-{uuid.uuid4().hex}")
        try:
            await cache.set("k", {"v": 1}, tag="t")
            found = [await cache.get("k"), await cache.evict("t"), await cache.get("k")]
            return [*found, repr(cache).startswith("AsyncRedisCache('redis-cluster://")]
        finally:
            await cache.clear()
            await cache.close()

    assert asyncio.run(main()) == [{"v": 1}, 1, None, True]
    assert client.ping()


def test_cluster_true_opens_a_cluster_client_without_asking(redis_cluster: Any) -> None:
    cache = RedisCache(redis_cluster.url, cluster=True, namespace=f"test-{uuid.uuid4().hex}")
    assert cache._shared.cluster is True
    cache.set("k", 1)
    assert isinstance(cache.client, RedisCluster) and cache["k"] == 1
    cache.clear()
    cache.close()
    with pytest.raises(TypeError, match="cluster"):
        RedisCache(redis_cluster.url, cluster="yes")  # type: ignore[arg-type]


def test_cluster_false_on_a_cluster_node_says_how_to_open_it(redis_cluster: Any) -> None:
    cache = RedisCache(redis_cluster.url, cluster=False)
    with pytest.raises(diskstore.StorageError, match="cluster=True"):
        for number in range(20):  # some keys hash to the node asked: others are MOVED
            cache.set(number, number)
    cache.close()


def test_an_async_cache_on_a_cluster(redis_cluster: Any) -> None:
    namespace = f"test-{uuid.uuid4().hex}"

    async def main() -> list[Any]:
        async with AsyncRedisCache(redis_cluster.url, namespace=namespace) as cache:
            for number in range(30):
                await cache.set(number, number, tag="t" if number < 10 else None)
            found = [await cache.get(number) for number in range(30)]
            count = await cache.length()
            evicted = await cache.evict("t")
            view = cache.namespace("view")
            await view.set("v", 1)
            cleared = await cache.clear()
            return [found, count, evicted, await view.get("v"), cleared, await view.clear()]

    assert asyncio.run(main()) == [list(range(30)), 30, 10, 1, 20, 1]


# -- the near cache ------------------------------------------------------------------------


def test_near_cache_hears_invalidations_from_every_master(redis_cluster: Any) -> None:
    namespace = f"test-{uuid.uuid4().hex}"
    near = RedisCache(redis_cluster.url, namespace=namespace, near_items=1000)
    other = RedisCache(redis_cluster.url, namespace=namespace)
    keys = list(range(60))
    masters = {_master_of(other.client, other._codec.item_key(key)) for key in keys}
    assert len(masters) == 3
    assert _eventually(lambda: near._shared.near.ready)
    for key in keys:
        other.set(key, "old")
    assert _eventually(
        lambda: [near.get(key) for key in keys] == ["old"] * 60 and len(near._shared.near) == 60
    )
    for key in keys:
        other.set(key, "new")  # another machine writes, on every master
    assert _eventually(lambda: [near.get(key) for key in keys] == ["new"] * 60)
    near.clear()
    near.close()
    other.close()


# -- naming the server in errors -----------------------------------------------------------


def test_errors_name_the_server_of_a_given_client() -> None:
    port = free_port()
    cache = RedisCache(client=redis.Redis(port=port, socket_connect_timeout=1))
    with pytest.raises(diskstore.ServerUnavailableError, match=f"redis://localhost:{port}/0"):
        cache.get("k")
    assert repr(cache) == f"RedisCache('redis://localhost:{port}/0')"


def test_errors_name_the_nodes_of_a_given_cluster_client(redis_cluster: Any) -> None:
    client = redis_cluster.client(socket_timeout=1, socket_connect_timeout=1)
    cache = RedisCache(client=client, namespace=f"test-{uuid.uuid4().hex}")
    client.hset(cache._codec.item_key("k"), "x", 1)  # a hash where an item string goes
    with pytest.raises(diskstore.StorageError) as raised:
        cache.get("k")
    for host, port in redis_cluster.startup_nodes:
        assert f"{host}:{port}" in str(raised.value)
        assert f"{host}:{port}" in repr(cache)
    assert "localhost:6379" not in str(raised.value)
    client.delete(cache._codec.item_key("k"))
