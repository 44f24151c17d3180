"""The command line's arguments: every command, the arguments it takes, and parsing them
with "did you mean" for a misspelt command or option."""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from ._common import PROG
from ._keys import cmd_keys
from ._read import cmd_functions, cmd_get, cmd_namespaces, cmd_stats, cmd_version
from ._write import (
    cmd_adopt,
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
    "DIR": (
        ("directory",),
        {"metavar": "DIR", "help": "the cache directory (a Cache, or a FanoutCache's shards)"},
    ),
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
        {
            "action": "store_true",
            "help": "list keys with how each is stored, its expiry and tag, without the secret",
        },
    ),
    "include-expired": (
        ("--include-expired",),
        {
            "action": "store_true",
            "help": "count and list expired items that are not yet removed (left out otherwise)",
        },
    ),
    "trust": (
        ("--trust",),
        {
            "action": "store_true",
            "help": "load diskcache's unsigned pickles (only if you trust whoever could "
            "write to the directory)",
        },
    ),
}

#: Every command: name, handler, help, and the arguments it takes (keys of _ARGUMENTS).
_COMMANDS: tuple[tuple[str, Handler, str, tuple[str, ...]], ...] = (
    ("demo", cmd_demo, "run a short tour of diskstore in a temporary directory", ("json",)),
    ("stats", cmd_stats, "show item count, disk usage, hits/misses and settings",
     ("DIR", "include-expired", "json")),
    ("check", cmd_check, "verify the database and value files", ("DIR", "fix", "json")),
    ("clear", cmd_clear, "remove every item of the plain cache or of a namespace",
     ("DIR", "namespace", "json")),
    ("cull", cmd_cull, "remove expired items, then evict until size_limit fits",
     ("DIR", "json")),
    ("expire", cmd_expire, "remove expired items", ("DIR", "json")),
    ("evict", cmd_evict, "remove every item labelled TAG",
     ("DIR", "TAG", "literal", "namespace", "json")),
    ("delete", cmd_delete, "remove the item stored under KEY",
     ("DIR", "KEY", "literal", "namespace", "json")),
    ("get", cmd_get, "print (a summary of) the value stored under KEY",
     ("DIR", "KEY", "literal", "raw", "full", "namespace", "json")),
    ("keys", cmd_keys, "list keys in insertion order (expired ones left out)",
     ("DIR", "GLOB", "limit", "inspect", "include-expired", "namespace", "json")),
    ("namespaces", cmd_namespaces, "list namespaces with their item counts", ("DIR", "json")),
    ("functions", cmd_functions, "list memoized functions with result counts",
     ("DIR", "json")),
    ("vacuum", cmd_vacuum, "rebuild the database file to give free pages back",
     ("DIR", "json")),
    ("adopt", cmd_adopt, "trust the pickles diskcache wrote in DIR: sign them in place",
     ("DIR", "trust", "json")),
    ("migrate", cmd_migrate, "copy a diskcache directory into another diskstore cache (DIR)",
     ("SOURCE", "DIR", "trust", "json")),
    ("version", cmd_version, "print the diskstore, Python and SQLite versions", ("json",)),
)  # fmt: skip

EPILOG = (
    "exit status: 0 ok, 1 not found, problems remain or the command failed, 2 usage error, "
    "3 the cache was created with another secret, 130 interrupted (Ctrl-C)"
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``diskstore`` command."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Inspect and maintain diskstore cache directories.", epilog=EPILOG
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


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser of each command, by name."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("the parser has no commands")


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse *argv*; a misspelt command or option is a usage error that names the closest
    one (``SystemExit`` with status 2, as argparse exits, after printing it)."""
    import sys

    words = list(sys.argv[1:] if argv is None else argv)
    commands = subcommands(parser)
    command = next((word for word in words if not word.startswith("-")), None)
    if command is not None and command not in commands:
        parser.error(
            f"unknown command {command!r}{_did_you_mean(command, list(commands))} "
            f"(see {PROG} --help)"
        )
    args, extra = parser.parse_known_args(words)
    # argparse binds an optional positional (the GLOB of ``keys``) only when it follows DIR
    # directly; take it after options too (``keys DIR --limit 5 'user-*'``).
    if getattr(args, "pattern", "") is None and len(extra) == 1 and not extra[0].startswith("-"):
        args.pattern, extra = extra[0], []
    if extra:
        sub = commands[args.command]
        options = [name for action in sub._actions for name in action.option_strings]
        unknown = next((word for word in extra if word.startswith("-")), extra[0])
        hint = _did_you_mean(unknown.split("=")[0], options) if unknown.startswith("-") else ""
        what = "option" if unknown.startswith("-") else "argument"
        sub.error(f"unrecognized {what} {unknown!r}{hint} (see {PROG} {args.command} --help)")
    return args
