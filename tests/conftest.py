"""Shared fixtures, and a private temporary directory for the whole run.

Everything a test run writes to a temporary directory (``tempfile``, caches opened without a
directory, pytest's ``tmp_path``, child processes, which inherit ``TMPDIR``) goes below one
directory made for the run and removed when it ends, so a run leaves nothing behind in the
system's temporary directory. ``tests/test_tempdirs.py`` checks that.

The default signing secret lives in the user's config directory; tests point
``XDG_CONFIG_HOME`` at a private directory inside it so they never touch the real one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import diskstore

#: The ``backend`` and ``store`` fixtures of the shared behaviour suite.
pytest_plugins = ["_contract"]

_RUN_DIR = tempfile.mkdtemp(prefix="diskstore-tests-")
# Traversable but not listable by others, like /tmp for what matters here: the read-only
# tests hand an unprivileged user a path below it (everything inside stays private).
os.chmod(_RUN_DIR, 0o711)
os.environ["TMPDIR"] = _RUN_DIR
tempfile.tempdir = _RUN_DIR
_CONFIG = tempfile.mkdtemp(prefix="diskstore-test-config-")
os.environ["XDG_CONFIG_HOME"] = _CONFIG
os.environ.pop("DISKSTORE_SECRET", None)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if not config.option.basetemp:
        config.option.basetemp = os.path.join(_RUN_DIR, "pytest")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_RUN_DIR, ignore_errors=True)


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


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[Any]:
    """One real 3-master Redis Cluster shared by the session's cluster tests."""
    from _redis_cluster import RedisClusterProcess

    cluster = RedisClusterProcess(masters=3).start()
    try:
        yield cluster
    finally:
        cluster.stop()
