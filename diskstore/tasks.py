"""A cache of task results keyed by task name, version and the content of named inputs.

Where :func:`~diskstore.memoize` keys a call by its arguments as they are, a task is keyed
by a content hash of each named input (see :mod:`diskstore._memo._hashing`): the same data gives
the same key in every process and run, mapping order does not matter, and large inputs
such as numpy arrays are hashed rather than stored in the key. Each stored result records
when it was made, how long it took, how often it was reused and how big it is, so old or
expensive results can be inspected with :meth:`TaskCache.entries`.

Layout: each task's entries live in the cache namespace ``"task:" + task_name``, so
``clear(task_name)`` is one indexed delete. A result is three items keyed by
``(kind, version, input_hash)``: ``"outputs"`` (the cloudpickled outputs, stored as bytes so
their size is known), ``"meta"`` (creation time, compute seconds, size) and ``"hits"`` (a
counter). The namespace ``"task-registry"`` lists the task names, so ``entries()`` and
``clear()`` without a name never scan unrelated entries.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import pickle
import reprlib
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast

import cloudpickle

from ._common._constants import ENOVAL
from ._common._hooks import logger
from ._memo._backend import flight_locks
from ._memo._hashing import stable_hash
from ._memo._memoize_extras import check_seconds
from ._memo._singleflight import SingleFlight

__all__ = ["TaskCache", "TaskEntry"]

P = ParamSpec("P")
R = TypeVar("R")

_TASK_PREFIX = "task:"
_REGISTRY = "task-registry"
_PICKLE_PROTOCOL = 5


@dataclass(frozen=True)
class TaskEntry:
    """Metadata of one stored task result.

    ``created`` is a Unix timestamp; ``compute_seconds`` is how long the task ran (``None``
    when the result was stored with :meth:`TaskCache.set` without a duration); ``hits``
    counts reads of the result by every process; ``size`` is the pickled size of the
    outputs in bytes.
    """

    task_name: str
    version: str
    input_hash: str
    created: float
    compute_seconds: float | None
    hits: int
    size: int


def _check_task_name(task_name: object) -> str:
    if not isinstance(task_name, str):
        raise TypeError(f"task_name must be a non-empty str, got {task_name!r}")
    if not task_name:
        raise ValueError("task_name must be a non-empty str, got ''")
    return task_name


def _check_version(version: object) -> str:
    # Versions are labels: 1 and "1" name the same version.
    if isinstance(version, bool) or not isinstance(version, (str, int)):
        raise TypeError(f"version must be a str or an int, got {version!r}")
    return str(version)


def _check_names(argument: str, names: object) -> frozenset[str]:
    if isinstance(names, (str, bytes)):
        raise TypeError(
            f"{argument} must be a collection of input names, not a single "
            f"{type(names).__name__}: write {argument}=({names!r},)"
        )
    try:
        items: frozenset[object] = frozenset(cast(Collection[object], names))
    except TypeError as exc:
        raise TypeError(f"{argument} must be a collection of input names, got {names!r}") from exc
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{argument} must hold input names (str), got {item!r}")
    return cast(frozenset[str], items)


class TaskCache:
    """Store and reuse task outputs keyed by task name, version and input content.

    Uses ``cache`` when given (any cache with namespaces: ``diskstore.Cache``,
    ``FanoutCache``, or ``diskstore.redis.RedisCache`` to share results between machines;
    closing it stays the caller's business), else opens its own
    ``diskstore.Cache(directory)`` and closes it in :meth:`close`.

    >>> import tempfile
    >>> with TaskCache(tempfile.mkdtemp()) as tasks:
    ...     digest = tasks.set("resize", "1", {"width": 64, "path": "a.png"}, {"bytes": 1024})
    ...     tasks.get("resize", "1", {"path": "a.png", "width": 64})
    {'bytes': 1024}
    """

    def __init__(self, directory: str | None = None, *, cache: Any = None) -> None:
        if cache is not None and directory is not None:
            raise ValueError(
                f"pass either directory or cache, not both (directory={directory!r}, "
                f"cache={cache!r})"
            )
        self._owns_cache = cache is None
        if cache is None:
            from ._caching._cache import Cache

            cache = Cache(directory)
        elif not callable(getattr(cache, "namespace", None)):
            raise TypeError(f"cache must support namespace() like diskstore.Cache, got {cache!r}")
        self._cache = cache
        self._registry = cache.namespace(_REGISTRY)
        self._refreshing: set[str] = set()
        self._refresh_lock = threading.Lock()
        self._flight = SingleFlight(flight_locks(cache), timeout=None)

    @property
    def cache(self) -> Any:
        """The underlying cache."""
        return self._cache

    def close(self) -> None:
        """Close the cache if this TaskCache opened it."""
        if self._owns_cache:
            self._cache.close()

    def __enter__(self) -> TaskCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- keys ------------------------------------------------------------------------------

    def input_hash(self, inputs: Mapping[str, Any], ignore_inputs: Collection[str] = ()) -> str:
        """Return the content hash of ``inputs`` without the ``ignore_inputs`` entries.

        Raises ``TypeError`` naming the input when one cannot be hashed.
        """
        if not isinstance(inputs, Mapping):
            raise TypeError(
                "inputs must be a mapping of input names to values, got "
                f"{type(inputs).__name__} {reprlib.repr(inputs)}"
            )
        ignored = _check_names("ignore_inputs", ignore_inputs)
        hashed = []
        for name, value in inputs.items():
            if not isinstance(name, str):
                raise TypeError(f"input names must be str, got {name!r}")
            if name not in ignored:
                hashed.append((name, stable_hash(value, name=name)))
        hashed.sort()
        return stable_hash(hashed)

    def _namespace(self, task_name: str) -> Any:
        return self._cache.namespace(_TASK_PREFIX + task_name)

    # -- results ---------------------------------------------------------------------------

    def get(
        self,
        task_name: str,
        version: str | int,
        inputs: Mapping[str, Any],
        ignore_inputs: Collection[str] = (),
    ) -> Any:
        """Return the stored outputs of this task run, or ``None`` when there are none.

        A task whose outputs are ``None`` reads as a miss; wrap such outputs (for example in
        a dict) if that matters.
        """
        name = _check_task_name(task_name)
        label = _check_version(version)
        found = self._lookup(name, label, self.input_hash(inputs, ignore_inputs))
        return None if found is ENOVAL else found

    def set(
        self,
        task_name: str,
        version: str | int,
        inputs: Mapping[str, Any],
        outputs: Any,
        ignore_inputs: Collection[str] = (),
        *,
        compute_seconds: float | None = None,
    ) -> str:
        """Store ``outputs`` for this task run and return its input hash.

        ``compute_seconds`` records how long producing the outputs took, for ``entries()``.
        """
        name = _check_task_name(task_name)
        label = _check_version(version)
        if compute_seconds is not None and (
            isinstance(compute_seconds, bool)
            or not isinstance(compute_seconds, (int, float))
            or compute_seconds < 0
        ):
            raise ValueError(
                f"compute_seconds must be a number >= 0 or None, got {compute_seconds!r}"
            )
        digest = self.input_hash(inputs, ignore_inputs)
        self._store(name, label, digest, outputs, compute_seconds)
        return digest

    def _age(self, task_name: str, version: str, digest: str) -> float | None:
        meta = self._namespace(task_name).get(("meta", version, digest), retry=True)
        if not isinstance(meta, dict) or not isinstance(meta.get("created"), (int, float)):
            return None
        return max(0.0, time.time() - float(meta["created"]))

    def _revalidate(
        self, task_name: str, version: str, digest: str, after: float, run: Callable[[], Any]
    ) -> None:
        """Recompute a stale result in a thread: once per process, once across processes.

        Under the single-flight lock the age is read again, so a result another process
        refreshed meanwhile is left alone. A failure keeps the stored result and is logged.
        """
        token = hashlib.sha256(f"task\0{task_name}\0{version}\0{digest}".encode()).hexdigest()
        with self._refresh_lock:
            if token in self._refreshing:
                return
            self._refreshing.add(token)

        def fresh() -> Any:
            age = self._age(task_name, version, digest)
            return True if age is not None and age < after else ENOVAL

        def refresh() -> None:
            try:
                self._flight.run(token, fresh, run)
            except Exception:
                logger.warning(
                    "refresh of task %s (input hash %s) failed; the stored result is kept",
                    task_name,
                    digest,
                    exc_info=True,
                )
            finally:
                with self._refresh_lock:
                    self._refreshing.discard(token)

        thread = threading.Thread(target=refresh, name="diskstore-refresh")
        try:
            thread.start()
        except BaseException:
            with self._refresh_lock:
                self._refreshing.discard(token)
            raise

    def _lookup(self, task_name: str, version: str, digest: str) -> Any:
        namespace = self._namespace(task_name)
        blob = namespace.get(("outputs", version, digest), default=ENOVAL, retry=True)
        if blob is ENOVAL:
            return ENOVAL
        namespace.incr(("hits", version, digest), 1, default=0, retry=True)
        return pickle.loads(blob)

    def _store(
        self,
        task_name: str,
        version: str,
        digest: str,
        outputs: Any,
        compute_seconds: float | None,
    ) -> None:
        try:
            blob = cloudpickle.dumps(outputs, protocol=_PICKLE_PROTOCOL)
        except Exception as exc:
            raise TypeError(
                f"outputs of task {task_name!r} cannot be pickled: {type(outputs).__name__} ({exc})"
            ) from exc
        meta = {
            "created": time.time(),
            "compute_seconds": None if compute_seconds is None else float(compute_seconds),
            "size": len(blob),
        }
        namespace = self._namespace(task_name)
        with namespace.transact(retry=True):
            namespace.set(("outputs", version, digest), blob, retry=True)
            namespace.set(("meta", version, digest), meta, retry=True)
            namespace.set(("hits", version, digest), 0, retry=True)
        self._registry.set(task_name, True, retry=True)

    # -- management ------------------------------------------------------------------------

    def _task_names(self, task_name: str | None) -> list[str]:
        if task_name is not None:
            return [_check_task_name(task_name)]
        return sorted(name for name in self._registry if isinstance(name, str))

    def clear(self, task_name: str | None = None) -> None:
        """Remove the stored results of ``task_name``, or of every task when it is None."""
        for name in self._task_names(task_name):
            self._namespace(name).clear(retry=True)
            self._registry.delete(name, retry=True)

    def entries(self, task_name: str | None = None) -> list[TaskEntry]:
        """Return metadata of the stored results of ``task_name`` (or of every task).

        Sorted by task name, then creation time. Results whose outputs the cache already
        evicted are left out.
        """
        found: list[TaskEntry] = []
        for name in self._task_names(task_name):
            namespace = self._namespace(name)
            for key in namespace:
                if not (isinstance(key, tuple) and len(key) == 3 and key[0] == "meta"):
                    continue
                _, version, digest = key
                meta = namespace.get(key, default=None, retry=True)
                if meta is None or ("outputs", version, digest) not in namespace:
                    continue
                found.append(
                    TaskEntry(
                        task_name=name,
                        version=version,
                        input_hash=digest,
                        created=meta["created"],
                        compute_seconds=meta["compute_seconds"],
                        hits=int(namespace.get(("hits", version, digest), default=0, retry=True)),
                        size=meta["size"],
                    )
                )
        found.sort(key=lambda entry: (entry.task_name, entry.created))
        return found

    # -- decorator -------------------------------------------------------------------------

    def task(
        self,
        *,
        version: str | int,
        name: str | None = None,
        ignore: Collection[str] = (),
        refresh_after: float | None = None,
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Decorate a function so its results are stored as task results.

        The call's arguments are bound to the signature (defaults applied) and become the
        named inputs; ``ignore`` lists parameters left out (a ``verbose`` flag, a logger).
        ``name`` defaults to the function's ``module.qualname``. The run time is recorded
        as ``compute_seconds``. With ``refresh_after``, a result older than that many
        seconds is returned at once and recomputed once in a background thread, as
        ``memoize(refresh_after=...)`` does.
        """
        label = _check_version(version)
        after = None if refresh_after is None else check_seconds("refresh_after", refresh_after)
        ignored = _check_names("ignore", ignore)
        if name is not None:
            _check_task_name(name)

        def decorate(func: Callable[P, R]) -> Callable[P, R]:
            if inspect.iscoroutinefunction(func):
                raise TypeError(
                    f"task() stores plain results; {func!r} is an async function "
                    "(memoize supports those)"
                )
            task_name = name if name is not None else _qualified_name(func)
            signature = inspect.signature(func)
            kinds = {p.name: p.kind for p in signature.parameters.values()}
            has_var_keyword = inspect.Parameter.VAR_KEYWORD in kinds.values()
            unknown = sorted(ignored - kinds.keys())
            if unknown and not has_var_keyword:
                raise ValueError(f"ignore names {unknown!r}, which are not parameters of {func!r}")

            @functools.wraps(func)
            def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
                inputs = _bind(signature, kinds, args, kwargs)
                digest = self.input_hash(inputs, ignored)
                found = self._lookup(task_name, label, digest)

                def run() -> R:
                    start = time.perf_counter()
                    outputs = func(*args, **kwargs)
                    self._store(task_name, label, digest, outputs, time.perf_counter() - start)
                    return outputs

                if found is ENOVAL:
                    return run()
                if after is not None:
                    age = self._age(task_name, label, digest)
                    if age is not None and age >= after:
                        self._revalidate(task_name, label, digest, after, run)
                return found  # type: ignore[no-any-return]

            setattr(wrapper, "task_name", task_name)  # noqa: B010 - not a declared attribute
            setattr(wrapper, "version", label)  # noqa: B010
            return wrapper

        return decorate


def _qualified_name(func: Callable[..., Any]) -> str:
    qualname = getattr(func, "__qualname__", None)
    if not isinstance(qualname, str):
        raise TypeError(f"{func!r} has no __qualname__ to name the task; pass name=")
    return f"{func.__module__}.{qualname}"


def _bind(
    signature: inspect.Signature,
    kinds: Mapping[str, inspect._ParameterKind],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
) -> dict[str, Any]:
    """Name every argument of a call: parameters by name, ``**kwargs`` entries by key."""
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    inputs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for param, value in bound.arguments.items():
        if kinds[param] is inspect.Parameter.VAR_KEYWORD:
            extra = value
        else:
            inputs[param] = value
    for param, value in extra.items():
        if param in inputs:
            raise TypeError(
                f"keyword argument {param!r} has the name of a positional-only parameter; "
                "task inputs need distinct names"
            )
        inputs[param] = value
    return inputs
