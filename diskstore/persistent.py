"""Persistent collections: a double-ended queue and an ordered mapping stored in a Cache.

:class:`Deque` and :class:`Index` keep their items in a :class:`~diskstore.Cache` directory,
so several threads and processes can share one collection and it survives restarts. Both are
built only on the Cache's public API: a Deque is a queue of ``push``/``pull`` keys, an Index
is the cache's own key order. Each opens its cache with eviction disabled, because a
collection that silently lost items would be wrong, not merely slower.
"""

from __future__ import annotations

import itertools
import operator
import os
import sys
from collections import OrderedDict
from collections.abc import (
    Callable,
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    MutableMapping,
    Sequence,
    Sized,
    ValuesView,
)
from contextlib import contextmanager
from typing import Any, TypeVar

from ._caching._cache import Cache
from ._common._constants import ENOVAL

_Q = TypeVar("_Q", bound="Deque")
_I = TypeVar("_I", bound="Index")

_SIDES = ("front", "back")


def _check_maxlen(maxlen: object) -> int | None:
    if maxlen is None:
        return None
    if isinstance(maxlen, bool) or not isinstance(maxlen, int):
        raise TypeError(f"maxlen must be None or an int, got {maxlen!r}")
    if maxlen < 0:
        raise ValueError(f"maxlen must be non-negative, got {maxlen!r}")
    return maxlen


def _check_side(side: object) -> str:
    if side not in _SIDES:
        raise ValueError(f"side must be 'front' or 'back', got {side!r}")
    return str(side)


def _check_position(index: object) -> int:
    if isinstance(index, slice):
        raise TypeError("deque indices must be integers, not slice")
    try:
        return operator.index(index)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"deque index must be an int, got {index!r}") from None


def _open_cache(directory: str | bytes | os.PathLike[str] | None, network_fs: str) -> Any:
    if isinstance(directory, bytes):
        directory = os.fsdecode(directory)
    return Cache(directory, eviction_policy="none", network_fs=network_fs)


def _comparison(compare: Callable[[Any, Any], bool]) -> Callable[[Deque, object], Any]:
    """The rich comparison of a Deque that *compare* names (``operator.eq``...).

    A Deque compares with any sequence item by item, then by length, as lists compare.
    """

    def method(self: Deque, other: object) -> Any:
        if not isinstance(other, Sequence):
            return NotImplemented
        size, other_size = len(self), len(other)
        if compare in (operator.eq, operator.ne) and size != other_size:
            return compare is operator.ne
        for mine, theirs in zip(self, other, strict=False):
            if not (mine is theirs or mine == theirs):
                return compare(mine, theirs)
        return compare(size, other_size)

    method.__name__ = f"__{compare.__name__}__"
    method.__qualname__ = f"Deque.{method.__name__}"
    return method


class Deque(Sequence[Any]):
    """A double-ended queue whose items live on disk, shared across processes.

    It behaves like :class:`collections.deque`: fast appends and pops at both ends, indexing
    (linear time away from the ends), ``maxlen`` bounding with eviction from the opposite end,
    ``rotate``, ``reverse``, ``remove``, ``count`` and comparisons with any sequence. Each
    single operation is atomic; use :meth:`transact` to make several of them one.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     deque = Deque("abc", directory=directory)
    ...     deque.appendleft("z")
    ...     deque.pop()
    ...     list(deque)
    ...     deque.cache.close()
    'c'
    ['z', 'a', 'b']
    """

    _cache: Any
    _maxlen: int | None

    def __init__(
        self,
        iterable: Iterable[Any] = (),
        directory: str | bytes | os.PathLike[str] | None = None,
        maxlen: int | None = None,
        *,
        network_fs: str = "refuse",
    ) -> None:
        """Open the deque stored in ``directory`` and append ``iterable`` to its back.

        ``directory=None`` creates a new temporary directory, which is not removed
        automatically. Reopening a directory keeps its items; if they exceed ``maxlen``, the
        oldest (front) ones are dropped. ``network_fs`` is :class:`Cache`'s: a directory on a
        network filesystem is refused unless it is ``"single-host"``.
        """
        checked = _check_maxlen(maxlen)
        self._cache = _open_cache(directory, network_fs)
        self._maxlen = checked
        self._trim()
        self.extend(iterable)

    @classmethod
    def fromcache(
        cls: type[_Q], cache: Any, iterable: Iterable[Any] = (), maxlen: int | None = None
    ) -> _Q:
        """Build a deque over an already open ``cache`` and append ``iterable``.

        The cache should hold nothing but this deque's items and should not evict them.
        """
        checked = _check_maxlen(maxlen)
        self = cls.__new__(cls)
        self._cache = cache
        self._maxlen = checked
        self._trim()
        self.extend(iterable)
        return self

    @property
    def cache(self) -> Any:
        """The Cache that stores the items."""
        return self._cache

    def import_diskcache(self, source: str | os.PathLike[str], *, trust: bool = False) -> int:
        """Copy the items of a diskcache ``Deque`` directory into this (empty) deque, in order.

        As :meth:`Cache.import_diskcache` (diskcache's deque keys are the same integers
        diskstore uses, so order is kept); ``maxlen`` applies afterwards.
        """
        copied = int(self._cache.import_diskcache(source, trust=trust))
        self._trim()
        return copied

    @property
    def directory(self) -> str:
        """Directory of the underlying cache."""
        return str(self._cache.directory)

    @property
    def maxlen(self) -> int | None:
        """Maximum length, or ``None`` when unbounded.

        Unlike ``collections.deque``, it can be changed (as in diskcache): lowering it drops
        items from the front until the deque fits.
        """
        return self._maxlen

    @maxlen.setter
    def maxlen(self, maxlen: int | None) -> None:
        self._maxlen = _check_maxlen(maxlen)
        self._trim("front")

    def __repr__(self) -> str:
        bound = "" if self._maxlen is None else f", maxlen={self._maxlen}"
        return f"{type(self).__name__}(directory={self.directory!r}{bound})"

    # -- both ends ----------------------------------------------------------------------

    def _trim(self, side: str = "front") -> None:
        """Drop items from ``side`` while the deque is longer than ``maxlen``."""
        if self._maxlen is None:
            return
        cache = self._cache
        with cache.transact(retry=True):
            while len(cache) > self._maxlen:
                cache.pull(side=side, retry=True)

    def _push(self, value: Any, side: str) -> None:
        cache = self._cache
        if self._maxlen is None:
            cache.push(value, side=side, retry=True)
        elif self._maxlen > 0:
            with cache.transact(retry=True):
                cache.push(value, side=side, retry=True)
                self._trim("front" if side == "back" else "back")

    def append(self, value: Any) -> None:
        """Add ``value`` at the back; a full bounded deque drops its front item."""
        self._push(value, "back")

    def appendleft(self, value: Any) -> None:
        """Add ``value`` at the front; a full bounded deque drops its back item."""
        self._push(value, "front")

    def _pull(self, side: str, verb: str, method: Callable[..., Any]) -> Any:
        _, value = method(default=(None, ENOVAL), side=side, retry=True)
        if value is ENOVAL:
            raise IndexError(f"{verb} from an empty deque")
        return value

    def pop(self) -> Any:
        """Remove and return the back item; :class:`IndexError` if empty."""
        return self._pull("back", "pop", self._cache.pull)

    def popleft(self) -> Any:
        """Remove and return the front item; :class:`IndexError` if empty."""
        return self._pull("front", "pop", self._cache.pull)

    def peek(self) -> Any:
        """Return the back item without removing it; :class:`IndexError` if empty."""
        return self._pull("back", "peek", self._cache.peek)

    def peekleft(self) -> Any:
        """Return the front item without removing it; :class:`IndexError` if empty."""
        return self._pull("front", "peek", self._cache.peek)

    def _materialize(self, iterable: Iterable[Any]) -> Iterable[Any]:
        # Extending a deque with itself would otherwise read the items it is appending.
        if isinstance(iterable, Deque) and iterable.directory == self.directory:
            return list(iterable)
        return iterable

    def _extend(self, iterable: Iterable[Any], side: str) -> None:
        iterable = self._materialize(iterable)
        if isinstance(iterable, Sized) and not isinstance(iterable, Iterator):
            # A finite collection is appended in one transaction: faster, and atomic.
            with self._cache.transact(retry=True):
                for value in iterable:
                    self._push(value, side)
        else:
            for value in iterable:
                self._push(value, side)

    def extend(self, iterable: Iterable[Any]) -> None:
        """Append every item of ``iterable`` at the back, in order."""
        self._extend(iterable, "back")

    def extendleft(self, iterable: Iterable[Any]) -> None:
        """Append every item of ``iterable`` at the front, so they end up reversed."""
        self._extend(iterable, "front")

    def __iadd__(self: _Q, iterable: Iterable[Any]) -> _Q:
        self.extend(iterable)
        return self

    def clear(self) -> None:
        """Remove every item."""
        self._cache.clear(retry=True)

    def copy(self: _Q) -> _Q:
        """Return another handle on the same stored items and ``maxlen``.

        Unlike :meth:`collections.deque.copy`, the items are not duplicated: both objects
        read and change the same directory. Use ``Deque(deque)`` for an independent copy.
        """
        return type(self).fromcache(self._cache, maxlen=self._maxlen)

    # -- positions ----------------------------------------------------------------------

    def _items(self, reverse: bool = False) -> Iterator[tuple[Any, Any]]:
        """Yield ``(key, value)`` in order, skipping items removed since their key was listed."""
        cache = self._cache
        for key in cache.iterkeys(reverse=reverse):
            try:
                yield key, cache[key]
            except KeyError:
                continue

    def _key_at(self, index: int) -> Any:
        """Return the cache key of the item at ``index`` (negative counts from the back)."""
        for key, _ in self._item_at(index):
            return key
        raise IndexError("deque index out of range")

    def _item_at(self, index: int) -> Iterator[tuple[Any, Any]]:
        if index >= 0:
            items, steps = self._items(), index
        else:
            items, steps = self._items(reverse=True), -index - 1
        for position, item in enumerate(items):
            if position == steps:
                yield item
                return

    def __getitem__(self, index: Any) -> Any:
        """Return the item at ``index``; slices are not supported, as in collections.deque."""
        position = _check_position(index)
        # Inside a transaction no other process can remove the item between finding its key
        # and reading it.
        with self._cache.transact(retry=True):
            for _, value in self._item_at(position):
                return value
        raise IndexError("deque index out of range")

    def __setitem__(self, index: Any, value: Any) -> None:
        """Replace the item at ``index``."""
        position = _check_position(index)
        with self._cache.transact(retry=True):
            self._cache.set(self._key_at(position), value, retry=True)

    def __delitem__(self, index: Any) -> None:
        """Remove the item at ``index``."""
        position = _check_position(index)
        with self._cache.transact(retry=True):
            self._cache.delete(self._key_at(position), retry=True)

    def _values(self, reverse: bool) -> Iterator[Any]:
        for _, value in self._items(reverse=reverse):
            yield value

    def __iter__(self) -> Iterator[Any]:
        """Iterate from front to back; items removed meanwhile are skipped."""
        return self._values(reverse=False)

    def __reversed__(self) -> Iterator[Any]:
        """Iterate from back to front."""
        return self._values(reverse=True)

    def __len__(self) -> int:
        return len(self._cache)

    def count(self, value: Any) -> int:
        """Return how many items equal ``value``."""
        return sum(1 for item in self if item is value or item == value)

    def index(self, value: Any, start: int = 0, stop: int = sys.maxsize) -> int:
        """Return the position of the first item equal to ``value`` in ``[start, stop)``."""
        size = len(self)
        if start < 0:
            start = max(size + start, 0)
        if stop < 0:
            stop += size
        for position, item in enumerate(self):
            if position >= stop:
                break
            if position >= start and (item is value or item == value):
                return position
        raise ValueError(f"{value!r} is not in deque")

    def remove(self, value: Any) -> None:
        """Remove the first item equal to ``value``; :class:`ValueError` if there is none."""
        cache = self._cache
        with cache.transact(retry=True):
            # Walked, not listed: memory stays bounded however long the deque is.
            for key, item in self._items():
                if item is value or item == value:
                    try:
                        del cache[key]
                    except KeyError:
                        continue  # removed meanwhile: look further
                    return
        raise ValueError(f"deque.remove(x): {value!r} not in deque")

    def reverse(self) -> None:
        """Reverse the items in place, atomically."""
        cache = self._cache
        with cache.transact(retry=True):
            # Two cursors meeting in the middle: memory stays bounded however long it is.
            pairs = zip(cache.iterkeys(), cache.iterkeys(reverse=True), strict=False)
            for low, high in itertools.islice(pairs, len(cache) // 2):
                low_value = cache.get(low, default=ENOVAL, retry=True)
                high_value = cache.get(high, default=ENOVAL, retry=True)
                cache.set(low, high_value, retry=True)
                cache.set(high, low_value, retry=True)

    def rotate(self, steps: int = 1) -> None:
        """Rotate ``steps`` to the right (negative: to the left), atomically."""
        if isinstance(steps, bool) or not isinstance(steps, int):
            raise TypeError(f"steps must be an int, got {steps!r}")
        cache = self._cache
        with cache.transact(retry=True):
            size = len(cache)
            if not size:
                return
            steps %= size
            if steps > size // 2:
                source, target, steps = "front", "back", size - steps
            else:
                source, target = "back", "front"
            for _ in range(steps):
                _, value = cache.pull(default=(None, ENOVAL), side=source, retry=True)
                if value is ENOVAL:
                    return
                cache.push(value, side=target, retry=True)

    # -- comparison, transactions, pickling ---------------------------------------------

    __eq__ = _comparison(operator.eq)
    __ne__ = _comparison(operator.ne)
    __lt__ = _comparison(operator.lt)
    __le__ = _comparison(operator.le)
    __gt__ = _comparison(operator.gt)
    __ge__ = _comparison(operator.ge)

    __hash__ = None  # type: ignore[assignment]

    @contextmanager
    def transact(self) -> Iterator[None]:
        """Hold the write lock so that several operations form one atomic step."""
        with self._cache.transact(retry=True):
            yield

    def __getstate__(self) -> dict[str, Any]:
        # The cache pickles as its directory and options (serializer, secret, namespace),
        # so the copy reopens exactly the same store.
        return {"cache": self._cache, "maxlen": self._maxlen}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._cache = state["cache"]
        self._maxlen = state["maxlen"]


class _KeysView(KeysView[Any]):
    """Keys of an Index; set-like and reversible."""

    def __init__(self, index: Index) -> None:
        super().__init__(index)
        self._index = index

    def __reversed__(self) -> Iterator[Any]:
        return reversed(self._index)


class _ValuesView(ValuesView[Any]):
    """Values of an Index, in key order; reversible."""

    def __init__(self, index: Index) -> None:
        super().__init__(index)
        self._index = index

    def __iter__(self) -> Iterator[Any]:
        return (value for _, value in _present_items(self._index, iter(self._index)))

    def __reversed__(self) -> Iterator[Any]:
        return (value for _, value in _present_items(self._index, reversed(self._index)))


class _ItemsView(ItemsView[Any, Any]):
    """``(key, value)`` pairs of an Index; set-like and reversible."""

    def __init__(self, index: Index) -> None:
        super().__init__(index)
        self._index = index

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        return _present_items(self._index, iter(self._index))

    def __reversed__(self) -> Iterator[tuple[Any, Any]]:
        return _present_items(self._index, reversed(self._index))


def _present_items(index: Index, keys: Iterator[Any]) -> Iterator[tuple[Any, Any]]:
    """Pair keys with values, skipping keys another process deleted meanwhile."""
    cache = index.cache
    for key in keys:
        value = cache.get(key, default=ENOVAL, retry=True)
        if value is not ENOVAL:
            yield key, value


class Index(MutableMapping[Any, Any]):
    """An ordered mapping whose items live on disk, shared across processes.

    Iteration follows insertion order, as with dict. On top of the mapping protocol it
    offers ``popitem(last=True)`` and ``peekitem(last=True)``, the queue operations ``push``
    and ``pull``, ``memoize`` and ``transact``. Keys are compared by their stored form, not
    by ``hash()``; see :class:`~diskstore.Cache` for which keys are equal.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     index = Index(directory, {"a": 1}, b=2)
    ...     index["c"] = 3
    ...     index.popitem()
    ...     list(index.items())
    ...     index.cache.close()
    ('c', 3)
    [('a', 1), ('b', 2)]
    """

    _cache: Any

    def __init__(self, *args: Any, network_fs: str = "refuse", **kwargs: Any) -> None:
        """Open the index stored in a directory and add items to it.

        The first positional argument is the directory when it is a ``str``, ``bytes`` or
        path object, or ``None`` (a new temporary directory, the default, which is not
        removed automatically). The remaining arguments are those of :class:`dict`: a mapping
        or iterable of pairs, then keyword items. ``network_fs`` is :class:`Cache`'s option,
        not an item (an item of that name goes in the mapping).
        """
        directory = None
        if args and (args[0] is None or isinstance(args[0], (str, bytes, os.PathLike))):
            directory, args = args[0], args[1:]
        if len(args) > 1:
            raise TypeError(f"Index expected at most 1 item argument, got {len(args)}")
        self._cache = _open_cache(directory, network_fs)
        self.update(*args, **kwargs)

    @classmethod
    def fromcache(cls: type[_I], cache: Any, *args: Any, **kwargs: Any) -> _I:
        """Build an index over an already open ``cache`` and add items as :class:`dict` does.

        The cache should not evict items, or the index would lose them.
        """
        if len(args) > 1:
            raise TypeError(f"Index expected at most 1 item argument, got {len(args)}")
        self = cls.__new__(cls)
        self._cache = cache
        self.update(*args, **kwargs)
        return self

    @property
    def cache(self) -> Any:
        """The Cache that stores the items."""
        return self._cache

    def import_diskcache(self, source: str | os.PathLike[str], *, trust: bool = False) -> int:
        """Copy the items of a diskcache ``Index`` directory into this index.

        As :meth:`Cache.import_diskcache`; insertion order is kept.
        """
        return int(self._cache.import_diskcache(source, trust=trust))

    @property
    def directory(self) -> str:
        """Directory of the underlying cache."""
        return str(self._cache.directory)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.directory!r})"

    # -- mapping protocol ---------------------------------------------------------------

    def __getitem__(self, key: Any) -> Any:
        return self._cache[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._cache[key] = value

    def __delitem__(self, key: Any) -> None:
        del self._cache[key]

    def __contains__(self, key: object) -> bool:
        return key in self._cache

    def __iter__(self) -> Iterator[Any]:
        """Iterate over keys in insertion order."""
        return iter(self._cache)

    def __reversed__(self) -> Iterator[Any]:
        """Iterate over keys from the most recently inserted."""
        keys: Iterator[Any] = reversed(self._cache)
        return keys

    def __len__(self) -> int:
        return len(self._cache)

    def get(self, key: Any, default: Any = None) -> Any:
        """Return the value for ``key``, or ``default`` if it is missing."""
        return self._cache.get(key, default=default, retry=True)

    def keys(self) -> KeysView[Any]:
        """Return a set-like, reversible view of the keys."""
        return _KeysView(self)

    def values(self) -> ValuesView[Any]:
        """Return a reversible view of the values."""
        return _ValuesView(self)

    def items(self) -> ItemsView[Any, Any]:
        """Return a set-like, reversible view of the ``(key, value)`` pairs."""
        return _ItemsView(self)

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Add items from a mapping or iterable of pairs, then keyword items, atomically."""
        if other is self:
            other = ()
        with self._cache.transact(retry=True):
            MutableMapping.update(self, other, **kwargs)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        """Return the value for ``key``, first storing ``default`` if it is missing."""
        cache = self._cache
        with cache.transact(retry=True):
            value = cache.get(key, default=ENOVAL, retry=True)
            if value is ENOVAL:
                cache.set(key, default, retry=True)
                return default
            return value

    def pop(self, key: Any, default: Any = ENOVAL) -> Any:
        """Remove ``key`` and return its value, or ``default``; :class:`KeyError` without one."""
        value = self._cache.pop(key, default=default, retry=True)
        if value is ENOVAL:
            raise KeyError(key)
        return value

    def popitem(self, last: bool = True) -> tuple[Any, Any]:
        """Remove and return the newest (``last=True``) or oldest item; KeyError if empty."""
        cache = self._cache
        with cache.transact(retry=True):
            key, value = cache.peekitem(last=last)
            cache.delete(key)
        return key, value

    def peekitem(self, last: bool = True) -> tuple[Any, Any]:
        """Return the newest (``last=True``) or oldest item; :class:`KeyError` if empty."""
        key, value = self._cache.peekitem(last, retry=True)
        return key, value

    def push(self, value: Any, prefix: str | None = None, side: str = "back") -> Any:
        """Add ``value`` to the queue named ``prefix`` and return its generated key.

        See Cache.push: integer keys (``prefix=None``) or ``"prefix-<integer>"`` strings.
        """
        return self._cache.push(value, prefix, _check_side(side), retry=True)

    def pull(
        self, prefix: str | None = None, default: Any = (None, None), side: str = "front"
    ) -> Any:
        """Remove and return ``(key, value)`` from the queue named ``prefix``, or ``default``."""
        return self._cache.pull(prefix, default, _check_side(side), retry=True)

    def clear(self) -> None:
        """Remove every item."""
        self._cache.clear(retry=True)

    # -- comparison, memoize, transactions, pickling ------------------------------------

    def __eq__(self, other: object) -> bool:
        """Compare with a mapping: in order for an Index or OrderedDict, else like dict."""
        if not isinstance(other, Mapping):
            return NotImplemented
        if len(self) != len(other):
            return False
        if isinstance(other, (Index, OrderedDict)):
            pairs = zip(self.items(), other.items(), strict=False)
            return all(mine == theirs for mine, theirs in pairs)
        return all(other.get(key, ENOVAL) == value for key, value in self.items())

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # type: ignore[assignment]

    def memoize(
        self, name: Any = None, typed: bool = False, ignore: Any = (), **options: Any
    ) -> Callable[..., Any]:
        """Memoizing decorator storing results in this index; see Cache.memoize."""
        decorator: Callable[..., Any] = self._cache.memoize(name, typed, ignore=ignore, **options)
        return decorator

    @contextmanager
    def transact(self) -> Iterator[None]:
        """Hold the write lock so that several operations form one atomic step."""
        with self._cache.transact(retry=True):
            yield

    def __getstate__(self) -> dict[str, Any]:
        return {"cache": self._cache}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._cache = state["cache"]
