"""The ``diskstore`` command line: inspect and maintain a cache directory from a shell.

``python -m diskstore COMMAND`` and the ``diskstore`` console script both land in
:func:`main`. Commands that only look (``stats``, ``get``, ``keys``) never create anything:
a directory that does not exist, or that holds no ``diskstore.db``, is an error (exit 2)
rather than a new empty cache. ``stats``, ``get`` and ``keys`` open the cache read-only, so
they never change it; ``check`` and ``clear`` need write access.

Exit status: 0 on success, 1 when the command ran but found a problem (a missing key, or
problems ``check`` could not fix), 2 for usage errors (bad arguments, no such cache).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import sqlite3
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from ._cache import Cache
from ._exceptions import DiskStoreError, ReadOnlyError
from ._settings import NAMES
from ._store import DB_NAME

PROG = "diskstore"


class UsageError(Exception):
    """A command cannot run as asked (exit status 2)."""


def _version() -> str:
    from . import __version__

    return __version__


def human_bytes(count: int) -> str:
    """Format a byte count for people: ``1.5 MB`` (decimal units, as ``du --si`` prints)."""
    if count < 1000:
        return f"{count} B"
    value = float(count)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 1000 or unit == "TB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def _existing_cache_dir(directory: str) -> str:
    """Return *directory* if it holds a diskstore cache; ``UsageError`` naming why not."""
    path = os.path.abspath(os.path.expanduser(directory))
    if not os.path.exists(path):
        raise UsageError(f"no such directory: {directory!r}")
    if not os.path.isdir(path):
        raise UsageError(f"not a directory: {directory!r}")
    if not os.path.isfile(os.path.join(path, DB_NAME)):
        hint = ""
        if os.path.isfile(os.path.join(path, "cache.db")):
            hint = " (it looks like a diskcache directory; diskstore uses its own format)"
        raise UsageError(f"not a diskstore cache (no {DB_NAME}): {directory!r}{hint}")
    return path


def _open(args: argparse.Namespace, *, read_only: bool) -> Cache:
    cache = Cache(_existing_cache_dir(args.directory), read_only=read_only)
    namespace = getattr(args, "namespace", None)
    if namespace:
        return cache.namespace(namespace)
    return cache


def _parse_key(text: str, literal: bool) -> Any:
    if not literal:
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise UsageError(f"KEY is not a Python literal: {text!r} ({exc})") from exc


# -- commands -------------------------------------------------------------------------------
def cmd_version(args: argparse.Namespace, out: TextIO) -> int:
    print(
        f"diskstore {_version()} (Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version})",
        file=out,
    )
    return 0


def cmd_stats(args: argparse.Namespace, out: TextIO) -> int:
    with _open(args, read_only=True) as cache:
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
        print(json.dumps(report, indent=2, sort_keys=True), file=out)
        return 0
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
    return 0


def cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    with _open(args, read_only=False) as cache:
        found = cache.check(fix=args.fix)
        remaining = cache.check() if args.fix and found else found
    for message in found:
        print(f"{message.category.__name__}: {message.message}", file=out)
    if not found:
        print("no problems found", file=out)
        return 0
    if args.fix:
        fixed = len(found) - len(remaining)
        print(f"{len(found)} problem(s) found, {fixed} fixed, {len(remaining)} remaining", file=out)
        for message in remaining:
            print(f"remaining: {message.category.__name__}: {message.message}", file=out)
    else:
        print(f"{len(found)} problem(s) found (run with --fix to repair)", file=out)
    return 1 if remaining else 0


def cmd_clear(args: argparse.Namespace, out: TextIO) -> int:
    with _open(args, read_only=False) as cache:
        removed = cache.clear(retry=True)
        others = cache._total_count() - len(cache)
    where = f" from namespace {args.namespace!r}" if args.namespace else ""
    print(f"removed {removed} item(s){where}", file=out)
    if others:
        print(f"{others} item(s) remain in other namespaces (see --namespace)", file=out)
    return 0


def cmd_get(args: argparse.Namespace, out: TextIO) -> int:
    key = _parse_key(args.key, args.literal)
    with _open(args, read_only=True) as cache:
        missing = object()
        value = cache.get(key, default=missing)
    if value is missing:
        print(f"{PROG} get: key not found: {key!r}", file=sys.stderr)
        return 1
    if args.raw and isinstance(value, bytes):
        out.flush()
        buffer = getattr(out, "buffer", None)
        if buffer is not None:
            buffer.write(value)
            buffer.flush()
        else:
            out.write(value.decode("utf-8", "backslashreplace"))
    elif args.raw and isinstance(value, str):
        print(value, file=out)
    else:
        print(repr(value), file=out)
    return 0


def cmd_keys(args: argparse.Namespace, out: TextIO) -> int:
    with _open(args, read_only=True) as cache:
        for shown, key in enumerate(cache):
            if args.limit is not None and shown >= args.limit:
                print(f"... (first {args.limit} of {len(cache)} keys)", file=out)
                break
            print(repr(key), file=out)
    return 0


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from ._demo import run

    run(out=out)
    return 0


# -- argument parsing -----------------------------------------------------------------------
def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``diskstore`` command."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Inspect and maintain diskstore cache directories.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    def command(name: str, handler: Callable[..., int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    def directory(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("directory", metavar="DIR", help="the cache directory")

    def namespace(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--namespace",
            metavar="NAME",
            help="work in the namespace view NAME instead of the plain cache",
        )

    command("demo", cmd_demo, "run a short tour of diskstore in a temporary directory")

    sub = command("stats", cmd_stats, "show item count, disk usage, hits/misses and settings")
    directory(sub)
    sub.add_argument("--json", action="store_true", help="print the report as JSON")

    sub = command("check", cmd_check, "verify the database and value files")
    directory(sub)
    sub.add_argument("--fix", action="store_true", help="repair what is found")

    sub = command("clear", cmd_clear, "remove every item of the plain cache or of a namespace")
    directory(sub)
    namespace(sub)

    sub = command("get", cmd_get, "print the value stored under KEY")
    directory(sub)
    sub.add_argument("key", metavar="KEY", help="the key (a string unless --literal)")
    sub.add_argument(
        "--literal",
        action="store_true",
        help="read KEY as a Python literal: 42, 1.5, b'raw', ('a', 1)",
    )
    sub.add_argument(
        "--raw",
        action="store_true",
        help="write str and bytes values as they are instead of their repr()",
    )
    namespace(sub)

    sub = command("keys", cmd_keys, "list keys in insertion order")
    directory(sub)
    sub.add_argument("--limit", type=_non_negative_int, metavar="N", help="list at most N keys")
    namespace(sub)

    command("version", cmd_version, "print the diskstore, Python and SQLite versions")
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the ``diskstore`` command with *argv* (default: ``sys.argv[1:]``).

    Returns the exit status instead of exiting, so it can be called from Python; *out*
    receives what the command prints (default: standard output).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse has already printed
        return exc.code if isinstance(exc.code, int) else 2
    stream = out if out is not None else sys.stdout
    handler: Callable[[argparse.Namespace, TextIO], int] = args.handler
    name = f"{PROG} {args.command}"
    try:
        return handler(args, stream)
    except UsageError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (``diskstore keys DIR | head``): stop quietly, and keep the
        # interpreter from complaining when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 1
    except ReadOnlyError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 1
    except (DiskStoreError, OSError) as exc:
        print(f"{name}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
