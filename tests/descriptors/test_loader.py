"""Descriptor loading: the documented shape loads; every mistake names file, line, field."""

from __future__ import annotations

from pathlib import Path

import pytest

from sciportal.descriptors import dump, load, loads
from sciportal.errors import DescriptorError

GOOD = """\
schema: DES_DR2
title: "DES DR2 demo"
description: "A demo"
creators: ["LIneA"]
subjects: ["surveys"]
reference_url: "https://example.org/des"
version: 2
services: [tap, scs]
tables:
  - name: Main
    title: "Objects"
    description: "Coadd objects"
    position: {ra: ra, dec: dec}
    partition_rows: 500000
    bad_rows: skip
    source:
      paths: ["{home}/sources/demo/coadd-*.parquet", "extra/*.fits"]
      format: parquet
      options: {}
    columns:
      - name: coadd_object_id
        datatype: long
        ucd: "meta.id;meta.main"
        description: "Unique id"
        nullable: false
        principal: true
        indexed: true
      - name: ra
        datatype: double
        unit: deg
        ucd: "pos.eq.ra;meta.main"
      - name: dec
        datatype: double
        unit: deg
        ucd: "pos.eq.dec;meta.main"
        from: DEC_RAD
        scale: 57.29577951308232
      - name: flux
        datatype: float
        arraysize: "5"
        unit: "mJy"
"""


def test_good_descriptor_loads(tmp_path: Path) -> None:
    path = tmp_path / "rd" / "des.yaml"
    path.parent.mkdir()
    path.write_text(GOOD)
    d = load(path, Path("/data/home"))
    assert d.schema == "des_dr2"
    assert d.creators == ("LIneA",) and d.services == ("tap", "scs") and d.version == 2
    (spec,) = d.tables
    t = spec.table
    assert t.name == "des_dr2.main" and t.positional and t.ra_column == "ra"
    assert spec.partition_rows == 500_000 and spec.bad_rows == "skip"
    assert spec.source.patterns == (
        "/data/home/sources/demo/coadd-*.parquet",
        str(tmp_path / "rd" / "extra" / "*.fits"),
    )
    c = t.column("COADD_OBJECT_ID")
    assert (c.datatype, c.nullable, c.principal, c.indexed) == ("long", False, True, True)
    dec = [m for m in spec.mappings if m.name == "dec"][0]
    assert dec.source == "DEC_RAD" and dec.scale == pytest.approx(57.29577951308232)
    assert t.column("flux").arraysize == "5"
    # dump -> load gives the same descriptor
    again = loads(dump(d), path, Path("/data/home"))
    assert again == d


@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [
        ('unit: "mJy"', 'unit: "furlong"', "tables[0].columns[3].unit", "VOUnit"),
        ('ucd: "pos.eq.ra;meta.main"', 'ucd: "pos.eq.rah"', "columns[1].ucd", "UCD"),
        ("datatype: float", "datatype: quad", "columns[3].datatype", "quad"),
        ("bad_rows: skip", "bad_rows: maybe", "tables[0].bad_rows", "reject"),
        ("    partition_rows: 500000", "    partition_rows: 0", "partition_rows", "at least"),
        ("        indexed: true", "        indexd: true", "columns[0].indexd", "unknown key"),
        ("position: {ra: ra, dec: dec}", "position: {ra: ra, dec: decl}", "dec", "decl"),
        ("schema: DES_DR2", "schema: 2des", "schema", "regular ADQL identifier"),
        ("services: [tap, scs]", "services: [tap, ftp]", "services", "ftp"),
        ("      format: parquet", "      format: hdf5", "source.format", "hdf5"),
    ],
)
def test_errors_name_file_line_field(
    tmp_path: Path, old: str, new: str, field: str, words: str
) -> None:
    assert old in GOOD
    line = GOOD[: GOOD.index(old)].count("\n") + 1  # the line of the bad value
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace(old, new, 1))
    with pytest.raises(DescriptorError) as err:
        load(path, tmp_path)
    msg = str(err.value)
    assert str(path) in msg
    assert f"line {line}" in msg, msg
    assert field in msg, msg
    assert words in msg, msg


def test_missing_required_and_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("schema: s\ntitle: t\n")
    with pytest.raises(DescriptorError, match="missing required key 'tables'"):
        load(path, tmp_path)
    dup = GOOD.replace("name: flux", "name: RA")
    path.write_text(dup)
    line = dup[: dup.index("name: RA")].count("\n") + 1
    with pytest.raises(DescriptorError, match=rf"line {line}, .*duplicate column"):
        load(path, tmp_path)
    path.write_text("schema: [unclosed\n")
    with pytest.raises(DescriptorError, match="not valid YAML"):
        load(path, tmp_path)
    with pytest.raises(DescriptorError, match="cannot read"):
        load(tmp_path / "nope.yaml", tmp_path)


def test_reserved_and_scale_checks(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(GOOD.replace("name: flux", "name: _healpix_29"))
    with pytest.raises(DescriptorError, match="_healpix_29"):
        load(path, tmp_path)
    path.write_text(
        GOOD.replace("        datatype: long\n", "        datatype: long\n        scale: 2\n")
    )
    with pytest.raises(DescriptorError, match="scale needs a float"):
        load(path, tmp_path)
