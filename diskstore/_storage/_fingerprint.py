"""The fingerprint of a cache's signing secret, recorded so a wrong secret fails at open.

Without it, a process holding another secret (another user, a container, a CI machine that
made a fresh per-user secret) would see every signed entry fail verification, one read at a
time. With it, such a process is stopped when it opens the cache, before it reads anything,
with an error that says how to supply the right secret.

The fingerprint is an HMAC of a fixed label under the secret, so it reveals nothing that a
signed entry in the same database does not already reveal, and it cannot be used to sign.
"""

from __future__ import annotations

import os

from .._common._exceptions import DiskStoreError, SecretMismatchError
from .._values._disk import Disk
from .._values._signing import ENV_VAR, SecretArg, secret_file
from . import _sql
from ._store import Store

#: Name of the row of the ``settings`` table that holds the fingerprint.
SETTING = "secret_fingerprint"
_LABEL = b"diskstore secret fingerprint v1"


def fingerprint(key: bytes) -> str:
    """The fingerprint of the secret *key*: 16 bytes of HMAC-SHA256, as hex."""
    import hashlib  # on first use, not with the package: it loads OpenSSL
    import hmac

    return hmac.new(key, _LABEL, hashlib.sha256).hexdigest()[:32]


def stored_fingerprint(store: Store) -> str | None:
    """The fingerprint recorded in the cache, or ``None`` (signing never used, or older cache)."""
    rows = store.run(_sql.SELECT_SETTING, (SETTING,), retry=True)
    return str(rows[0][0]) if rows and rows[0][0] is not None else None


def _source(secret: SecretArg) -> str:
    if isinstance(secret, (bytes, bytearray, str)) and not isinstance(secret, bool):
        return "the secret= argument"
    if os.environ.get(ENV_VAR):
        return f"the {ENV_VAR} environment variable"
    return f"the secret file {secret_file()}"


def _signed_by(store: Store, disk: Disk) -> bool:
    """Whether the cache's signed entries were signed with *disk*'s secret.

    Checks one signed payload (a cache without any says yes: there is nothing to protect).
    """
    try:
        rows = store.run(_sql.SELECT_SIGNED_SAMPLE, retry=True)
    except DiskStoreError:  # a row that cannot even be read (text that is not UTF-8)
        return False
    if not rows:
        return True
    ns, db_key, raw, mode, value, filename, sig, vsize, size = rows[0]
    try:
        disk.payload(mode, filename, value, ns, db_key, bool(raw), sig, vsize, size)
    except Exception:  # a probe: whatever stops the payload from verifying means "not ours"
        return False
    return True


def reconcile(store: Store, key: bytes, secret: SecretArg, *, read_only: bool, disk: Disk) -> None:
    """Record *key*'s fingerprint in a cache that has none; refuse a cache made with another.

    Raises :class:`SecretMismatchError` before anything is read or deleted. A cache made
    before fingerprints were recorded gets one only when its signed entries verify under
    *key*, so a process with the wrong secret cannot stamp its own fingerprint on it and
    lock the owner out.
    """
    mine = fingerprint(key)
    recorded = stored_fingerprint(store)
    if recorded is None and not read_only and _signed_by(store, disk):
        with store.write(retry=True, quiet=True) as conn:
            con = conn.con
            assert con is not None
            con.execute(_sql.INSERT_SETTING_IF_ABSENT, (SETTING, mine))
        recorded = stored_fingerprint(store)
    import hmac  # loaded by fingerprint() already

    if recorded is None or hmac.compare_digest(recorded, mine):
        return
    raise SecretMismatchError(
        f"the cache in {os.path.dirname(store.path)!r} was created with another signing "
        f"secret (fingerprint {recorded}) than this process has (fingerprint {mine}, from "
        f"{_source(secret)}); nothing was read or deleted. Open it with the secret it was "
        f"created with: pass secret=..., set {ENV_VAR}, or put it in the secret file "
        f"{secret_file()}. To list its keys and metadata without the secret, use "
        "diskstore.inspect_cache(directory) or the command `diskstore keys DIR --inspect`."
    )
