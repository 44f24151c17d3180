"""The ``diskstore`` command line: inspect and maintain a cache directory from a shell.

``python -m diskstore COMMAND`` and the ``diskstore`` console script both land in
:func:`main`. No command creates a cache by accident: a directory that does not exist, or
that holds no ``diskstore.db``, is a usage error (``migrate`` alone creates its target).
Commands that only look open the cache read-only and take ``--json``.

Exit status: 0 on success; 1 when the command ran but the answer is "no" (an unknown key
or namespace, problems ``check`` could not fix) or the cache raised an error; 2 for usage
errors (bad arguments, no such cache); 3 when the cache was created with another secret.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from .._exceptions import DiskStoreError, ReadOnlyError, SecretMismatchError
from .._format import human_bytes
from ._common import EXIT_NO, EXIT_SECRET, EXIT_USAGE, PROG, NotFound, UsageError
from ._read import cmd_functions, cmd_get, cmd_keys, cmd_namespaces, cmd_stats, cmd_version
from ._write import (
    cmd_check,
    cmd_clear,
    cmd_cull,
    cmd_delete,
    cmd_demo,
    cmd_evict,
    cmd_expire,
    cmd_migrate,
    cmd_vacuum,
)

__all__ = ["PROG", "build_parser", "human_bytes", "main"]

Handler = Callable[[argparse.Namespace, TextIO], int]


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
        epilog="exit status: 0 ok, 1 not found or problems remain, 2 usage error, "
        "3 the cache was created with another secret",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    def command(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
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

    def as_json(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--json", action="store_true", help="print the result as JSON")

    def literal(sub: argparse.ArgumentParser, what: str) -> None:
        sub.add_argument(
            "--literal",
            action="store_true",
            help=f"read {what} as a Python literal: 42, 1.5, b'raw', ('a', 1)",
        )

    command("demo", cmd_demo, "run a short tour of diskstore in a temporary directory")

    sub = command("stats", cmd_stats, "show item count, disk usage, hits/misses and settings")
    directory(sub)
    as_json(sub)

    sub = command("check", cmd_check, "verify the database and value files")
    directory(sub)
    sub.add_argument("--fix", action="store_true", help="repair what is found")
    as_json(sub)

    sub = command("clear", cmd_clear, "remove every item of the plain cache or of a namespace")
    directory(sub)
    namespace(sub)

    sub = command("cull", cmd_cull, "remove expired items, then evict until size_limit fits")
    directory(sub)

    sub = command("expire", cmd_expire, "remove expired items")
    directory(sub)

    sub = command("evict", cmd_evict, "remove every item labelled TAG")
    directory(sub)
    sub.add_argument("tag", metavar="TAG", help="the tag (a string unless --literal)")
    literal(sub, "TAG")
    namespace(sub)

    sub = command("delete", cmd_delete, "remove the item stored under KEY")
    directory(sub)
    sub.add_argument("key", metavar="KEY", help="the key (a string unless --literal)")
    literal(sub, "KEY")
    namespace(sub)

    sub = command("get", cmd_get, "print (a summary of) the value stored under KEY")
    directory(sub)
    sub.add_argument("key", metavar="KEY", help="the key (a string unless --literal)")
    literal(sub, "KEY")
    sub.add_argument(
        "--raw",
        action="store_true",
        help="write a str or bytes value as it is, for piping into a file",
    )
    sub.add_argument("--full", action="store_true", help="print the whole repr() of the value")
    namespace(sub)
    as_json(sub)

    sub = command("keys", cmd_keys, "list keys in insertion order")
    directory(sub)
    sub.add_argument(
        "pattern",
        metavar="GLOB",
        nargs="?",
        help="list only keys matching this shell pattern (non-string keys match by repr)",
    )
    sub.add_argument("--limit", type=_non_negative_int, metavar="N", help="list at most N keys")
    sub.add_argument(
        "--inspect",
        action="store_true",
        help="list keys and metadata without the secret, loading no value",
    )
    namespace(sub)
    as_json(sub)

    sub = command("namespaces", cmd_namespaces, "list namespaces with their item counts")
    directory(sub)
    as_json(sub)

    sub = command("functions", cmd_functions, "list memoized functions with result counts")
    directory(sub)
    as_json(sub)

    sub = command("vacuum", cmd_vacuum, "rebuild the database file to give free pages back")
    directory(sub)

    sub = command("migrate", cmd_migrate, "copy a diskcache directory into a diskstore cache")
    sub.add_argument("source", metavar="SOURCE", help="the diskcache directory")
    sub.add_argument("directory", metavar="DIR", help="the diskstore cache (created if new)")
    sub.add_argument(
        "--trust",
        action="store_true",
        help="load diskcache's unsigned pickles (only if you trust whoever could write SOURCE)",
    )

    sub = command("version", cmd_version, "print the diskstore, Python and SQLite versions")
    as_json(sub)
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the ``diskstore`` command with *argv* (default: ``sys.argv[1:]``).

    Returns the exit status instead of exiting, so it can be called from Python; *out*
    receives what the command prints (default: standard output).
    """
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        # argparse binds an optional positional (the GLOB of ``keys``) only when it follows
        # DIR directly; take it after options too (``keys DIR --limit 5 'user-*'``).
        pattern_missing = getattr(args, "pattern", "") is None
        if pattern_missing and len(extra) == 1 and not extra[0].startswith("-"):
            args.pattern, extra = extra[0], []
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # --help, or a usage error argparse has already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    stream = out if out is not None else sys.stdout
    handler: Handler = args.handler
    name = f"{PROG} {args.command}"
    try:
        return handler(args, stream)
    except UsageError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except NotFound as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return EXIT_NO
    except BrokenPipeError:
        # The reader went away (``diskstore keys DIR | head``): stop quietly, and keep the
        # interpreter from complaining when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_NO
    except SecretMismatchError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return EXIT_SECRET
    except ReadOnlyError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return EXIT_NO
    except (DiskStoreError, OSError) as exc:
        print(f"{name}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_NO
