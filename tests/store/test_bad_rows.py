"""Bad rows under ``reject`` and ``skip``: both passes agree, failures leave nothing behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from sciportal.errors import IngestError, SciportalError
from sciportal.metadata.store import MetadataStore
from sciportal.store.convert import TableConverter
from sciportal.store.hats import write_hats_catalog
from sciportal.store.publish import publish
from tests.store.store_synth import write_descriptor

N = 200


def _descriptor(home: Path, bad_rows: str, source: str = "../src/a.parquet", **types: str) -> Path:
    mag = types.get("mag", "double")
    return write_descriptor(
        home,
        "x",
        f"""\
schema: x
title: X
tables:
  - name: t
    position: {{ra: ra, dec: dec}}
    partition_rows: 50
    bad_rows: {bad_rows}
    source: {{paths: ["{source}"]}}
    columns:
      - {{name: id, datatype: long, nullable: false}}
      - {{name: ra, datatype: double, unit: deg}}
      - {{name: dec, datatype: double, unit: deg}}
      - {{name: mag, datatype: {mag}, unit: mag}}
""",
    )


def _source(home: Path, **changes: object) -> dict[str, list]:
    cols: dict[str, list] = {
        "id": list(range(N)),
        "ra": np.linspace(1, 300, N).tolist(),
        "dec": np.linspace(-50, 50, N).tolist(),
        "mag": np.linspace(15, 20, N).tolist(),
    }
    for key, value in changes.items():
        name, _, row = key.rpartition("_")
        cols[name][int(row)] = value
    (home / "src").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), home / "src" / "a.parquet")
    return cols


def _stored(root: Path) -> pa.Table:
    return pads.dataset(str(root / "dataset"), format="parquet").to_table().sort_by("id")


def _nothing_left(home: Path) -> None:
    assert not (home / "catalogs").exists(), sorted((home / "catalogs").rglob("*"))


def test_skip_null_in_required_column_of_positional_table(tmp_path: Path) -> None:
    """Pass 1 drops the same rows as pass 2 (it used to count them and fail)."""
    _source(tmp_path, id_5=None, id_150=None)
    st = MetadataStore(tmp_path / "meta.sqlite")
    rep = publish(_descriptor(tmp_path, "skip"), tmp_path, st).tables[0]
    assert rep.nrows == N - 2 and rep.skipped == 2
    assert "row 6: column 'id': null in a non-nullable column" in rep.bad_row_examples[0]
    stored = _stored(rep.storage)
    assert stored.num_rows == N - 2 and stored.column("id").null_count == 0


def test_reject_null_in_required_column_leaves_nothing(tmp_path: Path) -> None:
    _source(tmp_path, id_5=None)
    st = MetadataStore(tmp_path / "meta.sqlite")
    with pytest.raises(IngestError, match=r"a\.parquet: row 6: column 'id': null"):
        publish(_descriptor(tmp_path, "reject"), tmp_path, st)
    assert st.list_tables() == []
    _nothing_left(tmp_path)


def test_pass_mismatch_is_an_ingest_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source that changes between the passes: one-line IngestError, no directories."""
    _source(tmp_path)
    real = TableConverter.batches

    def one_row_less(self: TableConverter, batch_rows: int = 65_536):
        for batch in real(self, batch_rows):
            yield batch.slice(1)

    monkeypatch.setattr(TableConverter, "batches", one_row_less)
    st = MetadataStore(tmp_path / "meta.sqlite")
    with pytest.raises(IngestError, match="pass 1 counted 200 good rows, pass 2 199") as err:
        publish(_descriptor(tmp_path, "skip"), tmp_path, st)
    assert isinstance(err.value, SciportalError) and "\n" not in str(err.value)
    assert st.list_tables() == []
    _nothing_left(tmp_path)


def test_positions_pass_2_did_not_see_is_an_ingest_error(tmp_path: Path) -> None:
    schema = pa.schema([("ra", pa.float64()), ("dec", pa.float64())])
    batch = pa.record_batch([pa.array([10.0, 200.0]), pa.array([0.0, 45.0])], schema=schema)
    with pytest.raises(IngestError, match="pass 2 read positions pass 1 did not"):
        write_hats_catalog(
            tmp_path / "cat",
            schema,
            lambda: iter([(np.array([10.0]), np.array([0.0]))]),
            lambda: iter([batch]),
            name="x.t",
            ra_column="ra",
            dec_column="dec",
            partition_rows=10,
        )


def test_failed_publish_beside_a_live_version_keeps_it(tmp_path: Path) -> None:
    _source(tmp_path)
    st = MetadataStore(tmp_path / "meta.sqlite")
    v1 = publish(_descriptor(tmp_path, "reject"), tmp_path, st).tables[0].storage
    _source(tmp_path, id_7=None)
    with pytest.raises(IngestError):
        publish(_descriptor(tmp_path, "reject"), tmp_path, st)
    assert sorted(p.name for p in v1.parent.iterdir()) == ["v1"]  # no .tmp-v2-*
    table = st.get_table("x.t")
    assert table is not None and table.storage == str(v1) and table.version == 1


def test_staging_of_a_killed_publish_is_removed(tmp_path: Path) -> None:
    _source(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    stale = tmp_path / "catalogs" / "x" / "t" / f".tmp-v1-{int(dead.stdout)}-0123abcd"
    (stale / "dataset").mkdir(parents=True)
    st = MetadataStore(tmp_path / "meta.sqlite")
    publish(_descriptor(tmp_path, "reject"), tmp_path, st)
    assert sorted(p.name for p in stale.parent.iterdir()) == ["v1"]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_unconvertible_value_is_skipped_with_its_reason(tmp_path: Path, fmt: str) -> None:
    cols: dict[str, list] = {
        "id": list(range(N)),
        "ra": [f"{x:.6f}" for x in np.linspace(1, 300, N)],
        "dec": [f"{x:.6f}" for x in np.linspace(-50, 50, N)],
        "mag": [f"{x:.3f}" for x in np.linspace(15, 20, N)],
    }
    cols["mag"][17] = "bright"
    cols["mag"][18] = None if fmt == "parquet" else ""  # null: fine in a nullable column
    cols["ra"][120] = "12h30m"
    (tmp_path / "src").mkdir()
    if fmt == "parquet":
        pq.write_table(pa.table(cols), tmp_path / "src" / "a.parquet")
    else:
        lines = ["id,ra,dec,mag"] + [
            ",".join(str(cols[k][i]) for k in ("id", "ra", "dec", "mag")) for i in range(N)
        ]
        (tmp_path / "src" / "a.csv").write_text("\n".join(lines) + "\n")
    source = f"../src/a.{fmt}"
    st = MetadataStore(tmp_path / "meta.sqlite")
    with pytest.raises(IngestError, match="12h30m"):
        publish(_descriptor(tmp_path, "reject", source), tmp_path, st)
    _nothing_left(tmp_path)
    rep = publish(_descriptor(tmp_path, "skip", source), tmp_path, st).tables[0]
    assert rep.nrows == N - 2 and rep.skipped == 2
    text = " ".join(rep.bad_row_examples)
    assert "row 18: column 'mag': cannot convert 'bright'" in text
    assert "row 121: column 'ra': cannot convert '12h30m'" in text
    stored = _stored(rep.storage)
    assert 17 not in stored.column("id").to_pylist() and 120 not in stored.column("id").to_pylist()
    assert stored.column("mag").null_count == 1  # row 18's empty value
    np.testing.assert_allclose(
        stored.column("mag").to_numpy(zero_copy_only=False)[:17], np.linspace(15, 20, N)[:17],
        atol=1e-3,
    )  # fmt: skip


def test_ra_outside_0_360_is_wrapped_under_skip_and_rejected_otherwise(tmp_path: Path) -> None:
    _source(tmp_path, ra_3=-10.0, ra_4=360.0, ra_5=-1e-20, ra_6=370.0, ra_7=-360.0)
    st = MetadataStore(tmp_path / "meta.sqlite")
    with pytest.raises(IngestError, match=r"row 4: column 'ra': RA .* outside \[0, 360\)"):
        publish(_descriptor(tmp_path, "reject"), tmp_path, st)
    _nothing_left(tmp_path)
    rep = publish(_descriptor(tmp_path, "skip"), tmp_path, st).tables[0]
    assert rep.nrows == N - 1 and rep.skipped == 1  # 370 is not a plausible RA
    assert "row 7: column 'ra'" in rep.bad_row_examples[0]
    stored = _stored(rep.storage)
    ra = dict(zip(stored.column("id").to_pylist(), stored.column("ra").to_pylist(), strict=True))
    assert ra[3] == 350.0 and ra[4] == 0.0 and ra[5] == 0.0 and ra[7] == 0.0
    assert all(0 <= v < 360 for v in ra.values())
    # the spatial index agrees with the wrapped value
    from sciportal.healpix import healpix_29

    hp = stored.column("_healpix_29").to_numpy()
    assert np.array_equal(
        hp, healpix_29(stored.column("ra").to_numpy(), stored.column("dec").to_numpy())
    )
