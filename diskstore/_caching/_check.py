"""``Cache.check``: find and optionally repair damage in a cache directory.

Runs inside a write transaction, so no writer can publish a value file or commit while the
directory is examined: an unreferenced final-named file is debris from a crash (or a file
another process dropped and will remove after its next checkpoint, see _durability.py),
and a temporary file is debris unless its writer still holds its lock. Problems are returned as
``warnings.WarningMessage`` objects built directly, so the caller's warning filters cannot
hide them; a single ``fix=True`` pass leaves nothing for the next check to report. Empty
value directories are normal here (they are reused, not removed on every delete) and are
not reported.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._common._exceptions import (
    CorruptionWarning,
    DiskcacheDirectoryWarning,
    IntegrityError,
    UnknownFileWarning,
    UntrustedPickle,
)
from .._fs import _checksums
from .._fs._files import NAME_PATTERN, TEMP_PATTERN
from .._storage import _sql
from .._values._diskcache_disk import FILE_MARK
from .._values._modes import KIND_DISKCACHE, KIND_MASK, KIND_NATIVE

if TYPE_CHECKING:
    from ._base import CacheBase

_BATCH = 500


def run_check(
    cache: CacheBase,
    *,
    fix: bool,
    retry: bool,
    progress: Callable[[int, int], None] | None = None,
) -> list[warnings.WarningMessage]:
    """Check (and with *fix* repair) *cache*; *progress* hears ``(rows checked, total)``."""
    found: list[warnings.WarningMessage] = []

    def report(message: str, category: type[Warning]) -> None:
        found.append(warnings.WarningMessage(category(message), category, __file__, 0))

    store = cache._store
    disk = cache._disk
    files = disk.files
    _checksums.verified.clear()  # every value file is hashed again, not taken as known
    integrity = store.run(_sql.INTEGRITY_CHECK, retry=True)
    if [tuple(row) for row in integrity] != [("ok",)]:
        for row in integrity:
            report(f"integrity check: {row[0]}", CorruptionWarning)
        if fix:
            # Indexes are rebuilt in place; damage elsewhere (a page count or root page in
            # the file header) needs the whole file rewritten, as diskcache's fix does.
            store.run(_sql.REINDEX, retry=True)
            if [tuple(row) for row in store.run(_sql.INTEGRITY_CHECK, retry=True)] != [("ok",)]:
                store.run(_sql.VACUUM, retry=True)

    # Files this process's commits dropped wait for a checkpoint (see _durability.py): remove
    # them now, so they are not reported as unreferenced.
    store.flush()
    with store.write(retry) as conn:
        con = conn.con
        assert con is not None
        bad_rows: list[int] = []
        checked = 0
        total = cache._total_count() if progress is not None else 0
        referenced: set[str] = set()
        untrusted = 0
        last = 0
        while True:
            rows = con.execute(_sql.SELECT_SIGNED_CHUNK, (last, _BATCH)).fetchall()
            if not rows:
                break
            if progress is not None:
                checked += len(rows)
                progress(checked, total)
            if rows[-1][0] <= last:  # a damaged table can hand back rows already seen
                report(
                    f"entries after {last} are out of order: the table is damaged",
                    CorruptionWarning,
                )
                break
            last = rows[-1][0]
            for row in rows:
                rowid, ns, db_key, raw, is_text, mode, value, text_value = row[:8]
                filename, sig, vsize, size = row[8:]
                problem: str | None = None
                if is_text:
                    try:
                        db_key = db_key.decode("utf-8")
                    except UnicodeDecodeError:
                        problem = "key text is not UTF-8"
                if problem is None and mode == KIND_NATIVE:
                    if text_value:
                        try:
                            value = value.decode("utf-8")
                        except UnicodeDecodeError:
                            problem = "value text is not UTF-8"
                    if raw and filename is None and problem is None:
                        continue  # a native key and value: nothing more to verify
                if problem is None:
                    problem = _verify_row(
                        cache, ns, db_key, raw, mode, value, filename, sig, vsize, size
                    )
                if problem is _UNTRUSTED:
                    untrusted += 1
                    if filename is not None:
                        referenced.add(filename)
                elif problem is not None:
                    report(f"entry {rowid}: {problem}", CorruptionWarning)
                    bad_rows.append(rowid)
                elif filename is not None:
                    # A diskcache-style hook's file is named with a mark (see _diskcache_disk).
                    referenced.add(filename.removeprefix(FILE_MARK))
        if untrusted:
            report(
                f"{untrusted} entries are pickles written by diskcache, not yet trusted (they "
                "read as misses); adopt_diskcache(trust=True) signs them, check() leaves them",
                DiskcacheDirectoryWarning,
            )
        if fix and bad_rows:
            deleted: list[Any] = []
            for rowid in bad_rows:
                deleted.extend(con.execute(_sql.DELETE_ROWID, (rowid,)).fetchall())
            cache._uncount(conn, deleted)
        for relative in files.scan():
            if relative in referenced:
                continue
            if TEMP_PATTERN.fullmatch(relative) and files.in_progress(relative):
                continue
            kind = "temporary" if relative.endswith(".tmp") else "unreferenced"
            if not NAME_PATTERN.fullmatch(relative) and not TEMP_PATTERN.fullmatch(relative):
                kind = "unknown"
            report(f"{kind} file {os.path.join(files.root, relative)}", UnknownFileWarning)
            if fix and kind == "unreferenced" and store.defers_unlinks:
                # Maybe a file another process dropped, by a commit not yet on disk: it goes
                # once this transaction's commit, which comes after, is.
                conn.dropped.append(relative)
            elif fix:
                files.unlink_any(relative)
        actual = {row[0]: row[1:] for row in con.execute(_sql.SELECT_ACTUAL_COUNTS)}
        for ns, count, size in con.execute(_sql.SELECT_RECORDED_COUNTS).fetchall():
            actual_count, actual_size = actual.get(ns, (0, 0))
            if (count, size) != (actual_count, actual_size):
                report(
                    f"namespace {ns}: recorded {count} items / {size} file bytes, "
                    f"found {actual_count} / {actual_size}",
                    CorruptionWarning,
                )
                if fix and ns == 0:
                    con.execute(_sql.SET_MAIN_COUNTS, (actual_count, actual_size))
                elif fix:
                    con.execute(_sql.SET_COUNTS, (actual_count, actual_size, ns))
        if not fix:
            conn.dropped.clear()
    if fix:
        store.flush()
    return found


#: A diskcache pickle not yet adopted: not damage, and never removed by ``fix``.
_UNTRUSTED = "untrusted"


def _verify_row(
    cache: CacheBase,
    ns: int,
    db_key: Any,
    raw: int,
    mode: int,
    value: Any,
    filename: str | None,
    sig: bytes | None,
    vsize: int,
    size: int,
) -> str | None:
    disk = cache._disk
    try:
        disk.get(db_key, bool(raw))
        if type(mode) is not int:
            return f"invalid mode {mode!r}"
        if mode & KIND_MASK == KIND_NATIVE:
            return None
        if mode & KIND_MASK == KIND_DISKCACHE:
            # Verified before the hook's fetch runs; the file is read, the value discarded.
            disk.fetch_row(
                mode, filename, value, False,
                ns=ns, db_key=db_key, raw=bool(raw), sig=sig, vsize=vsize, size=size,
            )  # fmt: skip
            return None
        disk.payload(mode, filename, value, ns, db_key, bool(raw), sig, vsize, size)
    except UntrustedPickle:
        return _UNTRUSTED
    except IntegrityError as exc:
        return str(exc)
    return None
