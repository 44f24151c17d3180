"""Side-by-side benchmarks of diskstore, diskcache and a bare sqlite3 table.

Run ``python -m benchmarks`` (or ``make bench``); ``--quick`` trades precision for a run
under a minute. Every workload runs all engines on the same seeded operations in one
process run, interleaved in rotating turns so that machine drift hits every engine alike.
Results are printed as a table and written as JSON; ``python -m benchmarks.plot`` draws
the JSON as a PNG for the docs.
"""
