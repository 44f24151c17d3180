"""diskcache's ``core`` module, as diskstore provides it.

Programs written for diskcache import helpers from ``diskcache.core`` by name: the key
builder ``args_to_key`` (whose keys they may have persisted), ``full_name``, the sentinels,
the ``MODE_*`` constants a ``Disk`` subclass returns from ``store``, and the classes. This
module gives them those names with diskcache's meanings; after
:func:`diskstore.install_as_diskcache` it is what ``import diskcache.core`` returns.

>>> args_to_key(("f",), (1, 2), {"b": 3}, False, set())
('f', 1, 2, None, 'b', 3)
>>> full_name(full_name)
'diskstore.core.full_name'
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from ._caching._cache import Cache
from ._common._constants import ENOVAL, UNKNOWN
from ._common._exceptions import EmptyDirWarning, Timeout, UnknownFileWarning
from ._storage._policies import EVICTION_POLICY
from ._storage._settings import DEFAULT_SETTINGS
from ._storage._store import DB_NAME
from ._values._disk import Disk
from ._values._jsondisk import JSONDisk
from ._values._keys import args_to_key
from ._values._modes import MODE_BINARY, MODE_NONE, MODE_PICKLE, MODE_RAW, MODE_TEXT

#: The database file's name: diskcache's, which diskstore's database is.
DBNAME = DB_NAME

#: The metadata counters every cache keeps, with their starting values.
METADATA: Mapping[str, int] = {"count": 0, "size": 0, "hits": 0, "misses": 0}


def full_name(func: Callable[..., Any]) -> str:
    """Return the dotted name of *func*: its module and qualified name."""
    return f"{func.__module__}.{func.__qualname__}"


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
