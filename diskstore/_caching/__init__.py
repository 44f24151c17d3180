"""``Cache`` and its parts: shared state and row writes, reads through the memory
tier, arithmetic, queues, iteration, check, maintenance, adopting diskcache's data,
diskcache's private names, the directory and ``Disk`` set up, and what memoize asks of a
cache.

May import every layer below it: ``_memo``, ``_storage``, ``_values``, ``_fs``,
``_common``.
"""
