"""What keys a memoized function apart beyond its name: its code, its closure, its ``self``.

A memoized function's default name is ``module.qualname``, which is not always one
function:

- every closure made by one ``def`` shares the name, yet ``make(2)`` and ``make(3)`` below
  compute different things, because they capture different values in their closure cells;
- every ``lambda`` of a scope is called ``<lambda>``, and two functions defined by one
  ``def`` inside another function (say, on two branches of an ``if``) share a name too.

So the key of a function defined inside another function, or of a lambda, gets one more
element after the source hash: the hash of the function's code (bytecode, constants and
names, never positions: see :func:`diskstore._values._sourcehash.code_hash`), and, when the function
has closure cells, a digest of the values they hold (see :class:`FunctionIdentity` for when
they are read). diskcache keys such functions by name alone and returns one closure's
results for another. A function defined at module level keeps the key it always had.

Values are made *keyable*: turned into the plain values the cache encodes canonically
(``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, and tuples, lists, sets and
dicts of them), the same in every process and run. Other objects are described by what
pickle would save of them (their ``__reduce_ex__``): the class by its qualified name and
the state (``__dict__``, ``__slots__``) made keyable in turn. Functions and classes that
can be found by their qualified name are described by it; the others (defined inside a
function, or since replaced) by their code, defaults and closure, classes by their bases
and namespace. Objects standing for a resource of the process (locks, files, sockets,
connections) cannot be pickled and so cannot be keyed: memoize refuses them, naming the
closure variable and how to leave it out.

A described object is a tuple whose first element is one of the marker strings below; a
tuple of the caller's whose first element happens to be a marker is prefixed with
:data:`ESCAPED`, so no value can pass for another.

Methods of classes defined in ``__main__`` (a script, a notebook, ``python -c``) or inside
a function get their ``self`` (or ``cls``) made keyable the same way on every call. The
cache would otherwise pickle it, and cloudpickle pickles such a class by value, with its
methods, the memoized one among them, and through it the cache and its locks.
"""

from __future__ import annotations

import copyreg
import functools
import hashlib
import inspect
import pickle
import sys
import threading
import types
import weakref
from collections.abc import Callable, Collection
from typing import Any

from ._keys import NotCanonical, encode_canonical
from ._sourcehash import code_hash

__all__ = [
    "FunctionIdentity",
    "SelfKey",
    "Unkeyable",
    "free_variables",
    "is_local",
    "keyable",
    "resolves",
]

FUNCTION = "<function>"
CLASS = "<class>"
OBJECT = "<object>"
REDUCE = "<reduce>"
GLOBAL = "<global>"
MODULE = "<module>"
METHOD = "<method>"
MEMOIZED = "<memoized>"
DESCRIPTOR = "<descriptor>"
RECURSIVE = "<recursive>"
UNBOUND = "<unbound>"
UNKEYABLE = "<unkeyable>"
#: Prefixes a tuple of the caller's that starts with a marker.
ESCAPED = "<tuple>"
_MARKERS = frozenset(
    (
        FUNCTION,
        CLASS,
        OBJECT,
        REDUCE,
        GLOBAL,
        MODULE,
        METHOD,
        MEMOIZED,
        DESCRIPTOR,
        RECURSIVE,
        UNBOUND,
        UNKEYABLE,
        ESCAPED,
    )
)

_SCALARS = frozenset((str, int, float, bool, bytes, type(None)))
#: Nesting (of containers, objects and closures) beyond which a value is refused.
MAX_DEPTH = 50
#: What pickle protocol's ``__reduce_ex__`` describes objects.
_PROTOCOL = 4
#: Class attributes that say where or how a class was written, not what it computes.
_CLASS_NOISE = frozenset(
    (
        "__dict__",
        "__weakref__",
        "__module__",
        "__qualname__",
        "__doc__",
        "__annotations__",
        "__firstlineno__",
        "__static_attributes__",
        "__dataclass_fields__",
        "__dataclass_params__",
        "__match_args__",
        "__orig_bases__",
        "__parameters__",
    )
)
_UNBOUND_CELL = (UNBOUND,)


class Unkeyable(TypeError):
    """A value (or something inside it) that memoize cannot make part of a key."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        #: Where in the value, innermost last: ``.attribute``, ``[index]``.
        self.path: list[str] = []

    def describe(self, root: str) -> str:
        """``root.path is ...``, or the reason alone when the root itself is refused."""
        if not self.path:
            return f"{root} is {self.reason}"
        return f"{root}{''.join(reversed(self.path))} is {self.reason}"


def _qualified(obj: Any) -> str:
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", "?")
    return f"{module}.{qualname}" if module else str(qualname)


def _a(value: object) -> str:
    return f"a {_qualified(type(value))}"


def is_local(func: Callable[..., Any]) -> bool:
    """Whether *func*'s name may be shared by other functions: a lambda, or defined in one."""
    qualname = getattr(func, "__qualname__", "") or ""
    return "<locals>" in qualname or getattr(func, "__name__", None) == "<lambda>"


def resolves(obj: Any) -> bool:
    """Whether ``module.qualname`` finds *obj* itself (so its name identifies it)."""
    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    qualname = getattr(obj, "__qualname__", None)
    if module is None or not isinstance(qualname, str) or "<" in qualname:
        return False
    target: Any = module
    for part in qualname.split("."):
        if not isinstance(target, (types.ModuleType, type)):
            return False
        target = vars(target).get(part)
    return target is obj


def keyable(value: Any) -> Any:
    """Return *value* made keyable (see the module docstring), or raise :class:`Unkeyable`."""
    if type(value) in _SCALARS:
        return value
    return _normalize(value, [])


def _normalize(value: Any, stack: list[int]) -> Any:
    kind = type(value)
    if kind in _SCALARS:
        return value
    ident = id(value)
    if ident in stack:
        # A reference to an object described further up: how many levels up is exact and
        # does not depend on where the description started.
        return (RECURSIVE, len(stack) - stack.index(ident))
    if len(stack) >= MAX_DEPTH:
        raise Unkeyable(f"nested more than {MAX_DEPTH} levels deep")
    stack.append(ident)
    try:
        return _dispatch(value, kind, stack)
    finally:
        stack.pop()


def _item(value: Any, stack: list[int], where: str, *details: object) -> Any:
    """``_normalize``, adding ``where.format(*details)`` to the path of a refusal."""
    if type(value) in _SCALARS:
        return value
    try:
        return _normalize(value, stack)
    except Unkeyable as exc:
        if where:
            exc.path.append(where.format(*details))
        raise


def _dispatch(value: Any, kind: type, stack: list[int]) -> Any:
    if kind is tuple:
        items = tuple([_item(v, stack, "[{}]", i) for i, v in enumerate(value)])
        if items and type(items[0]) is str and items[0] in _MARKERS:
            return (ESCAPED, *items)
        return items
    if kind is list:
        return [_item(v, stack, "[{}]", i) for i, v in enumerate(value)]
    if kind is dict:
        pairs = [(_item(k, stack, "[...]"), _item(v, stack, "[{!r}]", k)) for k, v in value.items()]
        return _hashed(dict, pairs, value)
    if kind is set or kind is frozenset:
        return _hashed(kind, [_item(v, stack, "{{...}}") for v in value], value)
    if kind is types.FunctionType:
        return _function(value, stack)
    if isinstance(value, type):
        return _class(value, stack)
    if kind is types.ModuleType:
        return (MODULE, value.__name__)
    if kind is types.MethodType:
        return (
            METHOD,
            _item(value.__self__, stack, "..__self__"),
            _item(value.__func__, stack, "..__func__"),
        )
    if kind is types.BuiltinFunctionType:
        owner = value.__self__
        if owner is None or isinstance(owner, types.ModuleType):
            return (FUNCTION, _qualified(value))
        return (METHOD, _item(owner, stack, "..__self__"), value.__name__)
    if kind is functools._lru_cache_wrapper:
        # A result cache: what it returns is what the function computes.
        return (MEMOIZED, _item(value.__wrapped__, stack, "..__wrapped__"))
    if kind is staticmethod or kind is classmethod:
        return (DESCRIPTOR, kind.__name__, _item(value.__func__, stack, "..__func__"))
    if kind is property:
        return (
            DESCRIPTOR,
            "property",
            _item(value.fget, stack, ".fget"),
            _item(value.fset, stack, ".fset"),
            _item(value.fdel, stack, ".fdel"),
        )
    return _object(value, stack)


def _hashed(kind: Any, items: list[Any], original: object) -> Any:
    try:
        return kind(items)
    except TypeError:  # an object described by a dict cannot be a set member or a dict key
        raise Unkeyable(f"{_a(original)} holding objects that cannot be keyed") from None


def _is_memoized(func: types.FunctionType) -> bool:
    # memoize's wrapper (and diskcache's): the stored results are what the function computes.
    attributes = func.__dict__
    return "__cache_key__" in attributes and "__wrapped__" in attributes


def _function(func: types.FunctionType, stack: list[int]) -> Any:
    if _is_memoized(func):
        return (MEMOIZED, _item(func.__dict__["__wrapped__"], stack, "..__wrapped__"))
    if not is_local(func) and resolves(func):
        return (FUNCTION, _qualified(func))
    cells = _cell_values(func, stack, _cells(func, ()))
    return (
        FUNCTION,
        _qualified(func),
        _short(func.__code__),
        _item(func.__defaults__, stack, "..__defaults__"),
        _item(func.__kwdefaults__, stack, "..__kwdefaults__"),
        cells,
    )


def _short(code: types.CodeType) -> str:
    # 128 bits tell code objects apart; the full digest would only lengthen every key.
    return code_hash(code)[:32]


def _cells(func: Any, ignored: Collection[str]) -> tuple[tuple[str, types.CellType], ...]:
    code = getattr(func, "__code__", None)
    closure = getattr(func, "__closure__", None) or ()
    if code is None or not closure:
        return ()
    return tuple(
        (name, cell)
        for name, cell in zip(code.co_freevars, closure, strict=False)
        if name not in ignored
    )


def _cell_values(
    func: Any, stack: list[int], cells: tuple[tuple[str, types.CellType], ...]
) -> tuple[tuple[str, Any], ...]:
    pairs = []
    for name, cell in cells:
        try:
            value = cell.cell_contents
        except ValueError:  # not assigned yet (or deleted)
            pairs.append((name, _UNBOUND_CELL))
            continue
        pairs.append((name, _item(value, stack, "'s closure variable {!r}", name)))
    return tuple(pairs)


# -- classes ---------------------------------------------------------------------------------

_class_digests: weakref.WeakKeyDictionary[type, str] = weakref.WeakKeyDictionary()
_digesting = threading.local()


def _class(cls: type, stack: list[int]) -> Any:
    return (CLASS, _class_name(cls))


def _class_name(cls: type) -> str:
    """``module.qualname``, followed by ``:digest`` when that name does not find *cls*."""
    if resolves(cls):
        return _qualified(cls)
    # Not found by its name: defined inside a function (each call makes a class of that
    # name) or replaced since. Its bases and namespace tell it apart.
    return f"{_qualified(cls)}:{_class_digest(cls)}"


def _class_digest(cls: type) -> str:
    digest = _class_digests.get(cls)
    if digest is not None:
        return digest
    active: set[int] | None = getattr(_digesting, "active", None)
    outermost = active is None
    if active is None:
        active = _digesting.active = set()
    if id(cls) in active:  # classes whose methods refer to each other
        return RECURSIVE
    active.add(id(cls))
    try:
        stack = [id(cls)]
        bases = tuple(_lenient(base, stack) for base in cls.__bases__)
        namespace = tuple(
            (name, _lenient(value, stack))
            for name, value in sorted(vars(cls).items())
            if name not in _CLASS_NOISE
        )
        try:
            data = encode_canonical((_qualified(cls), bases, namespace))
        except NotCanonical:  # pragma: no cover - normalized values are canonical
            data = repr((bases, namespace)).encode()
        digest = hashlib.sha256(data).hexdigest()[:32]
    finally:
        active.discard(id(cls))
        if outermost:
            del _digesting.active
    if outermost:  # one computed inside another's refers back to it: do not keep that one
        _class_digests[cls] = digest
    return digest


def _lenient(value: Any, stack: list[int]) -> Any:
    """A class attribute made keyable, or its type name (a lock a class keeps, say)."""
    try:
        return _item(value, stack, "")
    except Unkeyable:
        return (UNKEYABLE, _qualified(type(value)))


# -- other objects ---------------------------------------------------------------------------


def _object(value: Any, stack: list[int]) -> Any:
    try:
        reduced = value.__reduce_ex__(_PROTOCOL)
    except Exception as exc:  # whatever refuses pickling refuses keying
        detail = "" if str(exc).startswith("cannot pickle") else f" ({exc})"
        raise Unkeyable(f"{_a(value)}, which cannot be pickled{detail}") from None
    if isinstance(reduced, str):  # pickled as a global: a module-level singleton
        return (GLOBAL, pickle.whichmodule(value, reduced), reduced)  # type: ignore[attr-defined]
    if not isinstance(reduced, tuple) or not 2 <= len(reduced) <= 6:
        raise Unkeyable(f"{_a(value)}, whose __reduce_ex__ returns {reduced!r}")
    func, args, *rest = reduced
    cls = type(value)
    if func is copyreg.__newobj__ and args and args[0] is cls:  # type: ignore[attr-defined]
        # The usual case, ``cls.__new__(cls, *args)`` then the state: an instance of a class.
        head: tuple[Any, ...] = (OBJECT, _class_name(cls))
        args = args[1:]
    else:
        head = (REDUCE, _item(func, stack, ".__reduce_ex__()[0]"))
    state, items, pairs, setter = [*rest, None, None, None, None][:4]
    # Fixed positions, trailing ``None`` left out: (state, arguments, list items, dict
    # items, state setter); arguments, a tuple, are ``None`` when there are none.
    parts = [
        _state(state, value, stack),
        _item(tuple(args), stack, ".__reduce_ex__()[1]") if args else None,
        None if items is None else _item(list(items), stack, ""),
        None if pairs is None else _item(list(pairs), stack, ""),
        None if setter is None else _item(setter, stack, ""),
    ]
    while parts and parts[-1] is None:
        parts.pop()
    return (*head, *parts)


def _state(state: Any, value: Any, stack: list[int]) -> Any:
    if state is None or type(state) in _SCALARS:
        return state
    if type(state) is dict:
        return _attributes(state, stack)
    if (
        type(state) is tuple
        and len(state) == 2
        and all(s is None or type(s) is dict for s in state)
    ):  # (__dict__, __slots__ values)
        return tuple(None if s is None else _attributes(s, stack) for s in state)
    return _item(state, stack, ".__getstate__()")


def _attributes(state: dict[Any, Any], stack: list[int]) -> dict[Any, Any]:
    result = {}
    for name, attribute in state.items():
        result[_item(name, stack, "")] = _item(attribute, stack, ".{}", name)
    return result


# -- one memoized function -------------------------------------------------------------------


def free_variables(func: Callable[..., Any]) -> tuple[str, ...]:
    """The names of *func*'s closure variables (``ignore`` may name them)."""
    code = getattr(func, "__code__", None)
    return tuple(code.co_freevars) if code is not None and func.__closure__ else ()


class FunctionIdentity:
    """The key element that keeps a memoized function apart from others of its name.

    ``static`` is the code hash of a local function or lambda (``None`` otherwise, and when
    the caller named the function); ``cells`` are the closure cells to key. ``needed`` says
    whether the key gets the element at all: a module-level function without closure cells
    keeps the key it always had, and pays nothing per call. The element is ``static``
    alone for a function without cells, else ``"<static>:<digest of the cells' values>"``
    (a string either way, as cheap to encode as the name).

    A cell's value is made keyable when the function is decorated, and again whenever the
    cell is found holding another object (``nonlocal`` rebinds it): a call compares each
    cell's object with the one last made keyable, by identity, and reuses the element. A
    change *inside* a captured object (an item appended to a captured list) is not seen,
    as a change to a global the function reads is not: that is what keeps a closure that
    records its calls in a captured list (``calls.append(x)``) finding its results.
    """

    __slots__ = ("_snapshot", "cells", "func", "needed", "static")

    def __init__(self, func: Callable[..., Any], *, ignored: Collection[str], named: bool) -> None:
        self.func = func
        local = is_local(func)
        code = getattr(func, "__code__", None)
        self.static = _short(code) if local and not named and code is not None else None
        # A function defined at module level is the only one of its name, even when it has
        # cells (a decorator's wrapper, a method calling ``super()``): its key is unchanged.
        self.cells = _cells(func, ignored) if local else ()
        self.needed = self.static is not None or bool(self.cells)
        #: The cells' objects when last made keyable, and the element made of them.
        self._snapshot: tuple[tuple[Any, ...], Any] = ((), None)

    def part(self) -> Any:
        """The element for the key of a call now; raises ``TypeError`` for a closure
        variable whose value cannot be keyed."""
        objects, part = self._snapshot
        if objects:
            for (_, cell), known in zip(self.cells, objects, strict=True):
                try:
                    if cell.cell_contents is not known:
                        break
                except ValueError:  # not assigned yet (or deleted)
                    if known is not _UNBOUND_CELL:
                        break
            else:
                return part
        elif not self.cells:
            return self.static
        return self._make_part()

    def _make_part(self) -> Any:
        objects = []
        pairs = []
        stack = [id(self.func)]
        for name, cell in self.cells:
            try:
                value = cell.cell_contents
            except ValueError:  # not assigned yet (or deleted)
                objects.append(_UNBOUND_CELL)
                pairs.append((name, _UNBOUND_CELL))
                continue
            objects.append(value)
            if type(value) in _SCALARS:
                pairs.append((name, value))
                continue
            try:
                pairs.append((name, _normalize(value, stack)))
            except Unkeyable as exc:
                raise TypeError(self._refusal(name, exc)) from None
        try:
            encoded = encode_canonical(tuple(pairs))
        except NotCanonical as exc:  # pragma: no cover - keyable values are canonical
            raise TypeError(f"memoize cannot key the closure of {self.func!r}: {exc}") from None
        # A digest, not the values: the key stays short and flat, which keeps a hit as fast
        # as a plain function's, however much the closure holds.
        part = f"{self.static or ''}:{hashlib.sha256(encoded).hexdigest()[:32]}"
        self._snapshot = (tuple(objects), part)  # one assignment: threads see either
        return part

    def check(self) -> None:
        """Make the cells keyable now: raises for a closure variable that cannot be keyed."""
        if self.cells:
            self._make_part()

    def _refusal(self, name: str, exc: Unkeyable) -> str:
        qualname = getattr(self.func, "__qualname__", repr(self.func))
        return (
            f"memoize cannot key the closure variable {name!r} of {qualname}: "
            f"{exc.describe(name)}. A closure's variables are part of its results' keys, so "
            f"that closures made with different values keep their results apart. Pass "
            f"{name} as an argument instead, or, if the results do not depend on it, leave "
            f"it out of the key with ignore={{{name!r}}}"
        )


class SelfKey:
    """Makes ``self``/``cls`` keyable for methods of classes cloudpickle pickles by value.

    Applies to a function defined in a class body (``Class.method``) whose class lives in
    ``__main__``, inside a function, or in a module that cannot be imported.
    """

    __slots__ = ("name", "qualname")

    def __init__(self, name: str, qualname: str) -> None:
        self.name = name
        self.qualname = qualname

    @staticmethod
    def applies(func: Callable[..., Any]) -> bool:
        if inspect.ismethod(func):  # already bound: its first parameter is not self
            return False
        qualname = getattr(func, "__qualname__", None)
        if not isinstance(qualname, str) or "." not in qualname:
            return False
        if qualname.rsplit(".", 2)[-2] == "<locals>":  # a function in a function
            return False
        module = getattr(func, "__module__", None)
        return module == "__main__" or "<locals>" in qualname or module not in sys.modules

    def __call__(self, value: Any) -> Any:
        if type(value) in _SCALARS:
            return value
        try:
            return _normalize(value, [])
        except Unkeyable as exc:
            raise TypeError(
                f"memoize cannot key the {self.name} of {self.qualname}: "
                f"{exc.describe(self.name)}. {self.name} is part of the key, as its "
                f"class's name and its state; leave it out with ignore={{{self.name!r}}} "
                f"(every instance then shares the results), or key calls with key=..."
            ) from None
