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
