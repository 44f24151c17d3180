"""Pickling with cloudpickle, refusing objects that stand for a resource of this process.

cloudpickle stores an open text file as a snapshot of its contents, and plain pickle's
errors for sockets and locks do not say why; a cache that stores one is a mistake, so every
pickle diskstore writes goes through :class:`_Pickler`, which raises ``TypeError`` naming the
type, wherever in the value the object sits.
"""

from __future__ import annotations

import io
import socket
import threading
from collections import ChainMap
from collections.abc import Callable
from typing import Any

import cloudpickle


def _refuse(obj: Any) -> Any:
    kind = type(obj)
    raise TypeError(
        f"cannot pickle an object of type {kind.__module__}.{kind.__qualname__} into a cache: "
        "open files, sockets and locks belong to the process that made them"
    )


#: Types that stand for a resource of this process, not data: storing one is a mistake
#: (cloudpickle would store an open text file as a snapshot of its contents).
_PROCESS_RESOURCES: tuple[type, ...] = (
    io.TextIOWrapper,
    io.BufferedReader,
    io.BufferedWriter,
    io.BufferedRandom,
    io.BufferedRWPair,
    io.FileIO,
    socket.socket,
    type(threading.Lock()),
    type(threading.RLock()),
)


def _unwrapped(func: Callable[..., Any]) -> Callable[..., Any]:
    return func


class _Pickler(cloudpickle.Pickler):  # type: ignore[misc]
    """cloudpickle's pickler, refusing process resources with a ``TypeError`` naming them.

    A memoized function that cloudpickle would pickle by value (a method of a class
    defined in ``__main__``, pickled with the class when a value is an instance of it) is
    pickled as the function it wraps: its wrapper holds the cache, whose locks cannot be
    pickled. In the process that pickled it the class comes back as itself anyway; another
    process gets the method unmemoized.
    """

    dispatch_table = ChainMap(
        dict.fromkeys(_PROCESS_RESOURCES, _refuse), cloudpickle.Pickler.dispatch_table
    )

    def _function_reduce(self, obj: Any) -> Any:
        attributes = getattr(obj, "__dict__", {})
        if "__cache_key__" in attributes and "__wrapped__" in attributes:
            from ._identity import resolves

            # cloudpickle pickles by value what ``__main__`` defines, and whatever its name
            # does not find; anything else goes by reference, as pickle would.
            if obj.__module__ == "__main__" or not resolves(obj):
                return _unwrapped, (attributes["__wrapped__"],)
        return super()._function_reduce(obj)


#: A thread's kept buffer is dropped rather than reused once a pickle has grown it past this.
_KEEP_BYTES = 1 << 16


class _Reused(threading.local):
    """This thread's pickler, kept between pickles: building cloudpickle's pickler costs
    more than pickling a small value (1.2 of 2 us for a three-key dict)."""

    def __init__(self) -> None:
        self.pickler: _Pickler | None = None
        self.buffer = io.BytesIO()
        self.protocol = -1
        self.busy = False  # pickling a value whose reduction pickles another one
        self.callback: Callable[[Any], Any] | None = None

    def route(self, buffer: Any) -> Any:
        """The kept pickler's buffer callback: this call's callback, or in band."""
        callback = self.callback
        return True if callback is None else callback(buffer)


_reused = _Reused()


def pickle_dumps(
    obj: Any, *, protocol: int, buffer_callback: Callable[[Any], Any] | None = None
) -> bytes:
    """Pickle *obj* as ``cloudpickle.dumps`` would, refusing files, sockets and locks."""
    state = _reused
    if state.busy:
        buffer = io.BytesIO()
        _Pickler(buffer, protocol=protocol, buffer_callback=buffer_callback).dump(obj)
        return buffer.getvalue()
    state.busy = True
    try:
        pickler = state.pickler
        if pickler is None or state.protocol != protocol:
            route = state.route if protocol >= 5 else None
            fresh = io.BytesIO()
            pickler = _Pickler(fresh, protocol=protocol, buffer_callback=route)  # may refuse
            state.pickler, state.buffer, state.protocol = pickler, fresh, protocol
        state.callback = buffer_callback
        buffer = state.buffer
        try:
            pickler.dump(obj)
            return buffer.getvalue()
        finally:
            pickler.clear_memo()  # drop the references to the pickled objects
            state.callback = None
            if buffer.tell() > _KEEP_BYTES:
                state.pickler = None
            else:
                buffer.seek(0)
                buffer.truncate()
    finally:
        state.busy = False
