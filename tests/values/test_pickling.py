"""The pickler each thread keeps between pickles (diskstore._values._pickling)."""

from __future__ import annotations

import pickle
import threading
from typing import Any

import cloudpickle
import pytest

from diskstore._values._pickling import pickle_dumps


def test_same_bytes_as_cloudpickle() -> None:
    values: list[Any] = [{"id": 1, "name": "x", "score": 0.5}, (1, [2, 3]), b"b" * 100_000]
    for value in values:
        assert pickle_dumps(value, protocol=5) == cloudpickle.dumps(value, protocol=5)
    local = 3
    assert pickle.loads(pickle_dumps(lambda: local, protocol=5))() == 3


def test_a_refused_protocol_leaves_the_next_pickle_whole() -> None:
    pickle_dumps((1, 2), protocol=5)
    with pytest.raises(ValueError):
        pickle_dumps((1, 2), protocol=pickle.HIGHEST_PROTOCOL + 1)
    assert pickle.loads(pickle_dumps(list(range(1000)), protocol=5)) == list(range(1000))


def test_large_then_small_then_other_protocols() -> None:
    large = list(range(200_000))
    assert pickle.loads(pickle_dumps(large, protocol=5)) == large
    assert pickle.loads(pickle_dumps("small", protocol=5)) == "small"
    assert pickle.loads(pickle_dumps({"p": 2}, protocol=2)) == {"p": 2}
    assert pickle.loads(pickle_dumps({"p": 5}, protocol=5)) == {"p": 5}


class _PicklesWhilePickled:
    """A value whose reduction pickles another value on the same thread."""

    def __reduce__(self) -> Any:
        inner = pickle_dumps({"inner": True}, protocol=5)
        return pickle.loads, (inner,)


def test_a_pickle_inside_a_pickle_gets_its_own_pickler() -> None:
    outer = pickle_dumps(["before", _PicklesWhilePickled(), "after"], protocol=5)
    assert pickle.loads(outer) == ["before", {"inner": True}, "after"]


def test_an_error_part_way_leaves_no_residue() -> None:
    with pytest.raises(TypeError):
        pickle_dumps(["x" * 100, threading.Lock()], protocol=5)
    assert pickle.loads(pickle_dumps("clean", protocol=5)) == "clean"


def test_buffer_callbacks_are_per_call() -> None:
    kept: list[pickle.PickleBuffer] = []
    data = bytearray(b"z" * 1000)
    stream = pickle_dumps(
        pickle.PickleBuffer(data), protocol=5, buffer_callback=lambda b: kept.append(b)
    )
    assert len(kept) == 1
    assert pickle.loads(stream, buffers=kept) == data
    # The next call without a callback pickles the buffer in band.
    assert pickle.loads(pickle_dumps(pickle.PickleBuffer(data), protocol=5)) == data


def test_threads_pickle_side_by_side() -> None:
    failures: list[BaseException] = []

    def work(number: int) -> None:
        try:
            for index in range(300):
                value = {"thread": number, "index": index, "pad": "p" * (index % 50)}
                assert pickle.loads(pickle_dumps(value, protocol=5)) == value
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
