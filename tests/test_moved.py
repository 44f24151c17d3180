"""Old paths of the private modules (``diskstore._cache``...) still resolve.

``tests/data/layout-0.1.0.pickle`` was written by diskstore 0.1.0, whose private modules sat
flat in the package: a ``Cache``, a ``FanoutCache``, a ``Deque``, an ``Index`` (made in
``/tmp/oldlayout/OLD``), the ``Disk`` classes, every exception, an eviction policy,
``CacheInfo``, ``FunctionStats``, ``ENOVAL`` and ``UNKNOWN``, pickled with protocol 0 so
that the test can point the directories somewhere else. Each check runs in a fresh
interpreter that has not imported diskstore: unpickling is what imports it.
"""

from __future__ import annotations

import pickletools
import subprocess
import sys
from pathlib import Path

from diskstore._moved import NEW_NAMES

PICKLE = Path(__file__).parent / "data" / "layout-0.1.0.pickle"


def _run(code: str) -> None:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_pickle_names_the_old_paths() -> None:
    modules = {
        str(arg).split(" ")[0]
        for op, arg, _ in pickletools.genops(PICKLE.read_bytes())
        if op.name == "GLOBAL"
    }
    assert {"diskstore._cache", "diskstore._disk", "diskstore._exceptions"} <= modules
    assert {name for name in modules if name.startswith("diskstore._")} <= set(NEW_NAMES)


def test_a_pickle_of_the_flat_layout_loads_to_todays_classes(tmp_path: Path) -> None:
    data = PICKLE.read_bytes().replace(b"/tmp/oldlayout/OLD", str(tmp_path).encode())
    (tmp_path / "old.pickle").write_bytes(data)
    _run(
        f"""
import pickle
with open({str(tmp_path / "old.pickle")!r}, "rb") as file:
    old = pickle.load(file)
import diskstore
from diskstore._caching._cache import Cache

assert type(old["cache"]) is Cache is diskstore.Cache
assert type(old["fanout"]) is diskstore.FanoutCache
assert type(old["deque"]) is diskstore.Deque and type(old["index"]) is diskstore.Index
assert old["disks"] == (diskstore.Disk, diskstore.JSONDisk)
assert type(old["timeout"]) is diskstore.Timeout
assert all(type(error) is getattr(diskstore, type(error).__name__) for error in old["errors"])
assert len(old["errors"]) > 10
assert old["policy"] == diskstore.EVICTION_POLICY["least-recently-used"]
assert old["enoval"] is diskstore.ENOVAL and old["unknown"] is diskstore.UNKNOWN
assert old["cacheinfo"] == diskstore.CacheInfo(1, 2, 3, 4)
assert old["stats"] is diskstore.FunctionStats
old["cache"]["key"] = "value"
assert diskstore.Cache(old["cache"].directory)["key"] == "value"
old["index"]["key"] = 1
old["deque"].append(2)
old["fanout"]["key"] = 3
for each in ("cache", "fanout"):
    old[each].close()
"""
    )


def test_every_old_path_imports_the_module_itself() -> None:
    _run(
        f"""
import importlib
for old, new in {NEW_NAMES!r}.items():
    assert importlib.import_module(old) is importlib.import_module(new), old
import diskstore._store
from diskstore._cache import Cache
import diskstore
assert Cache is diskstore.Cache
assert diskstore._store is diskstore._storage._store
"""
    )
