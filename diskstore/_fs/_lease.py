"""Network filesystems: refused by default, or used by one machine under an enforced lease.

``network_fs="refuse"`` (the default) raises :class:`~diskstore.NetworkFilesystemError`
when a cache directory is on a network filesystem (see :mod:`._filesystems`).

``network_fs="single-host"`` opens it anyway, for one *client* at a time: one kernel
(``/proc/sys/kernel/random/boot_id``, or the host name where there is none) reaching the
directory through one mount (its device number). Every process of that client shares the
database safely, since their locks and page cache are the same kernel's; a second machine,
or a second mount of the same share on the same machine, would not see those locks. So the
first client creates a lease file in the directory atomically (``O_CREAT | O_EXCL``), naming
host, boot, mount and the processes using it, and each of those processes renews it every
third of its lifetime. Another client that finds a live lease gets a clear error; one that
finds an expired lease (every holder died, or stopped renewing) takes it over. On the same
machine a lease whose processes are all gone is free at once; elsewhere it expires after
``DISKSTORE_LEASE_SECONDS`` (30 by default) without renewal. A holder that finds its lease
taken over (it was suspended past the lifetime) refuses every later write and connection.

In this mode nothing is shared through memory maps, which a network filesystem does not
keep coherent between clients: SQLite uses a rollback journal (``delete``, the mode SQLite
documents for network filesystems; WAL needs shared memory) and no ``mmap``, and the
memory tier's change counter is read and written with ``pread``/``pwrite``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
import weakref
from typing import Any

from .._common._exceptions import NetworkFilesystemError, SettingsError
from . import _filesystems
from ._filesystems import Mount

MODES = ("refuse", "single-host")
LEASE_NAME = "cache.db-lease"  # "cache.db" in the name: diskcache's check(fix=True) keeps it
#: A lease file still being written by its creator (empty) counts as held this long.
_CREATING = 5.0
#: How long to keep trying when leases are being created and taken over concurrently.
_PATIENCE = 10.0


def lease_seconds() -> float:
    """A lease's lifetime without renewal: ``DISKSTORE_LEASE_SECONDS``, or 30."""
    text = os.environ.get("DISKSTORE_LEASE_SECONDS", "")
    try:
        value = float(text) if text else 30.0
    except ValueError:
        value = 30.0
    return value if value > 0 else 30.0


def check_mode(value: object) -> str:
    """Validate the ``network_fs`` keyword."""
    if not isinstance(value, str) or value not in MODES:
        raise ValueError(f"network_fs must be 'refuse' or 'single-host', not {value!r}")
    return value


def _pid_namespace() -> int:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def guard(
    directory: str, network_fs: str, *, read_only: bool, settings: dict[str, Any]
) -> Lease | None:
    """Look at *directory*'s filesystem; refuse it, or take its lease, if it is a network one.

    Returns the lease held for a network directory in ``single-host`` mode (``None`` on a
    local filesystem), after setting in *settings* the SQLite options that mode needs.
    """
    check_mode(network_fs)
    mount = _filesystems.detect(directory)
    if mount is None or not mount.network:
        _filesystems.NETWORK_DIRECTORIES.pop(directory, None)
        return None
    _filesystems.NETWORK_DIRECTORIES[directory] = mount
    if network_fs == "refuse":
        raise NetworkFilesystemError(
            f"cache directory {directory} is on a network filesystem ({mount.type_name} "
            f"mounted at {mount.mount_point}); diskstore refuses it by default, since a "
            "database written there by more than one machine, or through more than one "
            "mount, is damaged beyond repair. Use a directory on a local disk, or the Redis "
            "backend (diskstore.redis.RedisCache) to share a cache between machines, or, if "
            "this machine alone will ever use the directory, open it with "
            f"network_fs='single-host' (see {_filesystems.DOCS})",
            mount.type_name,
            mount.mount_point,
        )
    _single_host_settings(settings)
    return Lease.acquire(directory, mount, read_only=read_only)


def _single_host_settings(settings: dict[str, Any]) -> None:
    journal = settings.get("sqlite_journal_mode", "delete")
    if isinstance(journal, str) and journal.lower() == "wal":
        raise SettingsError(
            "sqlite_journal_mode='wal' cannot be used with network_fs='single-host': WAL "
            "needs memory shared through a file, which a network filesystem does not keep"
        )
    if settings.get("sqlite_mmap_size", 0):
        raise SettingsError(
            "sqlite_mmap_size must be 0 with network_fs='single-host': a memory-mapped "
            "database on a network filesystem is not kept coherent"
        )
    settings["sqlite_journal_mode"] = journal
    settings["sqlite_mmap_size"] = 0


class Lease:
    """This process's share of a directory's lease (one per directory per process)."""

    _held: dict[str, Lease] = {}
    _registry_lock = threading.Lock()

    def __init__(self, directory: str, mount: Mount) -> None:
        self.directory = directory
        self.path = os.path.join(directory, LEASE_NAME)
        self.mount = mount
        info = os.stat(directory)
        self.device = f"{os.major(info.st_dev)}:{os.minor(info.st_dev)}"
        self.host = _filesystems.host_name()
        self.boot = _filesystems.boot_id()
        self.pidns = _pid_namespace()
        self.seconds = lease_seconds()
        self.lost: str | None = None  # why the lease is no longer ours
        self.holding = False  # whether this process is named in the lease file
        self.users = 0
        self._pid = os.getpid()
        self._lock = threading.Lock()

    # -- opening ----------------------------------------------------------------------------
    @classmethod
    def acquire(cls, directory: str, mount: Mount, *, read_only: bool) -> Lease:
        with cls._registry_lock:
            lease = cls._held.get(directory)
            if lease is None or lease.lost is not None:
                lease = cls(directory, mount)
                lease._take(read_only)
                cls._held[directory] = lease
            elif lease._pid != os.getpid():
                lease._after_fork()
            lease.users += 1
            return lease

    def attach(self, owner: object) -> None:
        """Give up this process's share when *owner* (a store) is collected."""
        weakref.finalize(owner, self.release)

    def _identity(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "boot_id": self.boot,
            "device": self.device,
            "mount_point": self.mount.mount_point,
            "fs_type": self.mount.type_name,
            "pid_namespace": self.pidns,
        }

    def _ours(self, data: dict[str, Any]) -> bool:
        """Whether a lease names this client: this kernel, through this mount."""
        if self.boot and data.get("boot_id"):
            same_kernel = data.get("boot_id") == self.boot
        else:
            same_kernel = data.get("host") == self.host
        return same_kernel and data.get("device") == self.device

    def _read(self) -> tuple[dict[str, Any] | None, bytes]:
        """The lease file's content: ``(None, b'')`` if there is none, ``({}, raw)`` if it
        cannot be parsed (still being written, or damaged)."""
        import json

        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            return None, b""
        try:
            raw = os.read(fd, 1 << 16)
        finally:
            os.close(fd)
        try:
            data = json.loads(raw)
        except ValueError:
            return {}, raw
        return (data if isinstance(data, dict) else {}), raw

    def _content(self, pids: list[int]) -> bytes:
        import json

        data = {**self._identity(), "pids": sorted(set(pids)), "renewed": time.time(),
                "seconds": self.seconds}  # fmt: skip
        return json.dumps(data, sort_keys=True).encode()

    def _expired(self, data: dict[str, Any], raw: bytes) -> bool:
        if not data:
            try:
                age = time.time() - os.stat(self.path).st_mtime
            except OSError:
                return False
            return age > max(_CREATING, self.seconds) or (bool(raw) and age > _CREATING)
        try:
            renewed = float(data.get("renewed", 0))
            seconds = float(data.get("seconds", self.seconds))
        except (TypeError, ValueError):
            return True
        if time.time() - renewed > seconds:
            return True
        same_processes = (
            data.get("host") == self.host
            and data.get("boot_id") == self.boot
            and data.get("pid_namespace") == self.pidns
        )
        if same_processes:  # this machine: a lease whose processes are all gone is free
            pids = [pid for pid in data.get("pids", []) if isinstance(pid, int)]
            return not any(_alive(pid) for pid in pids)
        return False

    def _take(self, read_only: bool) -> None:
        deadline = time.monotonic() + _PATIENCE
        while True:
            try:
                created = self._create()
            except OSError as exc:
                if read_only and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                    self._check_only()
                    return
                raise
            if created:
                self._started()
                return
            data, raw = self._read()
            if data is None:
                continue  # removed meanwhile: try to create it again
            if data and self._ours(data):
                if self._renew(join=True):
                    self._started()
                    return
                continue
            if self._expired(data, raw):
                self._take_over(raw)
            elif not data:
                pass  # being written by its creator: look again
            else:
                raise self._held_error(data)
            if time.monotonic() > deadline:
                raise NetworkFilesystemError(
                    f"could not take the lease {self.path} of a cache on a network "
                    f"filesystem within {_PATIENCE:g} s: other clients keep taking it",
                    self.mount.type_name,
                    self.mount.mount_point,
                )
            time.sleep(0.05)

    def _create(self) -> bool:
        """Create the lease file naming this process, atomically; False if it exists."""
        content = self._content([os.getpid()])
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        try:
            fd = os.open(self.path, flags | getattr(os, "O_CLOEXEC", 0), 0o600)
        except FileExistsError:
            return False
        try:
            os.write(fd, content)
            os.fsync(fd)
        finally:
            os.close(fd)
        return True

    def _check_only(self) -> None:
        """A read-only opener that cannot write the lease: refuse another client's."""
        data, raw = self._read()
        if data and not self._ours(data) and not self._expired(data, raw):
            raise self._held_error(data)

    def _held_error(self, data: dict[str, Any]) -> NetworkFilesystemError:
        try:
            left = float(data.get("renewed", 0)) + float(data.get("seconds", 0)) - time.time()
        except (TypeError, ValueError):
            left = 0.0
        if data.get("boot_id") == self.boot and data.get("host") == self.host:
            holder = f"another mount of it on this machine ({data.get('mount_point')})"
            free = "is free as soon as those processes end"
        else:
            holder = f"host {data.get('host')!r} through its mount {data.get('mount_point')}"
            free = f"expires in {max(left, 0):.0f} s unless renewed"
        return NetworkFilesystemError(
            f"cache directory {self.directory} (on {self.mount.type_name} at "
            f"{self.mount.mount_point}) was opened with network_fs='single-host' and is in "
            f"use by {holder}, processes {data.get('pids')}; a second client would damage its "
            f"database. Its lease {self.path} {free} (see {_filesystems.DOCS})",
            self.mount.type_name,
            self.mount.mount_point,
        )

    def _take_over(self, raw: bytes) -> None:
        """Move an expired lease aside, then remove it, unless another client's new lease
        was moved instead (it replaced the expired one meanwhile): then put that back."""
        aside = f"{self.path}.{os.urandom(8).hex()}.expired"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        try:
            with open(aside, "rb") as handle:
                moved = handle.read(1 << 16)
        except OSError:
            moved = raw
        if moved == raw:
            with contextlib.suppress(OSError):
                os.unlink(aside)
            return
        try:
            os.link(aside, self.path)
            os.unlink(aside)
        except FileExistsError:
            os.unlink(aside)  # a third client's lease is in place: that one stands
        except OSError:
            with contextlib.suppress(OSError):
                os.rename(aside, self.path)

    # -- renewing ---------------------------------------------------------------------------
    def _renew(self, *, join: bool = False, leave: bool = False) -> bool:
        """Rewrite the lease with this process in (or out of) it; False if it is not ours."""
        with self._lock:
            data, _ = self._read()
            if data is None and not join and self._create():
                return True  # removed by hand: this client still holds it
            if not data or not self._ours(data):
                if not join:
                    self._lose(data)
                return False
            pids = [pid for pid in data.get("pids", []) if isinstance(pid, int)]
            if data.get("pid_namespace") == self.pidns:
                pids = [pid for pid in pids if pid != os.getpid() and _alive(pid)]
            if not leave:
                pids.append(os.getpid())
            elif not pids:
                with contextlib.suppress(OSError):
                    os.unlink(self.path)
                return True
            temp = f"{self.path}.{os.urandom(8).hex()}.tmp"
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            fd = os.open(temp, flags | getattr(os, "O_CLOEXEC", 0), 0o600)
            try:
                os.write(fd, self._content(pids))
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.replace(temp, self.path)
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
            return True

    def _lose(self, data: dict[str, Any] | None) -> None:
        holder = f"host {data.get('host')!r} ({data.get('mount_point')})" if data else "nobody"
        self.lost = (
            f"cache directory {self.directory} lost its network_fs='single-host' lease "
            f"{self.path} (now held by {holder}): this process stopped renewing it for "
            f"longer than its {self.seconds:g} s lifetime; reopen the cache"
        )

    def _started(self) -> None:
        self.holding = True
        self._pid = os.getpid()
        _renewer.start()

    def _after_fork(self) -> None:
        """In a child process: join the lease as a process of its own, renewing it."""
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.holding = False
        if self.lost is None:
            try:
                if self._renew(join=True):
                    self._started()
                else:
                    self._lose(self._read()[0])
            except OSError as exc:
                self.lost = f"cache directory {self.directory}: cannot renew its lease: {exc}"

    def check(self) -> None:
        """Raise if this process may no longer use the directory (called before writes)."""
        if self._pid != os.getpid():
            with self._registry_lock:
                if self._pid != os.getpid():
                    self._after_fork()
        if self.lost is not None:
            raise NetworkFilesystemError(self.lost, self.mount.type_name, self.mount.mount_point)

    def release(self) -> None:
        """Give up one user's share; the last one takes this process out of the lease."""
        with self._registry_lock:
            self.users -= 1
            if self.users > 0 or self._pid != os.getpid():
                return
            if Lease._held.get(self.directory) is self:
                del Lease._held[self.directory]
        if self.holding and self.lost is None:
            with contextlib.suppress(OSError):
                self._renew(leave=True)
        self.holding = False


class _Renewer:
    """One daemon thread per process renews every lease the process holds."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = 0  # the process whose thread runs (a forked child starts its own)

    def start(self) -> None:
        with self.lock:
            if self.pid == os.getpid():
                return
            self.pid = os.getpid()
            threading.Thread(target=self._run, name="diskstore lease", daemon=True).start()

    def _run(self) -> None:
        pid = os.getpid()
        while self.pid == pid:
            leases = list(Lease._held.values())
            shortest = min((lease.seconds for lease in leases), default=lease_seconds())
            time.sleep(shortest / 3)
            for lease in leases:
                if lease.holding and lease.lost is None and lease._pid == pid:
                    with contextlib.suppress(OSError):  # a hiccup: the next turn tries again
                        lease._renew()


_renewer = _Renewer()


def _release_all() -> None:
    for lease in list(Lease._held.values()):
        lease.users = 1
        lease.release()


import atexit  # noqa: E402

atexit.register(_release_all)
