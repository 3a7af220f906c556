"""Carry out a decision: locally (a git branch in the user's repository) or on GitHub."""
