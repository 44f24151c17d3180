"""Finding and opening the cache a command names: a ``Cache`` or a ``FanoutCache`` directory.

:func:`find_cache` is the one place that decides what a directory holds: a cache (a
database file, ``diskstore.db`` or diskcache's name ``cache.db``), or a ``FanoutCache`` (and
so a Django ``LOCATION``): shards in numbered subdirectories ``000``, ``001``, ... each
holding a database. Every command opens what it finds with :func:`open_cache`, which never
creates a cache and never changes a setting, and turns what stops it (permissions, a
diskcache directory) into one line that says how to go on.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import stat
from typing import TYPE_CHECKING

from .._common._exceptions import IntegrityError
from .._storage._inspect import namespace_table
from .._storage._store import DB_NAME
from .._storage._upgrade import OLD_DB_NAME
from ._common import PROG, NotFound, UsageError

if TYPE_CHECKING:
    from .._caching._cache import Cache
    from ..fanout import FanoutCache

    AnyCache = Cache | FanoutCache

#: The names a cache's database file has: diskcache's (which diskstore's is), and that of
#: diskstore's earlier layout, which opening the directory writable moves into it.
DATABASE_NAMES = (DB_NAME, OLD_DB_NAME)
#: Seconds a command waits for a database another process holds locked.
TIMEOUT = 60.0


@dataclasses.dataclass(frozen=True)
class CacheDir:
    """What :func:`find_cache` found: a cache directory, and its shards if it has any."""

    path: str
    #: 0 for a ``Cache`` directory; the number of shards of a ``FanoutCache`` directory.
    shards: int = 0


def _has_database(path: str) -> bool:
    return any(os.path.isfile(os.path.join(path, name)) for name in DATABASE_NAMES)


def _owner(path: str) -> str:
    """``owned by NAME, mode 0700`` for messages about permissions."""
    try:
        info = os.stat(path)
    except OSError:
        return ""
    try:
        import pwd

        owner = pwd.getpwuid(info.st_uid).pw_name
    except (ImportError, KeyError):
        owner = str(info.st_uid)
    return f"owned by {owner}, mode {stat.S_IMODE(info.st_mode):04o}"


def _me() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError, AttributeError):
        return "this user"


def permission_error(directory: str, path: str, *, write: bool) -> UsageError:
    """One line for a directory this user may not read (or change), with the way out."""
    what = "change" if write else "read"
    owner = _owner(path)
    who = owner.split(",")[0].removeprefix("owned by ") if owner else "its owner"
    return UsageError(
        f"permission denied: {_me()} cannot {what} {directory!r} ({owner}); run the command "
        f"as the user that owns it (sudo -u {who} {PROG} ...)"
    )


def find_cache(directory: str) -> CacheDir:
    """The cache in *directory*, or a :class:`UsageError` that says why there is none."""
    path = os.path.abspath(os.path.expanduser(directory))
    if not os.path.exists(path):
        raise UsageError(f"no such directory: {directory!r}")
    if not os.path.isdir(path):
        parent = os.path.dirname(path)
        hint = ""
        if os.path.basename(path) in DATABASE_NAMES:
            hint = f"; DIR is the directory that holds it: {PROG} ... {parent}"
        raise UsageError(f"not a directory: {directory!r}{hint}")
    if not os.access(path, os.R_OK | os.X_OK):
        raise permission_error(directory, path, write=False)
    if _has_database(path):
        return CacheDir(path)
    numbered = sorted(
        (name for name in os.listdir(path) if name.isdigit() and len(name) >= 3),
        key=int,
    )
    shards = [name for name in numbered if _has_database(os.path.join(path, name))]
    if shards:
        expected = [f"{number:03d}" for number in range(len(shards))]
        if shards != expected:
            missing = sorted(set(expected) - set(shards))
            raise UsageError(
                f"{directory!r} looks like a FanoutCache, but shard directories "
                f"{', '.join(missing) or 'in order'} are missing: its shards are "
                f"{', '.join(shards)}"
            )
        return CacheDir(path, len(shards))
    names = " or ".join(DATABASE_NAMES)
    raise UsageError(
        f"not a diskstore cache: {directory!r} holds no {names}, nor FanoutCache shards "
        f"(000/{DATABASE_NAMES[0]}, 001/{DATABASE_NAMES[0]}, ...)"
    )


def _open(found: CacheDir, read_only: bool, network_fs: str) -> AnyCache:
    try:
        return _open_as(found, read_only, network_fs)
    except IntegrityError as exc:
        # A directory diskcache wrote, or one of diskstore's earlier layout: reading it
        # needs its schema brought up once, in place (diskcache keeps reading it).
        if not read_only or "without read_only=True" not in str(exc):
            raise
        if not os.access(found.path, os.W_OK | os.X_OK):
            raise UsageError(
                f"{found.path!r} has not been opened by this diskstore yet, and this user "
                f"cannot write to it: run any command that writes (for example `{PROG} "
                f"expire {found.path}`) as its owner once"
            ) from exc
        _open_as(found, False, network_fs).close()
        return _open_as(found, True, network_fs)


def _open_as(found: CacheDir, read_only: bool, network_fs: str) -> AnyCache:
    if not found.shards:
        from .._caching._cache import Cache

        return Cache(found.path, timeout=TIMEOUT, read_only=read_only, network_fs=network_fs)
    from .._values._disk import Disk
    from ..fanout import FanoutCache

    # As unpickling does: with the settings stored in the shards, never the defaults
    # (FanoutCache(directory) would give every shard a new share of the default size_limit).
    cache = FanoutCache.__new__(FanoutCache)
    options = {"read_only": read_only, "network_fs": network_fs}
    cache._open(found.path, found.shards, TIMEOUT, Disk, options, namespace="")
    return cache


def open_cache(args: argparse.Namespace, *, read_only: bool) -> AnyCache:
    """Open the cache named by ``args.directory``, in ``args.namespace`` if one was given.

    An unknown namespace is :class:`NotFound` with the known ones listed, never a new
    empty namespace. A directory diskcache wrote opens in place; the first command that
    reads it extends its schema once, as any writable open does.
    """
    directory = args.directory
    found = find_cache(directory)
    if not read_only and not os.access(found.path, os.W_OK | os.X_OK):
        raise permission_error(directory, found.path, write=True)
    cache = _open(found, read_only, getattr(args, "network_fs", "refuse"))
    namespace = getattr(args, "namespace", None)
    if not namespace:
        return cache
    known = namespace_names(cache)
    if namespace not in known:
        cache.close()
        names = ", ".join(repr(name) for name in sorted(known) if name) or "none"
        raise NotFound(
            f"no namespace {namespace!r} in {directory} (namespaces: {names}; "
            f"see `{PROG} namespaces {directory}`)"
        )
    return cache.namespace(namespace)


def shards_of(cache: AnyCache) -> tuple[Cache, ...]:
    """The ``Cache`` objects (views, in a namespace) that hold *cache*'s items."""
    shards: tuple[Cache, ...] | None = getattr(cache, "_shards", None)
    return shards if shards is not None else (cache,)  # type: ignore[return-value]


def namespace_names(cache: AnyCache) -> dict[str, tuple[int, int]]:
    """Item count and value-file bytes of every namespace, over all shards, by name."""
    table: dict[str, tuple[int, int]] = {}
    for shard in shards_of(cache):
        for name, (count, size) in namespace_table(shard._store).items():
            total = table.get(name, (0, 0))
            table[name] = (total[0] + count, total[1] + size)
    return table


def shard_directories(args: argparse.Namespace) -> list[str]:
    """The directory of each database of the cache ``args.directory`` names."""
    found = find_cache(args.directory)
    if not found.shards:
        return [found.path]
    return [os.path.join(found.path, f"{number:03d}") for number in range(found.shards)]


def shard_count(cache: AnyCache) -> int | None:
    """How many shards *cache* has: ``None`` for a ``Cache``."""
    return len(shards_of(cache)) if hasattr(cache, "_shards") else None
