"""Hash a function's source so memoized results follow edits to the code that made them.

The source is parsed with :mod:`ast` and the tree, not the text, is hashed: comments,
blank lines, indentation, line wrapping and quoting style do not reach the tree, so such
edits keep the hash; any change to what the code computes (an operator, a constant, a
default argument, a called name) changes it. Docstrings (of the function and of anything
defined inside it) and the decorator lines are left out as well, so editing documentation
or memoize's own options never invalidates results.

Only the function's own text is covered, not the helpers it calls or the globals it reads.

When the source cannot be read (a function built by ``exec`` without a file, or defined in
a plain interactive session) the hash falls back to the compiled code object: bytecode,
constants and names. That still changes with the body, but also with the Python version.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
import weakref
from collections.abc import Callable
from types import CodeType
from typing import Any

__all__ = ["code_hash", "source_hash"]

_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)


def source_hash(func: Callable[..., Any]) -> str:
    """Return a hex SHA-256 of ``func``'s normalised source.

    >>> def double(x):
    ...     return x * 2  # a comment is not part of the hash
    >>> len(source_hash(double))
    64
    """
    target = inspect.unwrap(func)
    try:
        source = inspect.getsource(target)
        tree = ast.parse(textwrap.dedent(source))
    except (OSError, TypeError, SyntaxError):
        return _code_hash(func, target)
    node: ast.AST = tree
    if len(tree.body) == 1 and isinstance(tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef)):
        node = tree.body[0]
        node.decorator_list = []
    # A lambda's "source" is the whole statement around it; hashing all of it is
    # conservative (edits elsewhere on those lines also change the hash) but never wrong.
    canonical = _canonical(node)
    return hashlib.sha256(repr(canonical).encode()).hexdigest()


def _canonical(node: object) -> object:
    """Reduce an AST to nested tuples of strings, independent of positions and docstrings.

    Empty and ``None`` fields are dropped, so fields that newer Python versions add with an
    empty default (``type_params`` in 3.12) do not change the hash of unchanged code.
    """
    if isinstance(node, ast.Constant):
        return ("Constant", type(node.value).__name__, repr(node.value))
    if isinstance(node, ast.AST):
        fields = []
        for name in node._fields:
            value = getattr(node, name, None)
            if name == "body" and isinstance(node, _DEFINITIONS) and isinstance(value, list):
                value = _without_docstring(value)
            reduced = _canonical(value)
            if reduced is None or reduced == ():
                continue
            fields.append((name, reduced))
        return (type(node).__name__, tuple(fields))
    if isinstance(node, list):
        return tuple(_canonical(item) for item in node)
    return node if node is None or isinstance(node, (str, int)) else repr(node)


def _without_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        return body[1:]
    return body


def _code_hash(func: Callable[..., Any], target: Callable[..., Any]) -> str:
    code = getattr(target, "__code__", None)
    if not isinstance(code, CodeType):
        raise TypeError(
            f"hash_source=True needs a Python function with readable source; {func!r} has "
            "neither source nor a code object"
        )
    return code_hash(code)


_code_hashes: weakref.WeakKeyDictionary[CodeType, str] = weakref.WeakKeyDictionary()


def code_hash(code: CodeType) -> str:
    """Return a hex SHA-256 of a code object: bytecode, constants, names, not positions.

    Every closure made by one ``def`` or ``lambda`` shares its code object, so the digest is
    computed once per code object.
    """
    digest = _code_hashes.get(code)
    if digest is None:
        hasher = hashlib.sha256(b"code:")
        _feed_code(code, hasher)
        digest = _code_hashes[code] = hasher.hexdigest()
    return digest


def _feed_code(code: CodeType, hasher: Any) -> None:
    # Positions (co_firstlineno, co_linetable) are deliberately left out: moving a function
    # within its file must not change its hash.
    parts = (
        code.co_argcount,
        code.co_posonlyargcount,
        code.co_kwonlyargcount,
        code.co_flags,
        code.co_names,
        code.co_varnames,
        code.co_freevars,
        code.co_cellvars,
    )
    hasher.update(repr(parts).encode())
    hasher.update(code.co_code)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            _feed_code(const, hasher)
        else:
            hasher.update(_const_repr(const).encode())


def _const_repr(const: object) -> str:
    """``repr`` of a constant, with frozensets (whose order varies between runs) sorted."""
    if isinstance(const, frozenset):
        return repr(sorted(map(_const_repr, const)))
    if type(const) is tuple:
        inner = ", ".join(map(_const_repr, const))
        return f"({inner},)" if len(const) == 1 else f"({inner})"
    return repr(const)
