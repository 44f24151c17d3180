"""Every read returns one whole version that was current at some instant during the read.

Several processes, each with several threads, run random operations (``set``, ``add``,
``incr``, ``pop``, ``delete``, ``touch``, ``transact``, ``clear``, ``evict``, ``cull``,
``expire``, and on ``Cache`` also ``push``, ``pull``, ``peekitem``) over a few keys in two
namespaces, with tags, short and long expiries, inline
and file values, while another process writing in transactions is killed with ``SIGKILL``
again and again. Every operation is logged with its start and end time, and the checker in
``_history.py`` judges every read against the history of its key.

The configurations cover ``Cache`` with the memory tier off and on, ``FanoutCache`` with it
off, and ``FanoutCache`` with it on and a size limit small enough that culling evicts live
items (there a read that finds nothing, or a counter that restarts, proves nothing).

By default the suite runs in well under a minute. Set ``DISKSTORE_SOAK=N`` to run N times
as many operations and kills (``DISKSTORE_SOAK=10`` takes about four minutes).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import time
from typing import Any

import pytest

import diskstore

from ._history import Op, check, load, unfinished
from ._linear_workers import open_cache, victim, worker
from ._support import collect, integrity, reap

SPAWN = multiprocessing.get_context("spawn")
SOAK = max(1, int(os.environ.get("DISKSTORE_SOAK", "1")))
PROCESSES = 3
THREADS = 2
OPS = 1500 * SOAK  # per thread
KILLS = 3 * SOAK  # of the process writing in transactions
INF_END = float("inf")

CONFIGS: dict[str, dict[str, Any]] = {
    "cache": {"fanout": False, "settings": {}, "evicting": False},
    "cache-memory-tier": {
        "fanout": False,
        "settings": {
            "memory_items": 64,
            "eviction_policy": "least-recently-used",
            "statistics": True,
        },
        "evicting": False,
    },
    "fanout": {"fanout": True, "settings": {"tag_index": True}, "evicting": False},
    "fanout-memory-tier-evicting": {
        "fanout": True,
        "settings": {
            "memory_items": 64,
            "eviction_policy": "least-frequently-used",
            "size_limit": 90_000,
        },
        "evicting": True,
    },
}


def _kill_repeatedly(config: dict[str, Any], rng: random.Random, workers: list[Any]) -> int:
    """Start the transaction writer and SIGKILL it, KILLS times or until the workers end."""
    kills = 0
    for number in range(KILLS):
        if not any(process.is_alive() for process in workers):
            break
        ready = SPAWN.Event()
        process = SPAWN.Process(target=victim, args=(config, f"victim{number}", ready))
        process.start()
        ready.wait(120)
        time.sleep(rng.uniform(0.1, 0.4))
        process.kill()
        process.join(30)
        kills += 1
    return kills


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", list(CONFIGS))
def test_every_read_returns_one_committed_version(tmp_path, figures, name):
    config = dict(CONFIGS[name])
    config["directory"] = str(tmp_path / "cache")
    config["logs"] = str(tmp_path / "logs")
    config["seed"] = seed = random.randrange(2**32)
    os.mkdir(config["logs"])
    open_cache(config).close()
    barrier = SPAWN.Barrier(PROCESSES)
    results = SPAWN.Queue()
    workers = [
        SPAWN.Process(target=worker, args=(config, f"p{n}", THREADS, OPS, barrier, results))
        for n in range(PROCESSES)
    ]
    for process in workers:
        process.start()
    try:
        kills = _kill_repeatedly(config, random.Random(seed), workers)
        found = collect(results, PROCESSES, timeout=600)
    finally:
        reap(workers)
    verdict = check(load(config["logs"]), removals_unseen=config["evicting"])
    figures.add("linearizability: operations checked", verdict.ops)
    figures.add("linearizability: reads checked", verdict.reads)
    figures.add("linearizability: writer processes killed", kills)
    cut = unfinished(config["logs"])
    figures.add("linearizability: killed inside transact()", cut.count("txn"))
    figures.add("linearizability: violations", len(verdict.violations))
    assert sum(found.values()) == PROCESSES * THREADS * OPS
    assert len(cut) <= kills  # a killed process leaves at most one operation unfinished
    assert verdict.violations == [], f"seed {seed}: " + "\n".join(verdict.violations[:20])
    assert verdict.reads >= PROCESSES * THREADS * OPS // 4
    if config["fanout"]:
        shards = sorted(os.listdir(config["directory"]))
        assert all(integrity(os.path.join(config["directory"], s)) == ["ok"] for s in shards)
    else:
        assert integrity(config["directory"]) == ["ok"]
    with diskstore.Cache(tmp_path / "probe") as probe:  # the machine is still sane
        probe.set("probe", 1)


# -- the checker itself: each rule must catch what it is meant to ----------------------------
def _write(vid: str, start: float, end: float, **extra: Any) -> Op:
    return Op("write", "", "k0", start, end, wall0=start, wall1=end, vid=vid, where=vid, **extra)


def _read(start: float, end: float, got: Any, shape: tuple[bool, bool] = (True, True)) -> Op:
    return Op("read", "", "k0", start, end, wall0=start, wall1=end, result=got, shape=shape)


def test_the_checker_accepts_a_read_concurrent_with_the_next_write():
    history = [
        _write("v1", 0, 1, tag="a"),
        _write("v2", 2, 4, tag="b"),
        _read(3, 5, ["v1", None, "a"]),
    ]
    verdict = check(history)
    assert verdict.violations == []
    assert verdict.reads == 1


@pytest.mark.parametrize(
    ("read", "rule"),
    [
        (_read(5, 6, ["v1", None, "a"]), "replaced or removed"),  # stale
        (_read(5, 6, ["v2", None, "a"]), "tag"),  # torn: v2's value with v1's tag
        (_read(5, 6, ["v2", 1e9, "b"]), "expiry"),  # torn: an expiry no write set
        (_read(5, 6, ["v9", None, None]), "never written"),  # phantom
        (_read(5, 6, None), "nothing could have removed it"),  # lost
    ],
)
def test_the_checker_flags_each_kind_of_bad_read(read, rule):
    history = [_write("v1", 0, 1, tag="a"), _write("v2", 2, 4, tag="b"), read]
    violations = check(history).violations
    assert len(violations) == 1 and rule in violations[0], violations


def test_the_checker_allows_a_miss_when_a_removal_may_come_between():
    delete = Op("delete", "", "k0", 4.5, INF_END, ok=False)  # from a killed process
    history = [_write("v1", 0, 1), _read(5, 6, None), delete]
    assert check(history).violations == []
    assert check([_write("v1", 0, 1), _read(5, 6, None)], removals_unseen=True).violations == []


def test_the_checker_flags_a_lost_increment():
    incrs = [Op("incr", "", "c0", n, n + 0.5, result=min(n, 2) + 1) for n in range(4)]
    violations = check(incrs).violations
    assert len(violations) == 1 and "both incremented to 3" in violations[0]


def test_the_checker_flags_a_torn_or_repeated_pull():
    push = Op("push", "", None, 0, 1, wall0=0, wall1=1, vid="v1", tag="a", result=7, where="p")
    pulls = [
        Op("pull", "", None, 2, 3, result=[7, "v1", None, "a"], shape=(False, True), where="x"),
        Op("pull", "", None, 4, 5, result=[7, "v1", None, "b"], shape=(False, True), where="y"),
    ]
    violations = check([push, *pulls]).violations
    assert len(violations) == 2, violations
    assert "tag 'b'" in violations[0] and "both pulled v1" in violations[1]
