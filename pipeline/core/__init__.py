"""Shared foundations: map grids, geodesy, physical constants (no I/O)."""
