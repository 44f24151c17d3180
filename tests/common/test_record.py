"""``Record`` behaves as the frozen dataclass it stands in for, on everything records use."""

from __future__ import annotations

import copy
import dataclasses
import doctest
import pickle

import pytest

import diskstore._common._record
from diskstore._common._record import Record


class Point(Record):
    x: int
    y: int = 0
    label: str | None = None


class Checked(Record):
    size: int = 1

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError(f"size must be >= 0, not {self.size!r}")


@dataclasses.dataclass(frozen=True)
class Reference:
    """The frozen dataclass ``Point`` mirrors."""

    x: int
    y: int = 0
    label: str | None = None


CALLS = [((1,), {}), ((1, 2), {}), ((1,), {"label": "a"}), ((), {"x": 3, "y": 4})]


def test_the_module_doctest_runs() -> None:
    result = doctest.testmod(diskstore._common._record, verbose=False)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize(("args", "kwargs"), CALLS)
def test_fields_defaults_and_repr_match_a_frozen_dataclass(
    args: tuple[int, ...], kwargs: dict[str, object]
) -> None:
    record, reference = Point(*args, **kwargs), Reference(*args, **kwargs)  # type: ignore[arg-type]
    assert record.as_dict() == dataclasses.asdict(reference)
    assert repr(record) == repr(reference).replace("Reference", "Point")
    assert Point._fields == tuple(field.name for field in dataclasses.fields(Reference))
    assert Point.y == Reference.y == 0  # a default stays readable on the class


def test_equality_and_hash_are_by_class_and_fields() -> None:
    assert Point(1, 2) == Point(x=1, y=2) and hash(Point(1, 2)) == hash(Point(x=1, y=2))
    assert Point(1, 2) != Point(2, 1)
    assert Point(1) != Reference(1)  # another class, even with the same fields
    assert len({Point(1), Point(1, 0), Point(2)}) == 2


def test_a_record_is_frozen() -> None:
    point = Point(1)
    with pytest.raises(AttributeError, match="frozen"):
        point.x = 2  # type: ignore[misc]
    with pytest.raises(AttributeError, match="frozen"):
        del point.x
    with pytest.raises(AttributeError, match="frozen"):
        point.other = 1
    assert point == Point(1)


def test_replace_makes_a_validated_copy() -> None:
    point = Point(1, label="a")
    assert point.replace(y=5) == Point(1, 5, "a") and point == Point(1, label="a")
    with pytest.raises(ValueError, match="size must be >= 0"):
        Checked().replace(size=-1)
    with pytest.raises(TypeError, match="unknown field 'z'"):
        point.replace(z=1)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {}, "missing the field 'x'"),
        ((1, 2, "a", 4), {}, "has 3 fields, not 4"),
        ((1,), {"x": 2}, "a second value for 'x'"),
        ((1,), {"z": 2}, "an unknown field 'z'"),
    ],
)
def test_bad_arguments_are_type_errors(
    args: tuple[object, ...], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        Point(*args, **kwargs)  # type: ignore[arg-type]


def test_post_init_validates_every_new_record() -> None:
    assert Checked().size == 1
    with pytest.raises(ValueError, match="size must be >= 0, not -2"):
        Checked(-2)


def test_copies_and_pickles_are_equal_records() -> None:
    point = Point(1, 2, "a")
    for twin in (copy.copy(point), copy.deepcopy(point), pickle.loads(pickle.dumps(point))):
        assert twin == point and type(twin) is Point
