"""Fixtures for store tests (helpers live in store_synth.py)."""

from store_synth import parquet_home  # noqa: F401  (fixture re-export)
