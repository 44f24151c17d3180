"""The engines under comparison and how to open each on a fresh directory.

Three slots run every workload side by side:

* ``diskstore``: the candidate, ``diskstore.Cache`` unless ``--candidate module:Class``
  names another diskcache-compatible class (a subclass, or an older build to compare);
* ``diskcache``: ``diskcache.Cache`` 5.6.3, the baseline every ratio is taken against;
* ``sqlite3``: :class:`benchmarks.floor.FloorStore`, the floor for plain key-value work.

Worker processes receive the candidate as its ``module:Class`` text, so they resolve it
exactly as the parent did.
"""

from __future__ import annotations

import importlib
import inspect
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmarks.floor import FloorStore

DISKSTORE = "diskstore"
DISKCACHE = "diskcache"
FLOOR = "sqlite3"
ENGINES = (DISKSTORE, DISKCACHE, FLOOR)
CACHE_ENGINES = (DISKSTORE, DISKCACHE)
DEFAULT_CANDIDATE = "diskstore:Cache"
BASELINE = "diskcache:Cache"
BASELINE_FANOUT = "diskcache:FanoutCache"


def load_class(spec: str) -> type[Any]:
    """Import ``"module:Class"`` and return the class, with a clear error when it is absent."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"candidate must look like 'module:Class', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise LookupError(f"cannot import {module_name!r} for candidate {spec!r}: {exc}") from exc
    try:
        found = getattr(module, attr)
    except AttributeError as exc:
        raise LookupError(f"module {module_name!r} has no {attr!r} (candidate {spec!r})") from exc
    if not isinstance(found, type):
        raise LookupError(f"candidate {spec!r} is not a class: {found!r}")
    return found


def candidate_module(spec: str) -> ModuleType:
    """Return the top-level package of the candidate class (where ``AsyncCache`` would live)."""
    return importlib.import_module(spec.partition(":")[0].split(".")[0])


def open_store(
    engine: str,
    directory: str | Path,
    candidate: str,
    settings: Mapping[str, Any] | None = None,
    *,
    fanout: bool = False,
) -> Any:
    """Open ``engine`` on ``directory`` with cache ``settings`` (ignored by the floor).

    With ``fanout``, the cache engines open their sharded ``FanoutCache`` (the candidate's
    package's and diskcache's); the floor stays one table.
    """
    options = dict(settings or {})
    if engine == FLOOR:
        return FloorStore(directory)
    if engine == DISKSTORE:
        if fanout:
            return candidate_module(candidate).FanoutCache(str(directory), **options)
        return load_class(candidate)(str(directory), **options)
    if engine == DISKCACHE:
        if fanout:
            return load_class(BASELINE_FANOUT)(str(directory), **options)
        return load_class(BASELINE)(str(directory), **options)
    raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")


def _opens(cls: type[Any], directory: str, settings: Mapping[str, Any]) -> bool:
    try:
        cache = cls(directory, **settings)
    except (TypeError, ValueError):
        return False
    cache.close()
    return True


def accepts_setting(cls: type[Any], name: str, value: Any) -> bool:
    """Say whether ``cls`` provably knows the setting ``name`` (tried with ``value``).

    diskcache swallows any keyword into ``**settings`` and silently stores it, so being
    accepted proves nothing by itself: a setting counts when the constructor names it, or
    when a class that rejects unknown names accepts it.
    """
    try:
        parameter = inspect.signature(cls).parameters.get(name)
    except (TypeError, ValueError):
        parameter = None
    if parameter is not None and parameter.kind is not inspect.Parameter.VAR_KEYWORD:
        return True
    with tempfile.TemporaryDirectory(prefix="diskstore-bench-probe-") as scratch:
        if _opens(cls, os.path.join(scratch, "unknown"), {"no_such_setting_probe": 1}):
            return False
        return _opens(cls, os.path.join(scratch, "probe"), {name: value})


def describe(candidate: str) -> dict[str, str]:
    """Return where each slot's implementation comes from, for the results' metadata."""
    import sqlite3

    described: dict[str, str] = {FLOOR: f"sqlite3 {sqlite3.sqlite_version} table"}
    for engine, spec in ((DISKSTORE, candidate), (DISKCACHE, BASELINE)):
        cls = load_class(spec)
        module = candidate_module(spec)
        version = getattr(module, "__version__", "unknown")
        described[engine] = f"{cls.__module__}.{cls.__qualname__} {version}"
    return described
