"""Fill a real, small file system and report how a cache behaves while it is full.

Usage: ``python _full_disk.py <diskstore|diskcache> <mount point> <size>``, run inside a
private mount namespace (``unshare --user --map-root-user --mount``) so that mounting a
tmpfs needs no privileges and disappears with the process. Prints one JSON object.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import sys
import time
import warnings
from typing import Any

FILE_VALUE = 200_000
INLINE_VALUE = 3000
DELETES = 56
# No culling on writes, so that an explicit ``cull()`` has work to do once the disk is full.
SETTINGS: dict[str, Any] = {"cull_limit": 0, "size_limit": 4 << 20}


def value(key: str, size: int) -> bytes:
    import hashlib

    return hashlib.shake_256(key.encode()).digest(size)


def describe(exc: BaseException) -> dict[str, Any]:
    return {
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "is_oserror": isinstance(exc, OSError),
        "errno": getattr(exc, "errno", None),
        "message": str(exc)[:200],
    }


class Probe:
    def __init__(self, library: str, directory: str) -> None:
        self.library = library
        self.directory = directory
        if library == "diskstore":
            import diskstore

            self.cache = diskstore.Cache(directory, **SETTINGS)
            self.database = os.path.join(directory, "cache.db")
            self.files_root = os.path.join(directory, "data")
            self.items = "SELECT filename FROM Cache WHERE filename IS NOT NULL"
        else:
            import diskcache  # type: ignore[import-untyped]

            self.cache = diskcache.Cache(directory, **SETTINGS)
            self.database = os.path.join(directory, "cache.db")
            self.files_root = directory
            self.items = "SELECT filename FROM Cache WHERE filename IS NOT NULL"
        self.stored: dict[str, int] = {}
        self.errors: list[dict[str, Any]] = []

    def set(self, key: str, size: int, **options: Any) -> bool:
        try:
            self.cache.set(key, value(key, size), **options)
        except Exception as exc:
            self.errors.append(describe(exc))
            return False
        self.stored[key] = size
        return True

    def fill(self) -> int:
        """Write until neither a file value nor a small inline value fits; return failures."""
        failures = 0
        number = len(self.stored)
        while failures < 6:
            number += 1
            size = FILE_VALUE if failures < 3 else INLINE_VALUE
            if self.set(f"fill{number}", size):
                failures = 0 if size == FILE_VALUE else 3
            else:
                failures += 1
        return failures

    def attempt(self, action: Any) -> dict[str, Any]:
        try:
            result = action()
        except Exception as exc:
            return {"ok": False, "error": describe(exc)}
        return {"ok": True, "result": result if isinstance(result, (int, bool)) else None}

    def orphans(self) -> tuple[int, int]:
        """Files no row references, and final-named files of the wrong size."""
        con = sqlite3.connect(self.database, timeout=30)
        try:
            referenced = {row[0] for row in con.execute(self.items)}
        finally:
            con.close()
        orphan = partial = 0
        sizes = {FILE_VALUE, INLINE_VALUE}
        for dirpath, _dirnames, filenames in os.walk(self.files_root):
            for name in filenames:
                path = os.path.join(dirpath, name)
                if os.sep not in os.path.relpath(path, self.files_root):
                    continue  # the database and its journals
                relative = os.path.relpath(path, self.directory)
                if relative not in referenced:
                    orphan += 1
                if name.endswith(".val") and os.path.getsize(path) not in sizes:
                    partial += 1
        return orphan, partial

    def integrity(self) -> list[str]:
        con = sqlite3.connect(self.database, timeout=30)
        try:
            return [row[0] for row in con.execute("PRAGMA integrity_check")]
        finally:
            con.close()

    def unreadable(self) -> int:
        bad = 0
        for key, size in self.stored.items():
            try:
                if self.cache.get(key) != value(key, size):
                    bad += 1
            except Exception:
                bad += 1
        return bad

    def check(self, fix: bool) -> int | None:
        """How many problems ``check`` reports (``None`` if it raised)."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                found = self.cache.check(fix=fix)
            except Exception as exc:
                self.errors.append(describe(exc))
                return None
        if self.library == "diskstore":
            return len(found)
        return len(caught)


def main(library: str, mount: str, size: str) -> dict[str, Any]:
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", mount], check=True)
    probe = Probe(library, os.path.join(mount, "cache"))
    report: dict[str, Any] = {}
    for number in range(10):
        probe.set(f"tagged{number}", INLINE_VALUE, tag="group")
        probe.set(f"expiring{number}", FILE_VALUE, expire=0.3)
    time.sleep(0.3)
    for key in [k for k in probe.stored if k.startswith("expiring")]:
        del probe.stored[key]
    probe.fill()
    report["stored_before_full"] = len(probe.stored)
    report["first_errors"] = probe.errors[:1] + probe.errors[-1:]
    report["errors_are_enospc"] = all(
        error["is_oserror"] and error["errno"] == errno.ENOSPC for error in probe.errors
    )
    report["orphans_while_full"], report["partial_while_full"] = probe.orphans()
    report["integrity_while_full"] = probe.integrity()
    report["unreadable_while_full"] = probe.unreadable()

    fill_keys = [key for key in probe.stored if key.startswith("fill")]
    deletes = []
    for key in fill_keys[:DELETES]:
        outcome = probe.attempt(lambda key=key: probe.cache.delete(key))
        if outcome["ok"]:
            del probe.stored[key]
        deletes.append(outcome)
    report["deletes_tried"] = len(deletes)
    report["deletes_failed"] = sum(not outcome["ok"] for outcome in deletes)
    report["delete_error"] = next((o["error"] for o in deletes if not o["ok"]), None)

    probe.fill()
    report["evict"] = probe.attempt(lambda: probe.cache.evict("group"))
    if report["evict"]["ok"]:
        for number in range(10):
            probe.stored.pop(f"tagged{number}", None)
    probe.fill()
    report["cull"] = probe.attempt(probe.cache.cull)
    probe.fill()
    report["clear"] = probe.attempt(probe.cache.clear)
    if report["clear"]["ok"]:
        probe.stored.clear()

    report["set_after_space_returns"] = probe.set("after-file", FILE_VALUE) and probe.set(
        "after-inline", INLINE_VALUE
    )
    report["unreadable_after"] = probe.unreadable()
    report["integrity_after"] = probe.integrity()
    report["problems_before_fix"] = probe.check(fix=False)
    report["fix_pass_ran"] = probe.check(fix=True) is not None
    report["problems_after_fix"] = probe.check(fix=False)
    report["orphans_after_fix"], report["partial_after_fix"] = probe.orphans()
    probe.cache.close()
    return report


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], sys.argv[3])))
