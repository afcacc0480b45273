"""Other real clients: astroquery's TapPlus, STILTS tapquery (TOPCAT's engine), votlint, xsdvalidate."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import requests
from astropy.table import Table

from tests.conftest import LiveServer, xsdvalidate


def test_astroquery_tapplus(server: LiveServer) -> None:
    from astroquery.utils.tap.core import TapPlus

    tap = TapPlus(url=server.tap, verbose=False)
    tables = tap.load_tables(verbose=False)
    names = {t.get_qualified_name().lower() for t in tables}
    assert "demo.coadd" in names
    job = tap.launch_job(
        "SELECT TOP 7 coadd_object_id, ra, dec FROM demo.coadd ORDER BY coadd_object_id"
    )
    sync = job.get_results()
    assert len(sync) == 7
    ajob = tap.launch_job_async(
        "SELECT TOP 7 coadd_object_id FROM demo.coadd ORDER BY coadd_object_id", background=False
    )
    res = ajob.get_results()
    assert list(res["coadd_object_id"]) == list(sync["coadd_object_id"])


def _tapquery(stilts: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([stilts, "tapquery", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_stilts_tapquery(server: LiveServer, stilts: str, tmp_path: Path, mode: str) -> None:
    out = tmp_path / "out.vot"
    proc = _tapquery(
        stilts,
        f"tapurl={server.tap}",
        "adql=SELECT TOP 12 coadd_object_id, mag_auto_i FROM demo.coadd ORDER BY coadd_object_id",
        f"sync={'true' if mode == 'sync' else 'false'}",
        f"out={out}",
        "ofmt=votable",
    )
    assert proc.returncode == 0, proc.stderr
    table = Table.read(out, format="votable")
    assert len(table) == 12
    assert str(table["mag_auto_i"].unit) == "mag"


def test_stilts_tapquery_upload(server: LiveServer, stilts: str, tmp_path: Path) -> None:
    mine = tmp_path / "mine.vot"
    Table({"oid": np.array([1000000000, 1000000003, 1000000005]), "label": ["a", "b", "c"]}).write(
        mine, format="votable"
    )
    out = tmp_path / "joined.csv"
    proc = _tapquery(
        stilts,
        f"tapurl={server.tap}",
        "adql=SELECT u.label, c.ra FROM TAP_UPLOAD.up1 AS u JOIN demo.coadd AS c ON c.coadd_object_id = u.oid",
        "nupload=1",
        f"upload1={mine}",
        "upname1=up1",
        f"out={out}",
        "ofmt=csv",
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(Table.read(out, format="ascii.csv")["label"]) == ["a", "b", "c"]


@pytest.mark.parametrize("fmt", ["votable", "votable/td", "votable/b"])
def test_votlint_on_results(server: LiveServer, stilts: str, tmp_path: Path, fmt: str) -> None:
    r = requests.get(
        f"{server.tap}/sync",
        params={
            "LANG": "ADQL",
            "QUERY": "SELECT TOP 200 * FROM demo.coadd",
            "RESPONSEFORMAT": fmt,
            "MAXREC": "100",
        },
        timeout=60,
    )
    assert r.status_code == 200
    path = tmp_path / "r.vot"
    path.write_bytes(r.content)
    proc = subprocess.run(
        [stilts, "votlint", f"votable={path}"], capture_output=True, text=True, timeout=120
    )
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if "ERROR" in line]
    assert not errors, "\n".join(errors[:20])


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("capabilities", {}),
        ("tables", {}),
        ("availability", {}),
        ("async", {}),
    ],
)
def test_xsdvalidate(
    server: LiveServer, stilts: str, tmp_path: Path, path: str, params: dict[str, str]
) -> None:
    r = requests.get(f"{server.tap}/{path}", params=params, timeout=60)
    assert r.status_code == 200
    xsdvalidate(stilts, tmp_path, r.content)
