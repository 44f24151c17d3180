"""``install_as_diskcache()``: let unmodified diskcache programs import diskstore.

After the call, ``import diskcache`` and its submodules (``core``, ``fanout``, ``persistent``,
``recipes``, ``djangocache``, ``cli``) resolve to diskstore's modules, the way PyMySQL's
``install_as_MySQLdb()`` stands in for MySQLdb. Submodules are imported when a program first
imports them, so installing costs nothing and Django is loaded only by programs that use it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Sequence

from ._moved import ModuleAlias

#: ``diskcache.<name>`` -> ``diskstore.<name>``.
SUBMODULES = {
    "cli": "diskstore._cli",
    "core": "diskstore.core",
    "djangocache": "diskstore.djangocache",
    "fanout": "diskstore.fanout",
    "persistent": "diskstore.persistent",
    "recipes": "diskstore.recipes",
}


class _Finder(importlib.abc.MetaPathFinder):
    """Finds ``diskcache.*`` names among diskstore's modules."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.partition(".")
        if package != "diskcache" or name not in SUBMODULES:
            return None
        return importlib.machinery.ModuleSpec(fullname, ModuleAlias(SUBMODULES[name]))


def _is_installed() -> bool:
    return any(isinstance(finder, _Finder) for finder in sys.meta_path)


def install_as_diskcache() -> None:
    """Make ``import diskcache`` (and its submodules) import diskstore instead.

    Call it once, early: at the top of a program's entry point, or in a ``sitecustomize``
    module. Calling it again does nothing. Raises ``RuntimeError`` if the real diskcache was
    imported first, since objects from the two libraries must not be mixed in one process.
    """
    import diskstore

    loaded = sys.modules.get("diskcache")
    if loaded is diskstore:
        return
    if loaded is not None:
        raise RuntimeError(
            "diskcache was imported before install_as_diskcache(); call "
            "diskstore.install_as_diskcache() before anything imports diskcache"
        )
    for name in list(sys.modules):
        if name.startswith("diskcache."):
            raise RuntimeError(
                f"{name} was imported before install_as_diskcache(); call it earlier"
            )
    sys.modules["diskcache"] = diskstore
    if not _is_installed():
        sys.meta_path.insert(0, _Finder())
