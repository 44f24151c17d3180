"""Trusting a directory diskcache wrote: ``Cache.adopt_diskcache(trust=True)``.

diskstore opens a diskcache directory in place and reads its raw keys and its bytes and
text values at once. What diskcache pickled is another matter: diskcache stores pickles
unsigned, so loading one runs whatever code it names, and anyone who could write to the
directory could plant one (CVE-2025-69872). Until adopted, such values read as misses.

Adoption is the owner's statement that the directory's contents are trusted:

- every pickled value (``MODE_PICKLE``, inline or in a file) is signed in place, its bytes
  untouched: the tag goes in ``sig``, so diskcache still reads the row, and diskstore loads
  it once the tag verifies;
- every key diskcache pickled (a tuple, say) is loaded, which is what *trust* allows, and
  stored in diskstore's canonical encoding, so ``cache[("a", 1)]`` finds it; diskcache no
  longer finds it under its pickled form (a key diskstore already holds is left as it was);
- when a re-keyed key has the shape of a result diskcache's ``memoize`` stored, the cache
  remembers that, and diskstore's ``memoize`` looks such results up on a miss (see
  ``_functions.py``), so a switched program does not compute them again.

Pickled values are never unpickled here; pickled keys are, with ``trust=True`` only.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._common._exceptions import DiskStoreError, IntegrityError, UntrustedDataError
from .._storage import _sql

if TYPE_CHECKING:
    from ._base import CacheBase

_CHUNK = 500
#: Set in ``diskstore_settings`` once results of diskcache's ``memoize`` were adopted.
LEGACY_MEMOIZE = "diskcache_memoize_keys"


def _pickled_key(key: Any) -> bool:
    """Whether a stored key is diskcache's pickle (protocol 2 or later starts with 0x80)."""
    return type(key) is bytes and key[:1] == b"\x80"


def looks_memoized(key: Any) -> bool:
    """Whether *key* has the shape of diskcache's memoize keys: ``(name, *args, None, ...)``.

    diskcache's ``args_to_key`` starts with the function's full name (or the name given to
    ``memoize``) and separates positional arguments from keyword ones with ``None``.
    """
    return type(key) is tuple and len(key) >= 2 and type(key[0]) is str and None in key[1:]


def adopt(
    cache: CacheBase, *, trust: bool, progress: Callable[[int, int], None] | None = None
) -> int:
    """Sign diskcache's pickles in place and re-key its pickled keys; return how many
    entries changed (an entry whose key and value both changed counts once)."""
    if not isinstance(trust, bool):
        raise TypeError(f"trust must be True or False, not {trust!r}")
    if not trust:
        raise UntrustedDataError(
            f"adopting {cache._directory!r} makes diskstore load the pickles diskcache wrote "
            "there, and diskcache stores pickles unsigned: loading one runs whatever code it "
            "names, so anyone who could write to the directory could run code in this "
            "process (CVE-2025-69872). Nothing was changed. Pass trust=True (the command: "
            "--trust) only if you trust everyone who could write to it."
        )
    if cache._read_only:
        raise DiskStoreError(f"cannot adopt {cache._directory!r}: the cache is read-only")
    store = cache._store
    disk = cache._disk
    signing = disk._signing
    total = int(store.run(_sql.SELECT_MAX_ROWID, retry=True)[0][0])
    changed = 0
    memoized = False
    last = 0
    while True:
        with store.write(retry=True) as conn:
            con = conn.con
            assert con is not None
            rows = con.execute(_sql.SELECT_UNADOPTED, (last, _CHUNK)).fetchall()
            if not rows:
                break
            last = rows[-1][0]
            for rowid, ns, key, raw, stored_mode, value, filename, size in rows:
                touched = False
                if not raw and _pickled_key(key):
                    try:
                        obj = pickle.loads(key)  # trusted: the caller said so
                        new_key, new_raw = disk.put(obj)
                    except Exception:  # a key whose classes are gone: left as it is
                        continue
                    if con.execute(_sql.SELECT_ROW_MODE, (ns, new_key, new_raw)).fetchall():
                        continue
                    con.execute(_sql.REKEY, (ns, new_key, new_raw, rowid))
                    key, raw = new_key, new_raw
                    memoized = memoized or looks_memoized(obj)
                    touched = True
                if stored_mode == _DISKCACHE_PICKLE and signing:
                    try:
                        sig, vsize = disk.sign_diskcache_pickle(
                            value, filename, ns, key, bool(raw), size
                        )
                    except IntegrityError:  # its file is missing or damaged: check() says so
                        continue
                    con.execute(_sql.SET_SIGNATURE, (sig, vsize, rowid))
                    touched = True
                changed += touched
            if memoized:
                con.execute(_sql.upsert_setting(LEGACY_MEMOIZE), (LEGACY_MEMOIZE, 1))
        if progress is not None:
            progress(min(last, total), total)
    tier = cache._shared.tier
    if tier is not None:
        tier.clear()
    if memoized:
        cache._shared.legacy_memoize = True
    return changed


_DISKCACHE_PICKLE = 4
