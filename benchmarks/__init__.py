"""Benchmarks for `make bench`: each prints ratios against a baseline from the same run."""
