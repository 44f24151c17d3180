"""A real Redis Cluster for the tests: redis-server nodes on loopback ports, always stopped.

``RedisClusterProcess(masters=3)`` starts that many ``redis-server --cluster-enabled yes``
nodes (plus ``replicas`` per master), joins them with ``redis-cli --cluster create`` and
waits until every node reports ``cluster_state:ok``. Both binaries come from Debian's
``redis-server`` package (``redis-cli`` is in ``redis-tools``, which it depends on).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Any

import pytest
from _redis_server import require_binary

CLI = shutil.which("redis-cli") or (
    "/usr/bin/redis-cli" if os.path.exists("/usr/bin/redis-cli") else None
)


def require_cli() -> str:
    require_binary()
    if CLI is None:
        message = "redis-cli is not installed (make test installs it with redis-server)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CLI


def _free_ports(count: int) -> list[int]:
    """``count`` loopback ports free now, each with a free cluster-bus port beside it."""
    ports: list[int] = []
    sockets: list[socket.socket] = []
    try:
        while len(ports) < 2 * count:
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
            ports.append(int(sock.getsockname()[1]))
    finally:
        for sock in sockets:
            sock.close()
    return ports


class _Node:
    def __init__(self, binary: str, port: int, bus_port: int, root: str, timeout_ms: int) -> None:
        self.port = port
        self.dir = os.path.join(root, str(port))
        os.makedirs(self.dir)
        self.args = [
            binary, "--port", str(port), "--cluster-port", str(bus_port),
            "--bind", "127.0.0.1", "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", str(timeout_ms),
            "--save", "", "--appendonly", "no", "--dir", self.dir, "--daemonize", "no",
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.dir
        )

    def command(self, *words: str, timeout: float = 2.0) -> bytes:
        """One inline command's raw reply (enough for PING and INFO)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(" ".join(words).encode() + b"\r\n")
            data = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return data
                data += chunk
                if data.startswith(b"$"):
                    head, _, body = data.partition(b"\r\n")
                    if len(body) >= int(head[1:]) + 2:
                        return body[: int(head[1:])]
                elif data.endswith(b"\r\n"):
                    return data

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: the node dies at once, as a crashed machine would."""
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class RedisClusterProcess:
    """A running cluster of ``masters`` masters with ``replicas`` replicas each."""

    def __init__(self, masters: int = 3, replicas: int = 0, node_timeout_ms: int = 2000) -> None:
        binary = require_binary()
        self.cli = require_cli()
        self.root = tempfile.mkdtemp(prefix="diskstore-redis-cluster-")
        total = masters * (1 + replicas)
        ports = _free_ports(total)
        self.nodes = [
            _Node(binary, ports[2 * i], ports[2 * i + 1], self.root, node_timeout_ms)
            for i in range(total)
        ]
        self.replicas = replicas

    @property
    def url(self) -> str:
        """A URL naming one node (the client discovers the others)."""
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", node.port) for node in self.nodes]

    def start(self) -> RedisClusterProcess:
        try:
            for node in self.nodes:
                node.start()
            for node in self.nodes:
                self._wait(lambda node=node: node.command("PING").startswith(b"+PONG"), 20)
            subprocess.run(
                [self.cli, "--cluster", "create",
                 *(f"127.0.0.1:{node.port}" for node in self.nodes),
                 "--cluster-replicas", str(self.replicas), "--cluster-yes"],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60,
            )  # fmt: skip
            self.wait_ok()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ok(self, within: float = 60.0) -> None:
        """Wait until every live node says ``cluster_state:ok`` and knows every slot."""

        def ok() -> bool:
            for node in self.nodes:
                if not node.alive():
                    continue
                info = node.command("CLUSTER", "INFO")
                if b"cluster_state:ok" not in info or b"cluster_slots_ok:16384" not in info:
                    return False
            return True

        self._wait(ok, within)

    @staticmethod
    def _wait(condition: Any, within: float) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                if condition():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"the Redis cluster was not ready within {within} s")

    def master_of(self, port: int) -> _Node:
        return next(node for node in self.nodes if node.port == port)

    def role(self, node: _Node) -> str:
        info = node.command("INFO", "replication")
        return "master" if b"role:master" in info else "replica"

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def client(self, **options: Any) -> Any:
        from redis.cluster import RedisCluster

        return RedisCluster(host="127.0.0.1", port=self.nodes[0].port, **options)
