"""Every SQL statement diskstore runs, as named constants.

Values are always bound as parameters. The only text ever formatted into SQL is a PRAGMA
value or an index column, and both come from validated settings or the policy registry.

Namespace 0 is the plain cache. Its rows are found in rowid order by the table itself;
other namespaces have a partial index (``ns != 0``) so that a view's ``clear``, ``len`` and
iteration read only its own rows, while the plain cache pays nothing for that index.
"""

from __future__ import annotations

import functools

SCHEMA_VERSION = 3

#: Ordered migrations; entry *n* brings a database from user_version *n* to *n + 1*.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value) WITHOUT ROWID",
        "CREATE TABLE IF NOT EXISTS namespaces ("
        " id INTEGER PRIMARY KEY,"
        " name TEXT NOT NULL UNIQUE,"
        " count INTEGER NOT NULL DEFAULT 0,"
        " size INTEGER NOT NULL DEFAULT 0)",
        "INSERT OR IGNORE INTO namespaces (id, name) VALUES (0, '')",
        "CREATE TABLE IF NOT EXISTS meta ("
        " id INTEGER PRIMARY KEY CHECK (id = 0),"
        " hits INTEGER NOT NULL DEFAULT 0,"
        " misses INTEGER NOT NULL DEFAULT 0)",
        "INSERT OR IGNORE INTO meta (id) VALUES (0)",
        "CREATE TABLE IF NOT EXISTS items ("
        " rowid INTEGER PRIMARY KEY,"
        " ns INTEGER NOT NULL,"
        " key BLOB NOT NULL,"
        " raw INTEGER NOT NULL,"
        " store_time REAL NOT NULL,"
        " expire_time REAL,"
        " access_time REAL NOT NULL,"
        " access_count INTEGER NOT NULL DEFAULT 0,"
        " tag BLOB,"
        " mode INTEGER NOT NULL,"
        " size INTEGER NOT NULL DEFAULT 0,"
        " vsize INTEGER NOT NULL DEFAULT 0,"
        " filename TEXT,"
        " value BLOB,"
        " sig BLOB,"
        " gen INTEGER NOT NULL DEFAULT 0)",
        "CREATE UNIQUE INDEX IF NOT EXISTS items_key ON items (ns, key, raw)",
        "CREATE INDEX IF NOT EXISTS items_ns ON items (ns) WHERE ns != 0",
        "CREATE INDEX IF NOT EXISTS items_expire ON items (expire_time)"
        " WHERE expire_time IS NOT NULL",
    ),
    # 2: memoized results are ordinary items; ``fn`` names the function that stored one, so
    # ``cache_clear()`` removes a function's results through an index.
    (
        "CREATE TABLE IF NOT EXISTS functions ( id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
        "ALTER TABLE items ADD COLUMN fn INTEGER",
        "CREATE INDEX IF NOT EXISTS items_fn ON items (fn, ns) WHERE fn IS NOT NULL",
    ),
    # 3: each memoized function's calls, over every process: how many found a stored result
    # and how many ran the function. Counted in memory and written back in batches.
    (
        "ALTER TABLE functions ADD COLUMN hits INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE functions ADD COLUMN misses INTEGER NOT NULL DEFAULT 0",
    ),
)

GET_USER_VERSION = "PRAGMA user_version"
SET_USER_VERSION = "PRAGMA user_version = {version:d}"
PRAGMA_GET = "PRAGMA {name}"
PRAGMA_SET = "PRAGMA {name} = {value}"
INTEGRITY_CHECK = "PRAGMA integrity_check"
DATA_VERSION = "PRAGMA data_version"
CHECKPOINT_TRUNCATE = "PRAGMA wal_checkpoint(TRUNCATE)"

BEGIN = "BEGIN IMMEDIATE"
COMMIT = "COMMIT"
ROLLBACK = "ROLLBACK"
SAVEPOINT = "SAVEPOINT sp{depth:d}"
RELEASE = "RELEASE sp{depth:d}"
ROLLBACK_TO = "ROLLBACK TO sp{depth:d}"

# -- settings and bookkeeping -------------------------------------------------------------
SELECT_SETTINGS = "SELECT name, value FROM settings"
UPSERT_SETTING = (
    "INSERT INTO settings (name, value) VALUES (?, ?)"
    " ON CONFLICT (name) DO UPDATE SET value = excluded.value"
)
SELECT_SETTING = "SELECT value FROM settings WHERE name = ?"
INSERT_SETTING_IF_ABSENT = "INSERT OR IGNORE INTO settings (name, value) VALUES (?, ?)"
SELECT_SIGNED_SAMPLE = (  # 32: FLAG_SIGNED
    "SELECT ns, key, raw, mode, value, filename, sig, vsize, size FROM items"
    " WHERE mode & 32 LIMIT 1"
)
SELECT_NAMESPACE = "SELECT id FROM namespaces WHERE name = ?"
SELECT_FUNCTION = "SELECT id FROM functions WHERE name = ?"
INSERT_FUNCTION = "INSERT OR IGNORE INTO functions (name) VALUES (?)"
SELECT_FUNCTIONS = "SELECT id, name FROM functions ORDER BY name"
SELECT_FUNCTION_CALLS = "SELECT id, name, hits, misses FROM functions ORDER BY name"
# Buffered calls of one function, written back: the row is created when it is missing (a
# result can be found before this database ever stored one of the function's results).
ADD_FUNCTION_CALLS = (
    "INSERT INTO functions (name, hits, misses) VALUES (?, ?, ?)"
    " ON CONFLICT (name) DO UPDATE SET"
    " hits = hits + excluded.hits, misses = misses + excluded.misses"
)
RESET_FUNCTION_CALLS = "UPDATE functions SET hits = 0, misses = 0 WHERE name = ?"
# One memoized function's results in one namespace, through ``items_fn``.
COUNT_FUNCTION_ITEMS = "SELECT count(*), coalesce(sum(size), 0) FROM items WHERE fn = ? AND ns = ?"
SELECT_FUNCTION_CHUNK = (
    "SELECT rowid, ns, filename, size FROM items WHERE fn = ? AND ns = ? LIMIT ?"
)
INSERT_NAMESPACE = "INSERT OR IGNORE INTO namespaces (name) VALUES (?)"
SELECT_COUNT = "SELECT count FROM namespaces WHERE id = ?"
ADD_COUNTS = "UPDATE namespaces SET count = count + ?, size = size + ? WHERE id = ?"
SELECT_TOTALS = "SELECT coalesce(sum(count), 0), coalesce(sum(size), 0) FROM namespaces"
# Pages in use (free pages are reused before the file grows) plus value-file bytes.
SELECT_VOLUME = (
    "SELECT ((SELECT page_count FROM pragma_page_count())"
    " - (SELECT freelist_count FROM pragma_freelist_count()))"
    " * (SELECT page_size FROM pragma_page_size())"
    " + (SELECT coalesce(sum(size), 0) FROM namespaces)"
)
SELECT_ACTUAL_COUNTS = (
    "SELECT n.id, n.count, n.size, count(i.rowid), coalesce(sum(i.size), 0)"
    " FROM namespaces n LEFT JOIN items i ON i.ns = n.id GROUP BY n.id"
)
SET_COUNTS = "UPDATE namespaces SET count = ?, size = ? WHERE id = ?"
SELECT_STATS = "SELECT hits, misses FROM meta WHERE id = 0"
ADD_STATS = "UPDATE meta SET hits = hits + ?, misses = misses + ? WHERE id = 0"
RESET_STATS = "UPDATE meta SET hits = 0, misses = 0 WHERE id = 0"
SET_STAT = "UPDATE meta SET {name} = ? WHERE id = 0"  # name: hits or misses

# -- single items -------------------------------------------------------------------------
# A read fetches only what a native or inline value needs; expiry is checked in Python,
# which is cheaper than binding a timestamp into the statement.
SELECT_ITEM = (
    "SELECT rowid, mode, value, expire_time FROM items WHERE ns = ? AND key = ? AND raw = ?"
)
SELECT_ITEM_MAIN = (
    "SELECT rowid, mode, value, expire_time FROM items WHERE ns = 0 AND key = ? AND raw = ?"
)
SELECT_ROW_MODE = "SELECT rowid, mode, filename FROM items WHERE ns = ? AND key = ? AND raw = ?"
# Everything a read may need, in one statement: a second statement by rowid could see a
# later version of the row (an overwrite keeps the rowid), so a value file, tag or signature
# is only ever taken together with the value and expiry of the same committed version.
SELECT_ITEM_FULL = (
    "SELECT rowid, mode, value, expire_time, filename, size, tag, sig, vsize FROM items"
    " WHERE ns = ? AND key = ? AND raw = ?"
)
SELECT_FOR_WRITE = (
    "SELECT rowid, filename, size, expire_time, tag, mode, value, sig, vsize FROM items"
    " WHERE ns = ? AND key = ? AND raw = ?"
)
SELECT_EXISTS = (
    "SELECT 1 FROM items"
    " WHERE ns = ? AND key = ? AND raw = ? AND (expire_time IS NULL OR expire_time > ?)"
)
SELECT_STORE_TIME = (
    "SELECT store_time FROM items"
    " WHERE ns = ? AND key = ? AND raw = ? AND (expire_time IS NULL OR expire_time > ?)"
)
INSERT_ITEM = (
    "INSERT INTO items (ns, key, raw, store_time, expire_time, access_time, access_count,"
    " tag, mode, size, vsize, filename, value, sig, fn)"
    " VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# The common set in one statement: insert, or overwrite a row that has no value file (whose
# old file would need removing). ``gen`` is 0 on insert and counts overwrites, which tells the
# caller which of the two happened. An empty result means the old row has a file.
UPSERT_ITEM = (
    "INSERT INTO items (ns, key, raw, store_time, expire_time, access_time, access_count,"
    " tag, mode, size, vsize, filename, value, sig, fn)"
    " VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (ns, key, raw) DO UPDATE SET"
    " mode = excluded.mode, size = excluded.size, vsize = excluded.vsize,"
    " filename = excluded.filename, value = excluded.value, sig = excluded.sig,"
    " fn = excluded.fn,"
    " expire_time = excluded.expire_time, tag = excluded.tag, access_count = 0,"
    " gen = items.gen + 1"
    " WHERE items.filename IS NULL"
    " RETURNING rowid, gen"
)
# ``incr`` of a native integer in one statement; operands stay below 2**62 so SQLite never
# overflows into a float. No row back: take the general path.
INCR_NATIVE = (
    "UPDATE items SET value = value + ?"
    " WHERE ns = ? AND key = ? AND raw = ? AND mode = 0 AND typeof(value) = 'integer'"
    " AND abs(value) < 4611686018427387904 AND (expire_time IS NULL OR expire_time > ?)"
    " RETURNING value"
)
# An overwrite names only the columns whose values change. ``store_time`` and
# ``access_time`` are not among them: they are recorded in memory and written back in
# batches (see _bookkeeping.py), because a changed timestamp costs a page write (and an
# index update under the policies that order by it) on every set. When the new value's
# bytes equal the old ones, SQLite then writes no page at all.
_UPDATE_FIXED = "mode = ?, size = ?, vsize = ?, filename = ?, value = ?, sig = ?, fn = ?"


@functools.cache
def update_item(expire: bool, tag: bool, reset_count: bool) -> str:
    """The overwrite statement: fixed columns, then expire_time and tag if they change."""
    columns = _UPDATE_FIXED
    if expire:
        columns += ", expire_time = ?"
    if tag:
        columns += ", tag = ?"
    if reset_count:
        columns += ", access_count = 0"
    return f"UPDATE items SET {columns} WHERE rowid = ?"


UPDATE_STORED = (
    "UPDATE items SET mode = ?, value = ?, sig = ?, vsize = ?, filename = ?, size = ?"
    " WHERE rowid = ?"
)
UPDATE_VALUE = "UPDATE items SET mode = ?, value = ?, sig = ?, vsize = ? WHERE rowid = ?"
UPDATE_EXPIRE = "UPDATE items SET expire_time = ? WHERE rowid = ?"
UNPIN = "UPDATE items SET mode = mode & ~? WHERE rowid = ?"
# An expired row stays until expiry or culling removes it, as in diskcache (so counts agree).
DELETE_KEY = (
    "DELETE FROM items WHERE ns = ? AND key = ? AND raw = ?"
    " AND (expire_time IS NULL OR expire_time > ?) RETURNING filename, size"
)
DELETE_ROWID = "DELETE FROM items WHERE rowid = ? RETURNING ns, filename, size"
DELETE_ROWID_IF = (
    "DELETE FROM items WHERE rowid = ? AND mode = ? AND filename IS ? RETURNING ns, filename, size"
)
TOUCH_ACCESS_TIME = "UPDATE items SET access_time = max(access_time, ?) WHERE rowid = ?"
TOUCH_STORE_TIME = (
    "UPDATE items SET store_time = max(store_time, ?), access_time = max(access_time, ?)"
    " WHERE rowid = ?"
)
TOUCH_ACCESS_COUNT = "UPDATE items SET access_count = access_count + ? WHERE rowid = ?"

# -- queues: integer keys (prefix is None) or 'prefix-%015d' text keys ---------------------
QUEUE_LAST = (
    "SELECT key FROM items WHERE ns = ? AND raw = 1 AND key > ? AND key < ?"
    " ORDER BY key DESC LIMIT 1"
)
QUEUE_FIRST = (
    "SELECT key FROM items WHERE ns = ? AND raw = 1 AND key > ? AND key < ? ORDER BY key LIMIT 1"
)
QUEUE_ROW_FIRST = (
    "SELECT rowid, key, mode, value, filename, expire_time, tag, sig, vsize, size FROM items"
    " WHERE ns = ? AND raw = 1 AND key > ? AND key < ? ORDER BY key LIMIT 1"
)
QUEUE_ROW_LAST = (
    "SELECT rowid, key, mode, value, filename, expire_time, tag, sig, vsize, size FROM items"
    " WHERE ns = ? AND raw = 1 AND key > ? AND key < ? ORDER BY key DESC LIMIT 1"
)
# The plain cache's rows are found by walking the table itself in rowid order (NOT INDEXED:
# the key index would find them too, but then sort them in a temporary B-tree, reading every
# plain row for one item). The walk stops at the first plain row at that end of the table.
PEEKITEM_FIRST = (
    "SELECT rowid, key, raw, mode, value, filename, expire_time, tag, sig, vsize, size"
    " FROM items NOT INDEXED WHERE ns = 0 ORDER BY rowid LIMIT 1"
)
PEEKITEM_LAST = (
    "SELECT rowid, key, raw, mode, value, filename, expire_time, tag, sig, vsize, size"
    " FROM items NOT INDEXED WHERE ns = 0 ORDER BY rowid DESC LIMIT 1"
)
PEEKITEM_FIRST_NS = PEEKITEM_FIRST.replace(
    "NOT INDEXED WHERE ns = 0", "INDEXED BY items_ns WHERE ns = ? AND ns != 0"
)
PEEKITEM_LAST_NS = PEEKITEM_LAST.replace(
    "NOT INDEXED WHERE ns = 0", "INDEXED BY items_ns WHERE ns = ? AND ns != 0"
)

# -- iteration (chunked, so no statement stays open between yields) -----------------------
# Each chunk resumes after the last rowid seen, so a whole iteration reads every row once:
# the plain cache walks the table by rowid, a view walks its partial index, which SQLite
# keeps in (ns, rowid) order. Neither needs a sort. A forward iteration stops at the largest
# rowid that existed when it started (the parameter after the resume point), so it does not
# yield keys inserted after it began; a backward one starts just above that rowid.
ITER_FORWARD = (
    "SELECT rowid, key, raw FROM items NOT INDEXED"
    " WHERE ns = 0 AND rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?"
)
ITER_BACKWARD = (
    "SELECT rowid, key, raw FROM items NOT INDEXED"
    " WHERE ns = 0 AND rowid < ? ORDER BY rowid DESC LIMIT ?"
)
ITER_FORWARD_NS = (
    "SELECT rowid, key, raw FROM items INDEXED BY items_ns"
    " WHERE ns = ? AND ns != 0 AND rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?"
)
ITER_BACKWARD_NS = (
    "SELECT rowid, key, raw FROM items INDEXED BY items_ns"
    " WHERE ns = ? AND ns != 0 AND rowid < ? ORDER BY rowid DESC LIMIT ?"
)
#: The largest rowid in use: where an iteration that starts now stops.
SELECT_MAX_ROWID = "SELECT coalesce(max(rowid), 0) FROM items"
# Reading keys when one may not be UTF-8 text: text keys come back as bytes (decoded in
# Python, where a bad one can be skipped), every other key as itself. Same plans as above.
_SAFE_KEY = "CASE WHEN typeof(key) = 'text' THEN CAST(key AS BLOB) ELSE key END, raw,"
_SAFE_KEY += " typeof(key) = 'text'"
ITER_FORWARD_BYTES = ITER_FORWARD.replace("rowid, key, raw", f"rowid, {_SAFE_KEY}")
ITER_BACKWARD_BYTES = ITER_BACKWARD.replace("rowid, key, raw", f"rowid, {_SAFE_KEY}")
ITER_FORWARD_NS_BYTES = ITER_FORWARD_NS.replace("rowid, key, raw", f"rowid, {_SAFE_KEY}")
ITER_BACKWARD_NS_BYTES = ITER_BACKWARD_NS.replace("rowid, key, raw", f"rowid, {_SAFE_KEY}")
# Forward, leaving out the items expired at a given time (the command line's ``keys``).
_LIVE = " AND (expire_time IS NULL OR expire_time > ?) ORDER BY"
ITER_FORWARD_LIVE = ITER_FORWARD.replace(" ORDER BY", _LIVE)
ITER_FORWARD_NS_LIVE = ITER_FORWARD_NS.replace(" ORDER BY", _LIVE)
ITER_FORWARD_LIVE_BYTES = ITER_FORWARD_BYTES.replace(" ORDER BY", _LIVE)
ITER_FORWARD_NS_LIVE_BYTES = ITER_FORWARD_NS_BYTES.replace(" ORDER BY", _LIVE)
# Items expired at a given time but not yet removed: of one namespace, and of all of them.
COUNT_EXPIRED = "SELECT count(*) FROM items WHERE expire_time <= ? AND +ns = ?"
COUNT_EXPIRED_ALL = "SELECT count(*) FROM items WHERE expire_time <= ?"
# The same in key order. The resume point of a text key is bound as bytes (the fourth
# parameter says so) and cast back to text, so a key that is not UTF-8 can be passed.
ITERKEYS_FIRST_BYTES = (
    f"SELECT rowid, {_SAFE_KEY} FROM items WHERE ns = ? ORDER BY key, raw LIMIT ?"
)
ITERKEYS_LAST_BYTES = (
    f"SELECT rowid, {_SAFE_KEY} FROM items WHERE ns = ? ORDER BY key DESC, raw DESC LIMIT ?"
)
ITERKEYS_NEXT_BYTES = (
    f"SELECT rowid, {_SAFE_KEY} FROM items"
    " WHERE ns = ?1 AND (key, raw) > (CASE WHEN ?4 THEN CAST(?2 AS TEXT) ELSE ?2 END, ?3)"
    " ORDER BY key, raw LIMIT ?5"
)
ITERKEYS_PREV_BYTES = (
    f"SELECT rowid, {_SAFE_KEY} FROM items"
    " WHERE ns = ?1 AND (key, raw) < (CASE WHEN ?4 THEN CAST(?2 AS TEXT) ELSE ?2 END, ?3)"
    " ORDER BY key DESC, raw DESC LIMIT ?5"
)
ITERKEYS_FIRST = "SELECT key, raw FROM items WHERE ns = ? ORDER BY key, raw LIMIT ?"
ITERKEYS_NEXT = (
    "SELECT key, raw FROM items WHERE ns = ? AND (key, raw) > (?, ?) ORDER BY key, raw LIMIT ?"
)
ITERKEYS_LAST = "SELECT key, raw FROM items WHERE ns = ? ORDER BY key DESC, raw DESC LIMIT ?"
ITERKEYS_PREV = (
    "SELECT key, raw FROM items WHERE ns = ? AND (key, raw) < (?, ?)"
    " ORDER BY key DESC, raw DESC LIMIT ?"
)

# -- bulk removal: each returns what must be unlinked and uncounted -----------------------
# Statements whose victims are not deleted from the front of an index resume after the last
# rowid seen (their last parameter before LIMIT), so rows they pass over are read once per
# call, not once per chunk.
#: What a culling query returns for each victim.
VICTIM_FIELDS = "rowid, ns, filename, size"
_VICTIM = f"SELECT {VICTIM_FIELDS} FROM items"
SELECT_NEXT_EXPIRY = "SELECT min(expire_time) FROM items WHERE expire_time IS NOT NULL"
SELECT_EXPIRED = (
    _VICTIM + " WHERE expire_time IS NOT NULL AND expire_time < ? ORDER BY expire_time LIMIT ?"
)
# With the tag index: a search of it. Without it (the default, as in diskcache, so that
# tagged writes pay no index update), one walk of the namespace's rows in rowid order.
SELECT_TAGGED = _VICTIM + " WHERE ns = ? AND tag = ? LIMIT ?"
SELECT_TAGGED_SCAN = (
    _VICTIM + " NOT INDEXED WHERE ns = 0 AND tag = ? AND rowid > ? ORDER BY rowid LIMIT ?"
)
SELECT_TAGGED_SCAN_VIEW = (
    _VICTIM + " INDEXED BY items_ns WHERE ns = ? AND ns != 0 AND tag = ? AND rowid > ?"
    " ORDER BY rowid LIMIT ?"
)
SELECT_NS_ITEMS = _VICTIM + " NOT INDEXED WHERE ns = 0 AND rowid > ? ORDER BY rowid LIMIT ?"
SELECT_NS_ITEMS_VIEW = (
    _VICTIM + " INDEXED BY items_ns WHERE ns = ? AND ns != 0 AND rowid > ? ORDER BY rowid LIMIT ?"
)
SELECT_EVICT = _VICTIM + " WHERE mode & ? = 0 ORDER BY {column} LIMIT ?"
DELETE_ROWIDS = "DELETE FROM items WHERE rowid = ?"

# -- indexes that settings switch on and off ----------------------------------------------
CREATE_TAG_INDEX = "CREATE INDEX IF NOT EXISTS items_tag ON items (ns, tag) WHERE tag IS NOT NULL"
DROP_TAG_INDEX = "DROP INDEX IF EXISTS items_tag"
CREATE_POLICY_INDEX = "CREATE INDEX IF NOT EXISTS {name} ON items ({column})"
DROP_INDEX = "DROP INDEX IF EXISTS {name}"
SELECT_INDEXES = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'items'"

# -- check --------------------------------------------------------------------------------
REINDEX = "REINDEX"
SELECT_NATIVE_VALUE = "SELECT value FROM items WHERE rowid = ?"
SELECT_SIGNED_CHUNK = (
    f"SELECT rowid, ns, {_SAFE_KEY}, mode, CAST(value AS BLOB), filename, sig, vsize, size"
    " FROM items NOT INDEXED WHERE rowid > ? ORDER BY rowid LIMIT ?"
)

# -- inspection without the secret (diskstore.inspect_cache) -------------------------------
# Text is read as bytes, so a key or tag that is not UTF-8 is shown rather than fatal.
_INSPECT_COLUMNS = (
    "SELECT rowid, ns, typeof(key),"
    " CASE WHEN typeof(key) = 'text' THEN CAST(key AS BLOB) ELSE key END,"
    " raw, store_time,"
    " expire_time, access_time, access_count,"
    " typeof(tag), CASE WHEN typeof(tag) = 'text' THEN CAST(tag AS BLOB) ELSE tag END,"
    " mode, size, vsize, length(value)"
    " FROM items"
)
INSPECT_CHUNK = _INSPECT_COLUMNS + " WHERE rowid > ? ORDER BY rowid LIMIT ?"
INSPECT_CHUNK_NS = _INSPECT_COLUMNS + " WHERE +ns = ? AND rowid > ? ORDER BY rowid LIMIT ?"
INSPECT_NAMESPACES = "SELECT id, name, count, size FROM namespaces ORDER BY id"

# -- reading a diskcache directory (diskstore._migrate); its table is named Cache ----------
DISKCACHE_COUNT = "SELECT count(*) FROM Cache"
DISKCACHE_HAS_PICKLES = "SELECT 1 FROM Cache WHERE raw = 0 OR mode = 4 LIMIT 1"
DISKCACHE_CHUNK = (
    "SELECT rowid, key, raw, expire_time, tag, mode, filename, value"
    " FROM Cache WHERE rowid > ? ORDER BY rowid LIMIT ?"
)
VACUUM = "VACUUM"
