"""diskstore on a Redis (or Valkey) server: ``pip install diskstore[redis]``.

:class:`RedisCache` has the :class:`~diskstore.Cache` API and storage format (signed,
compressed payloads), so ``memoize``, ``TaskCache`` and single flight work across machines.
See ``docs/redis.md``.
"""

from __future__ import annotations

from ._lock import RedisLock
from .async_cache import AsyncRedisCache
from .cache import RedisCache

__all__ = ["AsyncRedisCache", "RedisCache", "RedisLock"]
