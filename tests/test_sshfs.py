"""Network filesystems for real: a cache on sshfs, mounted twice to stand in for two machines.

Detection, refusal by default, the ``single-host`` opt-in, a second mount refused by the
lease (a lock taken through one sshfs mount never reaches the other, exactly as between two
NFS clients), a lease that its holder keeps renewing, and one freed when its holder is
killed. See tests/_sshfs.py for the server; tests/reliability/test_netfs_soak.py has the
on-demand corruption soak.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import diskstore
from diskstore._cli import main as cli_main
from diskstore._fs import _filesystems, _lease
from diskstore._storage._store import DB_NAME

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def mounts() -> Iterator[tuple[str, str]]:
    """Two sshfs mounts, ``a`` and ``b``, of one shared directory."""
    from _sshfs import SshfsServer

    server = SshfsServer()
    try:
        yield server.mount("a"), server.mount("b")
    finally:
        server.close()


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A directory name of the share for this test alone."""
    return request.node.name.replace("[", "-").replace("]", "")


@pytest.fixture(autouse=True)
def _forget_leases() -> Iterator[None]:
    yield
    for lease in list(_lease.Lease._held.values()):
        lease.users = 1
        lease.release()
    _filesystems.NETWORK_DIRECTORIES.clear()


HOLDER = textwrap.dedent("""
    import sys, time
    import diskstore
    cache = diskstore.Cache(sys.argv[1], network_fs="single-host")
    cache.incr("opened")
    print("holding", flush=True)
    sys.stdin.readline()
    cache.close()
""")


def _holder(directory: str, **env: str) -> subprocess.Popen[str]:
    """A process that opens *directory* and keeps it open until told (or killed)."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, directory],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, **env},
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line == "holding\n", line
    return process


def test_detected_as_sshfs(mounts: tuple[str, str]) -> None:
    a, b = mounts
    for point in (a, b):
        mount = _filesystems.detect(point)
        assert mount is not None
        assert (mount.fs_type, mount.mount_point, mount.network) == ("fuse.sshfs", point, True)
    assert _filesystems.detect(a).device != _filesystems.detect(b).device  # type: ignore[union-attr]


def test_refused_by_default(mounts: tuple[str, str], name: str) -> None:
    directory = os.path.join(mounts[0], name)
    for opener in (
        lambda: diskstore.Cache(directory),
        lambda: diskstore.FanoutCache(directory),
        lambda: diskstore.Deque(directory=directory),
        lambda: diskstore.Index(directory),
    ):
        with pytest.raises(diskstore.NetworkFilesystemError) as caught:
            opener()
        assert caught.value.fs_type == "fuse.sshfs"
        assert caught.value.mount_point == mounts[0]
        assert "network_fs='single-host'" in str(caught.value)
    assert not Path(directory, DB_NAME).exists()


def test_single_host_opt_in(mounts: tuple[str, str], name: str) -> None:
    directory = os.path.join(mounts[0], name)
    with diskstore.Cache(directory, network_fs="single-host", memory_items=10) as cache:
        cache.set("small", "value")
        cache.set("large", b"x" * 300_000)
        assert cache.incr("counter") == 1
        assert cache["small"] == "value" and cache["large"] == b"x" * 300_000
        assert cache.sqlite_journal_mode == "delete" and cache.sqlite_mmap_size == 0
        assert not os.path.exists(os.path.join(directory, DB_NAME + "-wal"))
        assert not os.path.exists(os.path.join(directory, DB_NAME + "-shm"))
        assert cache.check() == []
    # Processes of one client share the lease and the database.
    holders = [_holder(directory) for _ in range(2)]
    try:
        lease = json.loads(Path(directory, "cache.db-lease").read_text())
        assert {holder.pid for holder in holders} <= set(lease["pids"])
    finally:
        for holder in holders:
            holder.communicate("\n", timeout=60)
    with diskstore.Cache(directory, network_fs="single-host") as cache:
        assert cache["opened"] == 2


def test_second_mount_refused(mounts: tuple[str, str], name: str) -> None:
    a, b = mounts
    holder = _holder(os.path.join(a, name))
    try:
        with pytest.raises(diskstore.NetworkFilesystemError, match="another mount") as caught:
            diskstore.Cache(os.path.join(b, name), network_fs="single-host")
        assert a in str(caught.value) and str(holder.pid) in str(caught.value)
        assert cli_main(["stats", os.path.join(b, name), "--network-fs", "single-host"]) == 1
    finally:
        holder.communicate("\n", timeout=60)
    # Its holder gone, the other mount may open it (and the first is then refused).
    with diskstore.Cache(os.path.join(b, name), network_fs="single-host") as cache:
        assert cache["opened"] == 1
        with pytest.raises(diskstore.NetworkFilesystemError, match="another mount"):
            diskstore.Cache(os.path.join(a, name), network_fs="single-host")


def test_lease_renewed_while_open(mounts: tuple[str, str], name: str) -> None:
    a, b = mounts
    holder = _holder(os.path.join(a, name), DISKSTORE_LEASE_SECONDS="1.5")
    try:
        first = json.loads(Path(a, name, "cache.db-lease").read_text())["renewed"]
        time.sleep(2.5)  # longer than the lease lives without renewal
        renewed = json.loads(Path(a, name, "cache.db-lease").read_text())["renewed"]
        assert renewed > first
        with pytest.raises(diskstore.NetworkFilesystemError, match="another mount"):
            diskstore.Cache(os.path.join(b, name), network_fs="single-host")
    finally:
        holder.communicate("\n", timeout=60)


def test_lease_freed_by_a_killed_holder(mounts: tuple[str, str], name: str) -> None:
    a, b = mounts
    holder = _holder(os.path.join(a, name))
    os.kill(holder.pid, signal.SIGKILL)
    holder.communicate()
    assert Path(a, name, "cache.db-lease").exists()  # left behind by the killed holder
    with diskstore.Cache(os.path.join(b, name), network_fs="single-host") as cache:
        assert cache.incr("opened") == 2
        assert cache.check() == []
        lease = json.loads(Path(b, name, "cache.db-lease").read_text())
        assert lease["mount_point"] == b and lease["pids"] == [os.getpid()]


def test_an_expired_lease_of_another_host_is_taken_over(mounts: tuple[str, str], name: str) -> None:
    a, _ = mounts
    directory = os.path.join(a, name)
    os.mkdir(directory)
    other = {
        "host": "elsewhere", "boot_id": "another-boot", "device": "0:1", "mount_point": "/m",
        "fs_type": "nfs4", "pid_namespace": 1, "pids": [1], "seconds": 30.0,
    }  # fmt: skip
    Path(directory, "cache.db-lease").write_text(json.dumps({**other, "renewed": time.time()}))
    with pytest.raises(diskstore.NetworkFilesystemError, match="'elsewhere'"):
        diskstore.Cache(directory, network_fs="single-host")
    Path(directory, "cache.db-lease").write_text(json.dumps({**other, "renewed": time.time() - 60}))
    with diskstore.Cache(directory, network_fs="single-host") as cache:
        cache["k"] = 1
