"""The public surface: a sorted ``__all__``, and diskcache 5.6.3's Cache API parameter by parameter.

``import diskstore as diskcache`` must keep working, so every public method of
``diskcache.Cache`` exists on ``diskstore.Cache`` with the same parameter names, order, kinds
and defaults. New parameters are keyword-only. Intentional differences are listed below,
each with its reason.
"""

from __future__ import annotations

import inspect
from typing import Any

import diskcache  # type: ignore[import-untyped]
import pytest

import diskstore

#: Names diskcache exports that diskstore deliberately does not.
NOT_EXPORTED: dict[str, str] = {}

#: (method, parameter) pairs whose default differs on purpose, with the reason.
DEFAULT_DIFFERENCES: dict[tuple[str, str], str] = {
    ("__init__", "disk"): "defaults to diskstore's own Disk (signed, compressed), not diskcache's",
}

COMPARED_DUNDERS = (
    "__init__",
    "__contains__",
    "__delitem__",
    "__enter__",
    "__exit__",
    "__getitem__",
    "__getstate__",
    "__iter__",
    "__len__",
    "__reversed__",
    "__setitem__",
    "__setstate__",
)


def public_members(cls: type) -> list[str]:
    names = [name for name in dir(cls) if not name.startswith("_")]
    return sorted(names) + [name for name in COMPARED_DUNDERS if hasattr(cls, name)]


def ruff_sort_key(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps ``__all__`` in: CONSTANTS, then Classes, then the rest."""
    if name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def test_all_is_sorted_unique_and_resolves() -> None:
    names = diskstore.__all__
    assert names == sorted(names, key=ruff_sort_key)
    assert len(set(names)) == len(names)
    for name in names:
        assert getattr(diskstore, name) is not None, name


def test_public_names_are_all_listed() -> None:
    import __future__

    import types

    public = {
        name
        for name, value in vars(diskstore).items()
        if not name.startswith("_")
        and not isinstance(value, (types.ModuleType, __future__._Feature))
    }
    assert public <= set(diskstore.__all__)


def test_diskcache_exports_exist() -> None:
    missing = [
        name
        for name in diskcache.__all__
        if name not in NOT_EXPORTED and not hasattr(diskstore, name)
    ]
    assert missing == []


def test_shared_constants_match_diskcache() -> None:
    assert set(diskstore.EVICTION_POLICY) == set(diskcache.EVICTION_POLICY)
    for name, value in diskcache.DEFAULT_SETTINGS.items():
        assert diskstore.DEFAULT_SETTINGS[name] == value
    assert diskstore.ENOVAL is not diskstore.UNKNOWN
    assert repr(diskstore.ENOVAL) == "ENOVAL"


def test_exception_tree() -> None:
    for name in diskstore.__all__:
        value = getattr(diskstore, name)
        if isinstance(value, type) and issubclass(value, Warning):
            assert issubclass(value, UserWarning), name
        elif isinstance(value, type) and issubclass(value, BaseException):
            assert issubclass(value, diskstore.DiskStoreError), name
    assert issubclass(diskstore.SettingsError, ValueError)
    assert issubclass(diskstore.CacheClosedError, ValueError)
    assert issubclass(diskstore.StorageFullError, diskstore.StorageError)
    assert issubclass(diskstore.StorageError, OSError)
    assert issubclass(diskstore.ReadOnlyError, PermissionError)


@pytest.mark.parametrize("name", public_members(diskcache.Cache))
def test_cache_member_is_compatible(name: str) -> None:
    theirs = inspect.getattr_static(diskcache.Cache, name)
    ours = inspect.getattr_static(diskstore.Cache, name, None)
    assert ours is not None, f"diskstore.Cache has no {name}"
    if isinstance(theirs, property):
        assert isinstance(ours, property), name
        return
    assert callable(getattr(diskstore.Cache, name)), name
    compare_signatures(name, getattr(diskcache.Cache, name), getattr(diskstore.Cache, name))


def compare_signatures(method: str, theirs: Any, ours: Any) -> None:
    # The receiver is bound whatever its name (memoize is a module function bound as a method,
    # its receiver named ``cache``), so the comparison starts after it.
    their_all = list(inspect.signature(theirs).parameters.values())
    our_all = list(inspect.signature(ours).parameters.values())
    assert our_all[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, method
    their_params, their_rest = split_var_keyword(their_all[1:])
    our_params, our_rest = split_var_keyword(our_all[1:])

    def names(params: list[inspect.Parameter]) -> list[str]:
        # A ``*args`` name cannot be passed by keyword, so only its position matters.
        return ["*" if p.kind is p.VAR_POSITIONAL else p.name for p in params]

    assert names(our_params[: len(their_params)]) == names(their_params), (
        f"{method}: parameters {names(our_params)} do not start with diskcache's "
        f"{names(their_params)}"
    )
    for their, our in zip(their_params, our_params, strict=False):
        assert our.kind == their.kind, f"{method}({their.name}) kind"
        if (method, their.name) in DEFAULT_DIFFERENCES:
            continue
        assert same_default(our.default, their.default), (
            f"{method}({their.name}): default {our.default!r} != diskcache's {their.default!r}"
        )
    for extra in our_params[len(their_params) :]:
        assert extra.kind is inspect.Parameter.KEYWORD_ONLY, (
            f"{method}: new parameter {extra.name} must be keyword-only"
        )
    if their_rest is not None:
        assert our_rest is not None, f"{method}: diskcache takes **{their_rest.name}"


def split_var_keyword(
    params: list[inspect.Parameter],
) -> tuple[list[inspect.Parameter], inspect.Parameter | None]:
    """Separate a trailing ``**kwargs``, which must stay last whatever is added before it."""
    if params and params[-1].kind is inspect.Parameter.VAR_KEYWORD:
        return params[:-1], params[-1]
    return params, None


def same_default(ours: Any, theirs: Any) -> bool:
    if theirs is inspect.Parameter.empty or ours is inspect.Parameter.empty:
        return ours is theirs
    if theirs is diskcache.core.ENOVAL:
        return ours is diskstore.ENOVAL
    if isinstance(theirs, type):
        return isinstance(ours, type) and ours.__name__ == theirs.__name__
    return type(ours) is type(theirs) and bool(ours == theirs)


def test_new_cache_options_are_keyword_only() -> None:
    parameters = inspect.signature(diskstore.Cache).parameters
    for name in ("secret", "read_only"):
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY


def test_every_public_method_has_a_docstring() -> None:
    for name in public_members(diskstore.Cache):
        member = getattr(diskstore.Cache, name)
        if name.startswith("__"):
            continue
        assert inspect.getdoc(member), name


def test_import_as_diskcache_works(tmp_path: Any) -> None:
    import diskstore as dc

    with dc.Cache(str(tmp_path / "cache")) as cache:
        cache.set("key", "value", expire=60, tag="t")
        assert cache.get("key", expire_time=True, tag=True)[::2] == ("value", "t")
        assert cache.incr("n") == 1
        assert cache.pull() == (None, None)
        assert isinstance(cache.disk, dc.Disk)
