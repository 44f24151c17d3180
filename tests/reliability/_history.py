"""Operation histories of the linearizability suite, and the checker that judges them.

Every worker thread logs each operation twice: an *intent* line before it starts (with its
monotonic start time, shared by all processes on the machine) and a *result* line after it
returns. A process killed mid-operation leaves intents without results: such operations may
or may not have taken effect, at any moment after they started.

Every write of a register key stores a new, unique *version* id, carried in the value, and
gives the version its own tag and expiry, so a read names the version it returned. The
checker then applies, per key, the real-time rules every linearizable register obeys (an
operation takes effect at one instant between its start and its end):

- **whole**: the value decodes to a version that was written, whose write started before
  the read ended, and the tag and expiry returned are that version's (or, for the expiry,
  those of a ``touch`` that may have preceded the read);
- **not expired**: a returned expiry lies after the read began;
- **not stale**: no write of the key, and no removal that certainly removed the version
  (``delete``/``pop`` that reported success, ``clear`` of its namespace, ``evict`` of its
  tag), both started after the version's write ended and ended before the read began;
- **not lost**: a read that finds nothing is wrong if a write ended before the read began
  and nothing that may remove the key (a removal, an expiry, an operation of a killed
  process) can be placed between the start of that write and the end of the read.

Queue reads (``pull``, ``peekitem``) must return a whole version that was pushed or
written, and no pushed item may be pulled twice.

Counters (``incr``) are checked for lost updates: two increments that return the same total
with no possible removal between them lost one, and no read or increment may return more
than the number of increments started before it ended.

These rules never flag a correct history (each names a pair of operations whose order real
time fixes), so a violation is a real one; they do not search for a total order, which would
find a few more anomalies at exponential cost.
"""

from __future__ import annotations

import bisect
import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

INF = math.inf
#: Slack on wall-clock comparisons of expiry times (float rounding only).
EPSILON = 1e-3
#: Expiries at or below this many seconds are *short*: such a version may vanish any time.
SHORT = 60.0


@dataclass
class Op:
    """One operation on one key (a transaction contributes one per operation inside it)."""

    kind: str  # write, touch, read, delete, pop, incr, clear, evict, sweep
    ns: str
    key: str | None
    start: float
    end: float  # INF: never returned (its process was killed)
    wall0: float = 0.0
    wall1: float = INF
    ok: bool = True  # returned normally; False: unknown whether it took effect
    vid: str | None = None
    tag: Any = None
    expire: float | None = None
    result: Any = None
    shape: tuple[bool, bool] = (False, False)  # a read's (expire_time, tag) flags
    where: str = ""
    txn: str | None = None  # "txn" when the operation ran inside a transaction


@dataclass
class Verdict:
    ops: int = 0
    reads: int = 0
    violations: list[str] = field(default_factory=list)


def decode_version(value: Any) -> str:
    """The version id a stored value carries (see :func:`encode_version`); ``?`` if none."""
    if isinstance(value, str):
        return value if value.startswith("v") else "?"
    if isinstance(value, bytes):
        head = value.split(b"|", 1)[0]
        return head.decode() if head.startswith(b"v") else "?"
    if isinstance(value, dict) and isinstance(value.get("v"), str):
        return str(value["v"])
    return "?"


def encode_version(vid: str, form: str, padding: bytes) -> Any:
    """A value of the given *form* carrying *vid*: native str, small or file bytes, object."""
    if form == "str":
        return vid
    if form == "bytes":
        return vid.encode()
    if form == "file":
        return vid.encode() + b"|" + padding
    return {"v": vid, "pad": padding.hex()}


class Log:
    """One thread's log file; *durable* writes each line at once (for killed processes)."""

    def __init__(self, path: str, durable: bool) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._durable = durable
        self._lines: list[bytes] = []

    def line(self, record: dict[str, Any]) -> None:
        data = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        if self._durable:
            os.write(self._fd, data)
        else:
            self._lines.append(data)

    def close(self) -> None:
        if self._lines:
            os.write(self._fd, b"".join(self._lines))
            self._lines = []
        os.close(self._fd)


def load(directory: str) -> list[Op]:
    """Every operation logged by the ``*.log`` files in *directory*."""
    ops: list[Op] = []
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".log"):
            continue
        intents: dict[int, dict[str, Any]] = {}
        results: dict[int, dict[str, Any]] = {}
        with open(os.path.join(directory, name), encoding="utf-8") as handle:
            for text in handle:
                if not text.endswith("\n"):
                    continue  # a line cut short by a kill
                record = json.loads(text)
                (intents if "op" in record else results)[record["i"]] = record
        for number, intent in intents.items():
            ops.extend(_expand(intent, results.get(number), f"{name}#{number}"))
    return ops


def unfinished(directory: str) -> list[str]:
    """The operations (``set``, ``txn``, ...) whose process was killed before they returned."""
    names = []
    for op in load(directory):
        if op.end == INF and op.where.endswith(".0"):
            names.append(op.txn or op.kind)
    return names


def _expand(intent: dict[str, Any], result: dict[str, Any] | None, where: str) -> list[Op]:
    done = result is not None and result.get("err") is None
    end = result["t1"] if result is not None else INF
    wall1 = result["w1"] if result is not None else INF
    subs = intent["subs"] if intent["op"] == "txn" else [intent]
    answers = result["r"] if done and result is not None and intent["op"] == "txn" else None
    ops = []
    for index, sub in enumerate(subs):
        answer = None
        if done and result is not None:
            answer = answers[index] if answers is not None else result["r"]
        op = _op(sub, intent, end, wall1, done, answer, f"{where}.{index}")
        if intent["op"] == "txn":
            op.txn = "txn"
        ops.append(op)
    return ops


def _op(
    sub: dict[str, Any],
    intent: dict[str, Any],
    end: float,
    wall1: float,
    done: bool,
    answer: Any,
    where: str,
) -> Op:
    name = sub["op"]
    kind = {"set": "write", "add": "write", "get": "read", "expire": "sweep", "cull": "sweep"}
    op = Op(
        kind=kind.get(name, name), ns=sub.get("ns", ""), key=sub.get("key"),
        start=intent["t0"], end=end, wall0=intent["w0"], wall1=wall1, ok=done,
        vid=sub.get("vid"), tag=sub.get("tag"), expire=sub.get("exp"), result=answer,
        shape=(bool(sub.get("x")), bool(sub.get("g"))), where=where,
    )  # fmt: skip
    if name == "add" and done and not answer:
        op.kind = "noop"  # the key was present: nothing written
    if name == "evict":
        op.tag = sub["tag"]
    return op


def _short(expire: float | None) -> bool:
    return expire is not None and expire <= SHORT


class _Intervals:
    """Intervals ``(start, end)``: is there one inside ``(after, before)``, or overlapping?"""

    def __init__(self, spans: list[tuple[float, float]]) -> None:
        by_start = sorted(spans)
        self._starts = [start for start, _ in by_start]
        # Suffix minimum of the ends (for "inside") and prefix maximum (for "overlapping").
        self._min_end = [INF] * (len(by_start) + 1)
        for index in range(len(by_start) - 1, -1, -1):
            self._min_end[index] = min(by_start[index][1], self._min_end[index + 1])
        self._max_end = []
        best = -INF
        for _, end in by_start:
            best = max(best, end)
            self._max_end.append(best)

    def inside(self, after: float, before: float) -> bool:
        """Is some interval's start > *after* and its end < *before*?"""
        index = bisect.bisect_right(self._starts, after)
        return self._min_end[index] < before

    def overlapping(self, low: float, high: float) -> bool:
        """Is some interval's start < *high* and its end > *low*?"""
        index = bisect.bisect_left(self._starts, high)
        return index > 0 and self._max_end[index - 1] > low


class _KeyHistory:
    def __init__(self) -> None:
        self.versions: dict[str, Op] = {}
        self.definite: list[tuple[float, float]] = []  # certainly replaced or removed it
        self.possible: list[tuple[float, float]] = []  # may have removed it
        self.writes: list[Op] = []  # completed writes
        self.touches: list[Op] = []
        self.incrs: list[Op] = []
        self.reads: list[Op] = []


def check(ops: list[Op], *, removals_unseen: bool = False) -> Verdict:
    """Judge a history; *removals_unseen*: eviction by size may remove any key at any time."""
    verdict = Verdict(ops=len(ops))
    keys: dict[tuple[str, str], _KeyHistory] = defaultdict(_KeyHistory)
    per_ns: dict[str, list[Op]] = defaultdict(list)
    sweeps: list[Op] = []
    pushes: dict[str, Op] = {}
    queue_reads: list[Op] = []
    for op in ops:
        if op.kind == "push":
            pushes[op.vid or "?"] = op
            continue
        if op.kind in ("pull", "peekitem"):
            queue_reads.append(op)
            continue
        if op.key is None:
            (sweeps if op.kind == "sweep" else per_ns[op.ns]).append(op)
            continue
        history = keys[(op.ns, op.key)]
        span = (op.start, op.end if op.ok else INF)
        if op.kind == "write":
            history.versions[op.vid or "?"] = op
            if op.ok:
                history.writes.append(op)
                history.definite.append(span)
            if _short(op.expire) or not op.ok:
                history.possible.append((op.start, INF))
        elif op.kind == "touch":
            history.touches.append(op)
            if _short(op.expire) or not op.ok:
                history.possible.append((op.start, INF))
        elif op.kind in ("delete", "pop"):
            history.possible.append(span)
            if op.ok and op.result:  # it removed a live item
                history.definite.append(span)
            if op.kind == "pop":
                history.reads.append(op)
        elif op.kind == "incr":
            history.incrs.append(op)
        elif op.kind == "read":
            history.reads.append(op)
    for (ns, _key), history in keys.items():
        for op in per_ns.get(ns, []):  # clear and evict act on the whole namespace
            span = (op.start, op.end if op.ok else INF)
            history.possible.append(span)
            if op.kind == "clear" and op.ok:
                history.definite.append(span)
        for op in sweeps:
            history.possible.append((op.start, op.end if op.ok else INF))
    evictions: dict[tuple[str, Any], list[tuple[float, float]]] = defaultdict(list)
    for ns, ns_ops in per_ns.items():
        for op in ns_ops:
            if op.kind == "evict" and op.ok:
                evictions[(ns, op.tag)].append((op.start, op.end))
    evicted = {name: _Intervals(spans) for name, spans in evictions.items()}
    for (ns, key), history in keys.items():
        _check_key(ns, key, history, evicted, removals_unseen, verdict)
    _check_queue_reads(queue_reads, pushes, keys, verdict)
    return verdict


def _check_queue_reads(
    reads: list[Op],
    pushes: dict[str, Op],
    keys: dict[tuple[str, str], _KeyHistory],
    verdict: Verdict,
) -> None:
    """``pull`` and ``peekitem``: a whole version that was written; no item pulled twice.

    ``peekitem`` may return any key of the namespace (the last inserted), so its answer is
    checked against that key's writes and touches, but not for staleness: which item is
    last depends on insertion order, which the history does not record.
    """
    pulled: dict[str, Op] = {}
    for read in reads:
        if not read.ok:
            continue
        verdict.reads += 1
        if read.result is None:
            continue
        item_key, vid, exp, tag = read.result
        name = f"{read.ns or '<plain>'}/{read.kind}"
        if isinstance(item_key, int):
            source, touches = pushes.get(vid), []
        elif item_key.startswith("c"):
            continue  # a counter: its value names no version
        else:
            history = keys.get((read.ns, item_key))
            source = history.versions.get(vid) if history is not None else None
            touches = history.touches if history is not None else []
        if source is None or source.start > read.end:
            verdict.violations.append(f"{name}: {read.where} read {vid!r}, never written")
            continue
        _check_whole(name, read, [vid, exp, tag], source, touches, verdict)
        if read.kind == "pull":
            if vid in pulled:
                verdict.violations.append(
                    f"{name}: {read.where} and {pulled[vid].where} both pulled {vid}"
                )
            pulled[vid] = read


def _check_key(
    ns: str,
    key: str,
    history: _KeyHistory,
    evicted: dict[tuple[str, Any], _Intervals],
    removals_unseen: bool,
    verdict: Verdict,
) -> None:
    definite = _Intervals(history.definite)
    possible = _Intervals(history.possible)
    writes = sorted(history.writes, key=lambda op: op.end)
    write_ends = [op.end for op in writes]
    latest: list[Op] = []  # latest[i]: the write with the greatest start among writes[: i + 1]
    for op in writes:
        latest.append(op if not latest or op.start > latest[-1].start else latest[-1])
    incr_starts = sorted(op.start for op in history.incrs)
    counter = key.startswith("c")
    name = f"{ns or '<plain>'}/{key}"
    for read in history.reads:
        if not read.ok:
            continue
        verdict.reads += 1
        got = read.result
        if counter:
            if got is not None and isinstance(got, list) and got[0] is not None:
                total = bisect.bisect_left(incr_starts, read.end)
                if not isinstance(got[0], int) or not 1 <= got[0] <= total:
                    verdict.violations.append(
                        f"{name}: {read.where} read {got[0]!r} after {total} increments"
                    )
            continue
        if got is None:
            if read.kind == "pop" or removals_unseen:
                continue  # a pop miss proves nothing more than a read miss does
            index = bisect.bisect_left(write_ends, read.start) - 1
            if index < 0:
                continue
            write = latest[index]
            if _short(write.expire):
                continue
            if not possible.overlapping(write.start, read.end):
                verdict.violations.append(
                    f"{name}: {read.where} found nothing, but {write.where} wrote {write.vid}"
                    " before it began and nothing could have removed it"
                )
            continue
        _check_version(name, read, got, history, definite, evicted, ns, verdict)
    _check_counter(name, history, None if removals_unseen else possible, incr_starts, verdict)


def _check_version(
    name: str,
    read: Op,
    got: list[Any],
    history: _KeyHistory,
    definite: _Intervals,
    evicted: dict[tuple[str, Any], _Intervals],
    ns: str,
    verdict: Verdict,
) -> None:
    vid = got[0]
    write = history.versions.get(vid)
    if write is None or write.start > read.end:
        verdict.violations.append(f"{name}: {read.where} read {vid!r}, which was never written")
        return
    _check_whole(name, read, got, write, history.touches, verdict)
    stale = definite.inside(write.end, read.start)
    tagged = evicted.get((ns, write.tag))
    if not stale and tagged is not None and write.tag is not None:
        stale = tagged.inside(write.end, read.start)
    if stale:
        verdict.violations.append(
            f"{name}: {read.where} read {vid}, replaced or removed before the read began"
        )


def _check_whole(
    name: str, read: Op, got: list[Any], write: Op, touches: list[Op], verdict: Verdict
) -> None:
    """The tag and expiry a read returned with version *write* are that version's own."""
    vid, exp, tag = got
    want_exp, want_tag = read.shape
    if want_tag and tag != write.tag:
        verdict.violations.append(
            f"{name}: {read.where} read {vid} with tag {tag!r}, but its tag is {write.tag!r}"
        )
    if want_exp:
        if exp is not None and exp <= read.wall0:
            verdict.violations.append(f"{name}: {read.where} read {vid}, expired at {exp}")
        sources = [write] + [op for op in touches if op.start < read.end]
        if not any(_expiry_matches(op, exp) for op in sources):
            verdict.violations.append(
                f"{name}: {read.where} read {vid} with an expiry ({exp}) set by no write or"
                " touch of it"
            )


def _expiry_matches(op: Op, exp: float | None) -> bool:
    if op.expire is None or exp is None:
        return op.expire is None and exp is None
    return op.wall0 + op.expire - EPSILON <= exp <= op.wall1 + op.expire + EPSILON


def _check_counter(
    name: str,
    history: _KeyHistory,
    possible: _Intervals,
    incr_starts: list[float],
    verdict: Verdict,
) -> None:
    seen: dict[int, Op] = {}
    for op in sorted(history.incrs, key=lambda op: op.start):
        if not op.ok:
            continue
        total = bisect.bisect_left(incr_starts, op.end)
        if not isinstance(op.result, int) or not 1 <= op.result <= total:
            verdict.violations.append(
                f"{name}: {op.where} incremented to {op.result!r} after {total} increments"
            )
            continue
        other = seen.get(op.result)
        if other is not None and possible is not None:
            low, high = min(other.start, op.start), max(other.end, op.end)
            if not possible.overlapping(low, high):
                verdict.violations.append(
                    f"{name}: {other.where} and {op.where} both incremented to {op.result}"
                )
        seen[op.result] = op
