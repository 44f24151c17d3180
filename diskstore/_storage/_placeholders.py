"""Numbered placeholders on the Python releases that mistake them for named ones.

Several statements in :mod:`._sql` bind one value twice through SQLite's numbered
placeholders (``?1``, ``?2``...). CPython 3.12.0 to 3.12.3 took those for named
placeholders and warned (``DeprecationWarning``, "will be an error in 3.14") whenever they
were bound from a sequence, as every statement here is; 3.12.4 and later, like 3.11 and
earlier, bind them silently (CPython issue gh-117995). On those four releases only, the
connections diskstore opens rewrite such a statement once into plain ``?`` placeholders
and reorder each call's parameters to match, so that no warning reaches the program.
"""

from __future__ import annotations

import functools
import re
import sqlite3
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Self

#: A quoted string (skipped) or a placeholder, numbered or not.
_TOKEN = re.compile(r"'(?:[^']|'')*'|\?(\d*)")


def needed(version: tuple[int, ...] = tuple(sys.version_info[:3])) -> bool:
    """Whether this interpreter warns about numbered placeholders bound from a sequence."""
    return (3, 12, 0) <= version < (3, 12, 4)


@functools.lru_cache(maxsize=512)
def plain(sql: str) -> tuple[str, tuple[int, ...] | None]:
    """*sql* with plain placeholders, and which parameter each takes (``None``: as given)."""
    order: list[int] = []
    numbered = False
    highest = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal numbered, highest
        if match.group(1) is None:
            return match.group(0)  # a quoted string
        if match.group(1):
            numbered = True
            number = int(match.group(1))
        else:
            number = highest + 1  # SQLite numbers a bare ``?`` after the highest so far
        highest = max(highest, number)
        order.append(number - 1)
        return "?"

    text = _TOKEN.sub(replace, sql)
    return (text, tuple(order)) if numbered else (sql, None)


def reorder(sql: str, parameters: Any) -> tuple[str, Any]:
    """*sql* and *parameters* as a plain-placeholder statement binds them."""
    if "?" not in sql or not isinstance(parameters, (tuple, list)):
        return sql, parameters
    text, order = plain(sql)
    if order is None:
        return sql, parameters
    return text, tuple(parameters[index] for index in order)


class PlainCursor(sqlite3.Cursor):
    """A cursor that binds numbered placeholders as plain ones (see the module)."""

    def execute(self, sql: str, parameters: Any = (), /) -> Self:
        return super().execute(*reorder(sql, parameters))

    def executemany(self, sql: str, seq: Iterable[Any], /) -> Self:
        text, order = plain(sql)
        if order is None:
            return super().executemany(sql, seq)
        rows: Iterable[Sequence[Any]] = (tuple(row[i] for i in order) for row in seq)
        return super().executemany(text, rows)


class PlainConnection(sqlite3.Connection):
    """A connection whose cursors are :class:`PlainCursor`."""

    def cursor(self, factory: Any = PlainCursor) -> Any:
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        cursor: PlainCursor = self.cursor()
        return cursor.execute(sql, parameters)

    def executemany(self, sql: str, seq: Iterable[Any], /) -> sqlite3.Cursor:
        cursor: PlainCursor = self.cursor()
        return cursor.executemany(sql, seq)


def factory() -> type[sqlite3.Connection]:
    """The connection class diskstore opens on this interpreter."""
    return PlainConnection if needed() else sqlite3.Connection
