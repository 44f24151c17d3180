"""A FUSE filesystem that forgets, at a power cut, everything that was never synced.

``python _powercut_fs.py BACKING DURABLE MOUNTPOINT RULE`` mounts BACKING at MOUNTPOINT,
passing every operation through, and keeps in DURABLE the image a disk would hold after a
power cut: a file's data as of its last ``fsync``; a directory's entries as of its last
``fsync`` (``RULE=posix``) or as of any ``fsync`` at all (``RULE=ext4``, which commits all
metadata with every sync). ``materialize(DURABLE, TARGET)`` builds that image as a plain
directory tree. A file whose name is durable but whose data never was comes back empty.

Each file and directory gets its own identity when created (inode numbers of the backing
directory are reused, identities never are), so a name never shows another file's data.
The durable image is written with atomic renames, so killing this process at any moment
(the power cut) leaves a consistent image.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import shutil
import sys
import threading
from typing import Any

ROOT = "root"


class PowerCutFS:
    def __init__(self, backing: str, durable: str, rule: str) -> None:
        import mfusepy

        self.fuse = mfusepy
        self.backing = os.path.realpath(backing)
        self.durable = durable = os.path.realpath(durable)
        self.rule = rule
        self.lock = threading.RLock()
        self.ids: dict[int, str] = {os.stat(self.backing).st_ino: ROOT}
        self.counter = itertools.count(1)
        os.makedirs(os.path.join(durable, "data"), exist_ok=True)
        os.makedirs(os.path.join(durable, "dirs"), exist_ok=True)
        self._record_dir(self.backing)

    # -- the durable image --------------------------------------------------------------------
    def _id(self, path: str) -> str:
        ino = os.lstat(path).st_ino
        found = self.ids.get(ino)
        if found is None:  # made outside this filesystem's view: give it an identity now
            found = self.ids[ino] = f"i{next(self.counter)}"
        return found

    def _new_id(self, path: str) -> None:
        self.ids[os.lstat(path).st_ino] = f"i{next(self.counter)}"

    def _replace(self, target: str, data: bytes) -> None:
        temp = f"{target}.{threading.get_ident()}.tmp"
        with open(temp, "wb") as handle:
            handle.write(data)
        os.replace(temp, target)

    def _record_dir(self, real: str) -> None:
        entries = {}
        for entry in os.scandir(real):
            kind = "d" if entry.is_dir(follow_symlinks=False) else "f"
            entries[entry.name] = [self._id(entry.path), kind]
        target = os.path.join(self.durable, "dirs", self._id(real) + ".json")
        self._replace(target, json.dumps(entries).encode())

    def _record_all_dirs(self) -> None:
        for top, _, _ in os.walk(self.backing):
            self._record_dir(top)

    def _record_file(self, fd: int) -> None:
        info = os.fstat(fd)
        identity = self.ids.get(info.st_ino)
        if identity is None:
            identity = self.ids[info.st_ino] = f"i{next(self.counter)}"
        data = os.pread(fd, info.st_size, 0)
        self._replace(os.path.join(self.durable, "data", identity), data)

    # -- passthrough ----------------------------------------------------------------------------
    def real(self, path: str) -> str:
        return os.path.join(self.backing, path.lstrip("/"))

    def operations(self) -> Any:
        fs = self
        fuse = self.fuse

        def wrap(function: Any) -> Any:
            def call(self: Any, *args: Any) -> Any:
                try:
                    with fs.lock:
                        return function(*args)
                except OSError as exc:
                    raise fuse.FuseOSError(exc.errno or errno.EIO) from exc
                except Exception as exc:  # a bug here: say so on stderr, fail the call
                    print(f"{function.__name__}{args!r}: {exc!r}", file=sys.stderr)
                    raise fuse.FuseOSError(errno.EIO) from exc

            return call

        def getattr_(path: str, fh: Any = None) -> dict[str, Any]:
            info = os.lstat(fs.real(path))
            keys = ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink",
                    "st_size", "st_uid", "st_ino")  # fmt: skip
            return {key: getattr(info, key) for key in keys}

        def readdir(path: str, fh: Any) -> list[str]:
            return [".", "..", *os.listdir(fs.real(path))]

        def mkdir(path: str, mode: int) -> None:
            os.mkdir(fs.real(path), mode)
            fs._new_id(fs.real(path))

        def rmdir(path: str) -> None:
            os.rmdir(fs.real(path))

        def unlink(path: str) -> None:
            os.unlink(fs.real(path))

        def rename(old: str, new: str, flags: int = 0) -> None:
            os.replace(fs.real(old), fs.real(new))

        def create(path: str, mode: int, fi: Any = None) -> int:
            fd = os.open(fs.real(path), os.O_RDWR | os.O_CREAT | os.O_EXCL, mode)
            fs._new_id(fs.real(path))
            return fd

        def open_(path: str, flags: int) -> int:
            return os.open(fs.real(path), flags & ~(os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW))

        def read(path: str, size: int, offset: int, fh: int) -> bytes:
            return os.pread(fh, size, offset)

        def write(path: str, data: bytes, offset: int, fh: int) -> int:
            return os.pwrite(fh, data, offset)

        def truncate(path: str, length: int, fh: Any = None) -> None:
            if fh is not None:
                os.ftruncate(fh, length)
            else:
                os.truncate(fs.real(path), length)

        def release(path: str, fh: int) -> int:
            os.close(fh)
            return 0

        def flush(path: str, fh: int) -> int:
            return 0

        def fsync(path: str, datasync: int, fh: int) -> int:
            fs._record_file(fh)
            if fs.rule == "ext4":
                fs._record_all_dirs()
            return 0

        def fsyncdir(path: str, datasync: int, fh: int) -> int:
            if fs.rule == "ext4":
                fs._record_all_dirs()
            else:
                fs._record_dir(fs.real(path))
            return 0

        def chmod(path: str, mode: int) -> int:
            os.chmod(fs.real(path), mode)
            return 0

        def chown(path: str, uid: int, gid: int) -> int:
            os.chown(fs.real(path), uid, gid)
            return 0

        def utimens(path: str, times: Any = None) -> int:
            os.utime(fs.real(path), ns=times) if times else os.utime(fs.real(path))
            return 0

        def access(path: str, amode: int) -> int:
            if not os.access(fs.real(path), amode):
                raise OSError(errno.EACCES, "access")
            return 0

        def statfs(path: str) -> dict[str, Any]:
            info = os.statvfs(fs.real(path))
            keys = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree",
                    "f_files", "f_flag", "f_frsize", "f_namemax")  # fmt: skip
            return {key: getattr(info, key) for key in keys}

        functions = {
            "getattr": getattr_, "readdir": readdir, "mkdir": mkdir, "rmdir": rmdir,
            "unlink": unlink, "rename": rename, "create": create, "open": open_,
            "read": read, "write": write, "truncate": truncate, "release": release,
            "flush": flush, "fsync": fsync, "fsyncdir": fsyncdir, "chmod": chmod,
            "chown": chown, "utimens": utimens, "access": access, "statfs": statfs,
        }  # fmt: skip
        namespace = {name: wrap(function) for name, function in functions.items()}
        return type("Operations", (fuse.Operations,), namespace)()


def materialize(durable: str, target: str) -> None:
    """Build, in *target*, the tree a disk would hold after the power cut."""

    def build(identity: str, path: str) -> None:
        os.makedirs(path, exist_ok=True)
        record = os.path.join(durable, "dirs", identity + ".json")
        if not os.path.exists(record):
            return
        with open(record, encoding="utf-8") as handle:
            entries = json.load(handle)
        for name, (child, kind) in entries.items():
            child_path = os.path.join(path, name)
            if kind == "d":
                build(child, child_path)
                continue
            data = os.path.join(durable, "data", child)
            if os.path.exists(data):
                shutil.copyfile(data, child_path)
            else:
                open(child_path, "wb").close()  # a name without its data

    build(ROOT, target)


def main() -> None:
    backing, durable, mountpoint, rule = sys.argv[1:5]
    import mfusepy

    fs = PowerCutFS(backing, durable, rule)
    mfusepy.FUSE(fs.operations(), mountpoint, foreground=True, nothreads=True,
                 fsname="powercut", subtype="powercut")  # fmt: skip


if __name__ == "__main__":
    main()
