"""The ``diskstore`` command line: inspect and maintain a cache directory from a shell.

``python -m diskstore COMMAND`` and the ``diskstore`` console script both land in
:func:`main`. Every command opens what diskstore or diskcache makes: a ``Cache`` directory,
or a ``FanoutCache`` (and so a Django ``LOCATION``) across its shards (see :mod:`._open`).
No command creates a cache by accident (``migrate`` alone creates its target). Commands
that only look open the cache read-only; every command takes ``--json``.

Exit status: 0 on success; 1 when the command ran but the answer is "no" (an unknown key
or namespace, problems ``check`` could not fix) or the cache raised an error; 2 for usage
errors (bad arguments, no such cache, no permission); 3 when the cache was created with
another secret; 130 when Ctrl-C stopped it, after one line saying what it had done.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TextIO

from .._common._exceptions import (
    DiskStoreError,
    ReadOnlyError,
    SecretMismatchError,
    SecretUnavailableError,
)
from .._common._format import human_bytes
from ._common import (
    EXIT_INTERRUPTED,
    EXIT_NO,
    EXIT_SECRET,
    EXIT_USAGE,
    PROG,
    Failed,
    Interrupted,
    NotFound,
    UsageError,
)
from ._parser import Handler, build_parser, parse

__all__ = ["PROG", "build_parser", "human_bytes", "main"]


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the ``diskstore`` command with *argv* (default: ``sys.argv[1:]``).

    Returns the exit status instead of exiting, so it can be called from Python; *out*
    receives what the command prints (default: standard output).
    """
    parser = build_parser()
    try:
        args = parse(parser, argv)
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
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Interrupted as exc:
        print(f"{name}: interrupted: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (UsageError, NotFound, Failed, DiskStoreError, OSError) as exc:
        status, text = _failure(exc, args.command, getattr(args, "directory", "DIR"))
        print(f"{name}: {text}", file=sys.stderr)
        return status


def _failure(exc: Exception, command: str, directory: str) -> tuple[int, str]:
    """The exit status for *exc*, and its one line of message."""
    if isinstance(exc, UsageError):
        return EXIT_USAGE, f"error: {exc}"
    if isinstance(exc, NotFound):
        return EXIT_NO, str(exc)
    if isinstance(exc, SecretMismatchError):
        return EXIT_SECRET, f"error: {exc}"
    if isinstance(exc, SecretUnavailableError):
        return EXIT_NO, (
            f"error: {exc} To list the keys without a secret: {PROG} keys {directory} --inspect"
        )
    if isinstance(exc, (Failed, ReadOnlyError)):
        return EXIT_NO, f"error: {exc}"
    if isinstance(exc, OSError) and not isinstance(exc, DiskStoreError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return EXIT_NO, f"error: {exc.strerror}{where}"
    return EXIT_NO, f"error: {type(exc).__name__}: {exc}"
