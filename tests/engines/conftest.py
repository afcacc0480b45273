"""Fixtures for engine tests (the store tests' synthetic data home)."""

from tests.store.store_synth import parquet_home  # noqa: F401  (fixture re-export)
