"""The SQLite metadata store: round trips, atomic replacement, visibility."""

from __future__ import annotations

from pathlib import Path

import pytest

from sciportal.metadata.model import Column, ForeignKey, Schema, Table
from sciportal.metadata.store import MetadataStore, visible


def _table(name: str, version: int = 1, ncols: int = 2, **kw: object) -> Table:
    cols = tuple(
        Column(f"c{i}", "double", unit="deg", ucd="pos.eq.ra", description=f"col {i}")
        for i in range(ncols)
    )
    return Table(name=name, columns=cols, description="d", version=version, **kw)  # type: ignore[arg-type]


def test_round_trip_and_case_insensitive(tmp_path: Path) -> None:
    st = MetadataStore(tmp_path / "m.sqlite")
    fk = ForeignKey("k1", "s.b", "s.a", (("c0", "c0"),), "link")
    a = _table("s.a", ra_column="c0", dec_column="c1", storage="/x", nrows=5)
    b = _table("s.b", foreign_keys=(fk,), owner="alice", groups=("des",))
    st.publish(Schema("s", "schema d", "S"), [a, b], {"creators": ["me"]})
    assert st.get_table("S.A") == a
    assert st.get_table("s.b") == b
    assert st.get_table("s.c") is None
    assert [t.name for t in st.list_tables()] == ["s.a", "s.b"]
    (schema,) = st.list_schemas()
    assert schema.name == "s" and schema.title == "S" and schema.tables == (a, b)
    assert st.get_schema("S") == schema
    assert st.get_resource("s") == {"creators": ["me"]}
    assert st.index_of("table", "s.b") == 1


def test_republish_replaces_and_keeps_versions(tmp_path: Path) -> None:
    st = MetadataStore(tmp_path / "m.sqlite")
    st.publish(Schema("s"), [_table("s.a", 1, storage="/v1"), _table("s.b")])
    g = st.generation()
    assert st.next_version("s.a") == 2
    st.publish(Schema("s"), [_table("s.a", 2, ncols=3, storage="/v2")])
    assert st.generation() > g
    a = st.get_table("s.a")
    assert a is not None and a.version == 2 and len(a.columns) == 3
    assert st.get_table("s.b") is not None  # other tables stay
    assert st.index_of("table", "s.a") == 0  # keeps its place
    vs = st.versions("s.a")
    assert [(v.version, v.storage, v.retired_at is None) for v in vs] == [
        (1, "/v1", False),
        (2, "/v2", True),
    ]
    st.publish(Schema("s"), [_table("s.a", 3)], drop_others=True)
    assert st.get_table("s.b") is None


def test_failed_publish_changes_nothing(tmp_path: Path) -> None:
    st = MetadataStore(tmp_path / "m.sqlite")
    st.publish(Schema("s"), [_table("s.a")])
    with pytest.raises(ValueError):
        st.publish(Schema("s"), [_table("s.a", 2, ncols=5), _table("other.x")])
    a = st.get_table("s.a")
    assert a is not None and a.version == 1 and len(a.columns) == 2


def test_unpublish(tmp_path: Path) -> None:
    st = MetadataStore(tmp_path / "m.sqlite")
    st.publish(Schema("s"), [_table("s.a"), _table("s.b")])
    st.publish(Schema("t"), [_table("t.a")])
    removed = st.unpublish("S")
    assert sorted(t.name for t in removed) == ["s.a", "s.b"]
    assert [s.name for s in st.list_schemas()] == ["t"]
    assert st.get_table("s.a") is None
    assert st.unpublish("nothing") == []
    # a second store on the same file sees the same state
    assert [t.name for t in MetadataStore(tmp_path / "m.sqlite").list_tables()] == ["t.a"]


def test_visible() -> None:
    public = _table("s.a")
    private = _table("s.b", owner="alice", groups=("des", "lsst"))
    assert visible(public, None)
    assert not visible(private, None)
    assert visible(private, "alice")
    assert not visible(private, "bob", ["sdss"])
    assert visible(private, "bob", ["lsst"])
