"""Worker processes of the linearizability suite: random operations, each one logged.

Imported by ``spawn`` children, so it holds only module-level functions. See
``_history.py`` for the log format and what the checker proves.
"""

from __future__ import annotations

import os
import random
import threading
import time
import traceback
from typing import Any

import diskstore

from ._history import Log, decode_version, encode_version

NAMESPACES = ("", "ns1")
REGISTERS = ("k0", "k1", "k2", "k3", "k4")
COUNTERS = ("c0", "c1")
SHARED_TAG = "t1"
MIN_FILE_SIZE = 1024
#: Operations and their weights in the random mix.
MIX = (
    ("get", 30), ("set", 14), ("add", 4), ("incr", 6), ("pop", 4), ("delete", 4),
    ("touch", 4), ("txn", 8), ("clear", 1), ("evict", 1), ("expire", 1), ("cull", 1),
)  # fmt: skip
#: Queue operations, mixed in where the cache has queues (``Cache``, not ``FanoutCache``).
QUEUE_MIX = (("push", 4), ("pull", 3), ("peekitem", 2))


def open_cache(config: dict[str, Any]) -> Any:
    """Open the cache a configuration describes (see ``test_linearizability.CONFIGS``)."""
    settings = dict(config["settings"])
    settings["disk_min_file_size"] = MIN_FILE_SIZE
    if config["fanout"]:
        return diskstore.FanoutCache(config["directory"], shards=3, timeout=60, **settings)
    return diskstore.Cache(config["directory"], **settings)


class _Thread:
    """One thread's random walk over the keys of a shared cache."""

    def __init__(self, cache: Any, label: str, log: Log, seed: str) -> None:
        self.views = {ns: cache.namespace(ns) if ns else cache for ns in NAMESPACES}
        self.label = label
        self.log = log
        self.rng = random.Random(seed)
        self.number = 0
        self.padding = os.urandom(3 * MIN_FILE_SIZE)
        mix = MIX + (() if isinstance(cache, diskstore.FanoutCache) else QUEUE_MIX)
        self.ops, self.weights = zip(*mix, strict=True)

    def _version(self) -> dict[str, Any]:
        rng = self.rng
        self.number += 1
        vid = f"v{self.label}.{self.number}"
        tag = rng.choice((vid, vid, SHARED_TAG, None))
        expire = rng.choice((None, None, 3600.0, 0.3))
        form = rng.choice(("str", "bytes", "file", "object"))
        return {"vid": vid, "tag": tag, "exp": expire, "form": form}

    def _plan(self, name: str, ns: str) -> dict[str, Any]:
        rng = self.rng
        if name in ("get", "pop", "delete", "touch"):
            key = rng.choice(REGISTERS + COUNTERS if name in ("get", "delete") else REGISTERS)
            plan: dict[str, Any] = {"op": name, "ns": ns, "key": key}
            if name in ("get", "pop"):
                plan["x"], plan["g"] = rng.random() < 0.6, rng.random() < 0.6
            if name == "touch":
                plan["exp"] = rng.choice((None, 3600.0, 0.3))
            return plan
        if name in ("set", "add"):
            return {"op": name, "ns": ns, "key": rng.choice(REGISTERS), **self._version()}
        if name == "push":
            return {"op": name, "ns": ns, **self._version()}
        if name in ("pull", "peekitem"):
            return {"op": name, "ns": ns, "x": rng.random() < 0.6, "g": rng.random() < 0.6}
        if name == "incr":
            return {"op": "incr", "ns": ns, "key": rng.choice(COUNTERS)}
        if name in ("clear", "evict"):
            return {"op": name, "ns": ns, "tag": SHARED_TAG} if name == "evict" else {
                "op": name, "ns": ns}  # fmt: skip
        return {"op": name}  # expire, cull: the whole cache

    def _run(self, plan: dict[str, Any]) -> Any:
        name = plan["op"]
        if name in ("expire", "cull"):
            return getattr(self.views[""], name)()
        view = self.views[plan["ns"]]
        key = plan.get("key")
        flags = {"expire_time": plan.get("x", False), "tag": plan.get("g", False)}
        if name in ("get", "pop"):
            got = getattr(view, name)(key, default=None, **flags)
            return _observed(got, flags, lambda value: value if key.startswith("c") else None)
        if name in ("pull", "peekitem"):
            try:
                got = view.pull(**flags) if name == "pull" else view.peekitem(**flags)
            except KeyError:  # peekitem of an empty namespace
                return None
            plain = not (flags["expire_time"] or flags["tag"])
            item_key, value = got if plain else got[0]
            if item_key is None:
                return None
            counter = isinstance(item_key, str) and item_key.startswith("c")
            seen = _observed(
                value if plain else (value, *got[1:]), flags, lambda v: v if counter else None
            )
            return None if seen is None else [item_key, *seen]
        if name == "push":
            value = encode_version(plan["vid"], plan["form"], self.padding)
            return view.push(value, expire=plan["exp"], tag=plan["tag"])
        if name in ("set", "add"):
            value = encode_version(plan["vid"], plan["form"], self.padding)
            return bool(getattr(view, name)(key, value, expire=plan["exp"], tag=plan["tag"]))
        if name == "incr":
            return view.incr(key)
        if name == "delete":
            return bool(view.delete(key))
        if name == "touch":
            return bool(view.touch(key, expire=plan["exp"]))
        if name == "clear":
            return view.clear()
        return view.evict(plan["tag"])

    def step(self, *, hold: float = 0.0, txn: bool = False) -> None:
        """One random operation (with *txn*, a transaction), logged before and after."""
        rng = self.rng
        name = "txn" if txn else rng.choices(self.ops, self.weights)[0]
        ns = rng.choice(NAMESPACES)
        if name == "txn":
            inner = ("set", "set", "get", "incr", "delete")
            subs = [self._plan(rng.choice(inner), ns) for _ in range(rng.randint(2, 3))]
            record: dict[str, Any] = {"op": "txn", "subs": subs}
        else:
            record = self._plan(name, ns)
        self.number += 1
        record["i"] = number = self.number
        record["t0"], record["w0"] = time.monotonic_ns() / 1e9, time.time()
        self.log.line(record)
        error = None
        try:
            if name == "txn":
                with self.views[ns].transact():
                    result: Any = []
                    for sub in subs:
                        result.append(self._run(sub))
                        if hold:
                            time.sleep(hold * rng.random())
            else:
                result = self._run(record)
        except diskstore.DiskStoreError as exc:
            result, error = None, repr(exc)
        self.log.line(
            {"i": number, "r": result, "err": error,
             "t1": time.monotonic_ns() / 1e9, "w1": time.time()}
        )  # fmt: skip
        if error is not None:
            raise AssertionError(f"{self.label}: {record} raised {error}")


def _observed(got: Any, flags: dict[str, bool], native: Any) -> list[Any] | None:
    """A read's answer as ``[version id (or a counter's value), expiry, tag]``; None: a miss.

    *native(value)* returns the value itself where it is a counter, else None.
    """
    if not (flags["expire_time"] or flags["tag"]):
        got = (got,)
    value = got[0]
    if value is None:
        return None
    exp = got[1] if flags["expire_time"] else None
    tag = got[-1] if flags["tag"] else None
    counter = native(value)
    return [counter if counter is not None else decode_version(value), exp, tag]


def worker(
    config: dict[str, Any], label: str, threads: int, ops: int, barrier: Any, results: Any
) -> None:
    """Run *threads* threads of *ops* random operations each; report ``(label, ok, count)``."""
    try:
        cache = open_cache(config)
        barrier.wait(120)
        failures: list[str] = []

        def run(number: int) -> None:
            log = Log(os.path.join(config["logs"], f"{label}-{number}.log"), durable=False)
            seed = f"{config['seed']}-{label}-{number}"
            walker = _Thread(cache, f"{label}-{number}", log, seed=seed)
            try:
                for _ in range(ops):
                    walker.step()
            except BaseException:
                failures.append(traceback.format_exc())
            finally:
                log.close()

        pool = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        cache.close()
        if failures:
            results.put((label, "error", "\n".join(failures)))
        else:
            results.put((label, "ok", threads * ops))
    except BaseException:
        results.put((label, "error", traceback.format_exc()))


def victim(config: dict[str, Any], label: str, ready: Any) -> None:
    """Write in transactions that hold the lock a while, until killed (every line durable)."""
    cache = open_cache(config)
    log = Log(os.path.join(config["logs"], f"{label}.log"), durable=True)
    walker = _Thread(cache, label, log, seed=f"{config['seed']}-{label}")
    ready.set()
    while True:
        walker.step(hold=0.004, txn=walker.rng.random() < 0.8)
