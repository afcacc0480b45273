"""Fixtures for the ADQL tests: table metadata and a small positional table in DuckDB."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sciportal.engines.duckdb_udfs import register
from sciportal.healpix import healpix_29
from sciportal.metadata.model import Column, Table

N_ROWS = 6000

STARS = Table(
    "s.t",
    (
        Column("id", "long", ucd="meta.id;meta.main", description="identifier"),
        Column("ra", "double", unit="deg", ucd="pos.eq.ra;meta.main", description="RA"),
        Column("dec", "double", unit="deg", ucd="pos.eq.dec;meta.main", description="Dec"),
        Column("mag", "float", unit="mag", ucd="phot.mag", description="magnitude"),
        Column("flags", "int"),
        Column("name", "char", arraysize="*", description="name"),
        Column("Mixed", "double"),
    ),
    ra_column="ra",
    dec_column="dec",
)
OTHER = Table(
    "s.other",
    (
        Column("id", "long"),
        Column("ra", "double", unit="deg"),
        Column("dec", "double", unit="deg"),
        Column("kind", "char", arraysize="*"),
    ),
    ra_column="ra",
    dec_column="dec",
)
REGIONS = Table(
    "s.regions",
    (
        Column("rid", "int"),
        Column("center", "double", arraysize="2", xtype="point", unit="deg"),
        Column("fov", "double", arraysize="3", xtype="circle", unit="deg"),
        Column("shape", "double", arraysize="*", xtype="polygon", unit="deg"),
    ),
)


class Lookup:
    """A TableLookup over a fixed list (names lower-case, as the metadata store keeps them)."""

    def __init__(self, tables: Iterable[Table]) -> None:
        self.tables = {t.name: t for t in tables}
        self.calls: list[str] = []

    def get_table(self, name: str) -> Table | None:
        self.calls.append(name)
        if name in self.tables:
            return self.tables[name]
        hits = [t for t in self.tables.values() if t.short_name == name]
        return hits[0] if len(hits) == 1 else None

    def list_tables(self) -> Iterable[Table]:
        return list(self.tables.values())


@pytest.fixture(scope="session")
def lookup() -> Lookup:
    return Lookup([STARS, OTHER, REGIONS])


def _sky(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    return ra, dec


@pytest.fixture(scope="session")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pa.Table]:
    rng = np.random.default_rng(42)
    ra, dec = _sky(rng, N_ROWS)
    # a dense clump so cones and cross-matches have work to do
    ra[:1500] = rng.uniform(40, 50, 1500)
    dec[:1500] = rng.uniform(-5, 5, 1500)
    stars = pa.table(
        {
            "id": np.arange(N_ROWS, dtype=np.int64),
            "ra": ra,
            "dec": dec,
            "mag": rng.uniform(10, 22, N_ROWS).astype(np.float32),
            "flags": rng.integers(0, 16, N_ROWS).astype(np.int32),
            "name": [f"Star {i}" for i in range(N_ROWS)],
            "Mixed": rng.normal(size=N_ROWS),
            "_healpix_29": healpix_29(ra, dec),
        }
    ).sort_by("_healpix_29")
    ora, odec = (
        ra[:800] + rng.normal(0, 0.3 / 3600, 800),
        dec[:800] + rng.normal(0, 0.3 / 3600, 800),
    )
    other = pa.table(
        {
            "id": np.arange(800, dtype=np.int64),
            "ra": ora % 360,
            "dec": odec,
            "kind": ["a" if i % 3 else "b" for i in range(800)],
            "_healpix_29": healpix_29(ora % 360, odec),
        }
    )
    regions = pa.table(
        {
            "rid": pa.array([1, 2], pa.int32()),
            "center": [[45.0, 0.0], [200.0, -30.0]],
            "fov": [[45.0, 0.0, 2.0], [200.0, -30.0, 5.0]],
            "shape": [
                [44.0, -1.0, 46.0, -1.0, 46.0, 1.0, 44.0, 1.0],
                [190.0, -40, 210, -40, 200, -20],
            ],
        }
    )
    return {"t": stars, "other": other, "regions": regions}


@pytest.fixture(scope="session")
def parquet_dir(tmp_path_factory: pytest.TempPathFactory, data: dict[str, pa.Table]) -> Path:
    d = tmp_path_factory.mktemp("adql_data")
    for name, tab in data.items():
        pq.write_table(tab, d / f"{name}.parquet", row_group_size=500)
    return d


@pytest.fixture()
def con(parquet_dir: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect()
    register(c)
    c.execute("CREATE SCHEMA s")
    for name in ("t", "other", "regions"):
        path = str(parquet_dir / f"{name}.parquet").replace("'", "''")
        c.execute(f"CREATE VIEW s.\"{name}\" AS SELECT * FROM read_parquet('{path}')")
    yield c
    c.close()
