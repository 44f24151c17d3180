"""Numbered placeholders bound as plain ones on the interpreters that warn about them."""

from __future__ import annotations

import sqlite3
import warnings

import pytest

from diskstore._storage import _placeholders, _sql
from diskstore._storage._placeholders import PlainConnection, needed, plain


def test_only_3_12_0_to_3_12_3_need_it() -> None:
    assert [needed(v) for v in [(3, 11, 9), (3, 12, 0), (3, 12, 3), (3, 12, 4), (3, 13, 0)]] == [
        False,
        True,
        True,
        False,
        False,
    ]


def test_numbered_placeholders_become_plain_ones_in_sqlite_order() -> None:
    text, order = plain("SELECT ?2, ?3 + 2 * ?1, ?, '?1 stays', ?1")
    assert text == "SELECT ?, ? + 2 * ?, ?, '?1 stays', ?"
    assert order == (1, 2, 0, 3, 0)  # a bare ? follows the highest number so far


def test_statements_without_numbers_are_left_alone() -> None:
    assert plain("SELECT ? FROM t WHERE a = ? AND b = 'x?'") == (
        "SELECT ? FROM t WHERE a = ? AND b = 'x?'",
        None,
    )


@pytest.mark.parametrize("statement", ["SELECT ?2, ?3 + 2 * ?1, ?, ?1", "SELECT ?1, ?1 * ?2"])
def test_a_plain_connection_binds_as_sqlite_would(statement: str) -> None:
    params = (3, 5, 7, 11)[: statement.count("?") + 1]
    native = sqlite3.connect(":memory:")
    shimmed = sqlite3.connect(":memory:", factory=PlainConnection)
    try:
        wanted = (
            native.execute(statement, params[: _arity(statement)]).fetchall()
            if not needed()
            else None
        )
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = shimmed.execute(statement, params[: _arity(statement)]).fetchall()
            got_cursor = shimmed.cursor().execute(statement, params[: _arity(statement)])
            assert got_cursor.fetchall() == got
        if wanted is not None:
            assert got == wanted
        assert got[0][0] == params[int(statement[8]) - 1]  # the first placeholder's value
    finally:
        native.close()
        shimmed.close()


def _arity(statement: str) -> int:
    text, order = plain(statement)
    return max(order or (text.count("?") - 1,)) + 1


def test_executemany_reorders_every_row() -> None:
    con = sqlite3.connect(":memory:", factory=PlainConnection)
    try:
        con.execute("CREATE TABLE t (a, b)")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            con.executemany("INSERT INTO t VALUES (?2, ?1)", [(1, 2), (3, 4)])
        assert con.execute("SELECT a, b FROM t ORDER BY a").fetchall() == [(2, 1), (4, 3)]
    finally:
        con.close()


def test_every_numbered_statement_of_the_package_translates() -> None:
    statements = [v for v in vars(_sql).values() if isinstance(v, str) and "?" in v]
    numbered = [s for s in statements if plain(s)[1] is not None]
    assert numbered  # the module does use them
    for statement in numbered:
        text, order = plain(statement)
        assert order is not None and text.count("?") == len(order)
    assert _placeholders.factory() is (PlainConnection if needed() else sqlite3.Connection)
