"""Benchmarks behind ``scenefind bench``: speed targets live here, not in timed unit tests."""
