"""Selfheal: turns production errors and CI failures into validated fixes (version only)."""

__version__ = "0.1.0"
