"""``Awaiting``: async methods with another method's parameters, forwarded by name."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from diskstore._common._forwarding import Awaiting


class Engine:
    def put(self, key: str, value: int = 0, *, strict: bool = False) -> str:
        """Store *value* under *key*.

        Returns the key.
        """
        return key


class Facade:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    async def _run(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((method, args, kwargs))
        return getattr(Engine(), method)(*args, **kwargs)

    put = Awaiting(Engine, "_run")(Engine.put)


def test_calls_go_through_the_named_coroutine_with_the_arguments_as_given() -> None:
    facade = Facade()
    assert asyncio.run(facade.put("k", 3, strict=True)) == "k"
    assert asyncio.run(facade.put(key="j")) == "j"
    assert facade.calls == [("put", ("k", 3), {"strict": True}), ("put", (), {"key": "j"})]


def test_the_method_is_a_coroutine_function_with_the_engines_parameters() -> None:
    assert inspect.iscoroutinefunction(Facade.put)
    assert inspect.signature(Facade().put) == inspect.signature(Engine().put)
    assert Facade.put.__name__ == "put"


def test_the_docstring_names_the_awaited_method_above_the_engines_text() -> None:
    doc = inspect.getdoc(Facade.put) or ""
    first, _, rest = doc.partition("\n\n")
    assert first == "Await :meth:`Engine.put`, which runs in a worker thread."
    assert rest == "Store *value* under *key*.\n\nReturns the key."


def test_a_wrong_argument_fails_as_the_engines_method_would() -> None:
    with pytest.raises(TypeError, match="positional arguments"):
        asyncio.run(Facade().put("k", 1, True))  # type: ignore[misc]


def test_a_function_without_a_usable_name_is_refused() -> None:
    with pytest.raises(ValueError, match="method must be a named function"):
        Awaiting(Engine, "_run")(lambda self: None)
