"""Selfheal: turns production errors and CI failures into validated fixes. Holds the version only."""

__version__ = "0.1.0"
