"""Benchmarks: speed and memory targets, measured by `python -m bench NAME` (see bench/README.md)."""
