"""Tests for diskstore._values._identity: what keys a memoized function apart beyond its name.

Closures made by one ``def`` and lambdas share a name; methods of classes defined in
``__main__`` (a script, ``python -c``, a notebook) have a ``self`` cloudpickle would pickle by
value, class, methods, cache and all. The scripts run in real subprocesses; the notebook runs
in a real Jupyter kernel when ``ipykernel`` and ``nbclient`` are installed (the ``dev`` extra).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import diskcache  # type: ignore[import-untyped]
import pytest

import diskstore
from diskstore._values._identity import ESCAPED, OBJECT, RECURSIVE, Unkeyable, keyable

ROOT = Path(__file__).resolve().parent.parent.parent


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: int


# -- making values keyable -------------------------------------------------------------------


class TestKeyable:
    def test_plain_values_are_themselves(self) -> None:
        for value in (None, True, 3, 2.5, "s", b"b", (1, "a"), [1, [2]], {"a": 1}, {1, 2}):
            assert keyable(value) == value

    def test_containers_are_copied(self) -> None:
        items = [1, 2]
        made = keyable(items)
        items.append(3)
        assert made == [1, 2]

    def test_a_tuple_that_looks_like_a_description_is_escaped(self) -> None:
        lookalike = (OBJECT, f"{Point.__module__}.Point", {"x": 1, "y": 2})
        assert keyable(Point(1, 2)) == lookalike
        assert keyable(lookalike) == (ESCAPED, *lookalike)
        assert keyable(lookalike) != keyable(Point(1, 2))
        assert keyable((ESCAPED, 1)) == (ESCAPED, ESCAPED, 1)

    def test_objects_are_their_class_name_and_state(self) -> None:
        assert keyable(Point(1, 2)) == keyable(Point(1, 2)) != keyable(Point(2, 1))
        assert keyable(Path("/a/b")) != keyable(Path("/a/c"))
        assert keyable(functools.partial(max, 1)) != keyable(functools.partial(max, 2))

    def test_a_reference_to_itself(self) -> None:
        loop: list[Any] = [1]
        loop.append(loop)
        assert keyable(loop) == [1, (RECURSIVE, 1)]

    def test_functions_found_by_name_are_their_name(self) -> None:
        assert keyable(textwrap.dedent) == ("<function>", "textwrap.dedent")
        assert keyable(len) == ("<function>", "builtins.len")

    def test_local_functions_are_their_code_and_closure(self) -> None:
        def make(k: int) -> Any:
            return lambda x: x * k

        assert keyable(make(2)) == keyable(make(2)) != keyable(make(3))
        assert keyable(lambda x: x + 1) != keyable(lambda x: x + 2)

    def test_local_classes_are_told_apart_by_their_namespace(self) -> None:
        def make(k: int) -> type:
            class Local:
                factor = k

            return Local

        assert keyable(make(2)) == keyable(make(2)) != keyable(make(3))

    def test_resources_are_refused_with_where_they_are(self) -> None:
        holder = {"ok": 1, "lock": threading.Lock()}
        with pytest.raises(Unkeyable) as caught:
            keyable([holder])
        assert caught.value.describe("x") == (
            "x[0]['lock'] is a _thread.lock, which cannot be pickled"
        )


# -- closures and lambdas ----------------------------------------------------------------------


def _locked(func: Any) -> Any:
    lock = threading.Lock()

    @functools.wraps(func)
    def wrapper(*args: Any) -> Any:
        with lock:
            return func(*args)

    return wrapper


@_locked
def doubled(x: int) -> int:
    return 2 * x


def make_scale(cache: Any, k: int) -> Any:
    @cache.memoize()
    def scale(x: int) -> int:
        return x * k

    return scale


class TestClosures:
    def test_closures_made_with_different_values_keep_their_results_apart(
        self, cache: diskstore.Cache
    ) -> None:
        assert (make_scale(cache, 2)(5), make_scale(cache, 3)(5)) == (10, 15)
        assert make_scale(cache, 2)(5) == 10
        assert make_scale(cache, 2).cache_info().currsize == 2  # one name, both results

    def test_diskcache_returns_another_closures_result(self, tmp_path: Path) -> None:
        # The defect, shown on the real diskcache 5.6.3 next to diskstore.
        with diskcache.Cache(str(tmp_path / "diskcache")) as theirs:
            assert (make_scale(theirs, 2)(5), make_scale(theirs, 3)(5)) == (10, 10)
        with diskstore.Cache(str(tmp_path / "diskstore")) as ours:
            assert (make_scale(ours, 2)(5), make_scale(ours, 3)(5)) == (10, 15)

    def test_an_explicit_name_keeps_the_closure_in_the_key(self, cache: diskstore.Cache) -> None:
        def make(k: int) -> Any:
            return cache.memoize(name="scale")(lambda x: x * k)

        assert (make(2)(5), make(3)(5)) == (10, 15)

    def test_distinct_lambdas_keep_their_results_apart(self, tmp_path: Path) -> None:
        with diskcache.Cache(str(tmp_path / "diskcache")) as theirs:
            assert (theirs.memoize()(lambda x: x + 1)(5), theirs.memoize()(lambda x: x * 2)(5)) == (
                6,
                6,
            )
        with diskstore.Cache(str(tmp_path / "diskstore")) as ours:
            inc, double = ours.memoize()(lambda x: x + 1), ours.memoize()(lambda x: x * 2)
            assert (inc(5), double(5)) == (6, 10)
            again = ours.memoize()(lambda x: x + 1)  # the same code: the same results
            assert again(5) == 6 and again.cache_info().hits == 1

    def test_functions_of_one_name_with_different_code(self, cache: diskstore.Cache) -> None:
        def make(add: bool) -> Any:
            if add:

                @cache.memoize()
                def op(x: int) -> int:
                    return x + 1

            else:

                @cache.memoize()
                def op(x: int) -> int:
                    return x * 10

            return op

        assert (make(True)(5), make(False)(5)) == (6, 50)

    def test_a_rebound_variable_changes_the_key(self, cache: diskstore.Cache) -> None:
        k = 2

        @cache.memoize()
        def scale(x: int) -> int:
            return x * k

        assert scale(5) == 10
        k = 3
        assert scale(5) == 15
        k = 2
        assert scale(5) == 10 and scale.cache_info().hits == 1

    def test_a_captured_list_the_function_appends_to_keeps_its_hits(
        self, cache: diskstore.Cache
    ) -> None:
        calls: list[int] = []

        @cache.memoize()
        def square(x: int) -> int:
            calls.append(x)
            return x * x

        assert [square(3), square(3), square(3)] == [9, 9, 9]
        assert calls == [3]

    def test_closures_over_helpers_are_keyed_by_the_helpers(self, cache: diskstore.Cache) -> None:
        def make(k: int) -> Any:
            helper = lambda x: x * k  # noqa: E731

            @cache.memoize()
            def apply(x: int) -> int:
                return helper(x) + 1

            return apply

        assert (make(2)(5), make(3)(5)) == (11, 16)

    def test_a_recursive_closure(self, cache: diskstore.Cache) -> None:
        def make() -> Any:
            @cache.memoize()
            def fib(n: int) -> int:
                return n if n < 2 else fib(n - 1) + fib(n - 2)

            return fib

        assert make()(40) == 102334155
        assert make()(40) == 102334155
        assert make().__cache_key__(3) == make().__cache_key__(3)

    def test_methods_of_local_classes_with_different_class_attributes(
        self, cache: diskstore.Cache
    ) -> None:
        def make(k: int) -> Any:
            @dataclasses.dataclass(frozen=True)
            class Scaled:
                n: int
                factor = k

                @cache.memoize()
                def value(self) -> int:
                    return self.n * self.factor

            return Scaled

        assert (make(2)(5).value(), make(3)(5).value()) == (10, 15)

    def test_an_unkeyable_variable_is_refused_naming_it(self, cache: diskstore.Cache) -> None:
        lock = threading.Lock()

        def guarded(x: int) -> int:
            with lock:
                return x

        with pytest.raises(TypeError) as caught:
            cache.memoize()(guarded)
        message = str(caught.value)
        assert "closure variable 'lock'" in message
        assert "lock is a _thread.lock" in message
        assert "ignore={'lock'}" in message
        assert cache.memoize(ignore={"lock"})(guarded)(4) == 4

    def test_a_closure_variable_with_a_key_function(self, cache: diskstore.Cache) -> None:
        lock = threading.Lock()

        @cache.memoize(key=lambda x: abs(x), ignore={"lock"})
        def magnitude(x: int) -> int:
            with lock:
                return abs(x)

        assert magnitude(-3) == magnitude(3) == 3
        assert magnitude.cache_info().hits == 1

    def test_ignore_suggests_closure_variables(self, cache: diskstore.Cache) -> None:
        session = object()

        def fetch(url: str) -> str:
            return f"{session}{url}"

        with pytest.raises(ValueError, match=r"'sesion'.*did you mean 'session'\?"):
            cache.memoize(ignore={"sesion"})(fetch)

    def test_module_level_functions_keep_their_keys(self, cache: diskstore.Cache) -> None:
        memoized = cache.memoize()(textwrap.dedent)
        assert memoized.__cache_key__("x") == ("textwrap.dedent", None, None, "x")
        # A decorator's wrapper has cells (here a lock), but its name is its own.
        wrapped = cache.memoize()(doubled)
        assert wrapped.__cache_key__(3) == (f"{__name__}.doubled", None, None, 3)
        assert wrapped(3) == 6


# -- methods of classes defined in __main__ ------------------------------------------------------

SCRIPT = """\
import sys
from dataclasses import dataclass

import diskstore

cache = diskstore.Cache(sys.argv[1])
runs = []


@dataclass(frozen=True)
class P:
    n: int

    @cache.memoize()
    def sq(self):
        runs.append("sq")
        return self.n ** 2

    @classmethod
    @cache.memoize()
    def label(cls):
        runs.append("label")
        return cls.__name__


class Plain:
    def __init__(self, n):
        self.n = n
        self.tags = {"a", "b"}

    @cache.memoize()
    def double(self, extra=0):
        runs.append("double")
        return 2 * self.n + extra


class Slotted:
    __slots__ = ("n",)

    def __init__(self, n):
        self.n = n

    @cache.memoize()
    def neg(self):
        runs.append("neg")
        return -self.n


@dataclass(frozen=True)
class Box:
    n: int

    @cache.memoize()
    def twice(self):
        return 2 * self.n


@cache.memoize()
def boxed(n):  # its result is an instance of a class with a memoized method
    runs.append("boxed")
    return Box(n)


results = [P(3).sq(), P(3).sq(), P(4).sq(), P.label(), Plain(5).double(), Plain(5).double(1),
           Slotted(7).neg(), boxed(4).twice()]
print(results, len(runs))
cache.close()
"""


def _run(args: list[str], cache_dir: Path, seed: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": seed}
    done = subprocess.run(
        [sys.executable, *args, str(cache_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


class TestMainModule:
    EXPECTED = "[9, 9, 16, 'P', 10, 11, -7, 8]"

    def test_a_script(self, tmp_path: Path) -> None:
        script = tmp_path / "script.py"
        script.write_text(SCRIPT)
        first = _run([str(script)], tmp_path / "cache", "1")
        assert first == f"{self.EXPECTED} 7"  # P(3).sq() once
        # Another run (another hash seed) finds every result: the keys are stable.
        again = _run([str(script)], tmp_path / "cache", "2")
        assert again == f"{self.EXPECTED} 0"
        # The keys hold the classes' names and the instances' states, never a pickled
        # class: a process without those classes reads every key.
        with diskstore.Cache(str(tmp_path / "cache")) as cache:
            keys = sorted(map(repr, cache))
        assert "('__main__.P.sq', None, None, ('<object>', '__main__.P', {'n': 3}))" in keys
        assert "('__main__.P.label', None, None, ('<class>', '__main__.P'))" in keys
        assert len(keys) == 8

    def test_python_dash_c(self, tmp_path: Path) -> None:
        first = _run(["-c", SCRIPT], tmp_path / "cache", "3")
        assert first == f"{self.EXPECTED} 7"
        assert _run(["-c", SCRIPT], tmp_path / "cache", "4") == f"{self.EXPECTED} 0"

    def test_an_instance_holding_a_lock_is_refused_naming_it(self, tmp_path: Path) -> None:
        source = textwrap.dedent(
            """\
            import sys, threading
            import diskstore

            cache = diskstore.Cache(sys.argv[1])

            class Client:
                def __init__(self):
                    self.lock = threading.Lock()

                @cache.memoize()
                def get(self, path):
                    return path

            try:
                Client().get("x")
            except TypeError as exc:
                print(exc)
            """
        )
        out = _run(["-c", source], tmp_path / "cache", "0")
        assert out.startswith("memoize cannot key the self of Client.get: self.lock is a")
        assert "ignore={'self'}" in out


NOTEBOOK_CELLS = [
    "import sys; sys.path.insert(0, {root!r})",
    "import diskstore\ncache = diskstore.Cache({directory!r})\nruns = []",
    """\
from dataclasses import dataclass

@dataclass(frozen=True)
class P:
    n: int

    @cache.memoize()
    def sq(self):
        runs.append(self.n)
        return self.n ** 2""",
    "def make(k):\n    return cache.memoize()(lambda x: x * k)",
    "print([P(3).sq(), P(3).sq(), make(2)(5), make(3)(5)], runs)",
]


def test_a_notebook_kernel(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    directory = str(tmp_path / "cache")
    outputs = []
    for _ in range(2):  # a second kernel, as after a restart, finds every result
        cells = [c.format(root=str(ROOT), directory=directory) for c in NOTEBOOK_CELLS]
        notebook = nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell(source) for source in cells]
        )
        client = nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3")
        client.execute(cwd=str(tmp_path))
        (output,) = notebook.cells[-1].outputs
        outputs.append(output["text"].strip())
    assert outputs == ["[9, 9, 10, 15] [3]", "[9, 9, 10, 15] []"]
