"""Ctrl-C stops a long command with one line saying what it had done, and exit status 130.

A real ``python -m diskstore`` process works on a cache large enough to still be running
when SIGINT arrives; the test waits for the command's own progress (rows gone from the
database, the progress bar on a terminal) rather than for a fixed time.
"""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import diskstore

ROOT = Path(__file__).resolve().parent.parent
ITEMS = 200_000
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = str(tmp_path_factory.mktemp("interrupt") / "cache")
    with diskstore.Cache(directory) as cache:
        with cache.transact(retry=True):
            for i in range(ITEMS):
                cache[i] = i
    return directory


@pytest.fixture
def copy(big: str, tmp_path: Path) -> str:
    target = str(tmp_path / "cache")
    shutil.copytree(big, target)
    return target


def _plain_count(directory: str) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{directory}/cache.db?mode=ro", uri=True)) as con:
        return int(con.execute("SELECT value FROM Settings WHERE key = 'count'").fetchone()[0])


def _interrupt_when(
    argv: list[str], started: Callable[[bytes], bool], *, terminal: bool
) -> tuple[int, str]:
    """Run ``python -m diskstore *argv*``; send SIGINT once *started* says the work is under
    way (given the output so far); return the exit status and everything it printed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if terminal:
        leader, follower = pty.openpty()
        process = subprocess.Popen(
            [sys.executable, "-m", "diskstore", *argv],
            stdout=follower,
            stderr=follower,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        os.close(follower)
    else:
        leader = -1
        process = subprocess.Popen(
            [sys.executable, "-m", "diskstore", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    output = b""
    sent = False
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if terminal:
                ready, _, _ = select.select([leader], [], [], 0.01)
                if ready:
                    try:
                        chunk = os.read(leader, 65536)
                    except OSError:  # EIO: the other side closed
                        break
                    if not chunk:
                        break
                    output += chunk
            elif process.poll() is not None:
                break
            if not sent and started(output):
                process.send_signal(signal.SIGINT)
                sent = True
            if not terminal:
                time.sleep(0.005)
        status = process.wait(timeout=120)
        if not terminal:
            assert process.stdout is not None
            output += process.stdout.read()
    finally:
        if terminal:
            os.close(leader)
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    assert sent, "the command finished before it could be interrupted"
    return status, output.decode("utf-8", "replace")


def test_ctrl_c_during_clear_says_how_many_it_removed(copy: str) -> None:
    status, output = _interrupt_when(
        ["clear", copy], lambda _output: _plain_count(copy) < ITEMS, terminal=False
    )
    assert status == 130, output
    assert "Traceback" not in output
    lines = output.splitlines()
    assert len(lines) == 1, output
    match = re.fullmatch(
        r"diskstore clear: interrupted: removed (\d+) item\(s\) before stopping; run it "
        r"again to remove the rest",
        lines[0],
    )
    assert match, lines[0]
    with diskstore.Cache(copy) as cache:
        remaining = len(cache)
    assert 0 < int(match.group(1)) == ITEMS - remaining
    assert remaining > 0


def test_ctrl_c_during_check_says_how_far_it_got(copy: str) -> None:
    progress = re.compile(rb"checking:\s+\d+%.*?\b([1-9]\d*)/200000")
    status, output = _interrupt_when(
        ["check", copy, "--fix"], lambda out: progress.search(out) is not None, terminal=True
    )
    assert status == 130, output
    assert "Traceback" not in output
    last = output.replace("\r", "\n").strip().splitlines()[-1]
    match = re.fullmatch(
        r"diskstore check: interrupted: checked (\d+) of 200000 item\(s\), found 0 "
        r"problem\(s\); nothing was repaired",
        last,
    )
    assert match, output[-500:]
    assert 0 < int(match.group(1)) < ITEMS
