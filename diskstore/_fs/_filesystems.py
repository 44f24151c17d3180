"""Which filesystem a cache directory is on, and whether other machines can reach it.

SQLite's write-ahead log coordinates readers and writers through a shared-memory file
(``-shm``) that every client maps, and through POSIX locks. On a network filesystem the
mapping is private to each client and the locks often never reach the other clients, so
two machines (or two mounts of one share on one machine) writing one database damage it
beyond repair. diskstore therefore looks at the directory's filesystem when a cache opens:

- On Linux, ``/proc/self/mountinfo`` names the mount: the entry whose mount point is the
  longest prefix of the directory's real path (the last one listed if several are stacked
  there), with its filesystem type (``nfs4``, ``fuse.sshfs``...) and source.
- Where there is no procfs (a container without it, macOS), ``statfs(2)``: the type name
  on macOS and the BSDs, the type's magic number on Linux, and the mount point found by
  walking up while the device number stays the same.

:func:`is_network` says which types are network (or host-shared) filesystems.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import NamedTuple

MOUNTINFO = "/proc/self/mountinfo"
BOOT_ID = "/proc/sys/kernel/random/boot_id"
DOCS = '"Network filesystems" in docs/reliability.md'
FAQ = '"database disk image is malformed" in docs/reliability.md'

#: Kernel filesystem types whose files other machines reach (or share with a host).
NETWORK_TYPES = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smb2", "smbfs", "ncpfs", "ncp", "9p", "afs", "coda",
    "ceph", "glusterfs", "lustre", "gpfs", "mmfs", "beegfs", "orangefs", "pvfs2", "vboxsf",
    "vmhgfs", "davfs", "webdav", "cvmfs", "moosefs", "lizardfs", "juicefs", "quobyte",
})  # fmt: skip

#: FUSE filesystems (type ``fuse.NAME``, or ``fuse`` with NAME as the source) that reach
#: a remote machine or an object store.
NETWORK_FUSE = frozenset({
    "sshfs", "s3fs", "gcsfuse", "rclone", "goofys", "mountpoint-s3", "blobfuse",
    "blobfuse2", "juicefs", "glusterfs", "ceph-fuse", "ceph", "cephfs", "lizardfs",
    "mfs", "moosefs", "seaweedfs", "weed", "alluxio-fuse", "alluxio", "cvmfs2", "cvmfs",
    "davfs", "davfs2", "curlftpfs", "smbnetfs", "fusesmb", "afpfs", "afpfs-ng",
    "vmhgfs-fuse", "gvfsd-fuse", "objectivefs", "geesefs", "ossfs", "cosfs", "obsfs",
    "beegfs", "lustre", "onedriver", "google-drive-ocamlfuse", "dropbox", "keybase",
    "9pfs", "nfs", "sftp", "webdav", "minfs", "tahoe", "xtreemfs", "hdfs", "fuse_dfs",
})  # fmt: skip

#: Linux ``statfs`` magic numbers of network filesystems (where there is no mountinfo).
_MAGIC = {
    0x6969: "nfs",
    0x517B: "smbfs",
    0xFF534D42: "cifs",
    0xFE534D42: "smb2",
    0x564C: "ncpfs",
    0x01021997: "9p",
    0x5346414F: "afs",
    0x6B414653: "afs",
    0x73757245: "coda",
    0x00C36400: "ceph",
    0x0BD00BD0: "lustre",
    0x47504653: "gpfs",
    0x19830326: "beegfs",
    0x20030528: "orangefs",
    0x786F4256: "vboxsf",
    0x65735546: "fuse",  # which FUSE filesystem, statfs cannot tell
    0x65735543: "fusectl",
    0xEF53: "ext4",
    0x58465342: "xfs",
    0x9123683E: "btrfs",
    0x01021994: "tmpfs",
    0x794C7630: "overlay",
}


class Mount(NamedTuple):
    """One mounted filesystem, as far as the directory's cache needs to know it."""

    mount_point: str
    fs_type: str
    source: str = ""
    device: str = ""  # "major:minor", as in mountinfo
    mount_id: int = -1

    @property
    def network(self) -> bool:
        return is_network(self.fs_type, self.source)

    @property
    def type_name(self) -> str:
        """The type as users know it: ``fuse.sshfs`` even where mountinfo says ``fuse``."""
        if self.fs_type in ("fuse", "fuseblk") and _fuse_name(self.source) in NETWORK_FUSE:
            return f"fuse.{_fuse_name(self.source)}"
        return self.fs_type


def _fuse_name(source: str) -> str:
    # Old FUSE mounts put the program in the source: "sshfs#user@host:/dir", "s3fs".
    return source.split("#", 1)[0].split(":", 1)[0].rsplit("/", 1)[-1].lower()


def is_network(fs_type: str, source: str = "") -> bool:
    """Whether a filesystem of type *fs_type* (mounted from *source*) is a network one."""
    kind = fs_type.lower()
    if kind in NETWORK_TYPES:
        return True
    if kind.startswith(("fuse.", "fuseblk.")):
        return kind.split(".", 1)[1] in NETWORK_FUSE
    if kind in ("fuse", "fuseblk"):
        return _fuse_name(source) in NETWORK_FUSE
    return False


def _unescape(field: str) -> str:
    """Undo mountinfo's octal escapes (``\\040`` for a space, ``\\134`` for a backslash)."""
    if "\\" not in field:
        return field
    out = bytearray()
    raw = field.encode("utf-8", "surrogateescape")
    i = 0
    while i < len(raw):
        if raw[i : i + 1] == b"\\" and raw[i + 1 : i + 4].isdigit() and len(raw) >= i + 4:
            out.append(int(raw[i + 1 : i + 4], 8) & 0xFF)
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return out.decode("utf-8", "surrogateescape")


def parse_mountinfo(text: str) -> list[Mount]:
    """Parse the lines of ``/proc/<pid>/mountinfo`` (see proc(5)); malformed lines are skipped.

    A line is ``ID PARENT MAJOR:MINOR ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - TYPE SOURCE
    SUPER_OPTIONS``; the optional fields end at a lone ``-``.
    """
    mounts = []
    for line in text.splitlines():
        fields = line.split(" ")
        try:
            dash = fields.index("-", 6)
        except ValueError:
            continue
        if len(fields) < dash + 2:
            continue
        try:
            mount_id = int(fields[0])
        except ValueError:
            mount_id = -1
        mounts.append(
            Mount(
                mount_point=_unescape(fields[4]),
                fs_type=fields[dash + 1],
                source=_unescape(fields[dash + 2]) if len(fields) > dash + 2 else "",
                device=fields[2],
                mount_id=mount_id,
            )
        )
    return mounts


def _contains(mount_point: str, path: str) -> bool:
    if mount_point == "/":
        return path.startswith("/")
    return path == mount_point or path.startswith(mount_point.rstrip("/") + "/")


def mount_of(path: str, mounts: list[Mount]) -> Mount | None:
    """The mount *path* (a real, absolute path) is on: the longest mount point containing
    it; of several mounted at that same point, the last listed (the one on top)."""
    best: Mount | None = None
    for mount in mounts:
        if _contains(mount.mount_point, path) and (
            best is None or len(mount.mount_point) >= len(best.mount_point)
        ):
            best = mount
    return best


def _mount_point_by_device(path: str) -> str:
    """The highest directory above *path* on the same device: its mount point."""
    device = os.stat(path).st_dev
    while True:
        parent = os.path.dirname(path)
        if parent == path:
            return path
        try:
            if os.stat(parent).st_dev != device:
                return path
        except OSError:
            return path
        path = parent


_statfs_function: object = None


def _statfs_buffer(path: str) -> bytes | None:
    """The raw ``struct statfs`` of *path*, or ``None`` where it cannot be had."""
    import ctypes  # only where there is no procfs

    global _statfs_function
    if _statfs_function is None:
        library = ctypes.CDLL(None, use_errno=True)  # libc, already loaded
        function = None
        for name in ("statfs64", "statfs$INODE64", "statfs"):
            with contextlib.suppress(AttributeError):
                function = library[name]
                break
        _statfs_function = function or False
    if not _statfs_function:
        return None
    buffer = ctypes.create_string_buffer(4096)
    if _statfs_function(os.fsencode(path), buffer) != 0:  # type: ignore[operator]
        return None
    return buffer.raw


def type_from_statfs(raw: bytes, platform: str = sys.platform) -> tuple[str, str]:
    """``(type name, mount point)`` from a raw ``struct statfs`` (mount point may be '')."""
    if platform == "darwin":  # f_fstypename[16] at 72, f_mntonname[1024] at 88 (64-bit)
        name = raw[72:88].split(b"\0", 1)[0].decode("ascii", "replace")
        point = raw[88:1112].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        return name, point
    if platform.startswith("freebsd"):  # f_fstypename[16] at 0x88, f_mntonname at 0x198
        name = raw[0x88:0x98].split(b"\0", 1)[0].decode("ascii", "replace")
        point = raw[0x198:0x598].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        return name, point
    # f_type is the first field, a long; the magic numbers all fit in its low 32 bits.
    width = 8 if sys.maxsize > 2**32 else 4
    magic = int.from_bytes(raw[:width], sys.byteorder) & 0xFFFFFFFF
    return _MAGIC.get(magic, f"0x{magic:x}"), ""


def detect(directory: str, mountinfo: str = MOUNTINFO) -> Mount | None:
    """The mount *directory* (which must exist) is on; ``None`` if it cannot be told."""
    path = os.path.realpath(directory)
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as handle:
            text = handle.read()
    except OSError:
        text = ""
    mount = mount_of(path, parse_mountinfo(text)) if text else None
    if mount is not None:
        return mount
    try:
        raw = _statfs_buffer(path)
    except OSError:
        raw = None
    if raw is None:
        return None
    fs_type, point = type_from_statfs(raw)
    if not point:
        try:
            point = _mount_point_by_device(path)
        except OSError:
            point = path
    with contextlib.suppress(OSError):
        info = os.stat(path)
        return Mount(point, fs_type, device=f"{os.major(info.st_dev)}:{os.minor(info.st_dev)}")
    return Mount(point, fs_type)


def host_name() -> str:
    return os.uname().nodename


def boot_id() -> str:
    """This boot of this machine (Linux's random boot id), or '' where there is none."""
    try:
        with open(BOOT_ID, encoding="ascii") as handle:
            return handle.read().strip()
    except OSError:
        return ""


#: Mounts of the network filesystems caches were opened on, by database directory: only
#: read when an error is being explained.
NETWORK_DIRECTORIES: dict[str, Mount] = {}


def damage_hint(path: str) -> str:
    """What to add to a damaged-database message for the database at *path*."""
    mount = NETWORK_DIRECTORIES.get(os.path.dirname(path))
    if mount is not None:
        return (
            f". The cache is on a network filesystem ({mount.type_name} mounted at "
            f"{mount.mount_point}), where a database written by more than one machine or "
            f"mount is damaged this way; see {DOCS}"
        )
    return f" (see {FAQ})"
