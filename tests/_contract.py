"""The ``backend`` fixture: one behaviour suite, run on every storage backend.

A test that takes ``backend`` runs on the SQLite :class:`diskstore.Cache`, on
:class:`diskstore.redis.RedisCache` against a real redis-server and against a real 3-master
Redis Cluster, and on both with a near cache (every cache object opened has its own, as on
separate machines). Each run gets a fresh,
empty cache (a new directory, or a new namespace on the shared server); ``backend.open()``
opens another cache object on the same storage, as a second machine would.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import diskstore

BACKENDS = ["sqlite", "redis", "redis-near", "redis-cluster", "redis-cluster-near"]


class Backend:
    """Opens caches on one backend's fresh storage and closes them afterwards."""

    def __init__(self, name: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self.name = name
        self.opened: list[Any] = []
        if name.startswith("redis"):
            fixture = "redis_cluster" if name.startswith("redis-cluster") else "redis_server"
            self.url = request.getfixturevalue(fixture).url
            self.where = f"test-{uuid.uuid4().hex}"
        else:
            self.where = str(tmp_path / "cache")

    def open(self, **options: Any) -> Any:
        """Another cache object on the same storage."""
        cache: Any
        if self.name.startswith("redis"):
            from diskstore.redis import RedisCache

            if self.name.endswith("-near"):
                options.setdefault("near_items", 1000)
            cache = RedisCache(self.url, namespace=self.where, **options)
        else:
            cache = diskstore.Cache(self.where, **options)
        self.opened.append(cache)
        return cache

    def close(self) -> None:
        for index, cache in enumerate(self.opened):
            if self.name.startswith("redis") and index == 0:
                cache.clear()
            cache.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    opened = Backend(request.param, tmp_path, request)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def store(backend: Backend) -> Any:
    """A fresh, empty cache on the backend under test."""
    return backend.open()


@pytest.fixture(params=["sqlite", *BACKENDS[1:]])
def async_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Opens ``AsyncCache`` or ``AsyncRedisCache`` objects on one fresh storage."""
    if request.param.startswith("redis"):
        from diskstore.redis import AsyncRedisCache

        cluster = request.param.startswith("redis-cluster")
        url = request.getfixturevalue("redis_cluster" if cluster else "redis_server").url
        namespace = f"test-{uuid.uuid4().hex}"
        near = {"near_items": 1000} if request.param.endswith("-near") else {}

        def opener() -> Any:
            return AsyncRedisCache(url, namespace=namespace, **near)
    else:

        def opener() -> Any:
            return diskstore.AsyncCache(str(tmp_path / "cache"))

    yield opener
    if request.param.startswith("redis"):
        from diskstore.redis import RedisCache

        with RedisCache(url, namespace=namespace) as leftover:
            leftover.clear()
