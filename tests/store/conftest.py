"""Fixtures for store tests (helpers live in store_synth.py)."""

from tests.store.store_synth import parquet_home  # noqa: F401  (fixture re-export)
