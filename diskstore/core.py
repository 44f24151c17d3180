"""diskcache's ``core`` module, as diskstore provides it.

Programs written for diskcache import helpers from ``diskcache.core`` by name: the key
builder ``args_to_key`` (whose keys they may have persisted), ``full_name``, the sentinels,
the ``MODE_*`` constants a ``Disk`` subclass returns from ``store``, and the classes. This
module gives them those names with diskcache's meanings; after
:func:`diskstore.install_as_diskcache` it is what ``import diskcache.core`` returns.

>>> args_to_key(("f",), (1, 2), {"b": 3}, False, set())
('f', 1, 2, None, 'b', 3)
>>> full_name(args_to_key)
'diskstore.core.args_to_key'
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from typing import Any

from ._caching._cache import Cache
from ._common._constants import ENOVAL, UNKNOWN
from ._common._exceptions import EmptyDirWarning, Timeout, UnknownFileWarning
from ._storage._policies import EVICTION_POLICY
from ._storage._settings import DEFAULT_SETTINGS
from ._storage._store import DB_NAME
from ._values._disk import Disk
from ._values._jsondisk import JSONDisk
from ._values._modes import MODE_BINARY, MODE_NONE, MODE_PICKLE, MODE_RAW, MODE_TEXT

#: The database file's name: diskcache's, which diskstore's database is.
DBNAME = DB_NAME

#: The metadata counters every cache keeps, with their starting values.
METADATA: Mapping[str, int] = {"count": 0, "size": 0, "hits": 0, "misses": 0}


def full_name(func: Callable[..., Any]) -> str:
    """Return the dotted name of *func*: its module and qualified name."""
    return f"{func.__module__}.{func.__qualname__}"


def args_to_key(
    base: tuple[Any, ...],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    typed: bool,
    ignore: Collection[int | str],
) -> tuple[Any, ...]:
    """Build diskcache's memoize key for a call: identical to diskcache's for equal inputs.

    The key is *base*, the positional arguments not ignored by position, a ``None``
    separator, then the keyword arguments not ignored by name as flattened ``(name, value)``
    pairs in name order; with *typed*, the types of those arguments follow in the same order.
    """
    kept = tuple(arg for index, arg in enumerate(args) if index not in ignore)
    key = (*base, *kept, None)
    pairs = sorted((name, value) for name, value in kwargs.items() if name not in ignore)
    for pair in pairs:
        key += pair
    if typed:
        key += tuple(type(arg) for arg in kept)
        key += tuple(type(value) for _, value in pairs)
    return key


def _environ_path(directory: str) -> str:
    """Expand ``~`` and ``$VARS`` in a directory name, as diskcache does."""
    return os.path.expandvars(os.path.expanduser(directory))


__all__ = [
    "DBNAME",
    "DEFAULT_SETTINGS",
    "ENOVAL",
    "EVICTION_POLICY",
    "METADATA",
    "MODE_BINARY",
    "MODE_NONE",
    "MODE_PICKLE",
    "MODE_RAW",
    "MODE_TEXT",
    "UNKNOWN",
    "Cache",
    "Disk",
    "EmptyDirWarning",
    "JSONDisk",
    "Timeout",
    "UnknownFileWarning",
    "args_to_key",
    "full_name",
]
