"""What every layer uses: the exception tree, constants and sentinels, the clock,
``Record`` (the import-time stand-in for frozen dataclasses), the counts, callbacks and log
records of hooks, and byte counts and value summaries for people.

Owns no state on disk. Imports nothing from diskstore: every other layer may import it.
"""
