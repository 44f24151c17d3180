"""Old import paths of the private modules that moved into the layer subpackages.

Up to 0.1.0 the private modules sat flat in the package (``diskstore._cache``,
``diskstore._disk``, ``diskstore._exceptions``...). A pickle names the module that defines
each class it holds, so a ``Cache``, ``FanoutCache``, ``Deque`` or ``Index`` pickled then, a
``Disk`` class, an exception, an eviction policy, ``CacheInfo`` or ``ENOVAL`` names those
paths. :class:`MovedFinder`, installed by ``import diskstore``, resolves each old name to the
module itself (not a copy), so such pickles load to today's classes and code that imported a
private module by its old path keeps working. Modules added since have no old path.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.abc import Loader
    from importlib.machinery import ModuleSpec
else:
    Loader = object  # importlib.abc would add to the import time of every program

#: Each layer and the modules that moved into it from the top of the package.
MOVED = {
    "_common": "_clock _constants _exceptions _format _hooks _record",
    "_fs": "_changes _checksums _durability _faults _files _filesystems _lease _reserve",
    "_values": (
        "_collector _disk _diskcache_disk _identity _jsondisk _keys _modes _oob _pickling"
        " _rows _signing _sourcehash"
    ),
    "_storage": (
        "_bookkeeping _fingerprint _inspect _migrate _policies _schema _settings _sql _store"
        " _upgrade"
    ),
    "_memo": (
        "_backend _funckey _hashing _memoize _memoize_extras _memoize_types _rangelock _recent"
        " _refresh _singleflight"
    ),
    "_caching": (
        "_adopt _arithmetic _base _cache _check _functions _iteration _maintenance _memory"
        " _private_names _queue _setup _tiered"
    ),
    "_aio": "_async _async_runner",
}

#: ``diskstore._name`` -> its module's name today.
NEW_NAMES = {
    f"diskstore.{name}": f"diskstore.{layer}.{name}"
    for layer, names in MOVED.items()
    for name in names.split()
}


class ModuleAlias(Loader):
    """A loader that hands out an already importable module under another name."""

    def __init__(self, target: str) -> None:
        self._target = target

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        return importlib.import_module(self._target)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module is initialised under its own name."""


class MovedFinder:
    """Finds ``diskstore._name`` at the place that module moved to."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        new = NEW_NAMES.get(fullname)
        if new is None:
            return None
        from importlib.machinery import ModuleSpec

        return ModuleSpec(fullname, ModuleAlias(new))


def install() -> None:
    """Add the finder once, first: an old name is always the moved module, even where a
    stale copy of the flat layout could still be found on the path."""
    if not any(isinstance(finder, MovedFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, MovedFinder())
