"""Tests for diskstore._memo._funckey: turning calls into canonical keys."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from diskstore._memo._funckey import KeyBuilder, type_name

PREFIX = ("mod.f", None, None)


def two(a: Any, b: Any = 2) -> None:
    """A plain function with one default."""


def keyword_only(a: Any, *, c: Any = 3) -> None:
    """Has a keyword-only parameter, so the fast path does not apply."""


def variadic(a: Any, *args: Any, flag: bool = False, **kwargs: Any) -> None:
    """Everything at once."""


class Widget:
    def method(self, x: Any, y: Any = 0) -> None:
        """Decorated at class level, ``self`` comes first."""


def key(func: Any, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    return KeyBuilder(func, PREFIX).build(args, kwargs)


class TestBinding:
    def test_positional_keyword_and_default_spellings_share_one_key(self) -> None:
        builder = KeyBuilder(two, PREFIX)
        spellings = [((1, 2), {}), ((1,), {"b": 2}), ((), {"b": 2, "a": 1}), ((1,), {})]
        keys = {builder.build(args, kwargs) for args, kwargs in spellings}
        assert keys == {(*PREFIX, 1, 2)}

    def test_different_arguments_give_different_keys(self) -> None:
        assert key(two, 1) != key(two, 1, 3)
        assert key(two, 1, 2) != key(two, 2, 1)

    def test_keyword_only_defaults_are_applied(self) -> None:
        assert key(keyword_only, 1) == key(keyword_only, 1, c=3) == (*PREFIX, 1, 3)
        assert key(keyword_only, 1, c=4) != key(keyword_only, 1)

    def test_var_args_and_sorted_kwargs(self) -> None:
        first = key(variadic, 1, 2, 3, y=2, x=1)
        second = key(variadic, 1, 2, 3, x=1, y=2)
        assert first == second == (*PREFIX, 1, (2, 3), False, (("x", 1), ("y", 2)))
        assert key(variadic, 1, 2, 3, x=2, y=1) != first

    def test_var_args_do_not_collide_with_a_tuple_argument(self) -> None:
        assert key(variadic, 1, 2) != key(variadic, 1, (2,))

    def test_bad_call_raises_type_error_like_the_function(self) -> None:
        with pytest.raises(TypeError, match="missing a required argument"):
            key(two)
        with pytest.raises(TypeError):
            key(two, 1, 2, 3)
        with pytest.raises(TypeError, match="multiple values"):
            key(two, 1, a=1)
        with pytest.raises(TypeError, match="unexpected keyword"):
            key(two, 1, c=1)
        with pytest.raises(TypeError, match="missing a required argument"):
            key(two, b=1)

    @given(
        a=st.integers(),
        b=st.one_of(st.none(), st.integers(), st.text(max_size=5)),
        split=st.integers(min_value=0, max_value=2),
        omit_default=st.booleans(),
    )
    def test_every_spelling_of_a_call_matches_signature_binding(
        self, a: int, b: Any, split: int, omit_default: bool
    ) -> None:
        values = {"a": a, "b": b}
        if omit_default:
            values["b"] = 2
        names = ["a"] if omit_default else ["a", "b"]
        positional = tuple(values[n] for n in names[:split])
        keywords = {n: values[n] for n in names[split:]}
        bound = inspect.signature(two).bind(*positional, **keywords)
        bound.apply_defaults()
        expected = (*PREFIX, *bound.arguments.values())
        assert KeyBuilder(two, PREFIX).build(positional, keywords) == expected


class TestTyped:
    def test_typed_separates_int_and_float(self) -> None:
        typed = KeyBuilder(two, PREFIX, typed=True)
        assert typed.build((3,), {}) != typed.build((3.0,), {})
        assert key(two, 3) == key(two, 3.0)

    def test_typed_key_holds_type_names_not_type_objects(self) -> None:
        built = KeyBuilder(two, PREFIX, typed=True).build((3, "x"), {})
        assert built == (*PREFIX, 3, "x", ("builtins.int", "builtins.str"))

    def test_fast_and_general_paths_agree_when_typed(self) -> None:
        typed = KeyBuilder(two, PREFIX, typed=True)
        assert typed.build((3, 4.0), {}) == typed.build((3,), {"b": 4.0})

    def test_typed_covers_var_args_and_kwargs(self) -> None:
        typed = KeyBuilder(variadic, PREFIX, typed=True)
        assert typed.build((1, 2), {"x": 1}) != typed.build((1, 2.0), {"x": 1})
        assert typed.build((1, 2), {"x": 1}) != typed.build((1, 2), {"x": 1.0})

    def test_type_name(self) -> None:
        assert type_name(int) == "builtins.int"
        assert type_name(Widget) == f"{__name__}.Widget"


class TestIgnore:
    def test_self_ignored_by_name_or_position(self) -> None:
        by_name = KeyBuilder(Widget.method, PREFIX, ignore={"self"})
        by_position = KeyBuilder(Widget.method, PREFIX, ignore={0})
        one, other = Widget(), Widget()
        assert by_name.build((one, 1), {}) == by_position.build((other, 1), {}) == (*PREFIX, 1, 0)

    def test_ignored_keyword_argument(self) -> None:
        builder = KeyBuilder(two, PREFIX, ignore={"b"})
        assert builder.build((1,), {"b": 5}) == builder.build((1, 6), {}) == (*PREFIX, 1)

    def test_positions_past_named_parameters_index_var_args(self) -> None:
        builder = KeyBuilder(variadic, PREFIX, ignore={2})
        assert builder.build((1, 2, 3, 4), {}) == builder.build((1, 2, 99, 4), {})
        assert builder.build((1, 2, 3, 4), {}) != builder.build((1, 3, 3, 4), {})

    def test_names_of_kwargs_entries(self) -> None:
        builder = KeyBuilder(variadic, PREFIX, ignore={"verbose"})
        assert builder.build((1,), {"verbose": True}) == builder.build((1,), {"verbose": False})
        assert builder.build((1,), {"x": 1}) != builder.build((1,), {"x": 2})

    @pytest.mark.parametrize(
        ("ignore", "error", "message"),
        [
            ({"nope"}, ValueError, "'nope'"),
            ({-1}, ValueError, "-1"),
            ({5}, ValueError, "position 5"),
            ({True}, TypeError, "True"),
            ({1.5}, TypeError, "1.5"),
        ],
    )
    def test_invalid_ignore_is_rejected_with_the_value(
        self, ignore: set[Any], error: type[Exception], message: str
    ) -> None:
        with pytest.raises(error, match=message):
            KeyBuilder(two, PREFIX, ignore=ignore)


class TestCustomKey:
    def test_key_callable_replaces_the_argument_part(self) -> None:
        builder = KeyBuilder(two, PREFIX, key=lambda a, b=2: a % 10)
        assert builder.build((13,), {}) == builder.build((3, 99), {}) == (*PREFIX, 3)

    def test_key_callable_excludes_typed_and_ignore(self) -> None:
        with pytest.raises(ValueError, match="typed"):
            KeyBuilder(two, PREFIX, key=len, typed=True)
        with pytest.raises(ValueError, match="ignore"):
            KeyBuilder(two, PREFIX, key=len, ignore={"b"})

    def test_unreadable_signature_is_a_type_error(self) -> None:
        class Opaque:
            __signature__ = "not a signature"

            def __call__(self) -> None: ...

        with pytest.raises(TypeError, match="signature"):
            KeyBuilder(Opaque(), PREFIX)


def shaped(a: Any, *rest: Any, b: Any = "x", **kw: Any) -> None:
    """Same signature as the function the subprocess below defines."""


def test_keys_are_equal_in_another_process_with_another_hash_seed() -> None:
    script = textwrap.dedent(
        """
        from diskstore._memo._funckey import KeyBuilder
        def shaped(a, *rest, b="x", **kw):
            pass
        builder = KeyBuilder(shaped, ("f", 1, None), typed=True)
        print(repr(builder.build((1.5, "s"), {"z": 2, "y": 1})))
        """
    )
    local = KeyBuilder(shaped, ("f", 1, None), typed=True).build((1.5, "s"), {"z": 2, "y": 1})
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == repr(local)
    assert local == (
        "f",
        1,
        None,
        1.5,
        ("s",),
        "x",
        (("y", 1), ("z", 2)),
        ("builtins.float", ("builtins.str",), "builtins.str", ("builtins.int", "builtins.int")),
    )
