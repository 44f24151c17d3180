"""Turn a function call into a cache key.

A key is a flat tuple: a fixed prefix (function name, version, source hash) followed by
the call's arguments *bound to the function's signature*, with defaults applied. Binding
first means ``f(1, 2)``, ``f(1, b=2)``, ``f(b=2, a=1)`` and ``f(1)`` (when ``b`` defaults
to 2) all produce the same key, unlike keys built from the raw ``args`` and ``kwargs``.

Layout after the prefix, one element per parameter in signature order (ignored ones
dropped): the argument itself, the tuple of extra positional arguments for ``*args``, and
a tuple of ``(name, value)`` pairs sorted by name for ``**kwargs``. With ``typed=True`` a
final tuple of qualified type names follows, so ``f(3)`` and ``f(3.0)`` differ. Keys hold
strings and the arguments themselves, never type objects or hashes that depend on the
process, so the same call produces the same key in every process.

A function whose name does not identify it gets one more prefix element, after the given
prefix: the hash of its code for a lambda or a function defined inside another one, and a
digest of its closure variables' values for a closure (see :mod:`diskstore._values._identity`). The
first argument of a method of a class defined in ``__main__`` or inside a function is made
keyable (its class's name and its state) rather than pickled.

Building a key is on every call's path, so the signature is analysed once and calls that
pass only positional arguments to a function without ``*args``/``**kwargs``/keyword-only
parameters skip ``inspect`` entirely. A function without closure variables pays nothing
for its identity on a call: the code hash is part of the constant prefix.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Hashable
from typing import Any

from .._values._identity import FunctionIdentity, SelfKey, free_variables

__all__ = ["KeyBuilder", "type_name"]

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_type_names: dict[type, str] = {}
_UNSET = object()  # marks a parameter slot no argument filled yet
_Build = Callable[[tuple[Any, ...], dict[str, Any]], tuple[Any, ...]]


def _first(pair: tuple[str, Any]) -> str:
    return pair[0]


def type_name(cls: type) -> str:
    """Return ``module.qualname`` for ``cls``: a process-independent stand-in for the type."""
    name = _type_names.get(cls)
    if name is None:
        name = _type_names[cls] = f"{cls.__module__}.{cls.__qualname__}"
    return name


def _did_you_mean(name: str, candidates: Collection[str]) -> str:
    import difflib  # only for the error message

    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class KeyBuilder:
    """Build keys for calls of one function; construct once, call ``build`` per call.

    ``ignore`` holds parameter names and positions alike: position ``i`` is the ``i``-th
    parameter of the signature (so ``0`` is ``self`` for a method decorated in its class),
    or, past the named positional parameters, an element of ``*args``. A name that is not a
    parameter refers to a closure variable, or else to a ``**kwargs`` entry. ``key``
    replaces the argument part with ``key(*args, **kwargs)``; it cannot be combined with
    ``typed`` or with ``ignore`` of parameters. ``named`` says the caller chose the
    function's name, which then stands for its code: a lambda's or a local function's code
    hash is left out (the function's closure variables are keyed still).
    """

    __slots__ = ("_extra_ignored", "_ignored", "_params", "build", "identity", "prefix")

    def __init__(
        self,
        func: Callable[..., Any],
        prefix: tuple[Hashable, ...],
        *,
        typed: bool = False,
        ignore: Collection[str | int] = (),
        key: Callable[..., Any] | None = None,
        named: bool = False,
    ) -> None:
        free = free_variables(func)
        closure_ignored = {item for item in ignore if isinstance(item, str) and item in free}
        self.identity = identity = FunctionIdentity(func, ignored=closure_ignored, named=named)
        if identity.needed and not identity.cells:
            prefix = (*prefix, identity.static)  # constant: nothing to do per call
        self.prefix = prefix
        inner_prefix = () if identity.cells else prefix
        build: _Build
        if key is not None:
            argument_ignore = {item for item in ignore if item not in closure_ignored}
            if typed or argument_ignore:
                raise ValueError(
                    "key= replaces the argument part of the key; it cannot be combined with "
                    f"typed={typed!r} or ignore={argument_ignore!r}"
                )
            build = self._custom_builder(key, inner_prefix)
        else:
            try:
                signature = inspect.signature(func)
            except (TypeError, ValueError) as exc:
                raise TypeError(
                    f"cannot read the signature of {func!r} to build keys: {exc}"
                ) from exc
            self._params = list(signature.parameters.values())
            self._ignored, self._extra_ignored = self._resolve_ignore(func, ignore, free)
            general = self._general_builder(signature, typed, inner_prefix)
            build = self._fast_builder(general, typed, inner_prefix) or general
            build = self._self_builder(func, build)
        if identity.cells:
            identity.check()  # a closure variable that cannot be keyed: say so now
            build = self._closure_builder(build, prefix, identity.part)
        self.build: _Build = build

    @staticmethod
    def _closure_builder(
        inner: _Build, prefix: tuple[Hashable, ...], part: Callable[[], Any]
    ) -> _Build:
        def build(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
            return (*prefix, part(), *inner(args, kwargs))

        return build

    def _self_builder(self, func: Callable[..., Any], inner: _Build) -> _Build:
        """Make the first argument keyable for methods whose class pickles by value."""
        params = self._params
        if not params or params[0].kind not in _POSITIONAL or params[0].name in self._ignored:
            return inner
        if not SelfKey.applies(func):
            return inner
        first = params[0].name
        keyable = SelfKey(first, func.__qualname__)

        def build(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
            if args:
                args = (keyable(args[0]), *args[1:])
            elif first in kwargs:
                kwargs = {**kwargs, first: keyable(kwargs[first])}
            return inner(args, kwargs)

        return build

    def _resolve_ignore(
        self, func: Callable[..., Any], ignore: Collection[str | int], free: Collection[str]
    ) -> tuple[frozenset[str], frozenset[int]]:
        """Split ``ignore`` into parameter or ``**kwargs`` names and ``*args`` offsets."""
        params = self._params
        positional = [p for p in params if p.kind in _POSITIONAL]
        has_var_positional = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
        has_var_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
        names: set[str] = set()
        extra: set[int] = set()
        for item in ignore:
            if isinstance(item, bool) or not isinstance(item, (str, int)):
                raise TypeError(
                    f"ignore must hold parameter names (str) or positions (int), got {item!r}"
                )
            if isinstance(item, str):
                known = [p.name for p in params]
                if item in free:
                    continue  # a closure variable, left out by the function's identity
                if item not in known and not has_var_keyword:
                    hint = _did_you_mean(item, [*known, *free])
                    raise ValueError(
                        f"ignore names {item!r}, which is neither a parameter nor a closure "
                        f"variable of {getattr(func, '__qualname__', func)}{hint}"
                    )
                names.add(item)
            elif item < 0:
                raise ValueError(f"ignore positions must be >= 0, got {item!r}")
            elif item < len(positional):
                names.add(positional[item].name)
            elif has_var_positional:
                extra.add(item - len(positional))
            else:
                raise ValueError(
                    f"ignore position {item!r} is past the {len(positional)} positional "
                    f"parameter(s) of {func!r}"
                )
        return frozenset(names), frozenset(extra)

    @staticmethod
    def _custom_builder(
        key: Callable[..., Any], prefix: tuple[Hashable, ...]
    ) -> Callable[[tuple[Any, ...], dict[str, Any]], tuple[Any, ...]]:

        def build(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
            return (*prefix, key(*args, **kwargs))

        return build

    def _fast_builder(
        self,
        general: Callable[[tuple[Any, ...], dict[str, Any]], tuple[Any, ...]],
        typed: bool,
        prefix: tuple[Hashable, ...],
    ) -> Callable[[tuple[Any, ...], dict[str, Any]], tuple[Any, ...]] | None:
        """Return a builder for functions with only plain parameters, or None.

        It binds positional and keyword arguments itself, with a dict lookup per keyword,
        and hands anything unusual (a missing, duplicate or unknown argument) to the
        general builder, which raises the same ``TypeError`` the function would.
        """
        params = self._params
        if any(p.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params):
            return None
        empty = inspect.Parameter.empty
        required = sum(1 for p in params if p.default is empty)
        if any(p.default is empty for p in params[required:]):
            return None
        count = len(params)
        defaults = tuple(p.default for p in params[required:])
        positions = {p.name: i for i, p in enumerate(params)}
        keep = tuple(i for i, p in enumerate(params) if p.name not in self._ignored)
        everything = len(keep) == count
        unset = _UNSET

        def build(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
            given = len(args)
            if kwargs:
                if given > count:
                    return general(args, kwargs)
                slots = [*args, *([unset] * (count - given))]
                for name, value in kwargs.items():
                    index = positions.get(name, -1)
                    if index < given:  # unknown, or also given by position
                        return general(args, kwargs)
                    slots[index] = value
                for index in range(given, count):
                    if slots[index] is unset:
                        if index < required:
                            return general(args, kwargs)
                        slots[index] = defaults[index - required]
                values = tuple(slots)
            elif required <= given <= count:
                values = args if given == count else args + defaults[given - required :]
            else:
                return general(args, kwargs)
            if not everything:
                values = tuple([values[i] for i in keep])
            if typed:
                return (*prefix, *values, tuple([type_name(type(v)) for v in values]))
            return prefix + values

        return build

    def _general_builder(
        self, signature: inspect.Signature, typed: bool, prefix: tuple[Hashable, ...]
    ) -> Callable[[tuple[Any, ...], dict[str, Any]], tuple[Any, ...]]:
        kinds = {p.name: p.kind for p in self._params}
        ignored = self._ignored
        extra_ignored = self._extra_ignored
        var_positional = inspect.Parameter.VAR_POSITIONAL
        var_keyword = inspect.Parameter.VAR_KEYWORD

        def build(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            values: list[Any] = []
            types: list[Any] = []
            for name, value in bound.arguments.items():
                if name in ignored:
                    continue
                kind = kinds[name]
                if kind is var_positional:
                    items = tuple(v for i, v in enumerate(value) if i not in extra_ignored)
                    values.append(items)
                    types.append(tuple(type_name(type(v)) for v in items))
                elif kind is var_keyword:
                    pairs = tuple(
                        sorted(((k, v) for k, v in value.items() if k not in ignored), key=_first)
                    )
                    values.append(pairs)
                    types.append(tuple(type_name(type(v)) for _, v in pairs))
                else:
                    values.append(value)
                    types.append(type_name(type(value)))
            if typed:
                values.append(tuple(types))
            return (*prefix, *values)

        return build
