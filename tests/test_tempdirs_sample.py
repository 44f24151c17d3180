"""Tests that make temporary directories every way the suite does (run by test_tempdirs)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import diskstore


def test_a_cache_without_a_directory(tmp_path: Path) -> None:
    with diskstore.Cache() as cache:  # a new directory from tempfile
        cache["k"] = {"pickled": True}  # and a secret file in the config directory
        assert cache.directory.startswith(tempfile.gettempdir())
    (tmp_path / "file").write_text("x")


def test_a_mkdtemp_left_for_the_run_to_remove() -> None:
    assert Path(tempfile.mkdtemp(prefix="diskstore-left-")).is_dir()


def test_a_child_process_making_a_cache() -> None:
    code = "import diskstore; diskstore.Cache()['k'] = [1]"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
