"""Files beside the database: value files (atomic writes, safe opening, removal), the
order of durable writes, the space reserve, the lease, what kind of filesystem a directory
is on, checksums of value files, the shared change counter, and the crash points of the
fault tests.

Knows nothing of SQLite or of how a value is encoded. May import ``_common`` only.
"""
