"""Commands that change a cache: ``check``, ``clear``, ``cull``, ``expire``, ``evict``,
``delete``, ``vacuum``, ``migrate``, and the ``demo``.

Ctrl-C stops a long one part-way; it then raises :class:`Interrupted` saying what was done
(items removed, rows checked, items copied), counted rather than guessed: removals commit
in batches, so what a count before and after differs by is what is gone.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from .._caching._cache import Cache
from .._caching._check import run_check
from .._storage import _sql
from .._storage._migrate import source_databases
from ._common import (
    EXIT_NO,
    EXIT_OK,
    Interrupted,
    UsageError,
    json_key,
    key_not_found,
    parse_key,
    print_json,
    progress_bar,
)
from ._open import DATABASE_NAMES, open_cache, shards_of

if TYPE_CHECKING:
    from ._open import AnyCache


def _report(args: argparse.Namespace, out: TextIO, text: str, data: dict[str, Any]) -> int:
    """Print *data* as JSON with ``--json``, else *text*."""
    if args.json:
        print_json(data, out)
    else:
        print(text, file=out)
    return EXIT_OK


def cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    found: list[Any] = []
    with open_cache(args, read_only=False) as cache:
        shards = shards_of(cache)
        total = sum(shard._total_count() for shard in shards)
        done = checked = finished = 0
        with progress_bar("checking", total) as progress:

            def advance(rows: int, _total: int) -> None:
                nonlocal checked
                checked = done + rows
                progress(checked, total)

            try:
                for shard in shards:
                    found += run_check(shard, fix=args.fix, retry=True, progress=advance)
                    done = checked
                    finished += 1
            except KeyboardInterrupt:
                stopped = f"checked {checked} of {total} item(s), found {len(found)} problem(s)"
                raise Interrupted(_check_stopped(args, stopped, len(shards), finished)) from None
        remaining = cache.check() if args.fix and found else found
    messages = [f"{m.category.__name__}: {m.message}" for m in found]
    left = [f"{m.category.__name__}: {m.message}" for m in remaining]
    status = EXIT_NO if remaining else EXIT_OK
    if args.json:
        print_json({"found": messages, "remaining": left, "fixed": args.fix}, out)
        return status
    for message in messages:
        print(message, file=out)
    if not found:
        print("no problems found", file=out)
    elif args.fix:
        fixed = len(found) - len(remaining)
        print(f"{len(found)} problem(s) found, {fixed} fixed, {len(remaining)} remaining", file=out)
        for message in left:
            print(f"remaining: {message}", file=out)
    else:
        print(f"{len(found)} problem(s) found (run with --fix to repair)", file=out)
    return status


def _check_stopped(args: argparse.Namespace, stopped: str, shards: int, finished: int) -> str:
    """What an interrupted ``check`` had done: a shard's repairs commit only at its end."""
    if not args.fix:
        return stopped
    if shards == 1:
        return f"{stopped}; nothing was repaired"
    return f"{stopped}; repaired only the {finished} of {shards} shards checked to the end"


def _removing(cache: AnyCache, remove: Callable[[], int]) -> int:
    """Run *remove*; on Ctrl-C, count what it had removed and raise :class:`Interrupted`."""
    before = len(cache)
    try:
        return remove()
    except KeyboardInterrupt:
        removed = before - len(cache)
        raise Interrupted(
            f"removed {removed} item(s) before stopping; run it again to remove the rest"
        ) from None


def cmd_clear(args: argparse.Namespace, out: TextIO) -> int:
    with open_cache(args, read_only=False) as cache:
        removed = _removing(cache, lambda: cache.clear(retry=True))
        others = sum(shard._total_count() for shard in shards_of(cache)) - len(cache)
    where = f" from namespace {args.namespace!r}" if args.namespace else ""
    text = f"removed {removed} item(s){where}"
    if others:
        text += f"\n{others} item(s) remain in other namespaces (see --namespace)"
    data = {"removed": removed, "namespace": args.namespace or "", "other_namespaces": others}
    return _report(args, out, text, data)


def _removal(method: str, what: str) -> Callable[[argparse.Namespace, TextIO], int]:
    """A command that runs the whole-cache removal *method* and reports how many it removed."""

    def command(args: argparse.Namespace, out: TextIO) -> int:
        with open_cache(args, read_only=False) as cache:
            run = getattr(cache, method)
            removed = _removing(cache, lambda: int(run(retry=True)))
        return _report(args, out, f"removed {removed} {what}", {"removed": removed})

    return command


cmd_cull = _removal("cull", "item(s) (expired, or evicted to fit size_limit)")
cmd_expire = _removal("expire", "expired item(s)")


def cmd_evict(args: argparse.Namespace, out: TextIO) -> int:
    tag = parse_key(args.tag, args.literal)
    with open_cache(args, read_only=False) as cache:
        removed = _removing(cache, lambda: cache.evict(tag, retry=True))
    text = f"removed {removed} item(s) tagged {tag!r}"
    return _report(args, out, text, {"removed": removed, "tag": json_key(tag)})


def cmd_delete(args: argparse.Namespace, out: TextIO) -> int:
    key = parse_key(args.key, args.literal)
    with open_cache(args, read_only=False) as cache:
        deleted = cache.delete(key, retry=True)
    if not deleted:
        raise key_not_found(args, key)
    return _report(args, out, f"deleted {key!r}", {"deleted": json_key(key)})


def cmd_vacuum(args: argparse.Namespace, out: TextIO) -> int:
    with open_cache(args, read_only=False) as cache:
        before = cache.volume()
        for shard in shards_of(cache):
            shard._store.run(_sql.VACUUM, retry=True)
        after = cache.volume()
    text = f"volume {before} -> {after} bytes"
    return _report(args, out, text, {"volume_before": before, "volume_after": after})


def cmd_adopt(args: argparse.Namespace, out: TextIO) -> int:
    """Sign the pickles diskcache wrote in DIR (every shard of a FanoutCache) in place."""
    with open_cache(args, read_only=False) as cache:
        if not args.trust:
            raise UsageError(
                "adopting makes diskstore load the pickles diskcache wrote here, and loading "
                "a pickle runs whatever code it names: add --trust if you trust everyone "
                "who could write to this directory (nothing was changed)"
            )
        changed = 0
        with progress_bar("adopting", 0) as progress:
            for shard in shards_of(cache):
                changed += shard.adopt_diskcache(trust=True, progress=progress)
    text = f"adopted {changed} entr{'y' if changed == 1 else 'ies'} in {cache.directory}"
    return _report(args, out, text, {"adopted": changed, "directory": cache.directory})


def cmd_migrate(args: argparse.Namespace, out: TextIO) -> int:
    try:
        source_databases(args.source)
    except Exception as exc:
        raise UsageError(str(exc)) from exc
    target = os.path.abspath(os.path.expanduser(args.directory))
    if (
        os.path.isdir(target)
        and os.listdir(target)
        and not any(os.path.isfile(os.path.join(target, name)) for name in DATABASE_NAMES)
    ):
        raise UsageError(f"{args.directory!r} exists and is not a diskstore cache")
    copied = 0
    with Cache(target, network_fs=args.network_fs) as cache:
        with progress_bar("copying", 0) as progress:

            def count(done: int, total: int) -> None:
                nonlocal copied
                copied = done
                progress(done, total)

            try:
                copied = cache.import_diskcache(args.source, trust=args.trust, progress=count)
            except KeyboardInterrupt:
                raise Interrupted(
                    f"copied {copied} item(s) into {target} before stopping; run it again to "
                    "copy them all (items already copied are overwritten, not doubled)"
                ) from None
    text = f"copied {copied} item(s) from {args.source} into {target}"
    return _report(args, out, text, {"copied": copied, "source": args.source, "directory": target})


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    import io

    from .._demo import run

    if not args.json:
        run(out=out)
        return EXIT_OK
    report = run(out=io.StringIO())  # the figures alone, as JSON
    print_json(dataclasses.asdict(report), out)
    return EXIT_OK
