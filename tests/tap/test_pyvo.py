"""TAP through pyvo against the live server: what a script author does."""

from __future__ import annotations

import io

import astropy.units as u
import numpy as np
import pytest
import pyvo
import requests
from astropy.coordinates import SkyCoord
from astropy.table import Table

from tests.conftest import LiveServer


@pytest.fixture(scope="module")
def tap(server: LiveServer) -> pyvo.dal.TAPService:
    return pyvo.dal.TAPService(server.tap)


def test_top5_star(tap: pyvo.dal.TAPService) -> None:
    result = tap.run_sync("SELECT TOP 5 * FROM demo.coadd")
    table = result.to_table()
    assert len(table) == 5
    assert "coadd_object_id" in table.colnames and "ra" in table.colnames
    assert "_healpix_29" not in table.colnames
    assert table["ra"].unit == u.deg
    assert len(table.colnames) >= 30


def test_column_metadata_flows(tap: pyvo.dal.TAPService) -> None:
    result = tap.run_sync("SELECT TOP 3 ra, dec AS declination, mag_auto_i FROM demo.coadd")
    fields = {f.name: f for f in result.fieldnames and result.resultstable.fields}
    assert fields["ra"].ucd == "pos.eq.ra;meta.main"
    assert str(fields["declination"].unit) == "deg"
    assert str(fields["mag_auto_i"].unit) == "mag"


def test_capabilities_and_tables(tap: pyvo.dal.TAPService) -> None:
    caps = tap.capabilities
    assert any(c.standardid and c.standardid.startswith("ivo://ivoa.net/std/TAP") for c in caps)
    names = [t.name for t in tap.tables]
    assert "demo.coadd" in names
    assert "tap_schema.columns" in [n.lower() for n in names]
    coadd = tap.tables["demo.coadd"]
    assert any(c.name == "ra" for c in coadd.columns)


def test_overflow(tap: pyvo.dal.TAPService) -> None:
    result = tap.run_sync("SELECT ra, dec FROM demo.coadd", maxrec=7)
    assert len(result) == 7
    # pyvo warns (DALOverflowWarning) and flags the overflow
    assert result.query_status == "OVERFLOW"


def test_count_matches_demo_size(tap: pyvo.dal.TAPService, server: LiveServer) -> None:
    from tests.conftest import DEMO_ROWS

    n = tap.run_sync("SELECT COUNT(*) AS n FROM demo.coadd").to_table()["n"][0]
    assert n == DEMO_ROWS


def test_cone_against_astropy(tap: pyvo.dal.TAPService) -> None:
    everything = tap.run_sync(
        "SELECT coadd_object_id, ra, dec FROM demo.coadd", maxrec=10_000_000
    ).to_table()
    centre = SkyCoord(everything["ra"][123], everything["dec"][123], unit="deg")
    radius = 0.3
    cone = tap.run_sync(
        "SELECT coadd_object_id FROM demo.coadd WHERE "
        f"1 = CONTAINS(POINT(ra, dec), CIRCLE({float(centre.ra.deg)!r}, {float(centre.dec.deg)!r}, {radius}))"
    ).to_table()
    sep = centre.separation(SkyCoord(everything["ra"], everything["dec"], unit="deg")).deg
    expected = set(np.asarray(everything["coadd_object_id"])[sep <= radius].tolist())
    assert expected, "the oracle found nothing: pick another centre"
    assert set(np.asarray(cone["coadd_object_id"]).tolist()) == expected


def test_async_round_trip(tap: pyvo.dal.TAPService) -> None:
    job = tap.submit_job(
        "SELECT TOP 10 coadd_object_id, mag_auto_r FROM demo.coadd ORDER BY mag_auto_r"
    )
    job.run()
    job.wait(timeout=60)
    assert job.phase == "COMPLETED"
    table = job.fetch_result().to_table()
    assert len(table) == 10
    assert list(table["mag_auto_r"]) == sorted(table["mag_auto_r"])
    job.delete()


def test_run_async(tap: pyvo.dal.TAPService) -> None:
    table = tap.run_async("SELECT COUNT(*) AS n FROM demo.specz").to_table()
    assert table["n"][0] > 0


def test_upload(tap: pyvo.dal.TAPService) -> None:
    ids = tap.run_sync("SELECT TOP 20 coadd_object_id FROM demo.coadd").to_table()
    mine = Table({"oid": ids["coadd_object_id"][::2], "tag": [f"t{i}" for i in range(10)]})
    result = tap.run_sync(
        "SELECT u.tag, c.coadd_object_id FROM TAP_UPLOAD.mine AS u "
        "JOIN demo.coadd AS c ON c.coadd_object_id = u.oid",
        uploads={"mine": mine},
    ).to_table()
    assert sorted(result["tag"]) == sorted(mine["tag"])


def test_errors_raise_dalqueryerror(tap: pyvo.dal.TAPService) -> None:
    with pytest.raises(pyvo.dal.DALQueryError) as err:
        tap.run_sync("SELECT FROM WHERE")
    assert "line" in str(err.value).lower() or "col" in str(err.value).lower()
    with pytest.raises(pyvo.dal.DALQueryError, match="nosuchtable"):
        tap.run_sync("SELECT * FROM demo.nosuchtable")


def test_bad_parameters_give_dali_errors(server: LiveServer) -> None:
    r = requests.get(f"{server.tap}/sync", params={"LANG": "SQL", "QUERY": "SELECT 1"}, timeout=30)
    assert r.status_code == 400
    assert b'name="QUERY_STATUS" value="ERROR"' in r.content
    r = requests.get(f"{server.tap}/sync", params={"LANG": "ADQL"}, timeout=30)
    assert r.status_code == 400 and b"QUERY" in r.content
    r = requests.get(
        f"{server.tap}/sync",
        params={
            "lang": "ADQL",
            "query": "SELECT TOP 1 ra FROM demo.coadd",
            "responseformat": "xls",
        },
        timeout=30,
    )
    assert r.status_code == 400


@pytest.mark.parametrize("fmt", ["csv", "tsv", "votable/td", "fits", "parquet", "votable/b"])
def test_formats_round_trip(server: LiveServer, fmt: str) -> None:
    r = requests.post(
        f"{server.tap}/sync",
        data={
            "LANG": "ADQL",
            "QUERY": "SELECT TOP 50 coadd_object_id, ra, tilename FROM demo.coadd",
            "RESPONSEFORMAT": fmt,
        },
        timeout=60,
    )
    assert r.status_code == 200, r.text[:500]
    astropy_format = {
        "csv": "ascii.csv",
        "tsv": "ascii.tab",
        "votable/td": "votable",
        "votable/b": "votable",
        "fits": "fits",
        "parquet": "parquet",
    }[fmt]
    table = Table.read(io.BytesIO(r.content), format=astropy_format)
    assert len(table) == 50
    assert list(table.colnames)[:3] == ["coadd_object_id", "ra", "tilename"]


def test_landing_page(server: LiveServer) -> None:
    r = requests.get(server.url + "/", timeout=30)
    assert r.status_code == 200
    assert "demo.coadd" in r.text and f"{server.tap}" in r.text
