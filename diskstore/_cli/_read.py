"""Commands that only look: ``stats``, ``get``, ``keys``, ``namespaces``, ``functions``,
``version``. They open the cache read-only, so they never change it, and take ``--json``."""

from __future__ import annotations

import argparse
import fnmatch
import platform
import sqlite3
from typing import Any, TextIO

from .._format import human_bytes, summarize
from .._inspect import inspect_cache, namespace_table
from .._settings import NAMES
from ._common import (
    EXIT_OK,
    NotFound,
    UsageError,
    existing_cache_dir,
    json_key,
    literal_hint,
    open_cache,
    parse_key,
    print_json,
)


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


def cmd_stats(args: argparse.Namespace, out: TextIO) -> int:
    with open_cache(args, read_only=True) as cache:
        settings = {name: getattr(cache, name) for name in NAMES}
        # Reading the counters must not switch counting on or off.
        hits, misses = cache.stats(enable=settings["statistics"])
        report: dict[str, Any] = {
            "directory": cache.directory,
            "items": len(cache),
            "items_all_namespaces": cache._total_count(),
            "volume": cache.volume(),
            "hits": hits,
            "misses": misses,
            "settings": settings,
        }
    if args.json:
        print_json(report, out)
        return EXIT_OK
    counting = "" if settings["statistics"] else "  (statistics off: not counting)"
    rows = [
        ("directory", report["directory"]),
        ("items", f"{report['items']} (all namespaces: {report['items_all_namespaces']})"),
        ("volume", f"{human_bytes(report['volume'])} ({report['volume']} bytes)"),
        ("hits", f"{hits}{counting}"),
        ("misses", str(misses)),
    ]
    width = max(len(name) for name in NAMES)
    for label, value in rows:
        print(f"{label:<{width}}  {value}", file=out)
    print("settings:", file=out)
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


def cmd_get(args: argparse.Namespace, out: TextIO) -> int:
    key = parse_key(args.key, args.literal)
    with open_cache(args, read_only=True) as cache:
        missing = object()
        value, expire_time, tag = cache.get(key, default=missing, expire_time=True, tag=True)
    if value is missing:
        where = f" in namespace {args.namespace!r}" if args.namespace else ""
        raise NotFound(f"key not found{where}: {key!r}{literal_hint(args.key, args.literal)}")
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


def _matches(pattern: str | None, key: Any) -> bool:
    if pattern is None:
        return True
    return fnmatch.fnmatchcase(key if isinstance(key, str) else repr(key), pattern)


def cmd_keys(args: argparse.Namespace, out: TextIO) -> int:
    if args.inspect:
        return _keys_inspected(args, out)
    shown: list[Any] = []
    more = False
    with open_cache(args, read_only=True) as cache:
        total = len(cache)
        for key in cache:
            if not _matches(args.pattern, key):
                continue
            if args.limit is not None and len(shown) >= args.limit:
                more = True
                break
            if args.json:
                shown.append(json_key(key))
            else:
                print(repr(key), file=out)
                shown.append(None)
    if args.json:
        print_json(shown, out)
    elif more:
        of = f" of {total}" if args.pattern is None else ""
        print(f"... (first {args.limit}{of} keys)", file=out)
    return EXIT_OK


def _keys_inspected(args: argparse.Namespace, out: TextIO) -> int:
    """List keys and metadata without the secret (``--inspect``), loading nothing."""
    with inspect_cache(existing_cache_dir(args.directory)) as inspection:
        namespace = args.namespace or ""
        if namespace not in inspection.namespaces:
            raise NotFound(f"no namespace {namespace!r} in {args.directory}")
        listed: list[dict[str, Any]] = []
        for entry in inspection.entries(namespace):
            if not _matches(args.pattern, entry.key):
                continue
            if args.limit is not None and len(listed) >= args.limit:
                break
            row = {
                "key": json_key(entry.key),
                "kind": entry.kind,
                "stored_bytes": entry.stored_bytes,
                "expire_time": entry.expire_time,
                "tag": json_key(entry.tag) if entry.tag is not None else None,
                "signed": entry.signed,
            }
            listed.append(row)
            if not args.json:
                print(f"{entry.key!r}  {entry.kind}, {human_bytes(entry.stored_bytes)}", file=out)
    if args.json:
        print_json(listed, out)
    return EXIT_OK


def cmd_namespaces(args: argparse.Namespace, out: TextIO) -> int:
    with open_cache(args, read_only=True) as cache:
        table = namespace_table(cache._store)
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
