"""Commands that change a cache: ``check``, ``clear``, ``cull``, ``expire``, ``evict``,
``delete``, ``vacuum``, ``migrate``, and the ``demo``."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import TextIO

from .. import _sql
from .._cache import Cache
from .._check import run_check
from .._migrate import source_databases
from ._common import (
    EXIT_NO,
    EXIT_OK,
    NotFound,
    UsageError,
    literal_hint,
    open_cache,
    parse_key,
    print_json,
    progress_bar,
)


def cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    with open_cache(args, read_only=False) as cache:
        with progress_bar("checking", cache._total_count()) as progress:
            found = run_check(cache, fix=args.fix, retry=True, progress=progress)
        remaining = cache.check() if args.fix and found else found
    if args.json:
        print_json(
            {
                "found": [f"{m.category.__name__}: {m.message}" for m in found],
                "remaining": [f"{m.category.__name__}: {m.message}" for m in remaining],
                "fixed": args.fix,
            },
            out,
        )
        return EXIT_NO if remaining else EXIT_OK
    for message in found:
        print(f"{message.category.__name__}: {message.message}", file=out)
    if not found:
        print("no problems found", file=out)
        return EXIT_OK
    if args.fix:
        fixed = len(found) - len(remaining)
        print(f"{len(found)} problem(s) found, {fixed} fixed, {len(remaining)} remaining", file=out)
        for message in remaining:
            print(f"remaining: {message.category.__name__}: {message.message}", file=out)
    else:
        print(f"{len(found)} problem(s) found (run with --fix to repair)", file=out)
    return EXIT_NO if remaining else EXIT_OK


def cmd_clear(args: argparse.Namespace, out: TextIO) -> int:
    with open_cache(args, read_only=False) as cache:
        removed = cache.clear(retry=True)
        others = cache._total_count() - len(cache)
    where = f" from namespace {args.namespace!r}" if args.namespace else ""
    print(f"removed {removed} item(s){where}", file=out)
    if others:
        print(f"{others} item(s) remain in other namespaces (see --namespace)", file=out)
    return EXIT_OK


def _removal(method: str, what: str) -> Callable[[argparse.Namespace, TextIO], int]:
    """A command that runs the whole-cache removal *method* and reports how many it removed."""

    def command(args: argparse.Namespace, out: TextIO) -> int:
        with open_cache(args, read_only=False) as cache:
            removed = getattr(cache, method)(retry=True)
        print(f"removed {removed} {what}", file=out)
        return EXIT_OK

    return command


cmd_cull = _removal("cull", "item(s) (expired, or evicted to fit size_limit)")
cmd_expire = _removal("expire", "expired item(s)")


def cmd_evict(args: argparse.Namespace, out: TextIO) -> int:
    tag = parse_key(args.tag, args.literal)
    with open_cache(args, read_only=False) as cache:
        removed = cache.evict(tag, retry=True)
    print(f"removed {removed} item(s) tagged {tag!r}", file=out)
    return EXIT_OK


def cmd_delete(args: argparse.Namespace, out: TextIO) -> int:
    key = parse_key(args.key, args.literal)
    with open_cache(args, read_only=False) as cache:
        deleted = cache.delete(key, retry=True)
    if not deleted:
        raise NotFound(f"key not found: {key!r}{literal_hint(args.key, args.literal)}")
    print(f"deleted {key!r}", file=out)
    return EXIT_OK


def cmd_vacuum(args: argparse.Namespace, out: TextIO) -> int:
    with open_cache(args, read_only=False) as cache:
        before = cache.volume()
        cache._store.run(_sql.VACUUM, retry=True)
        after = cache.volume()
    print(f"volume {before} -> {after} bytes", file=out)
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace, out: TextIO) -> int:
    try:
        source_databases(args.source)
    except Exception as exc:
        raise UsageError(str(exc)) from exc
    target = os.path.abspath(os.path.expanduser(args.directory))
    if (
        os.path.isdir(target)
        and os.listdir(target)
        and not os.path.isfile(os.path.join(target, "diskstore.db"))
    ):
        raise UsageError(f"{args.directory!r} exists and is not a diskstore cache")
    with Cache(target, network_fs=args.network_fs) as cache:
        with progress_bar("copying", 0) as progress:
            copied = cache.import_diskcache(args.source, trust=args.trust, progress=progress)
    print(f"copied {copied} item(s) from {args.source} into {target}", file=out)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from .._demo import run

    run(out=out)
    return EXIT_OK
