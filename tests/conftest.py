"""Shared fixtures.

The default signing secret lives in the user's config directory; tests point
``XDG_CONFIG_HOME`` at a private directory so they never touch the real one (child
processes inherit it through the environment).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import diskstore

#: The ``backend`` and ``store`` fixtures of the shared behaviour suite.
pytest_plugins = ["_contract"]

_CONFIG = tempfile.mkdtemp(prefix="diskstore-test-config-")
os.environ["XDG_CONFIG_HOME"] = _CONFIG
os.environ.pop("DISKSTORE_SECRET", None)


@pytest.fixture
def cache_dir(tmp_path: Path) -> str:
    return str(tmp_path / "cache")


@pytest.fixture
def cache(cache_dir: str) -> Iterator[diskstore.Cache]:
    with diskstore.Cache(cache_dir) as opened:
        yield opened


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Any]:
    """One real redis-server shared by the session's Redis tests (each uses its own
    namespace); tests that stop or reconfigure a server start their own."""
    from _redis_server import RedisServer

    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()
