"""A test run leaves nothing behind in the system's temporary directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(300)
def test_a_test_run_leaves_no_directory_in_the_temp_dir(tmp_path: Path) -> None:
    temp = tmp_path / "system-temp"
    temp.mkdir()
    env = dict(os.environ, TMPDIR=str(temp))
    env.pop("XDG_CONFIG_HOME", None)
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_tempdirs_sample.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "3 passed" in completed.stdout
    assert sorted(os.listdir(temp)) == []
