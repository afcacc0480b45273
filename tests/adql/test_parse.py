"""Parser and resolver: error messages, case rules, metadata of output columns."""

from __future__ import annotations

from typing import Any as Lookup

import pytest

from sciportal.adql import FEATURES, UDFS, parse, translate
from sciportal.adql import nodes as n
from sciportal.errors import QueryError, UnsupportedError
from sciportal.metadata.model import Column, Table


def test_parse_builds_typed_tree() -> None:
    stmt = parse(
        "SELECT DISTINCT TOP 5 a AS x, t.b FROM s.t AS t WHERE a BETWEEN 1 AND 2 ORDER BY 1 DESC OFFSET 3"
    )
    q = stmt.query
    assert isinstance(q.body, n.Select)
    sel = q.body
    assert sel.top == 5 and sel.distinct
    assert isinstance(sel.items[0], n.SelectItem) and sel.items[0].alias is not None
    assert sel.items[0].alias.name == "x"
    assert isinstance(sel.where, n.Between)
    assert q.offset == 3 and q.order_by[0].descending


@pytest.mark.parametrize(
    ("query", "line", "col", "fragment"),
    [
        ("SELECT a FROM", 1, 14, "expected"),
        ("SELECT a\nFROM t\nWHERE a <", 3, 10, "end of query"),
        ("SELECT a FROM t WHERE a == 3", 1, 26, "unexpected '='"),
        ("SELECT size FROM t", 1, 8, "reserved word"),
        ("SELECT a FROM t WHERE tan2(a) < 1", 1, 23, "unknown function"),
        ("SELECT abs(a, b) FROM t", 1, 8, "ABS takes 1"),
        ("SELECT a FROM t WHERE contains(point(1, 2), circle(1, 2, 3))", 1, 23, "= 1"),
        ("SELECT TOP -3 a FROM t", 1, 12, "unexpected"),
    ],
)
def test_syntax_errors_have_position_and_expectation(
    query: str, line: int, col: int, fragment: str
) -> None:
    with pytest.raises(QueryError) as info:
        parse(query)
    err = info.value
    assert (err.line, err.column) == (line, col), str(err)
    assert fragment in str(err)


def test_error_lists_expected_tokens() -> None:
    with pytest.raises(QueryError, match="expected .*an identifier"):
        parse("SELECT a FROM t WHERE a IN (1,)")


def test_geometry_not_in_arithmetic() -> None:
    with pytest.raises(QueryError, match="geometry"):
        parse("SELECT point(1, 2) || 'x' FROM t")
    parse("SELECT ivo_foo(6) || 9 FROM t")


def test_reserved_word_delimited_is_fine(lookup: Lookup) -> None:
    stmt = parse('SELECT "size", "distance" FROM t')
    items = stmt.query.body.items  # type: ignore[union-attr]
    assert [i.expr.name.name for i in items] == ["size", "distance"]  # type: ignore[union-attr]


def test_unknown_column_names_candidates(lookup: Lookup) -> None:
    with pytest.raises(QueryError, match="unknown column maag.*did you mean mag"):
        translate("SELECT maag FROM s.t", lookup)


def test_unknown_table_names_candidates(lookup: Lookup) -> None:
    with pytest.raises(QueryError, match=r"unknown table s\.tt.*s\.t"):
        translate("SELECT * FROM s.tt", lookup)


def test_ambiguous_column_names_candidates(lookup: Lookup) -> None:
    with pytest.raises(QueryError, match=r"ambiguous: t\.ra, other\.ra"):
        translate("SELECT ra FROM s.t, s.other", lookup)


def test_case_rules(lookup: Lookup) -> None:
    # regular identifiers fold; delimited ones are exact
    tr = translate('SELECT RA, "Mixed", mixed FROM S.T', lookup)
    assert [c.name for c in tr.columns] == ["ra", "Mixed", "Mixed_2"]
    assert "s.t" in lookup.calls
    with pytest.raises(QueryError, match="unknown column"):
        translate('SELECT "RA" FROM s.t', lookup)


def test_star_expands_without_hidden_index(lookup: Lookup) -> None:
    tr = translate("SELECT * FROM s.t", lookup)
    assert [c.name for c in tr.columns] == [c.name for c in lookup.tables["s.t"].columns]
    assert "_healpix_29" not in tr.sql.split("FROM")[0]


def test_output_metadata(lookup: Lookup) -> None:
    tr = translate(
        "SELECT ra AS alpha, COUNT(*), AVG(mag), SUM(flags), MAX(mag), LOWER(name), "
        "POINT('ICRS', ra, dec), CIRCLE(ra, dec, 1), POLYGON(1, 2, 3, 4, 5, 6), "
        "DISTANCE(POINT(ra, dec), POINT(1, 2)), IN_UNIT(ra, 'arcsec'), CAST(flags AS BIGINT) "
        "FROM s.t GROUP BY ra, dec, name",
        lookup,
    )
    meta = {c.name: c for c in tr.columns}
    assert meta["alpha"].ucd == "pos.eq.ra;meta.main" and meta["alpha"].unit == "deg"
    assert meta["count"].datatype == "long"
    assert meta["avg"].datatype == "double" and meta["avg"].unit == "mag"
    assert meta["sum"].datatype == "long"
    assert meta["max"].datatype == "float"
    assert (meta["lower"].datatype, meta["lower"].arraysize) == ("char", "*")
    assert (meta["point"].datatype, meta["point"].arraysize, meta["point"].xtype) == (
        "double",
        "2",
        "point",
    )
    assert (meta["circle"].arraysize, meta["circle"].xtype) == ("3", "circle")
    assert (meta["polygon"].arraysize, meta["polygon"].xtype) == ("*", "polygon")
    assert meta["distance"].unit == "deg"
    assert meta["in_unit"].unit == "arcsec"
    assert meta["flags"].datatype == "long"
    assert len(set(meta)) == len(tr.columns)


def test_top_and_maxrec_limits(lookup: Lookup) -> None:
    assert translate("SELECT TOP 10 id FROM s.t", lookup, maxrec=100).limit == 10
    tr = translate("SELECT TOP 1000 id FROM s.t", lookup, maxrec=100)
    assert tr.limit == 101 and tr.sql.endswith("LIMIT 101")
    assert translate("SELECT id FROM s.t", lookup).limit is None
    tr = translate("SELECT id FROM s.t UNION SELECT id FROM s.other", lookup, maxrec=5)
    assert tr.limit == 6 and tr.sql.endswith("LIMIT 6")


def test_uploads_resolve(lookup: Lookup) -> None:
    up = Table("TAP_UPLOAD.mine", (Column("ra", "double", unit="deg"), Column("dec", "double")))
    tr = translate("SELECT m.ra FROM tap_upload.MINE AS m", lookup, uploads={"mine": up})
    assert tr.tables == [up]
    assert '"TAP_UPLOAD"."mine"' in tr.sql
    with pytest.raises(QueryError, match="unknown upload table"):
        translate("SELECT * FROM TAP_UPLOAD.other", lookup, uploads={"mine": up})


def test_literals_and_identifiers_are_quoted(lookup: Lookup) -> None:
    tr = translate(
        """SELECT id AS "x"" ; DROP TABLE t --" FROM s.t WHERE name = 'a'' OR ''1''=''1'""", lookup
    )
    assert '"x"" ; DROP TABLE t --"' in tr.sql
    assert "'a'' OR ''1''=''1'" in tr.sql


def test_unsupported_is_reported(lookup: Lookup) -> None:
    with pytest.raises(UnsupportedError):
        translate("SELECT ivo_no_such_thing(ra) FROM s.t", lookup)
    with pytest.raises(UnsupportedError):
        translate(
            "SELECT * FROM s.t WHERE 1 = CONTAINS(POINT(ra, dec), REGION('Union ICRS (Circle 1 2 3 Circle 4 5 6)'))",
            lookup,
        )


def test_with_only_at_top_level() -> None:
    with pytest.raises(QueryError):
        parse("SELECT * FROM (WITH a AS (SELECT x FROM t) SELECT x FROM a) AS q")


def test_udfs_and_features_declared() -> None:
    names = {sig.split("(")[0] for sig, _ in UDFS}
    assert {
        "ivo_healpix_index",
        "ivo_healpix_center",
        "ivo_nocasematch",
        "ivo_hasword",
        "ivo_hashlist_has",
        "ivo_interval_overlaps",
        "ivo_string_agg",
        "ivo_epoch_prop_pos",
    } <= names
    assert all("->" in sig for sig, _ in UDFS)
    forms = {name for _, name in FEATURES}
    assert {"CONTAINS", "WITH", "OFFSET", "UNION", "CAST", "IN_UNIT", "ILIKE"} <= forms
