"""Preparing a cache's directory and constructing its serializer."""

from __future__ import annotations

import errno
import os
from typing import Any

from .._common._exceptions import StorageError
from .._values._disk import Disk


def make_directories(directory: str) -> None:
    """Create *directory* and any missing parents, each private to the user (0700)."""
    missing = []
    path = directory
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for path in reversed(missing):
        try:
            os.makedirs(path, 0o700)  # one level at a time, so each is private
        except FileExistsError as exc:
            if not os.path.isdir(path):
                raise StorageError(
                    errno.ENOTDIR,
                    f"cannot create cache directory {directory!r}: {path!r} is a file; a "
                    "cache is a directory (give the name of a new or existing directory)",
                ) from exc
        except OSError as exc:
            # exc.strerror, not exc: its text would repeat the errno this error prints.
            where = f" ({path})" if path != directory else ""
            raise StorageError(
                exc.errno or errno.EACCES,
                f"cannot create cache directory {directory!r}: {exc.strerror or exc}{where}",
            ) from exc


def make_disk(disk: type[Disk], directory: str, options: dict[str, Any]) -> Disk:
    """Construct *disk* with the ``disk_*`` options its constructor accepts.

    A subclass written for diskcache may take only diskcache's arguments; the options it
    does not take are set as attributes by ``Disk.attach``.
    """
    if disk.__init__ is not Disk.__init__:  # Disk's own takes every option
        import inspect  # loads ast, dis and tokenize: only for custom constructors

        parameters = inspect.signature(disk.__init__).parameters
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            options = {name: value for name, value in options.items() if name in parameters}
    instance = disk(directory, **options)
    for name, value in options.items():
        if not hasattr(instance, name):
            setattr(instance, name, value)
    return instance
