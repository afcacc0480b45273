"""The command line as a user meets it: one-line errors, non-zero exits, nothing half-done."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from tests.conftest import sciportal, start_server, stop_server


def test_unknown_option(tmp_path: Path) -> None:
    proc = sciportal(tmp_path, "serve", "--bogus", check=False)
    assert proc.returncode == 2
    assert "--bogus" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.parametrize("rows", ["0", "-5", "1000000000", "lots"])
def test_demo_rows_out_of_range(tmp_path: Path, rows: str) -> None:
    proc = sciportal(tmp_path, "demo", "--rows", rows, check=False)
    assert proc.returncode == 2
    assert "--rows" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "sources").exists()


def test_unpublish_unknown_schema_is_an_error(tmp_path: Path) -> None:
    proc = sciportal(tmp_path, "unpublish", "nosuch", check=False)
    assert proc.returncode == 2
    assert "nosuch" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_invalid_yaml_is_one_line_with_its_place(tmp_path: Path) -> None:
    rd = tmp_path / "broken.yaml"
    rd.write_text("schema: s\ntables: [\n")
    proc = sciportal(tmp_path, "publish", str(rd), check=False)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "broken.yaml, line 3" in proc.stderr


def test_bad_setting_names_the_key(tmp_path: Path) -> None:
    proc = sciportal(tmp_path, "--set", "server.prot=1", "list", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "server.prot" in proc.stderr


def test_missing_descriptor(tmp_path: Path) -> None:
    proc = sciportal(tmp_path, "publish", str(tmp_path / "nope.yaml"), check=False)
    assert proc.returncode != 0
    assert "nope.yaml" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_malformed_descriptor_changes_nothing(tmp_path: Path) -> None:
    rd = tmp_path / "bad.yaml"
    rd.write_text(
        "schema: s\ntables:\n  - name: t\n    columns:\n      - name: x\n        datatype: quaternion\n"
    )
    proc = sciportal(tmp_path, "publish", str(rd), check=False)
    assert proc.returncode != 0
    assert "bad.yaml" in proc.stderr and "datatype" in proc.stderr
    listing = sciportal(tmp_path, "list")
    assert "nothing published" in listing.stdout
    assert not (tmp_path / "catalogs" / "s").exists() or not any(
        (tmp_path / "catalogs" / "s").rglob("*.parquet")
    )


def test_ingest_fits_then_query(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n = 5000
    t = Table(
        {
            "RAJ2000": rng.uniform(10, 12, n),
            "DEJ2000": rng.uniform(-31, -29, n),
            "Vmag": rng.uniform(8, 20, n).astype(np.float32),
            "name": [f"S{i:05d}" for i in range(n)],
        }
    )
    t["RAJ2000"].unit = "deg"
    t["DEJ2000"].unit = "deg"
    t["Vmag"].unit = "mag"
    path = tmp_path / "mycat.fits"
    t.write(path)
    home = tmp_path / "home"
    sciportal(home, "ingest", str(path), "--schema", "mine")
    listing = sciportal(home, "list").stdout
    assert "mine.mycat" in listing and "5,000" in listing
    srv = start_server(home)
    try:
        import pyvo

        tap = pyvo.dal.TAPService(srv.tap)
        res = tap.run_sync(
            "SELECT COUNT(*) AS n FROM mine.mycat WHERE 1 = CONTAINS(POINT(raj2000, dej2000), CIRCLE(11, -30, 0.5))"
        ).to_table()
        from astropy.coordinates import SkyCoord

        sep = (
            SkyCoord(11, -30, unit="deg")
            .separation(SkyCoord(t["RAJ2000"], t["DEJ2000"], unit="deg"))
            .deg
        )
        assert res["n"][0] == int((sep <= 0.5).sum())
        cols = {c.name.lower(): c for c in tap.tables["mine.mycat"].columns}
        assert str(cols["vmag"].unit) == "mag"
    finally:
        assert stop_server(srv) == 0
    sciportal(home, "unpublish", "mine")
    assert "nothing published" in sciportal(home, "list").stdout
    assert not list((home / "catalogs").rglob("*.parquet"))


def test_demo_is_deterministic_and_listed(demo_home: Path) -> None:
    out = sciportal(demo_home, "list").stdout
    assert "demo.coadd" in out and "demo.specz" in out


@pytest.mark.parametrize("command", [["jobs", "list"], ["jobs", "purge"], ["config"]])
def test_admin_commands(tmp_path: Path, command: list[str]) -> None:
    proc = sciportal(tmp_path, *command)
    assert proc.returncode == 0


def test_jobs_delete_unknown(tmp_path: Path) -> None:
    proc = sciportal(tmp_path, "jobs", "delete", "nope", check=False)
    assert proc.returncode != 0 and "nope" in proc.stderr


def test_quiet_means_no_progress_bars(tmp_path: Path) -> None:
    quiet = sciportal(tmp_path / "q", "demo", "--rows", "2000", "--no-tiles")
    assert quiet.stderr == "" and quiet.stdout == ""
    env = dict(os.environ, SCIPORTAL_HOME=str(tmp_path / "loud"))
    loud = subprocess.run(
        [sys.executable, "-m", "sciportal.cli", "demo", "--rows", "2000", "--no-tiles"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert loud.returncode == 0, loud.stderr
    assert "demo.coadd" in loud.stdout and "%" in loud.stderr  # tqdm bars


def test_republish_removes_versions_no_query_can_still_read(tmp_path: Path) -> None:
    home = tmp_path / "home"
    src = tmp_path / "cat.csv"
    src.write_text(
        "id,ra,dec\n" + "".join(f"{i},{10 + i / 100},{-30 + i / 100}\n" for i in range(50))
    )
    sciportal(home, "ingest", str(src), "--schema", "mine", "--table", "cat")
    rd = home / "rd" / "mine.cat.yaml"
    quick = ["--set", "query.sync_timeout=1", "--set", "uws.max_duration=1"]
    storage = home / "catalogs" / "mine" / "cat"
    versions = lambda: sorted(p.name for p in storage.iterdir() if p.name.startswith("v"))  # noqa: E731
    assert versions() == ["v1"]
    sciportal(home, *quick, "publish", str(rd))
    assert versions() == ["v1", "v2"]  # v1 was retired just now: a query may still read it
    time.sleep(1.5)
    sciportal(home, *quick, "publish", str(rd))
    assert versions() == ["v2", "v3"]
    assert "v3" in sciportal(home, "list").stdout


def test_demo_without_the_source_tree_renders_its_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sciportal import cli
    from sciportal.demo.descriptor import render

    monkeypatch.setattr(cli, "DEMO_RD", tmp_path / "not-installed" / "demo.yaml")
    assert (
        cli.main(["--home", str(tmp_path), "--quiet", "demo", "--rows", "500", "--no-tiles"]) == 0
    )
    assert (tmp_path / "rd" / "demo.yaml").read_text() == render()
    assert "demo.coadd" in sciportal(tmp_path, "list").stdout
