"""``keys``: list a cache's keys, or with ``--inspect`` its keys and metadata without the
secret. Expired items that are not yet removed are left out unless asked for: ``get`` says
they are not found, so listing them would only confuse."""

from __future__ import annotations

import argparse
import fnmatch
import itertools
from collections.abc import Iterator
from typing import Any, TextIO

from .._common import _clock
from .._common._format import human_bytes
from .._storage._inspect import EntryInfo, inspect_cache
from ._common import EXIT_OK, NotFound, json_key, print_json
from ._open import open_cache, shard_directories, shards_of


def _matches(pattern: str | None, key: Any) -> bool:
    if pattern is None:
        return True
    return fnmatch.fnmatchcase(key if isinstance(key, str) else repr(key), pattern)


def _limited(items: Iterator[Any], limit: int | None) -> tuple[list[Any], bool]:
    """The first *limit* of *items* (all without a limit), and whether any were left over."""
    if limit is None:
        return list(items), False
    taken = list(itertools.islice(items, limit + 1))
    return taken[:limit], len(taken) > limit


def _when(expire_time: float | None, now: float) -> str:
    """``expires in 5 min`` or ``expired 3 s ago``, for people."""
    if expire_time is None:
        return ""
    seconds = expire_time - now
    left = abs(seconds)
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if left >= 2 * size:
            amount = f"{left / size:.0f} {unit}"
            break
    else:
        amount = f"{left:.1f} s"
    return f"expires in {amount}" if seconds > 0 else f"expired {amount} ago"


def cmd_keys(args: argparse.Namespace, out: TextIO) -> int:
    if args.inspect:
        return _keys_inspected(args, out)
    with open_cache(args, read_only=True) as cache:
        now = _clock.now()
        keys: Iterator[Any] = itertools.chain.from_iterable(
            iter(shard) if args.include_expired else shard._iter_live(now)
            for shard in shards_of(cache)
        )
        matching = (key for key in keys if _matches(args.pattern, key))
        if args.json:
            shown, truncated = _limited(matching, args.limit)
            print_json({"keys": [json_key(key) for key in shown], "truncated": truncated}, out)
            return EXIT_OK
        for count, key in enumerate(matching):
            if args.limit is not None and count >= args.limit:
                print(f"... (the first {args.limit}; there are more)", file=out)
                break
            print(repr(key), file=out)
    return EXIT_OK


def _entries(args: argparse.Namespace, namespace: str) -> Iterator[EntryInfo]:
    """Every entry of *namespace* over the cache's databases (all shards of a FanoutCache)."""
    seen = False
    for directory in shard_directories(args):
        with inspect_cache(directory) as inspection:
            if namespace not in inspection.namespaces:
                continue
            seen = True
            yield from inspection.entries(namespace)
    if not seen:
        raise NotFound(f"no namespace {namespace!r} in {args.directory}")


def _keys_inspected(args: argparse.Namespace, out: TextIO) -> int:
    """List keys and metadata without the secret (``--inspect``), loading nothing."""
    now = _clock.now()
    entries = (
        entry
        for entry in _entries(args, args.namespace or "")
        if (args.include_expired or entry.expire_time is None or entry.expire_time > now)
        and _matches(args.pattern, entry.key)
    )
    listed, truncated = _limited(entries, args.limit)
    if args.json:
        rows = [
            {
                "key": json_key(entry.key),
                "kind": entry.kind,
                "stored_bytes": entry.stored_bytes,
                "expire_time": entry.expire_time,
                "tag": json_key(entry.tag) if entry.tag is not None else None,
                "signed": entry.signed,
            }
            for entry in listed
        ]
        print_json({"entries": rows, "truncated": truncated}, out)
        return EXIT_OK
    for entry in listed:
        details = [entry.kind, human_bytes(entry.stored_bytes)]
        if entry.expire_time is not None:
            details.append(_when(entry.expire_time, now))
        if entry.tag is not None:
            details.append(f"tag {entry.tag!r}")
        print(f"{entry.key!r}  {', '.join(details)}", file=out)
    if truncated:
        print(f"... (the first {args.limit}; there are more)", file=out)
    return EXIT_OK
