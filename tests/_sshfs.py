"""A real network filesystem for the tests: sshfs over a private sshd on 127.0.0.1.

An ``sshd`` (Debian's ``openssh-server``) listens on a free loopback port with a host key and
an authorized client key generated here, and ``sshfs`` mounts one local directory, the
"remote" share, as often as asked: two mounts of one directory stand in for two machines,
since a lock taken through one never reaches the other. ``make test`` installs both packages
when missing. Without them or without ``/dev/fuse`` the tests are skipped, except under
``CI=true``, where they fail.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import subprocess
import tempfile
import time

import pytest
from _redis_server import free_port

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
SSHFS = shutil.which("sshfs")
FUSERMOUNT = shutil.which("fusermount3") or shutil.which("fusermount")


def unavailable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def require() -> None:
    if not os.path.exists("/dev/fuse"):
        unavailable("/dev/fuse is missing: no FUSE filesystem can be mounted here")
    if SSHD is None or SSHFS is None or FUSERMOUNT is None:
        unavailable("sshd, sshfs or fusermount is not installed (make test installs them)")


class SshfsServer:
    """One sshd serving ``share`` and the sshfs mounts made of it; ``close`` undoes all."""

    def __init__(self) -> None:
        require()
        self.base = tempfile.mkdtemp(prefix="diskstore-sshfs-")
        self.share = os.path.join(self.base, "share")
        os.mkdir(self.share, 0o700)
        self.port = free_port()
        self.mounts: list[str] = []
        self.process: subprocess.Popen[bytes] | None = None
        host_key = os.path.join(self.base, "host_key")
        self.client_key = os.path.join(self.base, "client_key")
        for key in (host_key, self.client_key):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key],
                check=True, stdin=subprocess.DEVNULL, timeout=60,
            )  # fmt: skip
        authorized = os.path.join(self.base, "authorized_keys")
        shutil.copy(self.client_key + ".pub", authorized)
        config = os.path.join(self.base, "sshd_config")
        with open(config, "w", encoding="ascii") as handle:
            handle.write(
                f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
                f"AuthorizedKeysFile {authorized}\nPidFile {self.base}/sshd.pid\n"
                "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                "PubkeyAuthentication yes\nUsePAM no\nStrictModes no\nPermitRootLogin yes\n"
                f"AllowUsers {getpass.getuser()}\nSubsystem sftp internal-sftp\n"
            )
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation
        self.log = os.path.join(self.base, "sshd.log")
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", config], stdout=log, stderr=log,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        deadline = time.monotonic() + 20
        while b"listening" not in self._log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                message = self._log().decode(errors="replace")
                self.close()
                unavailable(f"sshd did not start: {message}")
            time.sleep(0.05)

    def _log(self) -> bytes:
        with open(self.log, "rb") as handle:
            return handle.read()

    def mount(self, name: str) -> str:
        """Mount the share at a new mount point *name* and return its path."""
        point = os.path.join(self.base, name)
        os.mkdir(point, 0o700)
        assert SSHFS is not None
        command = [
            SSHFS, f"127.0.0.1:{self.share}", point, "-p", str(self.port),
            "-o", f"IdentityFile={self.client_key}", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
            "-o", "LogLevel=ERROR",
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            self.close()
            unavailable(f"sshfs could not mount: {done.stderr.strip()}")
        self.mounts.append(point)
        return point

    def close(self) -> None:
        for point in reversed(self.mounts):
            assert FUSERMOUNT is not None
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                subprocess.run([FUSERMOUNT, "-u", "-z", point], capture_output=True, timeout=30)
        self.mounts.clear()
        if self.process is not None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self.process = None
        shutil.rmtree(self.base, ignore_errors=True)
