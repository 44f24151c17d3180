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

import pytest

import diskstore

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
