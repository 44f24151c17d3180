"""The SQLite database: every SQL statement, the schema and its versions, upgrades
from earlier layouts, connections and the write transaction, buffered bookkeeping, the
secret's fingerprint, inspection without the secret, copying items in from another
directory, and the settings and eviction policies the database records.

Knows nothing of ``Cache``. May import ``_values``, ``_fs`` and ``_common``.
"""
