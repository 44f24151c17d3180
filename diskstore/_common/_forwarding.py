"""Awaitable methods made from a synchronous class's methods, with the same parameters.

The async facades (:class:`~diskstore.AsyncCache`, ``AsyncRedisCache``) hand most calls to a
worker thread unchanged. Writing each of those methods out would state every signature
twice, once on the engine and once on the facade, and the two drift apart the day a
parameter is added to one. A method made here takes its parameters from the engine's
method instead: mypy and editors see them through ``ParamSpec``, ``help()`` and
``inspect.signature`` through ``__wrapped__``, and the docstring is the engine's, under a
line naming the method it awaits.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

__all__ = ["Awaiting"]

P = ParamSpec("P")
R = TypeVar("R")
E = TypeVar("E")


class Awaiting(Generic[E]):
    """Makes ``async`` methods that await ``self.<through>(name, *args, **kwargs)``.

    ``Awaiting(Cache, "_call")(Cache.set)`` is an ``async`` method with ``Cache.set``'s
    parameters and docstring; *through* is the facade's coroutine method that runs the
    named method of an *engine* elsewhere (a worker thread) and returns its result.
    """

    def __init__(self, engine: type[E], through: str) -> None:
        self._owner = engine.__name__
        self._through = through

    def __call__(
        self, method: Callable[Concatenate[E, P], R]
    ) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, R]]:
        name = method.__name__
        if not name.isidentifier():
            raise ValueError(f"method must be a named function, got {method!r}")
        through = self._through

        async def forward(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
            result: R = await getattr(self, through)(name, *args, **kwargs)
            return result

        functools.update_wrapper(forward, method)
        body = inspect.cleandoc(method.__doc__ or "")
        forward.__doc__ = (
            f"Await :meth:`{self._owner}.{name}`, which runs in a worker thread.\n\n{body}"
        )
        return forward
