"""``memoize`` over any backend: the decorator and its wrapper protocol, call keys,
content hashing, single flight (threads, byte-range locks across processes), recent results
kept in memory, results by age, and the small protocol a backend provides.

Works on the backend protocol, never on SQLite: it may import ``_values``, ``_fs`` and
``_common``, not ``_storage`` (the two are independent).
"""
