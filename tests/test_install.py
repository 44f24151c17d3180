"""Tests for diskstore._install and diskstore.core: unmodified diskcache programs run."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import diskcache.core
import pytest

import diskstore
from diskstore import core

# A program written for diskcache, as it would be found in the wild: it imports helpers
# from diskcache.core by name, subclasses Disk with diskcache's signatures, and uses the
# collections and recipes. Only the first two lines are added to run it on diskstore.
PROGRAM = """
import diskstore
diskstore.install_as_diskcache()

import json, pickle, sys
import diskcache
import diskcache.recipes
from diskcache import Deque, FanoutCache, Index
from diskcache.core import ENOVAL, MODE_PICKLE, MODE_RAW, UNKNOWN, Disk, args_to_key, full_name


class PickleDisk(Disk):
    def store(self, value, read, key=UNKNOWN):
        if not read:
            value = pickle.dumps(value)
        return super().store(value, read, key=key)

    def fetch(self, mode, filename, value, read):
        data = super().fetch(mode, filename, value, read)
        return data if read else pickle.loads(data)


def lookup(cache, func, *args, **kwargs):
    key = args_to_key((full_name(func),), args, kwargs, False, set())
    value = cache.get(key, default=ENOVAL)
    if value is ENOVAL:
        value = func(*args, **kwargs)
        cache.set(key, value)
    return value


def area(width, height):
    return width * height


directory = sys.argv[1]
with diskcache.Cache(directory + "/plain", disk=PickleDisk) as cache:
    assert lookup(cache, area, 3, height=4) == 12
    key = args_to_key((full_name(area),), (3,), {"height": 4}, False, set())
    assert cache[key] == 12 and len(cache) == 1

    @cache.memoize(tag="memo")
    def double(x):
        return 2 * x

    assert double(21) == 42 and cache[double.__cache_key__(21)] == 42
    assert cache.evict("memo") == 1

with FanoutCache(directory + "/fanout", shards=4) as fanout:
    fanout["k"] = "v"
    assert fanout["k"] == "v"
deque = Deque([1, 2, 3], directory=directory + "/deque")
deque.maxlen = 2
index = Index(directory + "/index", {"a": 1})
lock = diskcache.recipes.Lock(diskcache.Cache(directory + "/lock"), "name")
with lock:
    pass
print(json.dumps({
    "modules": sorted(name for name in sys.modules if name.split(".")[0] == "diskcache"),
    "deque": list(deque), "index": dict(index), "modes": [MODE_RAW, MODE_PICKLE],
    "cache_module": diskcache.Cache.__module__, "core_file": diskcache.core.__name__,
}))
"""


def test_an_unmodified_diskcache_program_runs(tmp_path: Path) -> None:
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(PROGRAM))
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["deque"] == [2, 3] and report["index"] == {"a": 1}
    assert report["modes"] == [1, 4]
    assert report["cache_module"] == "diskstore._caching._cache"
    assert report["core_file"] == "diskstore.core"
    assert "diskcache.djangocache" not in report["modules"]  # loaded only when imported
    assert {"diskcache", "diskcache.core", "diskcache.recipes"} <= set(report["modules"])


def test_django_module_resolves_after_install(tmp_path: Path) -> None:
    code = (
        "import diskstore; diskstore.install_as_diskcache();"
        "import diskcache.djangocache, diskcache.fanout, diskcache.persistent;"
        "print(diskcache.djangocache.DjangoCache.__module__, diskcache.fanout.__name__)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["diskstore.djangocache", "diskstore.fanout"]


def test_install_refuses_once_the_real_diskcache_is_imported() -> None:
    assert sys.modules["diskcache"] is not diskstore  # this test process imported it
    with pytest.raises(RuntimeError, match="before install_as_diskcache"):
        diskstore.install_as_diskcache()
    assert sys.modules["diskcache"].__name__ == "diskcache"


@pytest.mark.parametrize(
    ("args", "kwargs", "typed", "ignore"),
    [
        ((), {}, False, set()),
        ((1, "a", None), {}, False, set()),
        ((1, 2.5), {"z": 1, "a": (1, 2)}, False, set()),
        ((1, 2.5), {"z": 1, "a": 2}, True, set()),
        ((1, 2, 3), {"x": 1, "y": 2}, True, {0, "y"}),
        (("only",), {"k": b"v"}, False, {"k"}),
    ],
)
def test_args_to_key_matches_diskcache(
    args: tuple[object, ...], kwargs: dict[str, object], typed: bool, ignore: set[object]
) -> None:
    base = ("module.func",)
    ours = core.args_to_key(base, args, kwargs, typed, ignore)
    theirs = diskcache.core.args_to_key(base, args, kwargs, typed, ignore)
    assert ours == theirs
    assert core.full_name(test_args_to_key_matches_diskcache) == diskcache.core.full_name(
        test_args_to_key_matches_diskcache
    )


def test_core_has_the_names_programs_import() -> None:
    for name in ("ENOVAL", "UNKNOWN", "MODE_NONE", "MODE_RAW", "MODE_BINARY", "MODE_TEXT",
                 "MODE_PICKLE", "DEFAULT_SETTINGS", "EVICTION_POLICY", "METADATA", "Disk",
                 "JSONDisk", "Cache", "Timeout", "EmptyDirWarning", "UnknownFileWarning",
                 "args_to_key", "full_name"):  # fmt: skip
        assert hasattr(core, name), name
        assert hasattr(diskcache.core, name), name
    for name in ("MODE_NONE", "MODE_RAW", "MODE_BINARY", "MODE_TEXT", "MODE_PICKLE"):
        assert getattr(core, name) == getattr(diskcache.core, name)
    assert dict(core.METADATA) == diskcache.core.METADATA
    assert set(core.DEFAULT_SETTINGS) >= set(diskcache.core.DEFAULT_SETTINGS) - {
        "sqlite_cache_size"
    }
