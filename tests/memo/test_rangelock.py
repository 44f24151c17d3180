"""Tests for diskstore._memo._rangelock: per-key single-flight locks as bytes of one shared file."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import diskstore
from diskstore._common._constants import ENOVAL
from diskstore._memo import _rangelock
from diskstore._memo._rangelock import FLIGHT_FILE, RangeFlightLock, RangeLocks, offset_of
from diskstore._memo._singleflight import SingleFlight

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(not _rangelock.range_locks_supported(), reason="no POSIX record locks"),
]

TOKEN = "a1b2c3d4e5f6" + "0" * 52

# Holds one byte of a file with a record lock until its stdin closes.
_HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.lockf(fd, fcntl.LOCK_EX, 1, int(sys.argv[2]))
print("held", flush=True)
sys.stdin.read()
"""


def _locks(tmp_path: Path) -> RangeLocks:
    return RangeLocks(str(tmp_path / FLIGHT_FILE), str(tmp_path / "cache.db-locks"))


def _hold_in_process(path: Path, offset: int) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path), str(offset)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_offsets_are_stable_and_spread() -> None:
    assert offset_of(TOKEN) == int(TOKEN[:12], 16)
    assert offset_of("k") == offset_of("k") != offset_of("j")
    assert 0 <= offset_of("not hex at all, but long enough") < 2**48


def test_a_free_byte_is_taken_at_once_without_files_per_key(tmp_path: Path) -> None:
    locks = _locks(tmp_path)
    for token in ("a" * 40, "b" * 40, "c" * 40):
        lock = locks(token)
        assert lock.acquire(5)
        assert isinstance(lock, RangeFlightLock) and not lock.waited
        lock.release()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.db-flight", "cache.db-locks"]
    assert list((tmp_path / "cache.db-locks").iterdir()) == []


def test_a_byte_held_by_another_process_makes_the_caller_wait(tmp_path: Path) -> None:
    locks = _locks(tmp_path)
    with _hold_in_process(tmp_path / FLIGHT_FILE, offset_of(TOKEN)) as holder:
        lock = locks(TOKEN)
        assert not lock.acquire(0.2)  # busy: gives up after the timeout
        other = locks("f" * 40)  # another key is free meanwhile
        assert other.acquire(1)
        other.release()
        threading.Timer(0.3, holder.communicate).start()  # the holder exits
        start = time.monotonic()
        lock = locks(TOKEN)
        assert lock.acquire(20)
        assert lock.waited and time.monotonic() - start < 10
        lock.release()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_killed_holder_releases_its_byte(tmp_path: Path) -> None:
    locks = _locks(tmp_path)
    with _hold_in_process(tmp_path / FLIGHT_FILE, offset_of(TOKEN)) as holder:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    lock = locks(TOKEN)
    assert lock.acquire(5)
    lock.release()


def test_threads_of_one_process_exclude_each_other_across_factories(tmp_path: Path) -> None:
    first, second = _locks(tmp_path), _locks(tmp_path)  # two memoized functions, one cache
    held = first(TOKEN)
    assert held.acquire(5)
    result: list[bool] = []
    waiter = threading.Thread(target=lambda: result.append(second(TOKEN).acquire(0.2)))
    waiter.start()
    waiter.join()
    assert result == [False]
    taken: list[Any] = []

    def wait_then_take() -> None:
        lock = second(TOKEN)
        taken.append(lock.acquire(20))
        taken.append(lock)

    waiter = threading.Thread(target=wait_then_take)
    waiter.start()
    time.sleep(0.1)
    held.release()
    waiter.join()
    assert taken[0] is True and taken[1].waited
    taken[1].release()


def test_filesystems_refusing_record_locks_get_lock_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(_rangelock.fcntl, "lockf", refuse)
    locks = _locks(tmp_path)
    lock = locks(TOKEN)
    assert lock.acquire(5)
    assert lock.waited  # a lock file cannot tell: the caller looks again
    assert (tmp_path / "cache.db-locks" / f"{TOKEN}.lock").exists()
    lock.release()
    assert list((tmp_path / "cache.db-locks").iterdir()) == []


def test_a_leader_looks_again_after_waiting_or_a_write(tmp_path: Path) -> None:
    flight = SingleFlight(_locks(tmp_path), timeout=20)
    looks: list[int] = []

    def lookup() -> Any:
        looks.append(1)
        return ENOVAL

    # Taken at once, and the cache unchanged since the caller looked: nothing to look for.
    assert flight.run(TOKEN, lookup, lambda: 1, lambda: True) == (1, True)
    assert looks == []
    # Taken at once, but something was written since: another process may have stored the
    # key and let go of the lock in between.
    assert flight.run(TOKEN, lookup, lambda: 2, lambda: False) == (2, True)
    assert looks == [1]
    assert flight.run(TOKEN, lookup, lambda: 3) == (3, True)  # unknown: look again
    assert looks == [1, 1]
    with _hold_in_process(tmp_path / FLIGHT_FILE, offset_of(TOKEN)) as holder:
        threading.Timer(0.3, holder.communicate).start()
        assert flight.run(TOKEN, lambda: "stored meanwhile", lambda: 2) == (
            "stored meanwhile",
            False,
        )


def test_memoize_on_a_cache_uses_the_flight_file(tmp_path: Path) -> None:
    with diskstore.Cache(str(tmp_path / "cache")) as cache:

        @cache.memoize()
        def double(x: int) -> int:
            return 2 * x

        assert [double(i) for i in range(5)] == [0, 2, 4, 6, 8]
        names = sorted(p.name for p in (tmp_path / "cache").iterdir())
        assert "cache.db-flight" in names
        assert not list((tmp_path / "cache" / "cache.db-locks").iterdir())
        assert len(cache) == 5  # the locks are no entries
        assert sorted(cache) == sorted(double.__cache_key__(i) for i in range(5))
