"""Commands that only look: ``stats``, ``get``, ``namespaces``, ``functions``, ``version``
(``keys`` has its own module). They open the cache read-only, so they never change it."""

from __future__ import annotations

import argparse
import platform
import sqlite3
import warnings
from typing import Any, TextIO

from .._common import _clock
from .._common._exceptions import DiskcacheDirectoryWarning
from .._common._format import human_bytes, summarize
from .._storage._settings import NAMES
from ._common import (
    EXIT_OK,
    PROG,
    Failed,
    NotFound,
    UsageError,
    json_key,
    key_not_found,
    parse_key,
    print_json,
)
from ._open import namespace_names, open_cache, shard_count, shards_of


def _version() -> str:
    from .. import __version__

    return __version__


def cmd_version(args: argparse.Namespace, out: TextIO) -> int:
    versions = {
        "diskstore": _version(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }
    if args.json:
        print_json(versions, out)
        return EXIT_OK
    print(
        f"diskstore {versions['diskstore']} (Python {versions['python']}, "
        f"SQLite {versions['sqlite']})",
        file=out,
    )
    return EXIT_OK


def _counts(cache: Any, include_expired: bool) -> tuple[int, int, int]:
    """Items of the view, items of every namespace, and the expired ones among the first,
    summed over the shards; expired items are left out of the counts unless included."""
    now = _clock.now()
    items = everywhere = expired = 0
    for shard in shards_of(cache):
        shard_expired = shard._expired_count(now)
        expired += shard_expired
        items += len(shard) - (0 if include_expired else shard_expired)
        everywhere += shard._total_count()
        if not include_expired:
            everywhere -= shard._expired_count(now, all_namespaces=True)
    return items, everywhere, expired


def cmd_stats(args: argparse.Namespace, out: TextIO) -> int:
    with open_cache(args, read_only=True) as cache:
        settings = {name: getattr(cache, name) for name in NAMES}
        # Reading the counters must not switch counting on or off.
        hits, misses = cache.stats(enable=settings["statistics"])
        items, everywhere, expired = _counts(cache, args.include_expired)
        report: dict[str, Any] = {
            "directory": cache.directory,
            "shards": shard_count(cache),
            "items": items,
            "items_all_namespaces": everywhere,
            "expired": expired,
            "expired_included": args.include_expired,
            "volume": cache.volume(),
            "hits": hits,
            "misses": misses,
            "settings": settings,
        }
    if args.json:
        print_json(report, out)
        return EXIT_OK
    counting = "" if settings["statistics"] else "  (statistics off: not counting)"
    shards = report["shards"]
    kind = f" (FanoutCache, {shards} shards)" if shards else ""
    rows = [("directory", report["directory"] + kind)]
    rows.append(("items", f"{items} (all namespaces: {everywhere})"))
    if expired:
        how = "counted" if args.include_expired else "not counted; --include-expired counts them"
        rows.append(("expired", f"{expired} not yet removed ({how})"))
    rows += [
        ("volume", f"{human_bytes(report['volume'])} ({report['volume']} bytes)"),
        ("hits", f"{hits}{counting}"),
        ("misses", str(misses)),
    ]
    width = max(len(name) for name in NAMES)
    for label, value in rows:
        print(f"{label:<{width}}  {value}", file=out)
    print("settings:" if not shards else "settings (of each shard):", file=out)
    for name, value in settings.items():
        print(f"  {name:<{width}}  {value!r}", file=out)
    return EXIT_OK


def _write_raw(value: Any, out: TextIO) -> None:
    if isinstance(value, str):
        out.write(value)
        return
    out.flush()
    buffer = getattr(out, "buffer", None)
    if buffer is not None:
        buffer.write(value)
        buffer.flush()
    else:
        out.write(value.decode("utf-8", "backslashreplace"))


def _unloadable(key: Any, args: argparse.Namespace, exc: Exception) -> Failed:
    """The value's class (or a function it names) cannot be imported here: say which, and
    how to go on, in one line."""
    module = getattr(exc, "name", None)
    if isinstance(exc, ImportError) and module:
        reason = f"it needs module {module!r}, which this Python cannot import"
    else:
        reason = f"its class is not where it was when it was stored ({exc})"
    return Failed(
        f"cannot load the value of {key!r}: {reason}; run the command where the program "
        "that stored it runs (its virtualenv, its PYTHONPATH), or list its metadata with: "
        f"diskstore keys {args.directory} --inspect"
    )


def cmd_get(args: argparse.Namespace, out: TextIO) -> int:
    key = parse_key(args.key, args.literal)
    with open_cache(args, read_only=True) as cache, warnings.catch_warnings():
        # A pickle diskcache wrote, not yet adopted: one line saying how to trust it.
        warnings.simplefilter("error", DiskcacheDirectoryWarning)
        missing = object()
        try:
            value, expire_time, tag = cache.get(key, default=missing, expire_time=True, tag=True)
        except DiskcacheDirectoryWarning:
            raise NotFound(
                f"{key!r} is a pickle diskcache wrote, which diskstore does not load until "
                f"trusted: {PROG} adopt {args.directory} --trust (only if you trust whoever "
                "could write to it)"
            ) from None
        except ImportError as exc:  # unpickling: the value's module is not importable here
            raise _unloadable(key, args, exc) from exc
        except AttributeError as exc:
            if "Can't get attribute" not in str(exc):  # pickle's words: no such class there
                raise
            raise _unloadable(key, args, exc) from exc
    if value is missing:
        where = f" in namespace {args.namespace!r}" if args.namespace else ""
        raise key_not_found(args, key, where)
    if args.raw:
        if not isinstance(value, (str, bytes)):
            raise UsageError(
                f"--raw writes only str and bytes values; {key!r} holds a "
                f"{type(value).__name__} (leave out --raw to see its repr)"
            )
        _write_raw(value, out)
        return EXIT_OK
    text, shortened = (repr(value), False) if args.full else summarize(value)
    if args.json:
        report = {
            "key": json_key(key),
            "type": type(value).__name__,
            "repr": text,
            "truncated": shortened,
            "expire_time": expire_time,
            "tag": json_key(tag) if tag is not None else None,
        }
        print_json(report, out)
        return EXIT_OK
    print(text, file=out)
    if shortened:
        print(
            f"... ({type(value).__name__}, shortened; --full prints all of it, --raw writes "
            "str and bytes as they are)",
            file=out,
        )
    return EXIT_OK


def cmd_namespaces(args: argparse.Namespace, out: TextIO) -> int:
    with open_cache(args, read_only=True) as cache:
        table = namespace_names(cache)
    rows = [
        {"name": name, "items": count, "file_bytes": size} for name, (count, size) in table.items()
    ]
    if args.json:
        print_json(rows, out)
        return EXIT_OK
    for row in rows:
        label = repr(row["name"]) if row["name"] else "'' (the plain cache)"
        print(f"{label:<40} {row['items']:>10} item(s)", file=out)
    return EXIT_OK


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


def cmd_functions(args: argparse.Namespace, out: TextIO) -> int:
    with open_cache(args, read_only=True) as cache:
        functions = cache.function_stats()
    rows: list[dict[str, Any]] = [
        {
            "name": name,
            "items": stats.items,
            "file_bytes": stats.file_bytes,
            "hits": stats.hits,
            "misses": stats.misses,
            "hit_rate": stats.hit_rate,
        }
        for name, stats in functions.items()
    ]
    if args.json:
        print_json(rows, out)
        return EXIT_OK
    if not rows:
        print("no memoized functions", file=out)
        return EXIT_OK
    header = ("function", "items", "file bytes", "hits", "misses", "hit rate")
    table = [header] + [
        (
            name,
            str(stats.items),
            human_bytes(stats.file_bytes),
            str(stats.hits),
            str(stats.misses),
            _percent(stats.hit_rate),
        )
        for name, stats in functions.items()
    ]
    widths = [max(len(line[column]) for line in table) for column in range(len(header))]
    for line in table:
        cells = [line[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True)]
        print("  ".join(cells), file=out)
    return EXIT_OK
