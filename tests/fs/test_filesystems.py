"""Network filesystems: detection at open, refusal by default, the single-host lease.

The parser runs on real ``/proc/self/mountinfo`` lines (fixtures below, as Linux writes them
for those filesystems); detection also runs on this machine's own mounts, through procfs and
through the ``statfs`` fallback. Refusal and the lease are driven here by a directory said to
be on a network filesystem (``detect`` patched); tests/test_sshfs.py repeats them on a real
sshfs mount.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import diskstore
from diskstore._cli import main as cli_main
from diskstore._fs import _filesystems, _lease
from diskstore._fs._filesystems import Mount, detect, is_network, mount_of, parse_mountinfo
from diskstore._storage._store import DB_NAME

#: Lines of real mountinfo files: NFS v3 and v4, CIFS/SMB, sshfs (new and old style), 9p (WSL),
#: s3fs, gcsfuse, rclone, CephFS, GlusterFS, Lustre, GPFS, BeeGFS, and local ones (ext4,
#: tmpfs, overlay, fuseblk, gocryptfs), a mount point with a space, and two stacked mounts.
MOUNTINFO = (Path(__file__).parent.parent / "fixtures" / "mountinfo.txt").read_text()

MOUNTS = parse_mountinfo(MOUNTINFO)


@pytest.mark.parametrize(
    ("path", "mount_point", "fs_type", "network"),
    [
        ("/home/ann/cache", "/", "ext4", False),
        ("/mnt/nfs/cache", "/mnt/nfs", "nfs4", True),
        ("/mnt/nfs", "/mnt/nfs", "nfs4", True),
        ("/mnt/nfs3/a/b", "/mnt/nfs3", "nfs", True),  # not /mnt/nfs: whole components only
        ("/mnt/nfsx/cache", "/", "ext4", False),
        ("/home/ann/remote/c", "/home/ann/remote", "fuse.sshfs", True),
        ("/mnt/smb/x", "/mnt/smb", "cifs", True),
        ("/mnt/smb3/x", "/mnt/smb3", "smb3", True),
        ("/mnt/with space/cache", "/mnt/with space", "nfs4", True),
        ("/mnt/with space/local/cache", "/mnt/with space/local", "ext4", False),
        ("/mnt/c/Users", "/mnt/c", "9p", True),
        ("/mnt/bucket/k", "/mnt/bucket", "fuse.s3fs", True),
        ("/mnt/gcs/k", "/mnt/gcs", "fuse.gcsfuse", True),
        ("/mnt/rclone/k", "/mnt/rclone", "fuse.rclone", True),
        ("/mnt/cephfs/k", "/mnt/cephfs", "ceph", True),
        ("/mnt/gluster/k", "/mnt/gluster", "fuse.glusterfs", True),
        ("/lustre/project", "/lustre", "lustre", True),
        ("/gpfs/project", "/gpfs", "gpfs", True),
        ("/mnt/beegfs/project", "/mnt/beegfs", "beegfs", True),
        ("/media/usb/cache", "/media/usb", "fuseblk", False),
        ("/home/ann/vault/cache", "/home/ann/vault", "fuse.gocryptfs", False),
        ("/mnt/old-sshfs/cache", "/mnt/old-sshfs", "fuse", True),
        ("/mnt/stacked/cache", "/mnt/stacked", "nfs4", True),  # the last mounted is on top
        ("/dev/shm/cache", "/dev/shm", "tmpfs", False),
        ("/var/lib/docker/overlay2/abc/merged/x", "/var/lib/docker/overlay2/abc/merged",
         "overlay", False),
    ],
)  # fmt: skip
def test_mountinfo_longest_prefix(path: str, mount_point: str, fs_type: str, network: bool) -> None:
    mount = mount_of(path, MOUNTS)
    assert mount is not None
    assert (mount.mount_point, mount.fs_type, mount.network) == (mount_point, fs_type, network)


def test_mountinfo_fields() -> None:
    nfs = mount_of("/mnt/nfs/x", MOUNTS)
    assert nfs == Mount("/mnt/nfs", "nfs4", "fileserver:/export/home", "0:50", 101)
    assert mount_of("/mnt/c", MOUNTS).source == "C:\\"  # type: ignore[union-attr]
    old = mount_of("/mnt/old-sshfs/a", MOUNTS)
    assert old is not None and old.type_name == "fuse.sshfs"
    # Malformed lines are skipped, not fatal.
    assert parse_mountinfo("garbage\n1 2 3\n\n") == []


@pytest.mark.parametrize(
    ("fs_type", "source", "network"),
    [
        ("nfs", "", True), ("NFS4", "", True), ("cifs", "", True), ("smbfs", "", True),
        ("9p", "", True), ("fuse.sshfs", "", True), ("fuse.juicefs", "", True),
        ("fuse.mountpoint-s3", "", True), ("fuse", "s3fs", True), ("fuse", "gcsfuse", True),
        ("ext4", "", False), ("xfs", "", False), ("btrfs", "", False), ("zfs", "", False),
        ("tmpfs", "", False), ("overlay", "", False), ("fuse.lxcfs", "", False),
        ("fuse.bindfs", "", False), ("fuse", "/dev/sdb1", False), ("apfs", "", False),
    ],
)  # fmt: skip
def test_is_network(fs_type: str, source: str, network: bool) -> None:
    assert is_network(fs_type, source) is network


def _procfs_mount(path: str) -> Mount:
    mount = detect(path)
    assert mount is not None
    return mount


def test_detect_on_this_machine(tmp_path: Path) -> None:
    mount = _procfs_mount(str(tmp_path))
    assert os.path.realpath(str(tmp_path)).startswith(mount.mount_point)
    info = os.stat(tmp_path)
    assert mount.device == f"{os.major(info.st_dev)}:{os.minor(info.st_dev)}"
    assert not mount.network  # the test run's temporary directory is local
    proc = _procfs_mount("/proc/self")
    assert (proc.mount_point, proc.fs_type) == ("/proc", "proc")


def test_detect_follows_symbolic_links(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to("/proc")
    assert _procfs_mount(str(link)).fs_type == "proc"


@pytest.mark.skipif(sys.platform != "linux", reason="statfs magic numbers are Linux's")
def test_statfs_fallback_without_procfs(tmp_path: Path) -> None:
    real = _procfs_mount(str(tmp_path))
    fallback = detect(str(tmp_path), mountinfo=str(tmp_path / "no-procfs"))
    assert fallback is not None
    assert fallback.device == real.device
    if real.fs_type in ("ext4", "xfs", "btrfs", "tmpfs", "overlay"):
        assert fallback.fs_type == real.fs_type
        assert fallback.mount_point == real.mount_point
    shm = detect("/dev/shm", mountinfo=str(tmp_path / "no-procfs"))
    if shm is not None and _procfs_mount("/dev/shm").fs_type == "tmpfs":
        assert shm.fs_type == "tmpfs"


def test_statfs_layouts() -> None:
    linux = (0x6969).to_bytes(8, sys.byteorder) + bytes(200)
    assert _filesystems.type_from_statfs(linux, "linux")[0] == "nfs"
    mac = bytearray(2200)
    mac[72:77] = b"smbfs"
    mac[88:98] = b"/Volumes/x"
    assert _filesystems.type_from_statfs(bytes(mac), "darwin") == ("smbfs", "/Volumes/x")
    assert is_network("smbfs") and is_network("nfs") and not is_network("apfs")


# -- refusal and the keyword ----------------------------------------------------------------
SSHFS = Mount("/mnt/share", "fuse.sshfs", "ann@build:/srv", "0:99", 7)


@pytest.fixture
def on_network(monkeypatch: pytest.MonkeyPatch) -> Mount:
    """Every directory is said to be on an sshfs mount."""
    monkeypatch.setattr(_filesystems, "detect", lambda directory, *a, **k: SSHFS)
    return SSHFS


def test_refused_by_default(tmp_path: Path, on_network: Mount) -> None:
    with pytest.raises(diskstore.NetworkFilesystemError) as caught:
        diskstore.Cache(str(tmp_path / "c"))
    message = str(caught.value)
    for part in ("fuse.sshfs", "/mnt/share", "local disk", "Redis", "network_fs='single-host'"):
        assert part in message
    assert caught.value.fs_type == "fuse.sshfs"
    assert caught.value.mount_point == "/mnt/share"
    assert isinstance(caught.value, diskstore.DiskStoreError)
    assert not (tmp_path / "c" / "cache.db-lease").exists()


@pytest.mark.parametrize(
    "opener",
    [
        lambda d, **k: diskstore.Cache(d, **k),
        lambda d, **k: diskstore.FanoutCache(d, shards=2, **k),
        lambda d, **k: diskstore.Deque(directory=d, **k),
        lambda d, **k: diskstore.Index(d, **k),
    ],
    ids=["Cache", "FanoutCache", "Deque", "Index"],
)
def test_every_collection_refuses_and_opts_in(
    tmp_path: Path, on_network: Mount, opener: Any
) -> None:
    with pytest.raises(diskstore.NetworkFilesystemError):
        opener(str(tmp_path / "refused"))
    with pytest.raises(ValueError, match="network_fs"):
        opener(str(tmp_path / "bad"), network_fs="yes")
    opened = opener(str(tmp_path / "ok"), network_fs="single-host")
    cache = opened.cache if hasattr(opened, "cache") and not callable(opened.cache) else opened
    if isinstance(opened, diskstore.FanoutCache):
        opened["k"] = 1
        assert opened["k"] == 1
        assert opened.sqlite_journal_mode == "delete"
        sub = opened.cache("sub")
        assert sub.sqlite_journal_mode == "delete"
        opened.close()
        return
    assert cache.sqlite_journal_mode == "delete"
    assert cache.sqlite_mmap_size == 0
    cache.close()


def test_keyword_validated_on_a_local_directory(tmp_path: Path) -> None:
    for bad in ("", "Refuse", None, 1, "single_host"):
        with pytest.raises(ValueError, match="network_fs"):
            diskstore.Cache(str(tmp_path / "c"), network_fs=bad)
    assert not (tmp_path / "c").exists()
    with diskstore.Cache(str(tmp_path / "c"), network_fs="single-host") as cache:
        # On a local filesystem the keyword changes nothing.
        assert cache.sqlite_journal_mode == "wal"
        assert not (tmp_path / "c" / "cache.db-lease").exists()


def test_single_host_mode(tmp_path: Path, on_network: Mount) -> None:
    directory = str(tmp_path / "c")
    with diskstore.Cache(directory, network_fs="single-host", memory_items=100) as cache:
        cache.set("a", 1)
        assert cache["a"] == 1 and cache["a"] == 1  # the memory tier serves the second
        assert cache.sqlite_journal_mode == "delete"
        assert cache.sqlite_mmap_size == 0
        assert not os.path.exists(os.path.join(directory, DB_NAME + "-wal"))
        counter = cache._store.changes
        assert counter is not None and not hasattr(counter, "_map")  # not memory-mapped
        lease = json.loads(Path(directory, "cache.db-lease").read_text())
        assert lease["pids"] == [os.getpid()]
        assert lease["fs_type"] == "fuse.sshfs" and lease["mount_point"] == "/mnt/share"
        assert lease["boot_id"] == _filesystems.boot_id()
        assert lease["host"] == os.uname().nodename
        pickled = __import__("pickle").loads(__import__("pickle").dumps(cache))
        assert pickled["a"] == 1
        pickled.close()
    with pytest.raises(diskstore.SettingsError, match="wal"):
        diskstore.Cache(directory, network_fs="single-host", sqlite_journal_mode="wal")
    with pytest.raises(diskstore.SettingsError, match="mmap"):
        diskstore.Cache(directory, network_fs="single-host", sqlite_mmap_size=2**20)


def test_a_wal_database_moves_to_a_rollback_journal(tmp_path: Path, monkeypatch: Any) -> None:
    directory = str(tmp_path / "c")
    with diskstore.Cache(directory) as cache:
        cache["k"] = "v"
    monkeypatch.setattr(_filesystems, "detect", lambda directory, *a, **k: SSHFS)
    with diskstore.Cache(directory, network_fs="single-host") as cache:
        assert cache["k"] == "v"
        con = cache._store.connect_thread().con
        assert con is not None
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def _write_lease(directory: str, **fields: Any) -> None:
    os.makedirs(directory, exist_ok=True)
    data = {
        "host": "other-host", "boot_id": "0000", "device": "0:1", "mount_point": "/mnt/x",
        "fs_type": "nfs4", "pid_namespace": 1, "pids": [1], "renewed": time.time(),
        "seconds": 30.0, **fields,
    }  # fmt: skip
    Path(directory, "cache.db-lease").write_text(json.dumps(data))


def test_another_host_holds_the_lease(tmp_path: Path, on_network: Mount) -> None:
    directory = str(tmp_path / "c")
    _write_lease(directory)
    with pytest.raises(diskstore.NetworkFilesystemError, match="other-host") as caught:
        diskstore.Cache(directory, network_fs="single-host")
    assert "lease" in str(caught.value)
    # An expired lease is taken over.
    _write_lease(directory, renewed=time.time() - 31)
    with diskstore.Cache(directory, network_fs="single-host") as cache:
        cache["k"] = 1
        lease = json.loads(Path(directory, "cache.db-lease").read_text())
        assert lease["host"] == os.uname().nodename


def test_another_mount_on_this_machine(tmp_path: Path, on_network: Mount) -> None:
    directory = str(tmp_path / "c")
    me = {"host": os.uname().nodename, "boot_id": _filesystems.boot_id(),
          "pid_namespace": _lease._pid_namespace()}  # fmt: skip
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _write_lease(directory, device="0:12345", pids=[sleeper.pid], **me)
        with pytest.raises(diskstore.NetworkFilesystemError, match="another mount"):
            diskstore.Cache(directory, network_fs="single-host")
    finally:
        sleeper.kill()
        sleeper.wait()
    # Its processes are gone: free at once, not after the lifetime.
    with diskstore.Cache(directory, network_fs="single-host") as cache:
        cache["k"] = 1


def test_processes_of_one_client_share_the_lease(tmp_path: Path, on_network: Mount) -> None:
    directory = str(tmp_path / "c")
    with diskstore.Cache(directory, network_fs="single-host") as cache:
        cache["k"] = 0
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            status = 1
            try:
                cache.incr("k")
                status = 0 if os.getpid() in _read_pids(directory) else 2
            finally:
                os._exit(status)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert cache["k"] == 1


def _read_pids(directory: str) -> list[int]:
    return list(json.loads(Path(directory, "cache.db-lease").read_text())["pids"])


def test_a_holder_that_lost_its_lease_refuses_writes(tmp_path: Path, on_network: Mount) -> None:
    directory = str(tmp_path / "c")
    cache = diskstore.Cache(directory, network_fs="single-host")
    try:
        cache["k"] = 1
        _write_lease(directory)  # another host took it over while this one was stopped
        store = cache._store
        assert store.lease is not None
        store.lease._renew()
        with pytest.raises(diskstore.NetworkFilesystemError, match="lost"):
            cache["k"] = 2
    finally:
        cache.close()
        _lease.Lease._held.pop(directory, None)


def test_the_last_user_removes_the_lease(tmp_path: Path, on_network: Mount) -> None:
    directory = str(tmp_path / "c")
    code = textwrap.dedent(f"""
        import diskstore
        from diskstore._fs import _filesystems
        _filesystems.detect = lambda *a, **k: _filesystems.Mount("/m", "nfs4", "s:/", "0:9")
        cache = diskstore.Cache({directory!r}, network_fs="single-host")
        cache["k"] = 1
        print("open", flush=True)
        import sys
        sys.stdin.readline()
    """)
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline() == "open\n"
    assert Path(directory, "cache.db-lease").exists()
    child.communicate("\n", timeout=30)
    assert child.returncode == 0
    assert not Path(directory, "cache.db-lease").exists()


def test_cli_option(tmp_path: Path, on_network: Mount, capsys: pytest.CaptureFixture[str]) -> None:
    directory = str(tmp_path / "c")
    with diskstore.Cache(directory, network_fs="single-host") as cache:
        cache["k"] = "v"
    _lease.Lease._held.clear()
    os.unlink(os.path.join(directory, "cache.db-lease"))
    assert cli_main(["get", directory, "k"]) == 1
    assert "network filesystem" in capsys.readouterr().err
    assert cli_main(["get", directory, "k", "--network-fs", "single-host"]) == 0
    assert "v" in capsys.readouterr().out


def test_lease_seconds_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISKSTORE_LEASE_SECONDS", "2.5")
    assert _lease.lease_seconds() == 2.5
    for bad in ("", "x", "-1", "0"):
        monkeypatch.setenv("DISKSTORE_LEASE_SECONDS", bad)
        assert _lease.lease_seconds() == 30.0


@pytest.fixture(autouse=True)
def _forget_leases() -> Iterator[None]:
    yield
    _lease.Lease._held.clear()
    _filesystems.NETWORK_DIRECTORIES.clear()


def test_rollback_journal_commits_wait_for_readers(tmp_path: Path) -> None:
    """With the rollback journal of single-host mode, a COMMIT needs every reader gone; it
    waits for them instead of failing busy (which once rolled back writes as timeouts)."""
    import threading

    directory = str(tmp_path / "c")
    stop = threading.Event()
    failures: list[BaseException] = []

    def read() -> None:
        with diskstore.Cache(directory, sqlite_journal_mode="delete") as reader:
            while not stop.is_set():
                try:
                    reader.get("k")
                    len(reader)
                except BaseException as exc:  # pragma: no cover - reported below
                    failures.append(exc)

    with diskstore.Cache(directory, sqlite_journal_mode="delete") as cache:
        readers = [threading.Thread(target=read) for _ in range(2)]
        for thread in readers:
            thread.start()
        try:
            for _ in range(500):
                cache.incr("k")
        finally:
            stop.set()
            for thread in readers:
                thread.join()
        assert cache["k"] == 500
    assert failures == []
