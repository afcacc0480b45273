"""The DuckDB engine as the server builds it, and ADQL through the server's translation path."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from sciportal import adql
from sciportal.engines import duckdb_udfs
from sciportal.engines.duckdb_engine import DuckDBEngine, QueryResult
from sciportal.metadata.store import MetadataStore
from sciportal.metadata.tap_schema import tap_schema_tables
from sciportal.services.tap import Catalog


def server_engine(store: MetadataStore, **kw: Any) -> DuckDBEngine:
    """An engine over ``store`` built like ``web.app.build_app`` builds it."""

    def tables() -> list[tuple[Any, pa.Table | None]]:
        out: list[tuple[Any, pa.Table | None]] = [(t, None) for t in store.list_tables()]
        out.extend(tap_schema_tables(store, None, ()))
        return out

    return DuckDBEngine(tables, register_udfs=duckdb_udfs.register, **kw)


def translate(engine: DuckDBEngine, store: MetadataStore, query: str) -> adql.Translation:
    """ADQL -> DuckDB SQL as ``TapService.prepare`` does it (the engine's pruning hook)."""
    catalog = Catalog(store.list_tables(), {})
    return adql.translate(query, catalog, "duckdb", table_sql=engine.table_sql({}))


def run(engine: DuckDBEngine, store: MetadataStore, query: str) -> QueryResult:
    """Translate and start a query, as the sync TAP endpoint does."""
    return engine.run(translate(engine, store, query).sql)


def scans(profile: dict[str, Any]) -> list[dict[str, Any]]:
    """The READ_PARQUET operators of a DuckDB JSON profile."""
    out = []
    todo = list(profile.get("operator", profile.get("children", [])))
    while todo:
        op = todo.pop()
        if op.get("extra_info", {}).get("Function") == "READ_PARQUET":
            out.append(op)
        todo.extend(op.get("children", []))
    return out


def run_profiled(engine: DuckDBEngine, sql: str, profile_path: Any) -> tuple[pa.Table, dict]:
    """Run ``sql`` through ``engine.run`` with DuckDB's JSON profiling on; (rows, profile)."""
    import json

    setup = f"SET enable_profiling = 'json'; SET profiling_output = '{profile_path}'; "
    result = engine.run(setup + sql)
    assert result.schema is not None
    table = pa.Table.from_batches(list(result), schema=result.schema)
    return table, json.loads(open(profile_path).read())
