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
from typing import Any, TextIO

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


_LITERAL = "as a Python literal: 42, 1.5, b'raw', ('a', 1)"
#: The arguments commands take, by short name: (names, add_argument options).
_ARGUMENTS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "DIR": (("directory",), {"metavar": "DIR", "help": "the cache directory"}),
    "SOURCE": (("source",), {"metavar": "SOURCE", "help": "the diskcache directory"}),
    "KEY": (("key",), {"metavar": "KEY", "help": "the key (a string unless --literal)"}),
    "TAG": (("tag",), {"metavar": "TAG", "help": "the tag (a string unless --literal)"}),
    "GLOB": (
        ("pattern",),
        {
            "metavar": "GLOB",
            "nargs": "?",
            "help": "list only keys matching this shell pattern (others match by repr)",
        },
    ),
    "json": (("--json",), {"action": "store_true", "help": "print the result as JSON"}),
    "namespace": (
        ("--namespace",),
        {"metavar": "NAME", "help": "work in the namespace view NAME, not the plain cache"},
    ),
    "literal": (
        ("--literal",),
        {"action": "store_true", "help": f"read KEY or TAG {_LITERAL}"},
    ),
    "fix": (("--fix",), {"action": "store_true", "help": "repair what is found"}),
    "raw": (
        ("--raw",),
        {"action": "store_true", "help": "write a str or bytes value exactly as it is"},
    ),
    "full": (("--full",), {"action": "store_true", "help": "print the whole repr() of the value"}),
    "limit": (
        ("--limit",),
        {"type": _non_negative_int, "metavar": "N", "help": "list at most N keys"},
    ),
    "inspect": (
        ("--inspect",),
        {"action": "store_true", "help": "list keys and metadata without the secret"},
    ),
    "trust": (
        ("--trust",),
        {
            "action": "store_true",
            "help": "load diskcache's unsigned pickles (only if you trust whoever could "
            "write SOURCE)",
        },
    ),
}

#: Every command: name, handler, help, and the arguments it takes (keys of _ARGUMENTS).
_COMMANDS: tuple[tuple[str, Handler, str, tuple[str, ...]], ...] = (
    ("demo", cmd_demo, "run a short tour of diskstore in a temporary directory", ()),
    ("stats", cmd_stats, "show item count, disk usage, hits/misses and settings",
     ("DIR", "json")),
    ("check", cmd_check, "verify the database and value files", ("DIR", "fix", "json")),
    ("clear", cmd_clear, "remove every item of the plain cache or of a namespace",
     ("DIR", "namespace")),
    ("cull", cmd_cull, "remove expired items, then evict until size_limit fits", ("DIR",)),
    ("expire", cmd_expire, "remove expired items", ("DIR",)),
    ("evict", cmd_evict, "remove every item labelled TAG",
     ("DIR", "TAG", "literal", "namespace")),
    ("delete", cmd_delete, "remove the item stored under KEY",
     ("DIR", "KEY", "literal", "namespace")),
    ("get", cmd_get, "print (a summary of) the value stored under KEY",
     ("DIR", "KEY", "literal", "raw", "full", "namespace", "json")),
    ("keys", cmd_keys, "list keys in insertion order",
     ("DIR", "GLOB", "limit", "inspect", "namespace", "json")),
    ("namespaces", cmd_namespaces, "list namespaces with their item counts", ("DIR", "json")),
    ("functions", cmd_functions, "list memoized functions with result counts",
     ("DIR", "json")),
    ("vacuum", cmd_vacuum, "rebuild the database file to give free pages back", ("DIR",)),
    ("migrate", cmd_migrate, "copy a diskcache directory into a diskstore cache (DIR)",
     ("SOURCE", "DIR", "trust")),
    ("version", cmd_version, "print the diskstore, Python and SQLite versions", ("json",)),
)  # fmt: skip


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
    for name, handler, help_text, arguments in _COMMANDS:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        for argument in arguments:
            names, options = _ARGUMENTS[argument]
            sub.add_argument(*names, **options)
        if "DIR" in arguments:  # see Cache(network_fs=...) and docs/reliability.md
            sub.add_argument("--network-fs", choices=("refuse", "single-host"),
                             default="refuse", help="open DIR on a network filesystem "
                             "only with single-host (this machine alone uses it)")  # fmt: skip
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
    except BrokenPipeError:
        # The reader went away (``diskstore keys DIR | head``): stop quietly, and keep the
        # interpreter from complaining when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_NO
    except (UsageError, NotFound, DiskStoreError, OSError) as exc:
        status, label = _failure(exc)
        print(f"{name}: {label}{exc}", file=sys.stderr)
        return status


def _failure(exc: Exception) -> tuple[int, str]:
    """The exit status for *exc*, and the label its message is printed with."""
    if isinstance(exc, UsageError):
        return EXIT_USAGE, "error: "
    if isinstance(exc, NotFound):
        return EXIT_NO, ""
    if isinstance(exc, SecretMismatchError):
        return EXIT_SECRET, "error: "
    if isinstance(exc, ReadOnlyError):
        return EXIT_NO, "error: "
    return EXIT_NO, f"error: {type(exc).__name__}: "
