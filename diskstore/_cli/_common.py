"""What every command shares: opening a cache safely, parsing keys, output and progress."""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO

PROG = "diskstore"

#: Exit statuses, as documented in docs/cli.md.
EXIT_OK = 0
EXIT_NO = 1  # ran, but the answer is "no": not found, problems remain, the cache failed
EXIT_USAGE = 2  # bad arguments, no such cache
EXIT_SECRET = 3  # the cache was created with another secret
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report a process stopped by SIGINT

Progress = Callable[[int, int], None]


class UsageError(Exception):
    """A command cannot run as asked (exit status 2)."""


class NotFound(Exception):
    """A key or namespace the command was asked about does not exist (exit status 1)."""


class Failed(Exception):
    """The command ran and could not do what was asked (exit status 1, one line of error)."""


class Interrupted(Exception):
    """Ctrl-C stopped the command part-way; the message says what it had done (exit 130)."""


def parse_key(text: str, literal: bool) -> Any:
    """*text* as the key: a string, or with *literal* a Python literal (never evaluated)."""
    if not literal:
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise UsageError(f"KEY is not a Python literal: {text!r} ({exc})") from exc


def literal_hint(text: str, literal: bool) -> str:
    """A hint for a key not found as a string that reads as another literal (``7``)."""
    if literal:
        return ""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return ""
    if isinstance(value, str):
        return ""
    return (
        f" (looked up the string {text!r}; to look up the {type(value).__name__} {text}, "
        "add --literal)"
    )


def key_not_found(args: argparse.Namespace, key: Any, where: str = "") -> NotFound:
    """The error for ``KEY`` not found (*where*: in which namespace), with its literal hint."""
    return NotFound(f"key not found{where}: {key!r}{literal_hint(args.key, args.literal)}")


def print_json(data: Any, out: TextIO) -> None:
    """Print *data* as JSON; values JSON cannot hold are shown as their ``repr()``."""
    print(json.dumps(data, indent=2, sort_keys=True, default=repr), file=out)


def json_key(key: Any) -> Any:
    """A key as JSON can hold it: strings and numbers as they are, the rest as ``repr()``."""
    if isinstance(key, (str, int, float)) and not isinstance(key, bool):
        return key
    return repr(key)


@contextlib.contextmanager
def progress_bar(description: str, total: int, stream: TextIO | None = None) -> Iterator[Progress]:
    """Yield a ``(done, total)`` callback that draws a progress bar on a terminal.

    The bar is drawn by tqdm (installed with ``pip install diskstore[cli]``) on standard
    error, and only when that is a terminal: in a pipe or a file, or without tqdm, the
    callback does nothing, so scripts and logs see only the command's output.
    """
    stream = stream if stream is not None else sys.stderr
    try:
        is_terminal = stream.isatty()
    except (AttributeError, ValueError):
        is_terminal = False
    bar_class: Any = None
    if is_terminal:
        with contextlib.suppress(ImportError):
            bar_class = importlib.import_module("tqdm").tqdm
    if bar_class is None:
        yield lambda done, total: None
        return
    try:
        columns, lines = os.get_terminal_size(stream.fileno())
    except (AttributeError, ValueError, OSError):
        columns = lines = 0
    # A terminal that reports no size (a bare pseudo-terminal, 0x0) would get an empty bar,
    # or none at all: tqdm hides bars below the screen's last line.
    size = {"ncols": None if columns else 80, "nrows": None if lines else 24}
    with bar_class(
        total=total, desc=description, unit=" items", file=stream, leave=True, **size
    ) as bar:

        def update(done: int, new_total: int) -> None:
            if new_total != bar.total:
                bar.total = new_total
            bar.update(done - bar.n)

        yield update
