"""The queue methods of Cache: push, pull, peek, and peekitem (diskcache 5.6.3 semantics)."""

from __future__ import annotations

import io
import os

import pytest
from _cache_support import Clock, install_clock, value_files_once_durable

import diskstore

START = 500_000_000_000_000


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return install_clock(monkeypatch)


class TestPush:
    def test_numbering(self, cache: diskstore.Cache) -> None:
        assert cache.push("first value") == START
        assert cache.get(START) == "first value"
        assert cache.push("second value") == START + 1
        assert cache.push("third value", side="front") == START - 1
        assert cache.push("fourth value", side="front") == START - 2
        assert list(cache) == [START, START + 1, START - 1, START - 2]

    def test_prefix_numbering(self, cache: diskstore.Cache) -> None:
        assert cache.push(1234, prefix="userids") == "userids-500000000000000"
        assert cache.push(1, prefix="userids") == "userids-500000000000001"
        assert cache.push(0, prefix="userids", side="front") == "userids-499999999999999"
        assert cache["userids-500000000000000"] == 1234

    def test_prefixes_are_separate_queues(self, cache: diskstore.Cache) -> None:
        assert cache.push("a") == START
        assert cache.push("x", prefix="left") == "left-500000000000000"
        assert cache.push("y", prefix="right") == "right-500000000000000"
        assert cache.push("z", prefix="left") == "left-500000000000001"
        assert cache.pull(prefix="right") == ("right-500000000000000", "y")
        assert cache.pull(prefix="right") == (None, None)
        assert cache.pull() == (START, "a")
        assert cache.pull(prefix="left") == ("left-500000000000000", "x")
        assert len(cache) == 1

    def test_plain_keys_outside_the_queue_range_are_ignored(self, cache: diskstore.Cache) -> None:
        # diskcache's integer queue is 0 < key < 999999999999999 and its prefixed queue is
        # "p-000000000000000" < key < "p-999999999999999": other keys never join a queue.
        cache[0] = "zero"
        cache[-5] = "negative"
        cache[10**15] = "too big"
        cache["q-!"] = "punctuation"
        cache["q-"] = "bare prefix"
        cache["q"] = "prefix alone"
        assert cache.push("first") == START
        assert cache.push("first", prefix="q") == "q-500000000000000"
        assert cache.pull() == (START, "first")
        assert cache.pull() == (None, None)
        assert cache.pull(prefix="q") == ("q-500000000000000", "first")
        assert cache.pull(prefix="q") == (None, None)
        assert len(cache) == 6

    def test_push_continues_from_the_current_end(self, cache: diskstore.Cache) -> None:
        for _ in range(3):
            cache.push(None)
        cache.pull()
        assert cache.push(None) == START + 3
        cache.pull(side="back")
        cache.pull(side="back")
        assert cache.push(None, side="front") == START
        cache.clear()
        assert cache.push(None) == START

    def test_push_with_expire_read_and_tag(self, cache: diskstore.Cache, clock: Clock) -> None:
        data = os.urandom(100_000)
        key = cache.push(io.BytesIO(data), expire=10, read=True, tag="blob")
        assert cache.get(key, expire_time=True, tag=True) == (data, clock.now + 10, "blob")

    def test_push_bad_side_or_prefix(self, cache: diskstore.Cache) -> None:
        with pytest.raises(ValueError, match="side") as info:
            cache.push(1, side="middle")
        assert "'middle'" in str(info.value)
        with pytest.raises(TypeError, match="prefix"):
            cache.push(1, prefix=5)  # type: ignore[arg-type]
        assert len(cache) == 0


class TestPullPeek:
    def test_fifo_and_lifo(self, cache: diskstore.Cache) -> None:
        for letter in "abcde":
            cache.push(letter)
        assert cache.pull() == (START, "a")
        assert cache.pull(side="back") == (START + 4, "e")
        assert cache.peek() == (START + 1, "b")
        assert cache.peek(side="back") == (START + 3, "d")
        assert [cache.pull()[1] for _ in range(3)] == ["b", "c", "d"]
        assert cache.pull() == (None, None)
        assert len(cache) == 0

    def test_peek_does_not_remove(self, cache: diskstore.Cache) -> None:
        cache.push("only")
        assert cache.peek() == (START, "only")
        assert cache.peek() == (START, "only")
        assert len(cache) == 1

    def test_defaults_on_empty_queue(self, cache: diskstore.Cache) -> None:
        assert cache.pull() == (None, None)
        assert cache.peek() == (None, None)
        assert cache.pull(default="empty") == "empty"
        assert cache.peek(prefix="p", default=0) == 0

    @pytest.mark.parametrize("method", ["pull", "peek"])
    def test_tuple_shapes(self, cache: diskstore.Cache, clock: Clock, method: str) -> None:
        def take(**flags: bool) -> object:
            result = getattr(cache, method)(**flags)
            if method == "pull":  # put it back: the queue is empty, so it gets START again
                cache.push("value", expire=10, tag="t", side="front")
            return result

        cache.push("value", expire=10, tag="t")
        expire = clock.now + 10
        assert take() == (START, "value")
        assert take(expire_time=True) == ((START, "value"), expire)
        assert take(tag=True) == ((START, "value"), "t")
        assert take(expire_time=True, tag=True) == ((START, "value"), expire, "t")
        assert len(cache) == 1

    @pytest.mark.parametrize("method", ["pull", "peek"])
    def test_default_tuple_shapes(self, cache: diskstore.Cache, method: str) -> None:
        take = getattr(cache, method)
        assert take(expire_time=True) == ((None, None), None)
        assert take(tag=True) == ((None, None), None)
        assert take(expire_time=True, tag=True) == ((None, None), None, None)
        assert take(default="d", expire_time=True, tag=True) == ("d", None, None)

    @pytest.mark.parametrize("side", ["front", "back"])
    def test_expired_items_are_skipped(
        self, cache: diskstore.Cache, clock: Clock, side: str
    ) -> None:
        cache.push("old-front", expire=1)
        cache.push("live")
        cache.push("old-back", expire=1)
        clock.advance(2)
        assert cache.peek(side=side) == (START + 1, "live")
        assert cache.pull(side=side) == (START + 1, "live")
        assert cache.pull(side=side) == (None, None)
        assert len(cache) == 0

    def test_pull_file_value_removes_file(self, cache: diskstore.Cache) -> None:
        data = os.urandom(100_000)
        cache.push(data)
        assert cache.peek() == (START, data)
        assert cache.pull() == (START, data)
        assert value_files_once_durable(cache) == []

    def test_bad_side(self, cache: diskstore.Cache) -> None:
        cache.push(1)
        for method in (cache.pull, cache.peek):
            with pytest.raises(ValueError, match="side"):
                method(side="middle")
        assert len(cache) == 1


class TestPeekitem:
    def test_last_and_first(self, cache: diskstore.Cache) -> None:
        for number, letter in enumerate("abc"):
            cache[letter] = number
        assert cache.peekitem() == ("c", 2)
        assert cache.peekitem(last=False) == ("a", 0)
        assert len(cache) == 3

    def test_follows_insertion_not_sort_order(self, cache: diskstore.Cache) -> None:
        for key in "cab":
            cache[key] = None
        assert cache.peekitem() == ("b", None)
        assert cache.peekitem(last=False) == ("c", None)

    def test_empty_raises_keyerror(self, cache: diskstore.Cache) -> None:
        for last in (True, False):
            with pytest.raises(KeyError) as info:
                cache.peekitem(last=last)
            assert info.value.args == ("dictionary is empty",)

    def test_tuple_shapes(self, cache: diskstore.Cache, clock: Clock) -> None:
        cache.set("key", "value", expire=10, tag="t")
        expire = clock.now + 10
        assert cache.peekitem(expire_time=True) == (("key", "value"), expire)
        assert cache.peekitem(tag=True) == (("key", "value"), "t")
        assert cache.peekitem(expire_time=True, tag=True) == (("key", "value"), expire, "t")

    def test_expired_items_are_skipped(self, cache: diskstore.Cache, clock: Clock) -> None:
        cache.set("first", 1, expire=1)
        cache["middle"] = 2
        cache.set("last", os.urandom(100_000), expire=1)
        clock.advance(2)
        assert cache.peekitem() == ("middle", 2)
        assert cache.peekitem(last=False) == ("middle", 2)
        assert len(cache) == 1
        assert value_files_once_durable(cache) == []

    def test_non_native_keys_and_values(self, cache: diskstore.Cache) -> None:
        cache[("tuple", 1)] = {"a": [1]}
        assert cache.peekitem() == (("tuple", 1), {"a": [1]})


def test_push_never_replaces_a_plain_item_next_to_the_queue(cache: diskstore.Cache) -> None:
    cache[0] = "plain zero"
    cache[1] = "plain one"  # inside the queue's range: the queue's front is 1
    with pytest.raises(ValueError, match="replace the item stored under 0"):
        cache.push("pushed", side="front")
    assert cache[0] == "plain zero"
    assert len(cache) == 2
