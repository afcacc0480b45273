"""UWS 1.1 over HTTP: a real Twisted server in a subprocess, driven by requests and pyvo."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from astropy.io.votable import parse_single_table
from astropy.table import Table
from astropy.time import Time
from lxml import etree
from pyvo.dal import AsyncTAPJob
from pyvo.io import uws

from sciportal.jobs.store import RESTART_MESSAGE

ROOT = Path(__file__).resolve().parents[2]
SERVER = Path(__file__).with_name("uws_server.py")
NS = {"uws": "http://www.ivoa.net/xml/UWS/v1.0", "xlink": "http://www.w3.org/1999/xlink"}


@dataclass
class Server:
    state: Path
    process: subprocess.Popen[str]
    url: str

    @property
    def jobs(self) -> str:
        return f"{self.url}/tap/async"


def start(state: Path) -> Server:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT"):
        proc.kill()
        raise RuntimeError("UWS test server did not start: " + line + proc.stdout.read())
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
    return Server(state, proc, f"http://127.0.0.1:{int(line.split()[1])}")


def stop(server: Server, sig: int = signal.SIGTERM) -> None:
    server.process.send_signal(sig)
    server.process.wait(timeout=20)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start(tmp_path_factory.mktemp("uws"))
    yield srv
    stop(srv)


def create(server: Server, user: str | None = None, **params: str) -> str:
    headers = {"X-Test-User": user} if user else {}
    resp = requests.post(server.jobs, data=params, headers=headers, allow_redirects=False)
    assert resp.status_code == 303, resp.text
    return resp.headers["Location"]


def phase_of(job_url: str, user: str | None = None) -> str:
    headers = {"X-Test-User": user} if user else {}
    resp = requests.get(f"{job_url}/phase", headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.text


def wait_for(job_url: str, phases: set[str], timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        phase = phase_of(job_url)
        if phase in phases:
            return phase
        time.sleep(0.02)
    raise AssertionError(f"job stayed {phase_of(job_url)}")


def xsd_valid(doc: bytes, tmp_path: Path) -> None:
    stilts = shutil.which("stilts")
    if stilts is None:
        pytest.skip("stilts not installed")
    path = tmp_path / f"doc{time.monotonic_ns()}.xml"
    path.write_bytes(doc)
    proc = subprocess.run(
        [stilts, "xsdvalidate", "uselocals=true", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_create_is_pending_with_lowercased_parameters_and_absolute_url(server):
    url = create(server, QUERY="SELECT 1", RunId="run-7", TEXT="hi")
    assert url.startswith(server.jobs + "/")
    resp = requests.get(url)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/xml")
    job = uws.parse_job(io.BytesIO(resp.content))
    assert job.phase == "PENDING"
    assert job.version == "1.1"
    assert url.endswith("/" + job.jobid)
    assert job.runid == "run-7"
    params = {p.id_: p.content for p in job.parameters}
    assert params == {"query": "SELECT 1", "runid": "run-7", "text": "hi"}
    assert job.ownerid is None
    assert requests.get(f"{url}/runid").text == "run-7"
    assert requests.get(f"{url}/owner").text == ""
    assert requests.get(f"{url}/quote").status_code == 200


def test_run_complete_and_fetch_result(server, tmp_path):
    url = create(server, TEXT="hello world", PHASE="RUN")
    assert wait_for(url, {"COMPLETED", "ERROR"}) == "COMPLETED"
    doc = requests.get(url).content
    xsd_valid(doc, tmp_path)
    tree = etree.fromstring(doc)
    (result,) = tree.findall("uws:results/uws:result", NS)
    href = result.get(f"{{{NS['xlink']}}}href")
    assert href == f"{url}/results/result"
    assert result.get("size") == "11" and result.get("mime-type") == "text/plain"
    got = requests.get(href)
    assert got.status_code == 200 and got.text == "hello world"
    assert got.headers["content-type"].startswith("text/plain")
    results_doc = requests.get(f"{url}/results").content
    xsd_valid(results_doc, tmp_path)
    assert etree.fromstring(results_doc).find("uws:result", NS).get("id") == "result"
    params_doc = requests.get(f"{url}/parameters").content
    xsd_valid(params_doc, tmp_path)
    for child in ("creationtime", "starttime", "endtime", "destruction"):
        text = requests.get(f"{url}/{child}").text
        assert datetime.fromisoformat(text.replace("Z", "+00:00")).tzinfo is not None
    assert requests.get(f"{url}/results/nothing").status_code == 404


def test_job_list_filters_and_validates(server, tmp_path):
    user = "lister"
    urls = [create(server, user, TEXT=str(i)) for i in range(4)]
    headers = {"X-Test-User": user}
    requests.post(f"{urls[1]}/phase", data={"PHASE": "RUN"}, headers=headers)
    requests.post(f"{urls[2]}/phase", data={"PHASE": "ABORT"}, headers=headers)
    wait_phase = time.monotonic() + 5
    while phase_of(urls[1], user) != "COMPLETED" and time.monotonic() < wait_phase:
        time.sleep(0.02)

    def listing(**params: object) -> list[str]:
        resp = requests.get(server.jobs, params=params, headers=headers)
        assert resp.status_code == 200, resp.text
        return [j.jobid for j in uws.parse_job_list(io.BytesIO(resp.content))]

    ids = [u.rsplit("/", 1)[1] for u in urls]
    assert listing() == ids[::-1]  # newest first
    assert listing(PHASE="PENDING") == [ids[3], ids[0]]
    assert set(listing(PHASE=["COMPLETED", "ABORTED"])) == {ids[1], ids[2]}
    assert listing(LAST=2) == [ids[3], ids[2]]
    created = uws.parse_job(io.BytesIO(requests.get(urls[1], headers=headers).content))
    after = created.creationtime.isot + "Z"
    assert listing(AFTER=after) == [ids[3], ids[2]]
    assert listing(AFTER=after, PHASE="PENDING", LAST=5) == [ids[3]]
    xsd_valid(requests.get(server.jobs, headers=headers).content, tmp_path)
    # other users' jobs are not listed
    assert not set(ids) & set(
        j.jobid for j in uws.parse_job_list(io.BytesIO(requests.get(server.jobs).content))
    )
    assert requests.get(server.jobs, params={"PHASE": "DONE"}).status_code == 400
    assert requests.get(server.jobs, params={"LAST": "0"}).status_code == 400
    assert requests.get(server.jobs, params={"AFTER": "yesterday"}).status_code == 400


def test_jobs_are_invisible_to_other_users(server):
    url = create(server, "alice", TEXT="secret")
    assert phase_of(url, "alice") == "PENDING"
    for who in ({"X-Test-User": "bob"}, {}):
        assert requests.get(url, headers=who).status_code == 404
        assert requests.get(f"{url}/parameters", headers=who).status_code == 404
        resp = requests.post(
            f"{url}/phase", data={"PHASE": "RUN"}, headers=who, allow_redirects=False
        )
        assert resp.status_code == 404
        assert requests.delete(url, headers=who, allow_redirects=False).status_code == 404
    assert requests.get(url, headers={"X-Test-User": "alice"}).status_code == 200
    assert requests.get(f"{url}/owner", headers={"X-Test-User": "alice"}).text == "alice"


def test_pyvo_drives_a_job(server):
    job = AsyncTAPJob.create(f"{server.url}/tap", "SELECT 1", runid="pyvo-run")
    assert job.phase == "PENDING"
    job.execution_duration = 45
    assert job.execution_duration.to_value("s") == 45
    job.execution_duration = 1000  # clamped to the server maximum
    assert job.execution_duration.to_value("s") == 60
    soon = datetime.now(UTC) + timedelta(days=2)
    job.destruction = soon
    assert abs((job.destruction - Time(soon)).sec) < 1
    job.query = "SELECT 2"
    assert job.query == "SELECT 2"
    job.run()
    job.wait(timeout=10)
    assert job.phase == "COMPLETED"
    assert job.result_uri == f"{job.url}/results/result"
    assert requests.get(job.result_uri).text == "done"
    url = job.url
    job.delete()
    assert requests.get(url).status_code == 404


def test_pyvo_upload_reaches_the_runner_byte_for_byte(server):
    table = Table({"ra": [1.5, 2.5], "dec": [-3.0, 4.0]})
    job = AsyncTAPJob.create(
        f"{server.url}/tap", "SELECT * FROM TAP_UPLOAD.t1", uploads={"t1": table}
    )
    params = {p.id_: p for p in job.job.parameters}
    assert params["upload"].content == "t1,param:t1"
    assert params["t1"].byreference
    stored = requests.get(params["t1"].content).content
    assert len(parse_single_table(io.BytesIO(stored)).to_table()) == 2
    # a later upload to /parameters while PENDING adds a second table
    job.upload(t2=Table({"x": [1, 2, 3]}))
    job.run()
    job.wait(timeout=10)
    echoed = requests.get(f"{job.url}/results/upload-t1").content
    assert echoed == stored
    t2 = parse_single_table(io.BytesIO(requests.get(f"{job.url}/results/upload-t2").content))
    assert list(t2.to_table()["x"]) == [1, 2, 3]
    job.delete()


def test_multipart_binary_upload_is_kept_exactly(server):
    payload = bytes(range(256)) * 40 + b"\r\n--not-a-boundary\r\n\r\n" + b"\x00" * 10
    resp = requests.post(
        server.jobs,
        data={"PHASE": "RUN", "TEXT": "x"},
        files={"blob": ("blob.bin", payload, "application/octet-stream")},
        allow_redirects=False,
    )
    assert resp.status_code == 303
    url = resp.headers["Location"]
    assert wait_for(url, {"COMPLETED", "ERROR"}) == "COMPLETED"
    assert requests.get(f"{url}/results/upload-blob").content == payload
    assert requests.get(f"{url}/parameters/blob").content == payload
    assert requests.get(f"{url}/parameters/text").text == "x"


def test_wait_blocks_until_phase_change_without_blocking_the_server(server):
    url = create(server, sleep="1.0")
    # PENDING with a mismatching PHASE: immediate
    t0 = time.monotonic()
    assert (
        uws.parse_job(
            io.BytesIO(requests.get(url, params={"WAIT": 30, "PHASE": "EXECUTING"}).content)
        ).phase
        == "PENDING"
    )
    assert time.monotonic() - t0 < 0.5
    # PENDING, nothing happens: returns after WAIT seconds
    t0 = time.monotonic()
    requests.get(url, params={"WAIT": 0.5})
    assert 0.45 <= time.monotonic() - t0 < 2.0
    requests.post(f"{url}/phase", data={"PHASE": "RUN"})
    assert wait_for(url, {"EXECUTING"}) == "EXECUTING"
    # many concurrent waiters; the server keeps answering other requests meanwhile
    with ThreadPoolExecutor(30) as pool:
        t0 = time.monotonic()
        waits = [
            pool.submit(requests.get, url, params={"WAIT": -1, "PHASE": "EXECUTING"})
            for _ in range(25)
        ]
        time.sleep(0.2)
        t_list = time.monotonic()
        assert requests.get(server.jobs, timeout=5).status_code == 200
        assert time.monotonic() - t_list < 0.5
        phases = [uws.parse_job(io.BytesIO(f.result().content)).phase for f in waits]
    assert set(phases) == {"COMPLETED"}
    assert time.monotonic() - t0 < 3.0
    # finished: never blocks
    t0 = time.monotonic()
    requests.get(url, params={"WAIT": 30})
    assert time.monotonic() - t0 < 0.5
    assert requests.get(url, params={"WAIT": "soon"}).status_code == 400


def test_wait_is_capped_by_the_server_maximum(server):
    url = create(server)
    t0 = time.monotonic()
    requests.get(url, params={"WAIT": -1})  # server max_wait is 3 s
    assert 2.9 <= time.monotonic() - t0 < 5.0


def test_abort_a_running_job(server):
    url = create(server, sleep="30", PHASE="RUN")
    assert wait_for(url, {"EXECUTING"}) == "EXECUTING"
    resp = requests.post(f"{url}/phase", data={"PHASE": "ABORT"}, allow_redirects=False)
    assert resp.status_code == 303 and resp.headers["Location"] == url
    assert phase_of(url) == "ABORTED"
    time.sleep(0.2)
    assert phase_of(url) == "ABORTED"
    resp = requests.post(f"{url}/phase", data={"PHASE": "RUN"}, allow_redirects=False)
    assert resp.status_code == 403


def test_errors_become_error_summaries(server, tmp_path):
    url = create(server, fail="column FOO does not exist", PHASE="RUN")
    assert wait_for(url, {"COMPLETED", "ERROR"}) == "ERROR"
    doc = requests.get(url).content
    xsd_valid(doc, tmp_path)
    job = uws.parse_job(io.BytesIO(doc))
    assert job.errorsummary.message.content == "column FOO does not exist"
    assert job.errorsummary.type_ == "fatal"
    err = requests.get(f"{url}/error")
    assert err.status_code == 200
    info = etree.fromstring(err.content).find(".//{*}INFO")
    assert info.get("value") == "ERROR" and info.text == "column FOO does not exist"
    crash = create(server, crash="boom", PHASE="RUN")
    assert wait_for(crash, {"COMPLETED", "ERROR"}) == "ERROR"
    assert "internal error: boom" in requests.get(f"{crash}/error").text
    # the parse_params hook rejects bad input with 400 and creates nothing
    resp = requests.post(server.jobs, data={"BAD": "1"}, allow_redirects=False)
    assert resp.status_code == 400 and "BAD is not allowed" in resp.text


def test_parameters_only_change_while_pending(server):
    url = create(server, TEXT="a")
    resp = requests.post(
        f"{url}/parameters", data={"TEXT": "b", "Extra": "1"}, allow_redirects=False
    )
    assert resp.status_code == 303
    params = {
        p.id_: p.content for p in uws.parse_job(io.BytesIO(requests.get(url).content)).parameters
    }
    assert params == {"text": "b", "extra": "1"}
    requests.post(url, data={"PHASE": "RUN"})
    wait_for(url, {"COMPLETED"})
    assert requests.get(f"{url}/results/result").text == "b"
    resp = requests.post(f"{url}/parameters", data={"TEXT": "c"}, allow_redirects=False)
    assert resp.status_code == 403


def test_duration_and_destruction_resources(server):
    url = create(server)
    assert requests.get(f"{url}/executionduration").text == "30"
    resp = requests.post(
        f"{url}/executionduration", data={"EXECUTIONDURATION": "500"}, allow_redirects=False
    )
    assert resp.status_code == 303 and resp.headers["Location"] == url
    assert requests.get(f"{url}/executionduration").text == "60"
    assert (
        requests.post(f"{url}/executionduration", data={"EXECUTIONDURATION": "x"}).status_code
        == 400
    )
    target = "2031-06-01T00:00:00Z"
    requests.post(f"{url}/destruction", data={"DESTRUCTION": target})
    got = datetime.fromisoformat(requests.get(f"{url}/destruction").text.replace("Z", "+00:00"))
    assert got <= datetime.now(UTC) + timedelta(days=10, seconds=5)  # clamped to 10 days
    soon = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    requests.post(
        f"{url}/destruction", data={"DESTRUCTION": soon.isoformat().replace("+00:00", "Z")}
    )
    job = uws.parse_job(io.BytesIO(requests.get(url).content))
    assert job.destruction == Time(soon)
    assert requests.get(f"{url}/destruction").text == soon.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert requests.post(f"{url}/quote", data={"x": "1"}).status_code == 405


def test_delete_both_ways(server):
    for how in ("DELETE", "ACTION"):
        url = create(server, PHASE="RUN")
        wait_for(url, {"COMPLETED"})
        if how == "DELETE":
            resp = requests.delete(url, allow_redirects=False)
        else:
            resp = requests.post(url, data={"ACTION": "DELETE"}, allow_redirects=False)
        assert resp.status_code == 303 and resp.headers["Location"] == server.jobs
        assert requests.get(url).status_code == 404
        assert requests.get(f"{url}/results/result").status_code == 404


def test_configured_base_url_is_used_for_links(server):
    resp = requests.post(
        f"{server.url}/proxied/async", data={"PHASE": "RUN"}, allow_redirects=False
    )
    location = resp.headers["Location"]
    assert location.startswith("https://example.org/prefix/proxied/async/")
    job_id = location.rsplit("/", 1)[1]
    local = f"{server.url}/proxied/async/{job_id}"
    wait_for(local, {"COMPLETED"})
    tree = etree.fromstring(requests.get(local).content)
    href = tree.find("uws:results/uws:result", NS).get(f"{{{NS['xlink']}}}href")
    assert href == f"{location}/results/result"


def test_jobs_survive_a_crash_in_a_defined_phase(tmp_path):
    srv = start(tmp_path)
    try:
        pending = create(srv, TEXT="keep")
        running = create(srv, sleep="30", PHASE="RUN")
        wait_for(running, {"EXECUTING"})
        done = create(srv, TEXT="finished", PHASE="RUN")
        wait_for(done, {"COMPLETED"})
    finally:
        stop(srv, signal.SIGKILL)
    srv2 = start(tmp_path)
    try:

        def moved(url: str) -> str:
            return url.replace(srv.url, srv2.url)

        assert phase_of(moved(pending)) == "PENDING"
        assert phase_of(moved(running)) == "ERROR"
        job = uws.parse_job(io.BytesIO(requests.get(moved(running)).content))
        assert job.errorsummary.message.content == RESTART_MESSAGE
        assert requests.get(moved(done) + "/results/result").text == "finished"
        requests.post(moved(pending) + "/phase", data={"PHASE": "RUN"})
        assert wait_for(moved(pending), {"COMPLETED"}) == "COMPLETED"
    finally:
        stop(srv2)
