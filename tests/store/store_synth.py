"""Synthetic source files for store tests (small, seeded, with a dense spot)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

COLUMNS_YAML = """\
      - {name: id, datatype: long, ucd: "meta.id;meta.main", nullable: false}
      - {name: ra, datatype: double, unit: deg, ucd: "pos.eq.ra;meta.main"}
      - {name: dec, datatype: double, unit: deg, ucd: "pos.eq.dec;meta.main"}
      - {name: mag_g, datatype: float, unit: mag, ucd: "phot.mag;em.opt.B"}
      - {name: flag, datatype: short}
      - {name: band, datatype: char, arraysize: "*"}
"""


def sky(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform on the sphere, with 40% of the rows in a 1-degree blob at (50, -30)."""
    rng = np.random.default_rng(seed)
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    k = int(0.4 * n)
    ra[:k] = rng.normal(50, 1, k) % 360
    dec[:k] = np.clip(rng.normal(-30, 1, k), -90, 90)
    return ra, dec


def source_table(n: int, seed: int, start: int = 0) -> pa.Table:
    ra, dec = sky(n, seed)
    rng = np.random.default_rng(seed + 100)
    return pa.table(
        {
            "id": np.arange(start, start + n, dtype=np.int64),
            "ra": ra,
            "dec": dec,
            "mag_g": rng.normal(21, 1, n).astype(np.float32),
            "flag": rng.integers(0, 4, n).astype(np.int16),
            "band": rng.choice(["g", "r", "i"], n),
        }
    )


def write_descriptor(home: Path, name: str, body: str) -> Path:
    path = home / "rd" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    return path


@pytest.fixture
def parquet_home(tmp_path: Path) -> Path:
    """A data home with three Parquet files (9,000 rows) and a descriptor rd/demo.yaml."""
    src = tmp_path / "sources"
    src.mkdir()
    for i in range(3):
        pq.write_table(source_table(3000, i, 3000 * i), src / f"part-{i}.parquet")
    write_descriptor(
        tmp_path,
        "demo",
        f"""\
schema: demo
title: Demo survey
description: Synthetic objects
tables:
  - name: main
    position: {{ra: ra, dec: dec}}
    partition_rows: 1000
    source:
      paths: ["{{home}}/sources/part-*.parquet"]
    columns:
{COLUMNS_YAML}""",
    )
    return tmp_path
