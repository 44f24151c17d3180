"""Reliability tests: crashes, full disks, forks, concurrency and bad input."""
