"""What memoized functions report (``diskstore._common._hooks``): callbacks, log records, time
saved."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
from _cache_support import install_clock, join_refreshes

import diskstore
from diskstore import memoize


def records(caplog: pytest.LogCaptureFixture, word: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "diskstore" and word in r.getMessage()]


def test_callbacks_and_debug_records_count_hits_and_misses(
    cache: diskstore.Cache, caplog: pytest.LogCaptureFixture
) -> None:
    hits: list[tuple[Any, ...]] = []
    misses: list[tuple[tuple[Any, ...], float]] = []

    @memoize(cache, on_hit=hits.append, on_miss=lambda key, seconds: misses.append((key, seconds)))
    def square(x: int) -> int:
        time.sleep(0.001)
        return x * x

    with caplog.at_level(logging.DEBUG, logger="diskstore"):
        for x in (1, 2, 1, 1, 3, 2):
            square(x)
    assert hits == [square.__cache_key__(1)] * 2 + [square.__cache_key__(2)]
    assert [key for key, _ in misses] == [square.__cache_key__(x) for x in (1, 2, 3)]
    assert all(seconds > 0 for _, seconds in misses)
    assert len(records(caplog, "memoize hit")) == 3
    assert len(records(caplog, "memoize miss")) == 3
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == "diskstore")


def test_nothing_is_logged_at_the_default_level(
    cache: diskstore.Cache, caplog: pytest.LogCaptureFixture
) -> None:
    square = memoize(cache)(lambda x: x * x)
    with caplog.at_level(logging.WARNING):
        square(1), square(1), square.refresh(1)
    assert not [r for r in caplog.records if r.name == "diskstore"]


def test_time_saved_adds_the_compute_time_of_each_hit(cache: diskstore.Cache) -> None:
    computed: dict[Any, float] = {}

    @memoize(cache, on_miss=computed.__setitem__)
    def slow(x: int) -> int:
        time.sleep(0.002 * x)
        return x

    slow(1), slow(3)
    assert slow.cache_info().time_saved == 0
    slow(1), slow(3), slow(3)
    key1, key3 = slow.__cache_key__(1), slow.__cache_key__(3)
    expected = computed[key1] + 2 * computed[key3]
    assert slow.cache_info().time_saved == pytest.approx(expected)
    assert tuple(slow.cache_info()) == (3, 2, None, 2)  # lru_cache's four fields
    slow.cache_clear()
    assert slow.cache_info().time_saved == 0


def test_hits_on_results_computed_elsewhere_save_the_mean(cache: diskstore.Cache) -> None:
    writer = memoize(cache, name="shared")(lambda x: x)
    writer(1), writer(2)
    seconds: list[float] = []
    reader = memoize(cache, name="shared", on_miss=lambda _, s: seconds.append(s))(lambda x: x)
    assert reader.cache_info().time_saved == 0
    reader(3)  # one miss here: its time is this process's mean
    reader(1), reader(2)
    assert reader.cache_info().time_saved == pytest.approx(2 * seconds[0])


def test_refreshes_are_logged(
    cache: diskstore.Cache, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clock = install_clock(monkeypatch)
    f = memoize(cache, refresh_after=1)(lambda x: x)
    f(1)
    clock.advance(2)
    with caplog.at_level(logging.DEBUG, logger="diskstore"):
        f(1)
        join_refreshes()
    assert len(records(caplog, "memoize refresh")) == 1
    assert len(records(caplog, "memoize hit")) == 1


def test_async_functions_report_too(cache: diskstore.Cache) -> None:
    events: list[str] = []

    @memoize(
        cache, on_hit=lambda key: events.append("hit"), on_miss=lambda *_: events.append("miss")
    )
    async def f(x: int) -> int:
        return x

    async def main() -> None:
        await f(1), await f(1), await f.max_age(100)(1), await f.refresh(1)

    asyncio.run(main())
    assert events == ["miss", "hit", "hit", "miss"]


@pytest.mark.parametrize("name", ["on_hit", "on_miss"])
def test_callbacks_must_be_callable(cache: diskstore.Cache, name: str) -> None:
    with pytest.raises(TypeError, match=f"{name} must be a callable or None, got 3"):
        memoize(cache, **{name: 3})  # type: ignore[misc]


def test_unknown_options_are_refused(cache: diskstore.Cache) -> None:
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['refresh_afterr'\\]"):
        memoize(cache, refresh_afterr=3)  # type: ignore[call-overload]
