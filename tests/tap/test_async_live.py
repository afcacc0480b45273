"""Async TAP on the live server: abort really stops the engine, limits are enforced."""

from __future__ import annotations

import time

import pyvo
import requests

from tests.conftest import LiveServer

# A query that keeps DuckDB busy for a long time on any demo size.
SLOW = (
    "SELECT COUNT(*) AS n FROM demo.coadd AS a, demo.coadd AS b, demo.specz AS c "
    "WHERE a.mag_auto_i + b.mag_auto_r + c.z > 0"
)


def _wait_phase(job: pyvo.dal.AsyncTAPJob, phases: set[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        phase = job.phase
        if phase in phases:
            return phase
        time.sleep(0.1)
    return job.phase


def test_abort_stops_a_running_query(server: LiveServer) -> None:
    tap = pyvo.dal.TAPService(server.tap)
    job = tap.submit_job(SLOW)
    job.run()
    assert _wait_phase(job, {"EXECUTING"}, 30) == "EXECUTING"
    t0 = time.monotonic()
    job.abort()
    assert _wait_phase(job, {"ABORTED"}, 10) == "ABORTED"
    # the engine was interrupted: the server answers at once, and a new query runs
    assert time.monotonic() - t0 < 10
    assert len(tap.run_sync("SELECT TOP 1 ra FROM demo.coadd")) == 1
    job.delete()


def test_execution_duration_is_enforced(server: LiveServer) -> None:
    tap = pyvo.dal.TAPService(server.tap)
    job = tap.submit_job(SLOW)
    job.execution_duration = 1
    job.run()
    phase = _wait_phase(job, {"ERROR", "COMPLETED", "ABORTED"}, 30)
    assert phase == "ERROR"
    r = requests.get(f"{job.url}/error", timeout=30)
    assert "time" in r.text.lower() or "limit" in r.text.lower()
    job.delete()


def test_job_list_filters(server: LiveServer) -> None:
    tap = pyvo.dal.TAPService(server.tap)
    done = tap.submit_job("SELECT TOP 1 ra FROM demo.coadd")
    done.run()
    done.wait(timeout=60)
    pending = tap.submit_job("SELECT TOP 1 dec FROM demo.coadd")
    ids = {j.jobid for j in tap.get_job_list(phases=["PENDING"])}
    assert pending.job_id in ids and done.job_id not in ids
    ids = {j.jobid for j in tap.get_job_list(phases=["COMPLETED"])}
    assert done.job_id in ids
    last = tap.get_job_list(last=1)
    assert len(last) == 1
    pending.delete()
    done.delete()


def test_query_error_in_job(server: LiveServer) -> None:
    tap = pyvo.dal.TAPService(server.tap)
    job = tap.submit_job("SELECT nosuchcolumn FROM demo.coadd")
    job.run()
    job.wait(phases=["ERROR", "COMPLETED"], timeout=60)
    assert job.phase == "ERROR"
    r = requests.get(f"{job.url}/error", timeout=30)
    assert "nosuchcolumn" in r.text
    job.delete()


def test_async_jobs_cannot_starve_sync_queries(demo_home) -> None:  # type: ignore[no-untyped-def]
    """Jobs beyond uws.max_jobs wait QUEUED, and sync queries still answer meanwhile."""
    from tests.conftest import start_server, stop_server

    srv = start_server(demo_home, "--set", "uws.max_jobs=2", "--set", "uws.max_jobs_per_owner=2")
    tap = pyvo.dal.TAPService(srv.tap)
    jobs = [tap.submit_job(SLOW) for _ in range(3)]
    try:
        for job in jobs:
            job.run()
        deadline = time.monotonic() + 30
        phases: list[str] = []
        while time.monotonic() < deadline:
            phases = sorted(job.phase for job in jobs)
            if phases == ["EXECUTING", "EXECUTING", "QUEUED"]:
                break
            time.sleep(0.1)
        assert phases == ["EXECUTING", "EXECUTING", "QUEUED"]
        # both job slots busy with heavy queries: a sync query is still served, correctly
        rows = tap.run_sync("SELECT COUNT(*) AS n FROM demo.specz").to_table()
        assert int(rows["n"][0]) == len(tap.run_sync("SELECT z FROM demo.specz", maxrec=10**6))
        assert sorted(job.phase for job in jobs) == ["EXECUTING", "EXECUTING", "QUEUED"]
    finally:
        for job in jobs:
            job.abort()
        for job in jobs:
            assert _wait_phase(job, {"ABORTED"}, 20) == "ABORTED"
        assert stop_server(srv) == 0
