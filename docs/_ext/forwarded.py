"""A griffe extension for the API reference: show forwarded methods as the methods they are.

The async facades make most of their methods from the engine's
(``set = _threaded(Cache.set)``, see ``diskstore._common._forwarding``). Read from the
source, each is a class attribute with no docstring, which the reference would leave
out. This extension finds those attributes once the package is loaded, imports the class
to learn which method each one forwards (its ``__wrapped__``), and puts in its place an
``async`` method with that method's parameters, minus ``self``, and the docstring the
forwarded method carries at run time.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from pathlib import Path
from typing import Any

import griffe


def _load_convert() -> Any:
    """``convert`` of the sibling extension, which rewrites docstrings as Markdown."""
    spec = importlib.util.spec_from_file_location(
        "_diskstore_docs_roles", Path(__file__).with_name("sphinx_roles.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.convert


convert = _load_convert()


def _classes(obj: griffe.Object) -> list[griffe.Class]:
    found: list[griffe.Class] = []
    for member in obj.members.values():
        if member.is_alias:
            continue
        if isinstance(member, griffe.Class):
            found.append(member)
        if isinstance(member, (griffe.Module, griffe.Class)):
            found.extend(_classes(member))
    return found


def _forwarded(runtime_class: type, name: str) -> Any:
    """The function behind ``runtime_class.name`` if it forwards another method, else None."""
    value = inspect.getattr_static(runtime_class, name, None)
    wrapped = getattr(value, "__wrapped__", None)
    if inspect.iscoroutinefunction(value) and inspect.isfunction(wrapped):
        return value
    return None


class Forwarded(griffe.Extension):
    """Replaces each forwarding attribute with a method copied from the one it forwards."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        root = pkg.path
        for cls in _classes(pkg):
            calls = [
                attribute
                for attribute in cls.members.values()
                if isinstance(attribute, griffe.Attribute)
                and isinstance(attribute.value, griffe.ExprCall)
            ]
            if not calls:
                continue
            runtime_class = getattr(importlib.import_module(cls.module.path), cls.name)
            for attribute in calls:
                value = _forwarded(runtime_class, attribute.name)
                if value is None:
                    continue
                wrapped = value.__wrapped__
                path = f"{wrapped.__module__}.{wrapped.__qualname__}"
                target = pkg[path.removeprefix(f"{root}.")]
                method = griffe.Function(
                    attribute.name,
                    lineno=attribute.lineno,
                    endlineno=attribute.endlineno,
                    parameters=griffe.Parameters(*list(target.parameters)[1:]),
                    returns=target.returns,
                )
                method.labels.add("async")
                method.docstring = griffe.Docstring(
                    convert(inspect.cleandoc(value.__doc__ or "")), parent=method
                )
                cls.set_member(attribute.name, method)
