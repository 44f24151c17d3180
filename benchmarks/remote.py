"""The Redis workload: RedisCache against bare redis-py on one local redis-server, and on a
local 3-master Redis Cluster.

The floor is redis-py's own ``GET``/``SET`` of the same keys and values on the same
server (on the cluster, redis-py's ``RedisCluster``): what any Redis client pays for the
round trip and the protocol. RedisCache adds key encoding and the value format (natives as
themselves after a one-byte header, pickles signed); a plain get and set are one ``GET``
and one ``SET`` each. Rows: ``get``, ``set`` and ``memoize_hit`` in the diskstore column
(RedisCache), the floor's ``GET``/``SET`` in the sqlite3 (floor) column, and the same three
as ``cluster_*`` on the cluster (skipped without ``redis-cli``); ``near_get`` is a RedisCache with its near cache, next to a plain
RedisCache get in the floor column. ``staleness_us`` is how long after another client's
write the near cache still answered the old value (p50 and p99 of the trials).

The server is started here on a free loopback port and stopped at the end; without a
``redis-server`` binary the workload is skipped.
"""

from __future__ import annotations

import random
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from typing import Any

from benchmarks import data
from benchmarks.context import Context, Samples
from benchmarks.engines import DISKSTORE, FLOOR
from benchmarks.results import WorkloadResult
from benchmarks.timing import quiet_gc, split, turns

clock = time.perf_counter_ns
KEYS = 1000
STALENESS_TRIALS = 200


def _start_server() -> tuple[subprocess.Popen[bytes], int, str]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    workdir = tempfile.mkdtemp(prefix="diskstore-bench-redis-")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, port, workdir


def _start_cluster() -> tuple[list[subprocess.Popen[bytes]], list[int], str] | None:
    """Three cluster-enabled redis-servers joined by ``redis-cli --cluster create``."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    cli = shutil.which("redis-cli")
    if cli is None:
        return None
    sockets = []
    for _ in range(6):
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        sockets.append(probe)
    ports = [int(probe.getsockname()[1]) for probe in sockets]
    for probe in sockets:
        probe.close()
    workdir = tempfile.mkdtemp(prefix="diskstore-bench-cluster-")
    processes = []
    for index in range(3):
        node_dir = f"{workdir}/{index}"
        subprocess.run(["mkdir", "-p", node_dir], check=True)
        processes.append(
            subprocess.Popen(
                [binary, "--port", str(ports[index]), "--cluster-port", str(ports[index + 3]),
                 "--bind", "127.0.0.1", "--cluster-enabled", "yes", "--save", "",
                 "--dir", node_dir],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
    import redis

    for port in ports[:3]:
        _wait_ready(redis.Redis(port=port))
    subprocess.run(
        [cli, "--cluster", "create", *(f"127.0.0.1:{port}" for port in ports[:3]),
         "--cluster-yes"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    for _ in range(1000):
        infos = [redis.Redis(port=port).cluster("info") for port in ports[:3]]
        if all(info.get("cluster_state") == "ok" for info in infos):
            return processes, ports[:3], workdir
        time.sleep(0.02)
    raise RuntimeError("the Redis cluster did not come up")


def _cluster_rows(ctx: Context, samples: Samples, result: WorkloadResult) -> None:
    """``cluster_get``, ``cluster_set`` and ``cluster_memoize_hit`` against RedisCluster."""
    started = _start_cluster()
    if started is None:
        result.notes.append("cluster rows skipped: no redis-cli")
        return
    from redis.cluster import RedisCluster

    from diskstore import memoize
    from diskstore.redis import RedisCache

    processes, ports, workdir = started
    try:
        floor = RedisCluster(host="127.0.0.1", port=ports[0])
        cache = RedisCache(f"redis://127.0.0.1:{ports[0]}/0", namespace="bench")
        rng = random.Random(ctx.seed + 1)
        keys = [data.key(i) for i in range(KEYS)]
        values = [data.small_value(rng) for _ in range(KEYS)]
        blobs = [v if isinstance(v, bytes) else str(v).encode() for v in values]
        fkeys = [b"floor:" + key.encode() for key in keys]
        for key, fkey, value, blob in zip(keys, fkeys, values, blobs, strict=True):
            cache.set(key, value)
            floor.set(fkey, blob)

        @memoize(cache, name="bench")
        def lookup(index: int) -> Any:
            return values[index]

        for index in range(KEYS):
            lookup(index)
        count = ctx.scale.signed_ops // 2
        order = [rng.randrange(KEYS) for _ in range(count)]
        slices = split(count, ctx.scale.rounds)
        for number, engine in turns([DISKSTORE, FLOOR], ctx.scale.rounds):
            part = [order[i] for i in slices[number]]
            if engine == DISKSTORE:
                _timed(
                    samples, "cluster_get", engine, [lambda i=i: cache.get(keys[i]) for i in part]
                )
                sets = [lambda i=i: cache.set(keys[i], values[i]) for i in part]
                _timed(samples, "cluster_set", engine, sets)
                _timed(
                    samples, "cluster_memoize_hit", engine, [lambda i=i: lookup(i) for i in part]
                )
            else:
                _timed(
                    samples, "cluster_get", engine, [lambda i=i: floor.get(fkeys[i]) for i in part]
                )
                sets = [lambda i=i: floor.set(fkeys[i], blobs[i]) for i in part]
                _timed(samples, "cluster_set", engine, sets)
                hits = [lambda i=i: floor.get(fkeys[i]) for i in part]
                _timed(samples, "cluster_memoize_hit", engine, hits)
        cache.clear()
        cache.close()
        floor.close()
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_ready(client: Any) -> None:
    import redis

    for _ in range(1000):
        try:
            client.ping()
            return
        except redis.ConnectionError:
            time.sleep(0.01)
    raise RuntimeError("redis-server did not start")


def _timed(samples: Samples, op: str, engine: str, calls: list[Any]) -> None:
    times = samples.setdefault(op, {}).setdefault(engine, [])
    with quiet_gc():
        for call in calls:
            start = clock()
            call()
            times.append(clock() - start)


def _wait_near(cache: Any) -> None:
    deadline = time.monotonic() + 10
    while not cache._shared.near.ready and time.monotonic() < deadline:
        time.sleep(0.01)


def _staleness(url: str, namespace: str) -> list[int]:
    """Nanoseconds a near cache kept answering the old value after another client wrote."""
    from diskstore.redis import RedisCache

    reader = RedisCache(url, namespace=namespace, near_items=100)
    writer = RedisCache(url, namespace=namespace)
    try:
        _wait_near(reader)
        windows = []
        for trial in range(STALENESS_TRIALS):
            writer.set("watched", trial)
            while reader.get("watched") != trial:
                pass  # settle: the reader holds ``trial`` in its near cache
            writer.set("watched", -trial - 1)
            written = clock()
            while reader.get("watched") != -trial - 1:
                pass
            windows.append(clock() - written)
        return windows
    finally:
        reader.close()
        writer.close()


def redis_workload(ctx: Context) -> WorkloadResult:
    """get/set/memoize hit on RedisCache vs redis-py; near cache vs plain; staleness."""
    result = WorkloadResult(
        "redis",
        "RedisCache vs bare redis-py GET/SET on one local server and a local 3-master cluster",
        [DISKSTORE, FLOOR],
    )
    if not shutil.which("redis-server") and not shutil.which("/usr/bin/redis-server"):
        result.skipped = "no redis-server binary (make bench installs it)"
        return result
    import redis

    from diskstore import memoize
    from diskstore.redis import RedisCache

    process, port, workdir = _start_server()
    url = f"redis://127.0.0.1:{port}/0"
    floor = redis.Redis(host="127.0.0.1", port=port)
    samples: Samples = {}
    try:
        _wait_ready(floor)
        cache = RedisCache(url, namespace="bench")
        # Its own namespace: the timed sets of the other rows do not invalidate it.
        near = RedisCache(url, namespace="bench-near", near_items=KEYS * 2)
        _wait_near(near)
        rng = random.Random(ctx.seed)
        keys = [data.key(i) for i in range(KEYS)]
        values = [data.small_value(rng) for _ in range(KEYS)]
        blobs = [v if isinstance(v, bytes) else str(v).encode() for v in values]
        for key, value, blob in zip(keys, values, blobs, strict=True):
            cache.set(key, value)
            floor.set(b"floor:" + key.encode(), blob)

        @memoize(cache, name="bench")
        def lookup(index: int) -> Any:
            return values[index]

        for index in range(KEYS):
            lookup(index)
            near.set(keys[index], values[index])
        for key in keys:
            near.get(key)  # fills the near cache
        count = ctx.scale.signed_ops // 2
        order = [rng.randrange(KEYS) for _ in range(count)]
        slices = split(count, ctx.scale.rounds)
        for number, engine in turns([DISKSTORE, FLOOR], ctx.scale.rounds):
            part = [order[i] for i in slices[number]]
            if engine == DISKSTORE:
                _timed(samples, "get", engine, [lambda i=i: cache.get(keys[i]) for i in part])
                _timed(
                    samples,
                    "set",
                    engine,
                    [lambda i=i: cache.set(keys[i], values[i]) for i in part],
                )
                _timed(samples, "memoize_hit", engine, [lambda i=i: lookup(i) for i in part])
                _timed(samples, "near_get", engine, [lambda i=i: near.get(keys[i]) for i in part])
            else:
                fkeys = [b"floor:" + keys[i].encode() for i in part]
                _timed(samples, "get", engine, [lambda k=k: floor.get(k) for k in fkeys])
                sets = [
                    lambda k=k, i=i: floor.set(k, blobs[i])
                    for k, i in zip(fkeys, part, strict=True)
                ]
                _timed(samples, "set", engine, sets)
                _timed(samples, "memoize_hit", engine, [lambda k=k: floor.get(k) for k in fkeys])
                plain = [lambda i=i: cache.get(keys[i]) for i in part]
                _timed(samples, "near_get", engine, plain)
        _cluster_rows(ctx, samples, result)
        result.add_samples(samples)
        ops = ("get", "set", "memoize_hit", "cluster_get", "cluster_set", "cluster_memoize_hit")
        for op in ops:
            if op not in samples:
                continue
            mine = statistics.median(samples[op][DISKSTORE])
            base = statistics.median(samples[op][FLOOR])
            result.add_metric(f"ratio_{op}", DISKSTORE, round(mine / base, 3))
        # The near cache's hit against a plain RedisCache get (the floor column's near_get).
        near_hit = statistics.median(samples["near_get"][DISKSTORE])
        plain_get = statistics.median(samples["near_get"][FLOOR])
        result.add_metric("ratio_near_get", DISKSTORE, round(near_hit / plain_get, 3))
        windows = _staleness(url, "bench-staleness")
        windows.sort()
        result.add_metric("staleness_us_p50", DISKSTORE, windows[len(windows) // 2] / 1000)
        result.add_metric("staleness_us_p99", DISKSTORE, windows[int(len(windows) * 0.99)] / 1000)
        result.checks["near_cache_served"] = len(near._shared.near) > 0
        result.notes.append(
            "ratio_* is RedisCache p50 over the floor's p50 (near_get: over a plain RedisCache get)"
        )
        cache.clear()
        cache.close()
        near.close()
    finally:
        floor.close()
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
    return result
