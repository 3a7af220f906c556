"""Carry out a decision: locally (a git branch) or on GitHub (branch, PR, check run, merge)."""
