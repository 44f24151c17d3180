"""Tests for diskstore._values._sourcehash: edits that change meaning change the hash, others do
not."""

from __future__ import annotations

import importlib.util
import itertools
import textwrap
from pathlib import Path
from typing import Any

import pytest

from diskstore._values._sourcehash import source_hash

_counter = itertools.count()

BASE = '''
import functools

def passthrough(func):
    return func

@passthrough
def area(width, height=2):
    """Area of a rectangle."""
    scale = 1  # unit scale
    return width * height * scale
'''


def load(tmp_path: Path, source: str, attribute: str = "area") -> Any:
    """Import ``source`` as a fresh module from its own file and return one of its names."""
    name = f"sourcehash_case_{next(_counter)}"
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, attribute)


def hash_of(tmp_path: Path, source: str, attribute: str = "area") -> str:
    return source_hash(load(tmp_path, source, attribute))


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda s: s.replace("# unit scale", "# a different comment"), id="comment"),
        pytest.param(lambda s: s.replace("    scale = 1", "\n\n    scale = 1"), id="blank-lines"),
        pytest.param(lambda s: "\n\n\n# header\n" + s, id="moved-down"),
        pytest.param(
            lambda s: s.replace("width * height", "(width\n            * height)"), id="wrap"
        ),
        pytest.param(
            lambda s: s.replace('"""Area of a rectangle."""', "'''New words.'''"), id="doc"
        ),
        pytest.param(lambda s: s.replace("@passthrough\n", ""), id="decorator"),
    ],
)
def test_edits_that_keep_meaning_keep_the_hash(tmp_path: Path, edit: Any) -> None:
    assert hash_of(tmp_path, edit(BASE)) == hash_of(tmp_path, BASE)


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda s: s.replace("width * height", "width + height"), id="operator"),
        pytest.param(lambda s: s.replace("scale = 1", "scale = 2"), id="constant"),
        pytest.param(lambda s: s.replace("height=2", "height=3"), id="default"),
        pytest.param(lambda s: s.replace("scale = 1 ", "scale = int('1') "), id="call"),
        pytest.param(lambda s: s.replace("height=2", "height=2, *rest"), id="signature"),
    ],
)
def test_edits_that_change_meaning_change_the_hash(tmp_path: Path, edit: Any) -> None:
    changed = edit(BASE)
    assert changed != BASE
    assert hash_of(tmp_path, changed) != hash_of(tmp_path, BASE)


def test_nested_function_docstrings_are_ignored_but_bodies_are_not(tmp_path: Path) -> None:
    source = '''
    def outer():
        def inner():
            """Inner docs."""
            return 1
        return inner()
    '''
    same = source.replace("Inner docs.", "Other docs.")
    other = source.replace("return 1", "return 2")
    assert hash_of(tmp_path, source, "outer") == hash_of(tmp_path, same, "outer")
    assert hash_of(tmp_path, source, "outer") != hash_of(tmp_path, other, "outer")


def test_methods_are_hashed_from_their_dedented_source(tmp_path: Path) -> None:
    source = """
    class Shape:
        def area(self):
            return 4  # square
    """
    method = load(tmp_path, source, "Shape").area
    edited = load(tmp_path, source.replace("# square", ""), "Shape").area
    changed = load(tmp_path, source.replace("return 4", "return 5"), "Shape").area
    assert source_hash(method) == source_hash(edited) != source_hash(changed)


def test_async_functions(tmp_path: Path) -> None:
    source = """
    async def fetch(x):
        return x  # echo
    """
    assert hash_of(tmp_path, source, "fetch") == hash_of(
        tmp_path, source.replace("# echo", ""), "fetch"
    )
    assert hash_of(tmp_path, source, "fetch") != hash_of(
        tmp_path, source.replace("return x", "return -x"), "fetch"
    )


def exec_function(source: str) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(textwrap.dedent(source), "<generated>", "exec"), namespace)
    return namespace["f"]


class TestWithoutSource:
    def test_code_object_fallback_ignores_positions_and_comments(self) -> None:
        first = exec_function("def f(x):\n    return x * 2\n")
        moved = exec_function("\n\n# a comment\ndef f(x):\n    # another\n    return x * 2\n")
        assert source_hash(first) == source_hash(moved)

    def test_code_object_fallback_follows_body_changes(self) -> None:
        first = exec_function("def f(x):\n    return x * 2\n")
        changed = exec_function("def f(x):\n    return x * 3\n")
        nested = exec_function("def f(x):\n    g = lambda: x * 2\n    return g\n")
        nested_changed = exec_function("def f(x):\n    g = lambda: x * 4\n    return g\n")
        assert source_hash(first) != source_hash(changed)
        assert source_hash(nested) != source_hash(nested_changed)

    def test_callables_without_code_are_rejected(self) -> None:
        with pytest.raises(TypeError, match="hash_source=True"):
            source_hash(len)
