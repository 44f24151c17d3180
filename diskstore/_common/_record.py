"""``Record``: the small immutable records that ``import diskstore`` builds.

A frozen dataclass would do, but ``dataclasses`` imports ``inspect`` (and with it ``ast``,
``dis`` and ``tokenize``): nearly a third of the package's import time, spent before any
cache is opened. ``Settings``, ``EvictionPolicy`` and ``FunctionStats`` exist at import, so
they are records; classes loaded on first use stay dataclasses.

A record's fields are its annotated class attributes, in order; a field given a value in
the class body has it as its default. Records of the same class are equal when their fields
are; they hash, print and refuse assignment as frozen dataclasses do. Type checkers see them
as frozen dataclasses.

>>> class Point(Record):
...     x: int
...     y: int = 0
>>> Point(1), Point(1, y=2).replace(x=3), Point(1) == Point(1, 0)
(Point(x=1, y=0), Point(x=3, y=2), True)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from typing_extensions import Self, dataclass_transform
else:

    def dataclass_transform(**options: Any) -> Any:
        """Tells type checkers how records are built; nothing to do at run time."""
        return lambda cls: cls


@dataclass_transform(frozen_default=True)
class Record:
    """Base of immutable records: subclasses declare annotated fields, as for a dataclass."""

    _fields: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._fields = tuple(cls.__annotations__)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        if len(args) > len(cls._fields):
            raise TypeError(f"{cls.__name__} has {len(cls._fields)} fields, not {len(args)}")
        values = dict(zip(cls._fields, args, strict=False))  # the rest by name or default
        for name, value in kwargs.items():
            if name not in cls._fields or name in values:
                problem = "a second value for" if name in values else "an unknown field"
                raise TypeError(f"{cls.__name__} got {problem} {name!r}")
            values[name] = value
        for name in cls._fields:
            if name not in values:
                if name not in cls.__dict__:
                    raise TypeError(f"{cls.__name__} is missing the field {name!r}")
                values[name] = cls.__dict__[name]
        self.__dict__.update(values)
        self.__post_init__()

    def __post_init__(self) -> None:
        """Validate the fields (subclasses override it); raising refuses the record."""

    def as_dict(self) -> dict[str, Any]:
        """The fields and their values, in order."""
        return {name: self.__dict__[name] for name in self._fields}

    def replace(self, **changes: Any) -> Self:
        """Return a copy with *changes* applied (and validated, as any new record is)."""
        return type(self)(**{**self.as_dict(), **changes})

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.as_dict() == other.as_dict()

    def __hash__(self) -> int:
        return hash(tuple(self.as_dict().values()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self.as_dict().items())
        return f"{type(self).__qualname__}({fields})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: {type(self).__name__} is frozen")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: {type(self).__name__} is frozen")
