"""Re-publishing a table while a query streams from the old version."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sciportal.engines import duckdb_engine
from sciportal.errors import QueryError
from sciportal.metadata.store import MetadataStore
from sciportal.store.publish import cleanup_versions, publish, unpublish
from tests.engines.engine_util import run, server_engine, translate
from tests.store.store_synth import source_table

# a tiny result buffer: DuckDB then reads the files as the client consumes the
# batches (by default it runs ahead by 10 MiB, all of these small tables)
LAZY = "SET streaming_buffer_size = '1KB'; "
CONE = "SELECT id FROM demo.main WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE(50, -30, 1))"


def _ids(batches: list[pa.RecordBatch]) -> list[int]:
    return [i for b in batches for i in b.column("id").to_pylist()]


def _replace_sources(home: Path, rows: int, start: int) -> None:
    for old in (home / "sources").glob("*.parquet"):
        old.unlink()
    pq.write_table(source_table(rows, 42, start), home / "sources" / "part-0.parquet")


def test_query_on_v1_finishes_after_republish(
    parquet_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(duckdb_engine, "BATCH_ROWS", 500)  # many batches from 9,000 rows
    st = MetadataStore(parquet_home / "meta.sqlite")
    rd = parquet_home / "rd" / "demo.yaml"
    v1 = publish(rd, parquet_home, st).tables[0].storage
    engine = server_engine(st, threads=1)
    generation = st.generation()

    full = engine.run(LAZY + translate(engine, st, "SELECT id, ra, dec, mag_g FROM demo.main").sql)
    cone = engine.run(translate(engine, st, CONE).sql)
    cone_v1 = _ids(list(cone))
    late = translate(engine, st, CONE)  # translated on v1, started after the refresh
    it = iter(full)
    first = [next(it)]
    assert first[0].num_rows == 500

    _replace_sources(parquet_home, 4000, 100_000)
    v2 = publish(rd, parquet_home, st).tables[0].storage
    assert st.generation() > generation
    engine.refresh()  # what the server does when it sees a new generation
    late_result = engine.run(late.sql)
    in_use = engine.storages_in_use()
    assert {str(v1), str(v2)} <= in_use
    assert cleanup_versions(st, in_use=engine.storages_in_use) == []
    assert v1.exists()

    rest = list(it)
    ids = _ids(first + rest)
    assert len(ids) == 9000 and sorted(ids) == list(range(9000))
    assert sorted(_ids(list(late_result))) == sorted(cone_v1)

    new = _ids(list(run(engine, st, "SELECT id FROM demo.main")))
    assert sorted(new) == list(range(100_000, 104_000))
    cone_v2 = _ids(list(run(engine, st, CONE)))
    assert cone_v2 and min(cone_v2) >= 100_000

    # no query reads v1 any more: the clean-up may delete it, and keeps v2
    assert engine.storages_in_use() == {str(v2)}
    assert cleanup_versions(st, in_use=engine.storages_in_use) == [v1]
    assert not v1.exists() and v2.exists()
    assert [v.version for v in st.versions("demo.main")] == [2]


def test_deleting_v1_under_a_running_query_breaks_it(
    parquet_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control for the test above: the query really reads v1 after the re-publish."""
    monkeypatch.setattr(duckdb_engine, "BATCH_ROWS", 500)
    st = MetadataStore(parquet_home / "meta.sqlite")
    rd = parquet_home / "rd" / "demo.yaml"
    v1 = publish(rd, parquet_home, st).tables[0].storage
    engine = server_engine(st, threads=1)
    full = engine.run(LAZY + translate(engine, st, "SELECT id, ra, dec, mag_g FROM demo.main").sql)
    it = iter(full)
    next(it)
    publish(rd, parquet_home, st)
    engine.refresh()
    assert cleanup_versions(st) == [v1]  # no in_use: the files go
    with pytest.raises(QueryError, match="No such file"):
        list(it)


def test_abandoned_result_unpins(parquet_home: Path) -> None:
    st = MetadataStore(parquet_home / "meta.sqlite")
    rd = parquet_home / "rd" / "demo.yaml"
    v1 = publish(rd, parquet_home, st).tables[0].storage
    engine = server_engine(st)
    result = run(engine, st, "SELECT id FROM demo.main")
    publish(rd, parquet_home, st)
    engine.refresh()
    assert str(v1) in engine.storages_in_use()
    del result
    import gc

    gc.collect()
    assert str(v1) not in engine.storages_in_use()


def test_grace_period_keeps_recently_retired_versions(parquet_home: Path) -> None:
    st = MetadataStore(parquet_home / "meta.sqlite")
    rd = parquet_home / "rd" / "demo.yaml"
    v1 = publish(rd, parquet_home, st).tables[0].storage
    publish(rd, parquet_home, st)
    assert cleanup_versions(st, older_than_s=3600) == []
    assert v1.exists()


def test_same_path_after_unpublish_serves_new_files(parquet_home: Path) -> None:
    """unpublish forgets versions, so v1 is reused: no cached footer of the old v1 may be used."""
    st = MetadataStore(parquet_home / "meta.sqlite")
    rd = parquet_home / "rd" / "demo.yaml"
    v1 = publish(rd, parquet_home, st).tables[0].storage
    engine = server_engine(st)
    assert len(_ids(list(run(engine, st, "SELECT id FROM demo.main")))) == 9000
    assert len(_ids(list(run(engine, st, CONE)))) > 0
    unpublish("demo", parquet_home, st)
    _replace_sources(parquet_home, 4000, 100_000)
    again = publish(rd, parquet_home, st).tables[0].storage
    assert again == v1
    engine.refresh()
    assert sorted(_ids(list(run(engine, st, "SELECT id FROM demo.main")))) == list(
        range(100_000, 104_000)
    )
    assert min(_ids(list(run(engine, st, CONE)))) >= 100_000
