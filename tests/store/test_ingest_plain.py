"""``sciportal ingest`` of a table without sky positions: plain Parquet, still queryable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from sciportal.config import load_config
from sciportal.metadata.store import MetadataStore
from tests.conftest import sciportal
from tests.engines.engine_util import run, server_engine


def test_cli_ingest_without_positions_is_plain_parquet(tmp_path: Path) -> None:
    n = 1500
    rng = np.random.default_rng(9)
    mjd = np.round(rng.uniform(59000, 60000, n), 5)
    flux = np.round(rng.normal(10, 2, n), 4)
    src = tmp_path / "lightcurve.csv"
    lines = ["epoch,band,mjd,flux"] + [f"{i},{'gri'[i % 3]},{mjd[i]},{flux[i]}" for i in range(n)]
    src.write_text("\n".join(lines) + "\n")
    home = tmp_path / "home"
    sciportal(home, "ingest", str(src), "--schema", "lc")

    st = MetadataStore(load_config(home=home, environ={}).metadata_db)
    table = st.get_table("lc.lightcurve")
    assert table is not None and not table.positional and table.nrows == n
    root = Path(table.storage or "")
    assert root == home / "catalogs" / "lc" / "lightcurve" / "v1"
    # plain Parquet: dataset/part-N.parquet and _metadata, no HEALPix layout
    assert sorted(p.name for p in (root / "dataset").iterdir()) == [
        "_common_metadata",
        "_metadata",
        "part-0.parquet",
    ]
    assert not list(root.rglob("Norder=*")) and not (root / "partition_info.csv").exists()
    assert not (root / "properties").exists()
    stored = pq.read_table(root / "dataset" / "part-0.parquet")
    assert "_healpix_29" not in stored.column_names
    assert stored.column_names == [c.name for c in table.columns]
    assert pq.read_metadata(root / "dataset" / "_metadata").num_rows == n
    assert (home / "rd" / "lc.lightcurve.yaml").is_file()

    engine = server_engine(st)
    got = run(
        engine, st, "SELECT COUNT(*) AS k, SUM(flux) AS s FROM lc.lightcurve WHERE band = 'g'"
    )
    (batch,) = list(got)
    g = np.arange(n) % 3 == 0
    assert batch.column("k")[0].as_py() == int(g.sum())
    np.testing.assert_allclose(batch.column("s")[0].as_py(), flux[g].sum(), rtol=1e-9)
