"""Every SQL statement diskstore runs, as named constants.

Values are always bound as parameters. The only text ever formatted into SQL is a PRAGMA
value or an index column, and both come from validated settings or the policy registry.

Namespace 0 is the plain cache. Its rows are found in rowid order by the table itself;
other namespaces have a partial index (``ns != 0``) so that a view's ``clear``, ``len`` and
iteration read only its own rows, while the plain cache pays nothing for that index.
"""

from __future__ import annotations

import functools

SCHEMA_VERSION = 4

#: diskcache's settings, kept in its ``Settings`` table; diskstore's own live in
#: ``diskstore_settings``, so that diskcache, which hands every ``disk_*`` setting to its
#: ``Disk`` and runs every ``sqlite_*`` one as a PRAGMA, never sees a name it does not know.
DISKCACHE_SETTINGS = frozenset(
    (
        "statistics", "tag_index", "eviction_policy", "size_limit", "cull_limit",
        "sqlite_auto_vacuum", "sqlite_cache_size", "sqlite_journal_mode", "sqlite_mmap_size",
        "sqlite_synchronous", "disk_min_file_size", "disk_pickle_protocol",
    )
)  # fmt: skip
#: diskcache's counters, also rows of ``Settings``.
METADATA_KEYS = ("count", "size", "hits", "misses")

# The namespace of a row is encoded in ``raw``: the plain cache's rows have diskcache's 0 or
# 1, a view's rows ``2 * ns + raw``. So the unique index is diskcache's ``(key, raw)``, and
# no statement written for diskcache (``WHERE key = ? AND raw = ?``, its upsert on
# ``(key, raw)``) ever matches another namespace's row. ``ns`` is derived from ``raw``.
# Statements below take ``?1`` = ns, ``?2`` = key, ``?3`` = raw (0 or 1) where they name
# one item, so ``?3 + 2 * ?1`` is the stored ``raw``.
_KEY = "key = ?2 AND raw = ?3 + 2 * ?1"

#: diskcache's ``Cache`` table, exactly as diskcache 5 creates it.
CREATE_CACHE = (
    "CREATE TABLE IF NOT EXISTS Cache ("
    " rowid INTEGER PRIMARY KEY, key BLOB, raw INTEGER, store_time REAL,"
    " expire_time REAL, access_time REAL, access_count INTEGER DEFAULT 0, tag BLOB,"
    " size INTEGER DEFAULT 0, mode INTEGER DEFAULT 0, filename TEXT, value BLOB)"
)
CREATE_SETTINGS = "CREATE TABLE IF NOT EXISTS Settings (key TEXT NOT NULL UNIQUE, value)"
#: The columns diskstore adds to ``Cache`` (name, definition), added when missing.
ADDED_COLUMNS = (
    ("vsize", "INTEGER NOT NULL DEFAULT 0"),
    ("sig", "BLOB"),
    ("gen", "INTEGER NOT NULL DEFAULT 0"),
    ("fn", "INTEGER"),
    ("ns", "INTEGER GENERATED ALWAYS AS (CASE WHEN raw >= 2 THEN raw >> 1 ELSE 0 END) VIRTUAL"),
)
ADD_COLUMN = "ALTER TABLE Cache ADD COLUMN {name} {definition}"
SELECT_CACHE_COLUMNS = "SELECT name FROM pragma_table_xinfo('Cache')"
SELECT_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table'"
# diskcache creates its triggers with IF NOT EXISTS, so these, under its names, are the ones
# both engines run: they count the plain cache in ``Settings`` (as diskcache does, so rows
# that other programs insert or delete are counted too), and the views in
# ``diskstore_namespaces``. An update counts only when ``size`` changes. A size that is not
# a number (a tampered row) counts as 0, so the counters never become NULL; ``check`` recounts.
TRIGGERS = (
    ("Settings_count_insert", "AFTER INSERT ON Cache FOR EACH ROW WHEN NEW.ns = 0 BEGIN"
     " UPDATE Settings SET value = value + 1 WHERE key = 'count'; END"),
    ("Settings_count_delete", "AFTER DELETE ON Cache FOR EACH ROW WHEN OLD.ns = 0 BEGIN"
     " UPDATE Settings SET value = value - 1 WHERE key = 'count'; END"),
    ("Settings_size_insert", "AFTER INSERT ON Cache FOR EACH ROW"
     " WHEN NEW.ns = 0 AND NEW.size != 0 BEGIN"
     " UPDATE Settings SET value = value + coalesce(NEW.size, 0) WHERE key = 'size'; END"),
    ("Settings_size_update", "AFTER UPDATE OF size ON Cache FOR EACH ROW"
     " WHEN NEW.ns = 0 AND NEW.size IS NOT OLD.size BEGIN"
     " UPDATE Settings SET value = value + coalesce(NEW.size, 0) - coalesce(OLD.size, 0)"
     " WHERE key = 'size'; END"),
    ("Settings_size_delete", "AFTER DELETE ON Cache FOR EACH ROW"
     " WHEN OLD.ns = 0 AND OLD.size != 0 BEGIN"
     " UPDATE Settings SET value = value - coalesce(OLD.size, 0) WHERE key = 'size'; END"),
    ("diskstore_ns_insert", "AFTER INSERT ON Cache FOR EACH ROW WHEN NEW.ns != 0 BEGIN"
     " UPDATE diskstore_namespaces SET count = count + 1, size = size + coalesce(NEW.size, 0)"
     " WHERE id = NEW.ns; END"),
    ("diskstore_ns_delete", "AFTER DELETE ON Cache FOR EACH ROW WHEN OLD.ns != 0 BEGIN"
     " UPDATE diskstore_namespaces SET count = count - 1, size = size - coalesce(OLD.size, 0)"
     " WHERE id = OLD.ns; END"),
    ("diskstore_ns_size_update", "AFTER UPDATE OF size ON Cache FOR EACH ROW"
     " WHEN NEW.ns != 0 AND NEW.size IS NOT OLD.size BEGIN"
     " UPDATE diskstore_namespaces"
     " SET size = size + coalesce(NEW.size, 0) - coalesce(OLD.size, 0)"
     " WHERE id = NEW.ns; END"),
)  # fmt: skip
DROP_TRIGGER = "DROP TRIGGER IF EXISTS {name}"
CREATE_TRIGGER = "CREATE TRIGGER {name} {body}"
#: What schema 4 adds beside diskcache's tables, in order; each statement is idempotent.
EXTEND: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS diskstore_settings (name TEXT PRIMARY KEY, value) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS diskstore_namespaces ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " count INTEGER NOT NULL DEFAULT 0,"
    " size INTEGER NOT NULL DEFAULT 0)",
    "INSERT OR IGNORE INTO diskstore_namespaces (id, name) VALUES (0, '')",
    "CREATE TABLE IF NOT EXISTS diskstore_functions ("
    " id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " hits INTEGER NOT NULL DEFAULT 0, misses INTEGER NOT NULL DEFAULT 0)",
    "CREATE UNIQUE INDEX IF NOT EXISTS Cache_key_raw ON Cache (key, raw)",
    "CREATE INDEX IF NOT EXISTS Cache_expire_time ON Cache (expire_time)"
    " WHERE expire_time IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS Cache_ns ON Cache (ns) WHERE ns != 0",
    "CREATE INDEX IF NOT EXISTS Cache_fn ON Cache (fn, ns) WHERE fn IS NOT NULL",
    "INSERT OR IGNORE INTO Settings (key, value) VALUES ('count', 0)",
    "INSERT OR IGNORE INTO Settings (key, value) VALUES ('size', 0)",
    "INSERT OR IGNORE INTO Settings (key, value) VALUES ('hits', 0)",
    "INSERT OR IGNORE INTO Settings (key, value) VALUES ('misses', 0)",
)
#: Counts made exact once, when a database written by diskcache (or a crash) is extended.
RECOUNT = (
    "UPDATE Settings SET value = (SELECT count(*) FROM Cache WHERE ns = 0) WHERE key = 'count'",
    "UPDATE Settings SET value = (SELECT coalesce(sum(size), 0) FROM Cache WHERE ns = 0)"
    " WHERE key = 'size'",
)
# -- diskstore's earlier database (schemas 1-3, ``diskstore.db``, table ``items``) -----------
OLD_NAMESPACES = "SELECT id, name FROM namespaces WHERE id != 0"
OLD_FUNCTIONS = "SELECT id, name{calls} FROM functions"
OLD_SETTINGS = "SELECT name, value FROM settings"
OLD_STATS = "SELECT hits, misses FROM meta WHERE id = 0"
OLD_ITEMS = (
    "SELECT rowid, ns, key, raw, store_time, expire_time, access_time, access_count, tag,"
    " size, mode, filename, value, vsize, sig, gen, {fn} FROM items WHERE rowid > ?"
    " ORDER BY rowid LIMIT ?"
)
IMPORT_NAMESPACE = "INSERT OR IGNORE INTO diskstore_namespaces (id, name) VALUES (?, ?)"
IMPORT_FUNCTION = (
    "INSERT OR IGNORE INTO diskstore_functions (id, name, hits, misses) VALUES (?, ?, ?, ?)"
)
# Rows already in ``cache.db`` win over old ones with the same key.
IMPORT_ITEM = (
    "INSERT OR IGNORE INTO Cache (key, raw, store_time, expire_time, access_time,"
    " access_count, tag, size, mode, filename, value, vsize, sig, gen, fn)"
    " VALUES (?2, ?3 + 2 * ?1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
RECOUNT_NAMESPACES = (
    "UPDATE diskstore_namespaces SET"
    " count = (SELECT count(*) FROM Cache WHERE Cache.ns = diskstore_namespaces.id),"
    " size = (SELECT coalesce(sum(size), 0) FROM Cache WHERE Cache.ns = diskstore_namespaces.id)"
    " WHERE id != 0"
)

#: A row's stored ``mode`` as the code reads it (see _modes.py): diskcache's four modes
#: become the kinds that mean the same, everything else moves down three bits.
MODE = (
    "(CASE mode WHEN 1 THEN 0 WHEN 2 THEN 9 WHEN 3 THEN 10 WHEN 4 THEN 7 WHEN 0 THEN 2048"
    " ELSE (mode >> 3) | CASE WHEN (mode >> 3) & 7 = 6 THEN (mode & 7) << 8 ELSE 0 END END)"
)

GET_USER_VERSION = "PRAGMA user_version"
SET_USER_VERSION = "PRAGMA user_version = {version:d}"
PRAGMA_GET = "PRAGMA {name}"
PRAGMA_SET = "PRAGMA {name} = {value}"
INTEGRITY_CHECK = "PRAGMA integrity_check"
DATA_VERSION = "PRAGMA data_version"
CHECKPOINT_TRUNCATE = "PRAGMA wal_checkpoint(TRUNCATE)"
CHECKPOINT_PASSIVE = "PRAGMA wal_checkpoint(PASSIVE)"
# A write that changes nothing but a page of the log: committed at ``synchronous = FULL``,
# it makes the whole log durable where readers keep a checkpoint from copying it.
REWRITE_COUNT = "UPDATE Settings SET value = value WHERE key = 'count'"

BEGIN = "BEGIN IMMEDIATE"
COMMIT = "COMMIT"
ROLLBACK = "ROLLBACK"
SAVEPOINT = "SAVEPOINT sp{depth:d}"
RELEASE = "RELEASE sp{depth:d}"
ROLLBACK_TO = "ROLLBACK TO sp{depth:d}"

# -- settings and bookkeeping -------------------------------------------------------------
# diskcache's settings and diskstore's own, as one listing (the counters are not settings).
SELECT_SETTINGS = (
    "SELECT key, value FROM Settings WHERE key NOT IN ('count', 'size', 'hits', 'misses')"
    " UNION ALL SELECT name, value FROM diskstore_settings"
)
_UPSERT_DISKCACHE_SETTING = (
    "INSERT INTO Settings (key, value) VALUES (?, ?)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
_UPSERT_OWN_SETTING = (
    "INSERT INTO diskstore_settings (name, value) VALUES (?, ?)"
    " ON CONFLICT (name) DO UPDATE SET value = excluded.value"
)


def upsert_setting(name: str) -> str:
    """The statement that stores setting *name*, in the table where it belongs."""
    return _UPSERT_DISKCACHE_SETTING if name in DISKCACHE_SETTINGS else _UPSERT_OWN_SETTING


SELECT_SETTING = "SELECT value FROM diskstore_settings WHERE name = ?"
INSERT_SETTING_IF_ABSENT = "INSERT OR IGNORE INTO diskstore_settings (name, value) VALUES (?, ?)"
SELECT_SIGNED_SAMPLE = (  # 256: FLAG_SIGNED, stored three bits up (see _modes.py)
    f"SELECT ns, key, raw & 1, {MODE}, value, filename, sig, vsize, size FROM Cache"
    " WHERE mode & 256 LIMIT 1"
)
SELECT_NAMESPACE = "SELECT id FROM diskstore_namespaces WHERE name = ?"
SELECT_FUNCTION = "SELECT id FROM diskstore_functions WHERE name = ?"
INSERT_FUNCTION = "INSERT OR IGNORE INTO diskstore_functions (name) VALUES (?)"
SELECT_FUNCTIONS = "SELECT id, name FROM diskstore_functions ORDER BY name"
SELECT_FUNCTION_CALLS = "SELECT id, name, hits, misses FROM diskstore_functions ORDER BY name"
# Buffered calls of one function, written back: the row is created when it is missing (a
# result can be found before this database ever stored one of the function's results).
ADD_FUNCTION_CALLS = (
    "INSERT INTO diskstore_functions (name, hits, misses) VALUES (?, ?, ?)"
    " ON CONFLICT (name) DO UPDATE SET"
    " hits = hits + excluded.hits, misses = misses + excluded.misses"
)
RESET_FUNCTION_CALLS = "UPDATE diskstore_functions SET hits = 0, misses = 0 WHERE name = ?"
# One memoized function's results in one namespace, through ``Cache_fn``.
COUNT_FUNCTION_ITEMS = "SELECT count(*), coalesce(sum(size), 0) FROM Cache WHERE fn = ? AND ns = ?"
SELECT_FUNCTION_CHUNK = (
    "SELECT rowid, ns, filename, size FROM Cache WHERE fn = ? AND ns = ? LIMIT ?"
)
INSERT_NAMESPACE = "INSERT OR IGNORE INTO diskstore_namespaces (name) VALUES (?)"
# Counts are kept by the triggers above: the plain cache's in ``Settings``, views' in
# ``diskstore_namespaces``.
SELECT_COUNT = (
    "SELECT CASE WHEN ?1 = 0 THEN (SELECT value FROM Settings WHERE key = 'count')"
    " ELSE (SELECT count FROM diskstore_namespaces WHERE id = ?1) END"
)
_TOTAL = (
    "coalesce((SELECT value FROM Settings WHERE key = '{name}'), 0)"
    " + (SELECT coalesce(sum({name}), 0) FROM diskstore_namespaces WHERE id != 0)"
)
SELECT_TOTALS = f"SELECT {_TOTAL.format(name='count')}, {_TOTAL.format(name='size')}"
# Pages in use (free pages are reused before the file grows) plus value-file bytes.
SELECT_VOLUME = (
    "SELECT ((SELECT page_count FROM pragma_page_count())"
    " - (SELECT freelist_count FROM pragma_freelist_count()))"
    " * (SELECT page_size FROM pragma_page_size())"
    f" + {_TOTAL.format(name='size')}"
)
# ``check``: what the counters say, and what the table holds (one pass over it).
SELECT_RECORDED_COUNTS = (
    "SELECT 0, (SELECT value FROM Settings WHERE key = 'count'),"
    " (SELECT value FROM Settings WHERE key = 'size')"
    " UNION ALL SELECT id, count, size FROM diskstore_namespaces WHERE id != 0"
)
SELECT_ACTUAL_COUNTS = "SELECT ns, count(*), coalesce(sum(size), 0) FROM Cache GROUP BY ns"
SET_MAIN_COUNTS = (
    "UPDATE Settings SET value = CASE key WHEN 'count' THEN ? ELSE ? END"
    " WHERE key IN ('count', 'size')"
)
SET_COUNTS = "UPDATE diskstore_namespaces SET count = ?, size = ? WHERE id = ?"
SELECT_STATS = (
    "SELECT (SELECT value FROM Settings WHERE key = 'hits'),"
    " (SELECT value FROM Settings WHERE key = 'misses')"
)
ADD_STATS = (
    "UPDATE Settings SET value = value + CASE key WHEN 'hits' THEN ? ELSE ? END"
    " WHERE key IN ('hits', 'misses')"
)
RESET_STATS = "UPDATE Settings SET value = 0 WHERE key IN ('hits', 'misses')"
SET_STAT = "UPDATE Settings SET value = ? WHERE key = ?"  # key: hits or misses

# -- single items -------------------------------------------------------------------------
# A read fetches only what a native or inline value needs; expiry is checked in Python,
# which is cheaper than binding a timestamp into the statement. A value file's row has no
# ``value``: in its place come the file's columns, as text (NUL, then name, size, decoded
# length and the hex of its tag or checksum, space-separated; ``_rows.file_columns`` reads
# it back), so a file is opened after one statement. Four more columns on every read would
# cost a small ``get`` about 0.5 us; this costs it nothing. Whatever does not read back as
# that (a column of the wrong type, a row with both a file and a value) is read again whole.
FILE_COLUMNS = (
    "CASE WHEN filename IS NULL THEN value WHEN value IS NULL"
    " THEN char(0) || filename || ' ' || size || ' ' || vsize || ' ' || coalesce(hex(sig), '')"
    " END"
)
SELECT_ITEM = f"SELECT rowid, {MODE}, {FILE_COLUMNS}, expire_time FROM Cache WHERE {_KEY}"
SELECT_ITEM_MAIN = (
    f"SELECT rowid, {MODE}, {FILE_COLUMNS}, expire_time FROM Cache WHERE key = ? AND raw = ?"
)
SELECT_ROW_MODE = f"SELECT rowid, {MODE}, filename FROM Cache WHERE {_KEY}"
# Everything a read may need, in one statement: a second statement by rowid could see a
# later version of the row (an overwrite keeps the rowid), so a value file, tag or signature
# is only ever taken together with the value and expiry of the same committed version.
SELECT_ITEM_FULL = (
    f"SELECT rowid, {MODE}, value, expire_time, filename, size, sig, vsize, tag FROM Cache"
    f" WHERE {_KEY}"
)
SELECT_FOR_WRITE = (
    f"SELECT rowid, filename, size, expire_time, tag, {MODE}, value, sig, vsize FROM Cache"
    f" WHERE {_KEY}"
)
SELECT_EXISTS = f"SELECT 1 FROM Cache WHERE {_KEY} AND (expire_time IS NULL OR expire_time > ?4)"
SELECT_STORE_TIME = (
    f"SELECT store_time FROM Cache WHERE {_KEY} AND (expire_time IS NULL OR expire_time > ?4)"
)
# The mode is bound as stored (``_modes.to_row``).
INSERT_ITEM = (
    "INSERT INTO Cache (key, raw, store_time, expire_time, access_time, access_count,"
    " tag, mode, size, vsize, filename, value, sig, fn)"
    " VALUES (?2, ?3 + 2 * ?1, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# The common set in one statement: insert, or overwrite a row that has no value file (whose
# old file would need removing). ``gen`` is 0 on insert and counts overwrites, which tells the
# caller which of the two happened. An empty result means the old row has a file.
UPSERT_ITEM = (
    INSERT_ITEM + " ON CONFLICT (key, raw) DO UPDATE SET"
    " mode = excluded.mode, size = excluded.size, vsize = excluded.vsize,"
    " filename = excluded.filename, value = excluded.value, sig = excluded.sig,"
    " fn = excluded.fn,"
    " expire_time = excluded.expire_time, tag = excluded.tag, access_count = 0,"
    " gen = Cache.gen + 1"
    " WHERE Cache.filename IS NULL"
    " RETURNING rowid, gen"
)
# ``incr`` of a native integer in one statement; operands stay below 2**62 so SQLite never
# overflows into a float. No row back: take the general path.
INCR_NATIVE = (
    "UPDATE Cache SET value = value + ?4"
    f" WHERE {_KEY} AND mode = 1 AND typeof(value) = 'integer'"
    " AND abs(value) < 4611686018427387904 AND (expire_time IS NULL OR expire_time > ?5)"
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
    return f"UPDATE Cache SET {columns} WHERE rowid = ?"


UPDATE_STORED = (
    "UPDATE Cache SET mode = ?, value = ?, sig = ?, vsize = ?, filename = ?, size = ?"
    " WHERE rowid = ?"
)
UPDATE_VALUE = "UPDATE Cache SET mode = ?, value = ?, sig = ?, vsize = ? WHERE rowid = ?"
UPDATE_EXPIRE = "UPDATE Cache SET expire_time = ? WHERE rowid = ?"
UNPIN = "UPDATE Cache SET mode = ? WHERE rowid = ? AND mode = ?"
# An expired row stays until expiry or culling removes it, as in diskcache (so counts agree).
DELETE_KEY = (
    f"DELETE FROM Cache WHERE {_KEY}"
    " AND (expire_time IS NULL OR expire_time > ?4) RETURNING filename, size"
)
DELETE_ROWID = "DELETE FROM Cache WHERE rowid = ? RETURNING ns, filename, size"
DELETE_ROWID_IF = (
    "DELETE FROM Cache WHERE rowid = ? AND mode = ? AND filename IS ? RETURNING ns, filename, size"
)
TOUCH_ACCESS_TIME = "UPDATE Cache SET access_time = max(access_time, ?) WHERE rowid = ?"
TOUCH_STORE_TIME = (
    "UPDATE Cache SET store_time = max(store_time, ?), access_time = max(access_time, ?)"
    " WHERE rowid = ?"
)
TOUCH_ACCESS_COUNT = "UPDATE Cache SET access_count = access_count + ? WHERE rowid = ?"

# -- queues: integer keys (prefix is None) or 'prefix-%015d' text keys ---------------------
# ``?1`` is the namespace, so ``1 + 2 * ?1`` is the stored ``raw`` of a native key.
QUEUE_LAST = (
    "SELECT key FROM Cache WHERE raw = 1 + 2 * ?1 AND key > ?2 AND key < ?3"
    " ORDER BY key DESC LIMIT 1"
)
QUEUE_FIRST = (
    "SELECT key FROM Cache WHERE raw = 1 + 2 * ?1 AND key > ?2 AND key < ?3 ORDER BY key LIMIT 1"
)
QUEUE_ROW_FIRST = (
    f"SELECT rowid, key, {MODE}, value, filename, expire_time, tag, sig, vsize, size FROM Cache"
    " WHERE raw = 1 + 2 * ?1 AND key > ?2 AND key < ?3 ORDER BY key LIMIT 1"
)
QUEUE_ROW_LAST = (
    f"SELECT rowid, key, {MODE}, value, filename, expire_time, tag, sig, vsize, size FROM Cache"
    " WHERE raw = 1 + 2 * ?1 AND key > ?2 AND key < ?3 ORDER BY key DESC LIMIT 1"
)
# The plain cache's rows are found by walking the table itself in rowid order (NOT INDEXED:
# the key index would find them too, but then sort them in a temporary B-tree, reading every
# plain row for one item). The walk stops at the first plain row at that end of the table.
_PEEK = f"SELECT rowid, key, raw & 1, {MODE}, value, filename, expire_time, tag, sig, vsize, size"
PEEKITEM_FIRST = _PEEK + " FROM Cache NOT INDEXED WHERE ns = 0 ORDER BY rowid LIMIT 1"
PEEKITEM_LAST = _PEEK + " FROM Cache NOT INDEXED WHERE ns = 0 ORDER BY rowid DESC LIMIT 1"
PEEKITEM_FIRST_NS = (
    _PEEK + " FROM Cache INDEXED BY Cache_ns WHERE ns = ? AND ns != 0 ORDER BY rowid LIMIT 1"
)
PEEKITEM_LAST_NS = (
    _PEEK + " FROM Cache INDEXED BY Cache_ns WHERE ns = ? AND ns != 0 ORDER BY rowid DESC LIMIT 1"
)

# -- iteration (chunked, so no statement stays open between yields) -----------------------
# Each chunk resumes after the last rowid seen, so a whole iteration reads every row once:
# the plain cache walks the table by rowid, a view walks its partial index, which SQLite
# keeps in (ns, rowid) order. Neither needs a sort. A forward iteration stops at the largest
# rowid that existed when it started (the parameter after the resume point), so it does not
# yield keys inserted after it began; a backward one starts just above that rowid.
ITER_FORWARD = (
    "SELECT rowid, key, raw & 1 FROM Cache NOT INDEXED"
    " WHERE ns = 0 AND rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?"
)
ITER_BACKWARD = (
    "SELECT rowid, key, raw & 1 FROM Cache NOT INDEXED"
    " WHERE ns = 0 AND rowid < ? ORDER BY rowid DESC LIMIT ?"
)
ITER_FORWARD_NS = (
    "SELECT rowid, key, raw & 1 FROM Cache INDEXED BY Cache_ns"
    " WHERE ns = ? AND ns != 0 AND rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?"
)
ITER_BACKWARD_NS = (
    "SELECT rowid, key, raw & 1 FROM Cache INDEXED BY Cache_ns"
    " WHERE ns = ? AND ns != 0 AND rowid < ? ORDER BY rowid DESC LIMIT ?"
)
#: The largest rowid in use: where an iteration that starts now stops.
SELECT_MAX_ROWID = "SELECT coalesce(max(rowid), 0) FROM Cache"
# Reading keys when one may not be UTF-8 text: text keys come back as bytes (decoded in
# Python, where a bad one can be skipped), every other key as itself. Same plans as above.
_SAFE_KEY = "CASE WHEN typeof(key) = 'text' THEN CAST(key AS BLOB) ELSE key END, raw & 1,"
_SAFE_KEY += " typeof(key) = 'text'"
ITER_FORWARD_BYTES = ITER_FORWARD.replace("rowid, key, raw & 1", f"rowid, {_SAFE_KEY}")
ITER_BACKWARD_BYTES = ITER_BACKWARD.replace("rowid, key, raw & 1", f"rowid, {_SAFE_KEY}")
ITER_FORWARD_NS_BYTES = ITER_FORWARD_NS.replace("rowid, key, raw & 1", f"rowid, {_SAFE_KEY}")
ITER_BACKWARD_NS_BYTES = ITER_BACKWARD_NS.replace("rowid, key, raw & 1", f"rowid, {_SAFE_KEY}")
# The same in key order, on the ``(key, raw)`` index. A namespace's rows are those whose
# stored ``raw`` is ``2 * ns`` or ``2 * ns + 1``. The resume point of a text key is bound as
# bytes (the fourth parameter says so) and cast back to text, so a key that is not UTF-8 can
# be passed.
# Forward, leaving out the items expired at a given time (the command line's ``keys``).
_LIVE = " AND (expire_time IS NULL OR expire_time > ?) ORDER BY"
ITER_FORWARD_LIVE = ITER_FORWARD.replace(" ORDER BY", _LIVE)
ITER_FORWARD_NS_LIVE = ITER_FORWARD_NS.replace(" ORDER BY", _LIVE)
ITER_FORWARD_LIVE_BYTES = ITER_FORWARD_BYTES.replace(" ORDER BY", _LIVE)
ITER_FORWARD_NS_LIVE_BYTES = ITER_FORWARD_NS_BYTES.replace(" ORDER BY", _LIVE)
# Items expired at a given time but not yet removed: of one namespace, and of all of them.
COUNT_EXPIRED = "SELECT count(*) FROM Cache WHERE expire_time <= ? AND +ns = ?"
COUNT_EXPIRED_ALL = "SELECT count(*) FROM Cache WHERE expire_time <= ?"
_IN_NS = "raw IN (2 * ?1, 2 * ?1 + 1)"
ITERKEYS_FIRST_BYTES = (
    f"SELECT rowid, {_SAFE_KEY} FROM Cache WHERE {_IN_NS} ORDER BY key, raw LIMIT ?2"
)
ITERKEYS_LAST_BYTES = (
    f"SELECT rowid, {_SAFE_KEY} FROM Cache WHERE {_IN_NS} ORDER BY key DESC, raw DESC LIMIT ?2"
)
ITERKEYS_NEXT_BYTES = (
    f"SELECT rowid, {_SAFE_KEY} FROM Cache"
    f" WHERE {_IN_NS} AND (key, raw) > (CASE WHEN ?4 THEN CAST(?2 AS TEXT) ELSE ?2 END,"
    " ?3 + 2 * ?1) ORDER BY key, raw LIMIT ?5"
)
ITERKEYS_PREV_BYTES = (
    f"SELECT rowid, {_SAFE_KEY} FROM Cache"
    f" WHERE {_IN_NS} AND (key, raw) < (CASE WHEN ?4 THEN CAST(?2 AS TEXT) ELSE ?2 END,"
    " ?3 + 2 * ?1) ORDER BY key DESC, raw DESC LIMIT ?5"
)
ITERKEYS_FIRST = f"SELECT key, raw & 1 FROM Cache WHERE {_IN_NS} ORDER BY key, raw LIMIT ?2"
ITERKEYS_NEXT = (
    f"SELECT key, raw & 1 FROM Cache WHERE {_IN_NS} AND (key, raw) > (?2, ?3 + 2 * ?1)"
    " ORDER BY key, raw LIMIT ?4"
)
ITERKEYS_LAST = (
    f"SELECT key, raw & 1 FROM Cache WHERE {_IN_NS} ORDER BY key DESC, raw DESC LIMIT ?2"
)
ITERKEYS_PREV = (
    f"SELECT key, raw & 1 FROM Cache WHERE {_IN_NS} AND (key, raw) < (?2, ?3 + 2 * ?1)"
    " ORDER BY key DESC, raw DESC LIMIT ?4"
)

# -- bulk removal: each returns what must be unlinked and uncounted -----------------------
# Statements whose victims are not deleted from the front of an index resume after the last
# rowid seen (their last parameter before LIMIT), so rows they pass over are read once per
# call, not once per chunk.
#: What a culling query returns for each victim.
VICTIM_FIELDS = "rowid, ns, filename, size"
_VICTIM = f"SELECT {VICTIM_FIELDS} FROM Cache"
SELECT_NEXT_EXPIRY = "SELECT min(expire_time) FROM Cache WHERE expire_time IS NOT NULL"
SELECT_EXPIRED = (
    _VICTIM + " WHERE expire_time IS NOT NULL AND expire_time < ? ORDER BY expire_time LIMIT ?"
)
# With the tag index (diskcache's ``(tag, rowid)``): a search of it. Without it (the
# default, as in diskcache, so that tagged writes pay no index update), one walk of the
# namespace's rows in rowid order, testing the tag first (``ns`` is computed: testing it
# first for every row doubles the cost of a walk that finds nothing).
SELECT_TAGGED = _VICTIM + " INDEXED BY Cache_tag_rowid WHERE tag = ?2 AND ns = ?1 LIMIT ?3"
SELECT_TAGGED_SCAN = (
    _VICTIM + " NOT INDEXED WHERE tag = ? AND ns = 0 AND rowid > ? ORDER BY rowid LIMIT ?"
)
SELECT_TAGGED_SCAN_VIEW = (
    _VICTIM + " INDEXED BY Cache_ns WHERE ns = ? AND ns != 0 AND tag = ? AND rowid > ?"
    " ORDER BY rowid LIMIT ?"
)
SELECT_NS_ITEMS = _VICTIM + " NOT INDEXED WHERE ns = 0 AND rowid > ? ORDER BY rowid LIMIT ?"
SELECT_NS_ITEMS_VIEW = (
    _VICTIM + " INDEXED BY Cache_ns WHERE ns = ? AND ns != 0 AND rowid > ? ORDER BY rowid LIMIT ?"
)
SELECT_EVICT = _VICTIM + " WHERE mode & ? = 0 ORDER BY {column} LIMIT ?"


@functools.lru_cache(maxsize=64)
def deleting(select: str) -> str:
    """The statement that deletes the victims *select* picks (``rowid`` first, as
    :data:`VICTIM_FIELDS`) and returns their :data:`VICTIM_FIELDS`: one statement per
    batch instead of a read and a delete per row."""
    return (
        f"DELETE FROM Cache WHERE rowid IN (SELECT rowid FROM ({select})) RETURNING {VICTIM_FIELDS}"
    )


# -- indexes that settings switch on and off (diskcache's names) --------------------------
CREATE_TAG_INDEX = "CREATE INDEX IF NOT EXISTS Cache_tag_rowid ON Cache (tag, rowid)"
DROP_TAG_INDEX = "DROP INDEX IF EXISTS Cache_tag_rowid"
TAG_INDEX = "Cache_tag_rowid"
CREATE_POLICY_INDEX = "CREATE INDEX IF NOT EXISTS {name} ON Cache ({column})"
DROP_INDEX = "DROP INDEX IF EXISTS {name}"
SELECT_INDEXES = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'Cache'"
SELECT_TRIGGERS = "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"

# -- check --------------------------------------------------------------------------------
REINDEX = "REINDEX"
SELECT_NATIVE_VALUE = "SELECT value FROM Cache WHERE rowid = ?"
# Text, of a key or a value, comes back as bytes and a flag, so that text that is not UTF-8
# is reported rather than fatal to the whole chunk; every other value comes back as itself.
SELECT_SIGNED_CHUNK = (
    f"SELECT rowid, ns, {_SAFE_KEY}, {MODE},"
    " CASE WHEN typeof(value) = 'text' THEN CAST(value AS BLOB) ELSE value END,"
    " typeof(value) = 'text', filename, sig, vsize, size"
    " FROM Cache NOT INDEXED WHERE rowid > ? ORDER BY rowid LIMIT ?"
)

# -- inspection without the secret (diskstore.inspect_cache) -------------------------------
# Text is read as bytes, so a key or tag that is not UTF-8 is shown rather than fatal.
_INSPECT_COLUMNS = (
    "SELECT rowid, ns, typeof(key),"
    " CASE WHEN typeof(key) = 'text' THEN CAST(key AS BLOB) ELSE key END,"
    " raw & 1, store_time,"
    " expire_time, access_time, access_count,"
    " typeof(tag), CASE WHEN typeof(tag) = 'text' THEN CAST(tag AS BLOB) ELSE tag END,"
    f" {MODE}, size, vsize, length(value)"
    " FROM Cache"
)
INSPECT_CHUNK = _INSPECT_COLUMNS + " WHERE rowid > ? ORDER BY rowid LIMIT ?"
INSPECT_CHUNK_NS = _INSPECT_COLUMNS + " WHERE +ns = ? AND rowid > ? ORDER BY rowid LIMIT ?"
INSPECT_NAMESPACES = (
    "SELECT id, name,"
    " CASE WHEN id = 0 THEN (SELECT value FROM Settings WHERE key = 'count') ELSE count END,"
    " CASE WHEN id = 0 THEN (SELECT value FROM Settings WHERE key = 'size') ELSE size END"
    " FROM diskstore_namespaces ORDER BY id"
)

# -- adopting what diskcache wrote (diskstore._caching._adopt) -----------------------------
# Pickled values not yet signed, and keys diskcache pickled (their pickle starts with 0x80).
SELECT_UNADOPTED = (
    "SELECT rowid, ns, key, raw & 1, mode, value, filename, size FROM Cache NOT INDEXED"
    " WHERE rowid > ? AND ((mode = 4 AND sig IS NULL)"
    " OR (raw & 1 = 0 AND substr(key, 1, 1) = X'80')) ORDER BY rowid LIMIT ?"
)
REKEY = "UPDATE Cache SET key = ?2, raw = ?3 + 2 * ?1 WHERE rowid = ?4"
SET_SIGNATURE = "UPDATE Cache SET sig = ?, vsize = ? WHERE rowid = ?"

# -- reading a diskcache directory (diskstore._storage._migrate); its table is named Cache --
DISKCACHE_COUNT = "SELECT count(*) FROM Cache"
DISKCACHE_HAS_PICKLES = "SELECT 1 FROM Cache WHERE raw = 0 OR mode = 4 LIMIT 1"
DISKCACHE_CHUNK = (
    "SELECT rowid, key, raw, expire_time, tag, mode, filename, value"
    " FROM Cache WHERE rowid > ? ORDER BY rowid LIMIT ?"
)
VACUUM = "VACUUM"
