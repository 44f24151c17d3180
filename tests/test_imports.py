"""``import diskstore`` loads only what a plain cache needs; the rest loads on first use.

asyncio alone used to double the import time of every program that imports diskstore,
whether or not it ever touched ``AsyncCache``. Each check runs in a fresh interpreter,
since this test process has long since imported everything.
"""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

import diskstore

#: What signing needs: loaded when a cache that signs is opened, never by the import.
SIGNING = ("_hashlib", "hashlib", "hmac")

#: Modules a plain ``import diskstore`` must not load.
DEFERRED = (
    *SIGNING,
    "asyncio",
    "cloudpickle",
    "concurrent.futures",
    "dataclasses",
    "filelock",
    "inspect",
    "json",
    "logging",
    "random",
    "secrets",
    "shutil",
    "tempfile",
    "traceback",
    "xxhash",
    "zstandard",
    "diskstore._aio._async",
    "diskstore._cli",
    "diskstore._storage._inspect",
    "diskstore._memo._memoize",
    "diskstore.fanout",
    "diskstore.persistent",
    "diskstore.recipes",
    "diskstore.tasks",
)


def _loaded_after(code: str) -> set[str]:
    # The program prints with repr, not json: json is one of the modules checked.
    program = f"import sys\n{code}\nprint(sorted(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    return set(ast.literal_eval(done.stdout))


def test_import_defers_async_tasks_recipes_cli_and_serializers() -> None:
    loaded = _loaded_after("import diskstore")
    assert "diskstore._caching._cache" in loaded
    assert loaded.isdisjoint(DEFERRED), sorted(loaded & set(DEFERRED))


def test_a_plain_cache_of_small_values_needs_none_of_them(tmp_path: object) -> None:
    loaded = _loaded_after(
        "import diskstore\n"
        f"with diskstore.Cache({str(tmp_path)!r}) as cache:\n"
        "    cache.set('key', 'value')\n"
        "    assert cache.get('key') == 'value'\n"
        "    assert list(cache) == ['key']\n"
    )
    assert loaded.isdisjoint(set(DEFERRED) - set(SIGNING)), sorted(loaded & set(DEFERRED))


def test_a_cache_that_does_not_sign_loads_no_hashing(tmp_path: object) -> None:
    loaded = _loaded_after(
        "import diskstore\n"
        f"with diskstore.Cache({str(tmp_path)!r}, secret=False) as cache:\n"
        "    cache.set('key', b'x' * 100_000)\n"
        "    assert cache.get('key') == b'x' * 100_000\n"
    )
    # The value file's checksum is the only hashing such a cache does.
    assert "xxhash" in loaded
    unexpected = set(DEFERRED) - {"xxhash"}
    assert loaded.isdisjoint(unexpected), sorted(loaded & unexpected)


@pytest.mark.parametrize(
    ("name", "module"),
    [
        ("AsyncCache", "diskstore._aio._async"),
        ("inspect_cache", "diskstore._storage._inspect"),
        ("memoize", "diskstore._memo._memoize"),
    ],
)
def test_a_deferred_name_loads_on_first_access(name: str, module: str) -> None:
    loaded = _loaded_after(f"import diskstore\ndiskstore.{name}")
    assert module in loaded


def test_deferred_names_resolve_and_stay_resolved() -> None:
    for name in diskstore.__all__:
        assert name in dir(diskstore)
        first = getattr(diskstore, name)
        assert getattr(diskstore, name) is first


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="'nothing_here'"):
        diskstore.nothing_here  # noqa: B018
