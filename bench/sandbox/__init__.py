"""Sandbox benchmark: `python -m bench.sandbox`; see run.py."""
