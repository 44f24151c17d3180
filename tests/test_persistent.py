"""Tests for diskstore.persistent: Deque and Index against collections.deque and dict."""

from __future__ import annotations

import collections
import doctest
import multiprocessing
import pathlib
import pickle
import random
import shutil
import sys

import pytest

import diskstore
import diskstore.persistent
from diskstore.persistent import Deque, Index

SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture
def deque(tmp_path):
    made = Deque(directory=str(tmp_path / "deque"))
    yield made
    made.cache.close()


@pytest.fixture
def index(tmp_path):
    made = Index(str(tmp_path / "index"))
    yield made
    made.cache.close()


def run_processes(target, args_list, timeout=90, context=SPAWN):
    """Start one process per argument tuple, wait with a bound, and require clean exits."""
    processes = [context.Process(target=target, args=args) for args in args_list]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout)
    hung = [process for process in processes if process.is_alive()]
    for process in hung:
        process.kill()
        process.join(5)
    assert not hung, f"{len(hung)} worker process(es) did not finish in {timeout} s"
    assert [process.exitcode for process in processes] == [0] * len(processes)


def test_exported_from_package():
    assert diskstore.Deque is Deque
    assert diskstore.Index is Index


def test_docstring_examples_run():
    result = doctest.testmod(diskstore.persistent, verbose=False)
    assert result.attempted >= 2
    assert result.failed == 0


# -- Deque ------------------------------------------------------------------------------


class TestDequeEnds:
    def test_append_and_pop_both_ends(self, deque):
        deque.append(1)
        deque.append(2)
        deque.appendleft(0)
        assert list(deque) == [0, 1, 2]
        assert deque.peek() == 2
        assert deque.peekleft() == 0
        assert deque.pop() == 2
        assert deque.popleft() == 0
        assert list(deque) == [1]
        assert len(deque) == 1

    @pytest.mark.parametrize("method", ["pop", "popleft"])
    def test_pop_from_empty_raises_index_error(self, deque, method):
        with pytest.raises(IndexError, match="pop from an empty deque"):
            getattr(deque, method)()

    @pytest.mark.parametrize("method", ["peek", "peekleft"])
    def test_peek_at_empty_raises_index_error(self, deque, method):
        with pytest.raises(IndexError, match="peek from an empty deque"):
            getattr(deque, method)()

    def test_extend_extendleft_and_iadd(self, deque):
        deque.extend([1, 2])
        deque.extendleft("ab")
        deque += (3, 4)
        assert list(deque) == ["b", "a", 1, 2, 3, 4]
        assert list(reversed(deque)) == [4, 3, 2, 1, "a", "b"]

    def test_extend_from_generator(self, deque):
        deque.extend(number * number for number in range(4))
        assert list(deque) == [0, 1, 4, 9]

    def test_extend_with_itself_doubles_once(self, deque):
        deque.extend([1, 2])
        deque.extend(deque)
        deque.extendleft(deque.copy())
        assert list(deque) == [2, 1, 2, 1, 1, 2, 1, 2]

    def test_none_and_falsy_values_round_trip(self, deque):
        deque.extend([None, 0, "", b"", ()])
        assert list(deque) == [None, 0, "", b"", ()]
        assert deque.pop() == ()
        assert deque.popleft() is None

    def test_clear(self, deque):
        deque.extend(range(5))
        deque.clear()
        assert len(deque) == 0
        assert list(deque) == []
        assert not deque


class TestDequeMaxlen:
    def test_append_drops_from_the_front(self, tmp_path):
        bounded = Deque("abc", directory=str(tmp_path), maxlen=3)
        bounded.append("d")
        assert list(bounded) == ["b", "c", "d"]
        bounded.appendleft("z")
        assert list(bounded) == ["z", "b", "c"]
        assert len(bounded) == 3
        bounded.cache.close()

    def test_matches_collections_deque(self, tmp_path):
        bounded = Deque(range(10), directory=str(tmp_path), maxlen=4)
        model = collections.deque(range(10), maxlen=4)
        assert list(bounded) == list(model)
        bounded.extendleft("xy")
        model.extendleft("xy")
        assert list(bounded) == list(model)
        bounded.cache.close()

    def test_zero_maxlen_keeps_nothing(self, tmp_path):
        bounded = Deque([1, 2], directory=str(tmp_path), maxlen=0)
        bounded.append(3)
        bounded.appendleft(4)
        assert list(bounded) == []
        assert bounded.maxlen == 0
        bounded.cache.close()

    def test_setting_maxlen_trims_the_front(self, deque):
        assert deque.maxlen is None
        deque.extend("abcde")
        deque.maxlen = 3
        assert deque.maxlen == 3 and list(deque) == ["c", "d", "e"]
        deque.append("f")
        assert list(deque) == ["d", "e", "f"]
        deque.maxlen = None
        deque.append("g")
        assert list(deque) == ["d", "e", "f", "g"]
        with pytest.raises(ValueError, match="maxlen"):
            deque.maxlen = -1
        assert deque.maxlen is None

    def test_reopening_with_smaller_maxlen_trims_the_front(self, tmp_path):
        first = Deque(range(6), directory=str(tmp_path))
        second = Deque(directory=str(tmp_path), maxlen=2)
        assert list(second) == [4, 5]
        first.cache.close()
        second.cache.close()

    def test_negative_maxlen_is_a_value_error(self, tmp_path):
        with pytest.raises(ValueError, match=r"maxlen.*-1"):
            Deque(directory=str(tmp_path), maxlen=-1)

    @pytest.mark.parametrize("bad", ["3", 2.5, True])
    def test_non_integer_maxlen_is_a_type_error(self, tmp_path, bad):
        with pytest.raises(TypeError, match="maxlen"):
            Deque(directory=str(tmp_path), maxlen=bad)

    def test_fromcache_validates_maxlen(self, tmp_path):
        with diskstore.Cache(str(tmp_path)) as cache, pytest.raises(ValueError, match="maxlen"):
            Deque.fromcache(cache, maxlen=-5)


class TestDequeIndexing:
    def test_get_set_delete_by_position(self, deque):
        deque.extend("abcde")
        assert deque[0] == "a"
        assert deque[4] == "e"
        assert deque[-1] == "e"
        assert deque[-5] == "a"
        deque[1] = "B"
        deque[-2] = "D"
        del deque[0]
        del deque[-1]
        assert list(deque) == ["B", "c", "D"]

    @pytest.mark.parametrize("position", [5, -6, 100])
    def test_out_of_range(self, deque, position):
        deque.extend("abcde")
        with pytest.raises(IndexError, match="out of range"):
            deque[position]
        with pytest.raises(IndexError):
            deque[position] = "x"
        with pytest.raises(IndexError):
            del deque[position]
        assert list(deque) == list("abcde")

    def test_empty_deque_index_error(self, deque):
        with pytest.raises(IndexError):
            deque[0]
        with pytest.raises(IndexError):
            deque[-1]

    def test_slices_are_rejected_like_collections_deque(self, deque):
        deque.extend("abc")
        with pytest.raises(TypeError):
            collections.deque("abc")[0:1]
        with pytest.raises(TypeError, match="slice"):
            deque[0:1]
        with pytest.raises(TypeError, match="slice"):
            deque[0:1] = ["x"]
        with pytest.raises(TypeError, match="slice"):
            del deque[0:1]

    def test_non_integer_index_is_a_type_error(self, deque):
        deque.append(1)
        with pytest.raises(TypeError, match="index"):
            deque["0"]

    def test_index_count_and_contains(self, deque):
        deque.extend([1, 2, 1, 3, 1])
        assert deque.count(1) == 3
        assert deque.count(9) == 0
        assert deque.index(1) == 0
        assert deque.index(1, 1) == 2
        assert deque.index(1, -2) == 4
        assert deque.index(3, 0, 4) == 3
        with pytest.raises(ValueError, match="not in deque"):
            deque.index(3, 0, 3)
        assert 3 in deque
        assert 9 not in deque


class TestDequeRearranging:
    @pytest.mark.parametrize("steps", [0, 1, 2, 4, 5, 7, -1, -3, -11])
    def test_rotate_matches_collections_deque(self, deque, steps):
        deque.extend(range(5))
        model = collections.deque(range(5))
        deque.rotate(steps)
        model.rotate(steps)
        assert list(deque) == list(model)

    def test_rotate_default_and_empty(self, deque):
        deque.rotate()
        assert list(deque) == []
        deque.extend("ab")
        deque.rotate()
        assert list(deque) == ["b", "a"]

    def test_rotate_rejects_non_integers(self, deque):
        with pytest.raises(TypeError, match="steps"):
            deque.rotate(1.5)

    @pytest.mark.parametrize("items", [[], [1], [1, 2], list(range(7))])
    def test_reverse(self, deque, items):
        deque.extend(items)
        deque.reverse()
        assert list(deque) == items[::-1]
        deque.append("end")
        assert deque[-1] == "end"

    def test_remove_first_occurrence(self, deque):
        deque.extend("abab")
        deque.remove("b")
        assert list(deque) == ["a", "a", "b"]
        with pytest.raises(ValueError, match="not in deque"):
            deque.remove("z")
        assert list(deque) == ["a", "a", "b"]


class TestDequeProtocol:
    def test_comparisons_with_sequences(self, deque):
        deque.extend([1, 2, 3])
        assert deque == [1, 2, 3]
        assert deque == (1, 2, 3)
        assert deque != [1, 2]
        assert deque != [1, 2, 4]
        assert deque < [1, 2, 4]
        assert deque < [1, 2, 3, 0]
        assert deque <= [1, 2, 3]
        assert deque > [1, 2]
        assert deque >= [0, 9]
        assert not deque > [1, 2, 3]

    def test_comparison_with_non_sequence(self, deque):
        assert deque != 1
        assert not deque == {"a": 1}  # noqa: SIM201
        with pytest.raises(TypeError):
            deque < 1  # noqa: B015

    def test_two_deques_compare_by_items(self, tmp_path, deque):
        deque.extend("ab")
        other = Deque("ab", directory=str(tmp_path / "other"))
        assert deque == other
        other.append("c")
        assert deque < other
        other.cache.close()

    def test_unhashable(self, deque):
        with pytest.raises(TypeError):
            hash(deque)

    def test_repr_names_the_directory(self, deque, tmp_path):
        assert repr(deque) == f"Deque(directory={str(tmp_path / 'deque')!r})"
        bounded = Deque.fromcache(deque.cache, maxlen=7)
        assert repr(bounded).endswith(", maxlen=7)")

    def test_directory_and_cache_properties(self, deque, tmp_path):
        assert deque.directory == str(tmp_path / "deque")
        assert deque.cache.directory == deque.directory

    def test_default_directory_is_created(self):
        made = Deque([1])
        again = Deque(directory=made.directory)
        try:
            assert pathlib.Path(made.directory).is_dir()
            assert list(again) == [1]
        finally:
            made.cache.close()
            again.cache.close()
            shutil.rmtree(made.directory)

    def test_copy_is_a_second_handle_on_the_same_items(self, deque):
        deque.extend("ab")
        twin = deque.copy()
        twin.append("c")
        assert list(deque) == ["a", "b", "c"]
        assert twin.maxlen == deque.maxlen

    def test_fromcache_uses_the_given_cache(self, tmp_path):
        with diskstore.Cache(str(tmp_path)) as cache:
            made = Deque.fromcache(cache, [5, 6, 7], maxlen=2)
            assert made.cache is cache
            assert list(made) == [6, 7]

    def test_items_persist_across_reopen(self, tmp_path):
        first = Deque([1, 2, 3], directory=str(tmp_path))
        first.cache.close()
        second = Deque(directory=str(tmp_path))
        assert list(second) == [1, 2, 3]
        second.cache.close()

    def test_pickle_reopens_the_same_directory(self, tmp_path):
        made = Deque("xyz", directory=str(tmp_path), maxlen=5)
        clone = pickle.loads(pickle.dumps(made))
        assert clone.directory == made.directory
        assert clone.maxlen == 5
        assert list(clone) == ["x", "y", "z"]
        clone.append("w")
        assert made[-1] == "w"
        made.cache.close()
        clone.cache.close()

    def test_transact_makes_a_rotation_atomic(self, deque):
        deque.extend(range(3))
        with deque.transact():
            deque.appendleft(deque.pop())
        assert list(deque) == [2, 0, 1]


OPERATIONS = (
    "append",
    "appendleft",
    "pop",
    "popleft",
    "extend",
    "extendleft",
    "rotate",
    "reverse",
    "remove",
    "count",
    "index",
    "get",
    "set",
    "delete",
    "peek",
    "peekleft",
    "clear",
)


def apply_deque_operation(target, operation, rng_value, position):
    """Apply one operation to a Deque or collections.deque; return its result or exception."""
    try:
        if operation in ("append", "appendleft", "remove", "count", "index"):
            return getattr(target, operation)(rng_value)
        if operation in ("extend", "extendleft"):
            return getattr(target, operation)([rng_value, rng_value + 1])
        if operation == "rotate":
            return target.rotate(position)
        if operation in ("pop", "popleft", "reverse", "clear"):
            return getattr(target, operation)()
        if operation == "peek":
            return target[-1]
        if operation == "peekleft":
            return target[0]
        if operation == "get":
            return target[position]
        if operation == "set":
            target[position] = rng_value
            return None
        if operation == "delete":
            del target[position]
            return None
    except (IndexError, ValueError) as exc:
        return type(exc)
    raise AssertionError(operation)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("maxlen", [None, 5])
def test_random_operations_match_collections_deque(tmp_path, seed, maxlen):
    rng = random.Random(seed)
    stored = Deque(directory=str(tmp_path / "random"), maxlen=maxlen)
    model: collections.deque[int] = collections.deque(maxlen=maxlen)
    weights = [1 if name == "clear" else 6 for name in OPERATIONS]
    for step in range(150):
        operation = rng.choices(OPERATIONS, weights)[0]
        value = rng.randrange(8)
        position = rng.randrange(-8, 8)
        if operation in ("peek", "peekleft"):
            expected = apply_deque_operation(model, operation, value, position)
            method = stored.peek if operation == "peek" else stored.peekleft
            try:
                got = method()
            except IndexError:
                got = IndexError
        else:
            expected = apply_deque_operation(model, operation, value, position)
            got = apply_deque_operation(stored, operation, value, position)
        assert got == expected, (step, operation, value, position)
        assert list(stored) == list(model), (step, operation, value, position)
        assert len(stored) == len(model)
    stored.cache.close()


def append_worker(deque, worker, count):
    for number in range(count):
        deque.append((worker, number))


def popleft_worker(directory, results_directory, worker):
    deque = Deque(directory=directory)
    taken = []
    while True:
        try:
            taken.append(deque.popleft())
        except IndexError:
            break
    Index(results_directory)[worker] = taken


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_four_processes_append_without_losing_or_duplicating(tmp_path):
    shared = Deque(directory=str(tmp_path / "shared"))
    run_processes(append_worker, [(shared, worker, 100) for worker in range(4)])
    items = list(shared)
    assert len(items) == 400
    assert sorted(items) == sorted((worker, number) for worker in range(4) for number in range(100))
    for worker in range(4):
        assert [number for who, number in items if who == worker] == list(range(100))
    shared.cache.close()


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_four_processes_pop_each_item_exactly_once(tmp_path):
    directory = str(tmp_path / "work")
    shared = Deque(range(400), directory=directory)
    results = str(tmp_path / "results")
    run_processes(popleft_worker, [(directory, results, worker) for worker in range(4)])
    taken = Index(results)
    popped = [item for worker in range(4) for item in taken[worker]]
    assert sorted(popped) == list(range(400))
    for worker in range(4):
        assert taken[worker] == sorted(taken[worker])
    assert len(shared) == 0
    shared.cache.close()
    taken.cache.close()


def extend_in_child(deque, index):
    deque.extend(["from", "child"])
    index["child"] = list(index.items())


@pytest.mark.timeout(120)
def test_pickled_deque_and_index_open_the_same_data_in_another_process(tmp_path):
    deque = Deque(["parent"], directory=str(tmp_path / "deque"))
    index = Index(str(tmp_path / "index"), {"parent": 1})
    run_processes(extend_in_child, [(deque, index)])
    assert list(deque) == ["parent", "from", "child"]
    assert index["child"] == [("parent", 1)]
    deque.cache.close()
    index.cache.close()


# -- Index ------------------------------------------------------------------------------


class TestIndexConstruction:
    def test_directory_then_dict_arguments(self, tmp_path):
        made = Index(str(tmp_path), {"a": 1}, b=2)
        assert dict(made) == {"a": 1, "b": 2}
        again = Index(str(tmp_path), c=3)
        assert list(again.items()) == [("a", 1), ("b", 2), ("c", 3)]
        made.cache.close()
        again.cache.close()

    def test_path_and_bytes_directories(self, tmp_path):
        from_path = Index(tmp_path, [("k", "v")])
        from_bytes = Index(bytes(tmp_path))
        assert from_bytes["k"] == "v"
        assert from_path.directory == str(tmp_path)
        from_path.cache.close()
        from_bytes.cache.close()

    def test_mapping_first_means_temporary_directory(self):
        made = Index({"a": 1})
        other = Index(None, [("b", 2)])
        try:
            assert dict(made) == {"a": 1}
            assert dict(other) == {"b": 2}
            assert made.directory != other.directory
            assert pathlib.Path(made.directory).is_dir()
        finally:
            made.cache.close()
            other.cache.close()
            shutil.rmtree(made.directory)
            shutil.rmtree(other.directory)

    def test_too_many_positional_arguments(self, tmp_path):
        with pytest.raises(TypeError, match="at most 1"):
            Index(str(tmp_path), {"a": 1}, {"b": 2})

    def test_fromcache(self, tmp_path):
        with diskstore.Cache(str(tmp_path)) as cache:
            made = Index.fromcache(cache, {"a": 1}, b=2)
            assert made.cache is cache
            assert cache["b"] == 2
            assert len(made) == 2


class TestIndexMapping:
    def test_item_access(self, index):
        index["a"] = 1
        index[("tuple", 2)] = [2]
        assert index["a"] == 1
        assert index[("tuple", 2)] == [2]
        assert "a" in index
        assert "z" not in index
        assert index.get("z") is None
        assert index.get("z", 0) == 0
        with pytest.raises(KeyError, match="'z'"):
            index["z"]
        del index["a"]
        with pytest.raises(KeyError):
            del index["a"]
        assert len(index) == 1

    def test_setdefault(self, index):
        assert index.setdefault("a", 0) == 0
        assert index.setdefault("a", 1) == 0
        assert index.setdefault("n") is None
        assert index["n"] is None

    def test_pop(self, index):
        index.update(a=1, b=2)
        assert index.pop("a") == 1
        assert index.pop("a", "gone") == "gone"
        assert index.pop("a", None) is None
        with pytest.raises(KeyError, match="'a'"):
            index.pop("a")

    def test_popitem_both_ends(self, index):
        index.update([("a", 1), ("b", 2), ("c", 3)])
        assert index.popitem() == ("c", 3)
        assert index.popitem(last=False) == ("a", 1)
        assert index.popitem() == ("b", 2)
        with pytest.raises(KeyError):
            index.popitem()

    def test_peekitem(self, index):
        with pytest.raises(KeyError):
            index.peekitem()
        index.update(x=0, y=1, z=2)
        assert index.peekitem() == ("z", 2)
        assert index.peekitem(last=False) == ("x", 0)
        assert len(index) == 3

    def test_insertion_order_and_reversed(self, index):
        for key in "dbca":
            index[key] = key.upper()
        assert list(index) == list("dbca")
        assert list(reversed(index)) == list("acbd")

    def test_clear(self, index):
        index.update(a=1, b=2)
        index.clear()
        assert len(index) == 0
        assert dict(index) == {}

    def test_update_from_itself_is_harmless(self, index):
        index.update(a=1)
        index.update(index)
        assert dict(index) == {"a": 1}

    def test_unhashable(self, index):
        with pytest.raises(TypeError):
            hash(index)


class TestIndexViews:
    def test_keys_values_items(self, index):
        index.update([("a", 1), ("b", 2), ("c", 3)])
        assert list(index.keys()) == ["a", "b", "c"]
        assert list(index.values()) == [1, 2, 3]
        assert list(index.items()) == [("a", 1), ("b", 2), ("c", 3)]
        keys = index.keys()
        assert "b" in keys
        assert 2 in index.values()
        assert ("b", 2) in index.items()
        assert ("b", 3) not in index.items()
        assert len(index.keys()) == len(index.values()) == len(index.items()) == 3

    def test_views_are_reversible(self, index):
        index.update([("a", 1), ("b", 2)])
        assert list(reversed(index.keys())) == ["b", "a"]
        assert list(reversed(index.values())) == [2, 1]
        assert list(reversed(index.items())) == [("b", 2), ("a", 1)]

    def test_keys_and_items_are_set_like(self, index):
        index.update(a=1, b=2)
        assert index.keys() & {"b", "c"} == {"b"}
        assert index.keys() | {"c"} == {"a", "b", "c"}
        assert index.items() - {("a", 1)} == {("b", 2)}

    def test_views_are_live(self, index):
        keys = index.keys()
        index["late"] = 1
        assert list(keys) == ["late"]


class TestIndexQueues:
    def test_push_and_pull(self, index):
        first = index.push("apples")
        second = index.push("beans")
        front = index.push("cherries", side="front")
        assert second == first + 1
        assert front == first - 1
        assert index.push("dates", prefix="fruit") == f"fruit-{first}"
        assert index.pull() == (front, "cherries")
        assert index.pull(side="back") == (second, "beans")
        assert index.pull(prefix="fruit") == (f"fruit-{first}", "dates")
        assert index.pull(prefix="fruit") == (None, None)
        assert index.pull(prefix="fruit", default=("none", 0)) == ("none", 0)

    @pytest.mark.parametrize("method", ["push", "pull"])
    def test_bad_side_is_a_value_error(self, index, method):
        args = ("value",) if method == "push" else ()
        with pytest.raises(ValueError, match=r"side.*'middle'"):
            getattr(index, method)(*args, side="middle")
        assert len(index) == 0


class TestIndexEquality:
    def test_plain_mappings_compare_without_order(self, index):
        index.update([("a", 1), ("b", 2)])
        assert index == {"b": 2, "a": 1}
        assert index != {"a": 1}
        assert index != {"a": 1, "b": 3}
        assert index != {"a": 1, "c": 2}

    def test_ordered_mappings_compare_in_order(self, index, tmp_path):
        index.update([("a", 1), ("b", 2)])
        assert index == collections.OrderedDict([("a", 1), ("b", 2)])
        assert index != collections.OrderedDict([("b", 2), ("a", 1)])
        other = Index(str(tmp_path / "other"), [("b", 2), ("a", 1)])
        assert index != other
        del other["b"]
        other["b"] = 2
        assert index == other
        other.cache.close()

    def test_non_mappings_are_not_equal(self, index):
        assert index != [("a", 1)]
        assert not index == 1  # noqa: SIM201


class TestIndexMisc:
    def test_repr(self, index, tmp_path):
        assert repr(index) == f"Index({str(tmp_path / 'index')!r})"

    def test_pickle_reopens_the_same_directory(self, index):
        index["a"] = 1
        clone = pickle.loads(pickle.dumps(index))
        assert clone.directory == index.directory
        assert clone == index
        clone["b"] = 2
        assert index["b"] == 2
        clone.cache.close()

    def test_transact(self, index):
        with index.transact():
            index["total"] = index.get("total", 0) + 10
            index["count"] = index.get("count", 0) + 1
        assert index["total"] / index["count"] == 10

    def test_memoize(self, index):
        calls = []

        # ``calls`` is a closure variable: its value when decorated would be in the key
        @index.memoize(ignore={"calls"})
        def double(number):
            calls.append(number)
            return number * 2

        assert double(21) == 42
        assert double(21) == 42
        assert calls == [21]
        reopened = Index(index.directory)
        assert reopened.memoize(ignore={"calls"})(double.__wrapped__)(21) == 42
        assert calls == [21]
        reopened.cache.close()


def test_random_operations_match_dict(tmp_path):
    rng = random.Random(1234)
    stored = Index(str(tmp_path / "random"))
    model: dict[object, object] = {}
    keys = ["a", "b", 1, 2.5, ("t", 1), b"x"]
    for step in range(300):
        operation = rng.choice(["set", "set", "delete", "pop", "popitem", "setdefault", "get"])
        key = rng.choice(keys)
        value = rng.randrange(100)
        if operation == "set":
            stored[key] = value
            model[key] = value
        elif operation == "delete":
            if key in model:
                del model[key]
                del stored[key]
            else:
                with pytest.raises(KeyError):
                    del stored[key]
        elif operation == "pop":
            assert stored.pop(key, None) == model.pop(key, None)
        elif operation == "popitem":
            last = rng.random() < 0.5
            if model:
                expected_key = next(reversed(model)) if last else next(iter(model))
                assert stored.popitem(last=last) == (expected_key, model.pop(expected_key))
            else:
                with pytest.raises(KeyError):
                    stored.popitem(last=last)
        elif operation == "setdefault":
            assert stored.setdefault(key, value) == model.setdefault(key, value)
        else:
            assert stored.get(key) == model.get(key)
        assert list(stored.items()) == list(model.items()), (step, operation, key)
        assert len(stored) == len(model)
    stored.cache.close()


def test_many_keys_round_trip_in_order(index):
    pairs = [(f"key-{number:04d}", number) for number in range(300)]
    random.Random(5).shuffle(pairs)
    index.update(pairs)
    assert list(index.items()) == pairs
    assert index == dict(pairs)


def append_in_forked_child(deque, worker):
    for number in range(50):
        deque.append((worker, number))


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork start method")
def test_forked_children_append_through_an_inherited_deque(tmp_path):
    shared = Deque(["before"], directory=str(tmp_path / "forked"))
    fork = multiprocessing.get_context("fork")
    run_processes(append_in_forked_child, [(shared, worker) for worker in range(4)], context=fork)
    items = list(shared)
    assert items[0] == "before"
    assert sorted(items[1:]) == sorted((w, n) for w in range(4) for n in range(50))
    shared.cache.close()
