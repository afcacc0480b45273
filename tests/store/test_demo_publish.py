"""The shipped demo-survey descriptor (rd/demo.yaml) publishes and opens in hats."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from sciportal.metadata.store import MetadataStore
from sciportal.metadata.tap_schema import tap_schema_tables
from sciportal.store.publish import publish

RD = Path(__file__).resolve().parents[2] / "rd" / "demo.yaml"


def test_publish_demo_survey(tmp_path: Path) -> None:
    from sciportal.demo import generate

    generate(tmp_path / "sources" / "demo", rows=20_000, seed=3, tiles=False)
    st = MetadataStore(tmp_path / "meta.sqlite")
    report = publish(RD, tmp_path, st)
    names = {t.name for t in report.tables}
    assert "demo.coadd" in names
    import hats

    for tr in report.tables:
        table = st.get_table(tr.name)
        assert table is not None and table.nrows == tr.nrows > 0
        if table.positional:
            cat = hats.read_hats(tr.storage)
            assert cat.catalog_info.total_rows == tr.nrows
            stored = pq.read_schema(Path(tr.storage) / "dataset" / "_common_metadata")
            assert stored.names[1:] == [c.name for c in table.columns]
    tables = {m.name: t for m, t in tap_schema_tables(st)}
    listed = set(tables["tap_schema.tables"].column("table_name").to_pylist())
    assert names <= listed
