"""Compositions of tracking and distributed pieces: compare, promote, fetch."""
