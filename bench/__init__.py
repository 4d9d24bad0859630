"""Reproducible benchmarks; each prints one result line."""
