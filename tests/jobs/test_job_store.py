"""The SQLite job store: round trips, filters, compare-and-set phases, restart policy."""

import threading
from datetime import UTC, datetime, timedelta

import pytest

from sciportal.errors import NotFoundError
from sciportal.jobs.model import ErrorSummary, Job, JobStateError, Phase, Result, new_job_id
from sciportal.jobs.store import RESTART_MESSAGE, JobStore

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def make_job(owner="alice", created=T0, phase=Phase.PENDING, **kw):
    return Job(
        job_id=new_job_id(),
        job_type="tap",
        owner=owner,
        phase=phase,
        creation_time=created,
        destruction=created + timedelta(days=1),
        execution_duration=60,
        **kw,
    )


@pytest.fixture
def store(tmp_path):
    s = JobStore(tmp_path / "jobs.sqlite", tmp_path / "files")
    yield s
    s.close()


def test_round_trip_keeps_every_field(store):
    job = make_job(
        run_id="run 1",
        parameters={"query": "SELECT 1", "lang": "ADQL"},
        results=(Result("result", "result.vot", "application/x-votable+xml", 10, 1),),
        error=ErrorSummary("transient", "boom", True),
        start_time=T0 + timedelta(seconds=1),
        end_time=T0 + timedelta(seconds=2),
        quote=T0 + timedelta(hours=1),
    )
    store.create(job)
    assert store.get(job.job_id) == job
    assert store.result_dir(job.job_id).is_dir()
    assert store.upload_dir(job.job_id).is_dir()
    assert store.get("nope") is None
    with pytest.raises(NotFoundError):
        store.require("nope")


def test_list_filters_like_uws(store):
    alice = [store.create(make_job(created=T0 + timedelta(minutes=i))) for i in range(5)]
    store.create(make_job(owner="bob"))
    anon = store.create(make_job(owner=None))
    store.update_phase(alice[1].job_id, Phase.QUEUED)
    store.update_phase(alice[2].job_id, Phase.ARCHIVED)

    listed = store.list("alice")
    # newest first, ARCHIVED hidden by default
    assert [j.job_id for j in listed] == [alice[i].job_id for i in (4, 3, 1, 0)]
    assert [j.job_id for j in store.list(None)] == [anon.job_id]
    assert [j.job_id for j in store.list("alice", phases=[Phase.ARCHIVED])] == [alice[2].job_id]
    union = store.list("alice", phases=[Phase.QUEUED, Phase.ARCHIVED])
    assert {j.job_id for j in union} == {alice[1].job_id, alice[2].job_id}
    after = store.list("alice", after=T0 + timedelta(minutes=1))
    assert [j.job_id for j in after] == [alice[4].job_id, alice[3].job_id]
    assert [j.job_id for j in store.list("alice", last=2)] == [alice[4].job_id, alice[3].job_id]
    combined = store.list("alice", phases=[Phase.PENDING], after=T0, last=1)
    assert [j.job_id for j in combined] == [alice[4].job_id]
    assert store.list("alice", job_type="soda") == []
    assert store.list("alice", phases=[]) == []


def test_update_phase_is_compare_and_set_and_checked(store):
    job = store.create(make_job())
    assert store.update_phase(job.job_id, Phase.EXECUTING, expected={Phase.QUEUED}) is None
    with pytest.raises(JobStateError):
        store.update_phase(job.job_id, Phase.COMPLETED)
    queued = store.update_phase(job.job_id, Phase.QUEUED, expected={Phase.PENDING})
    assert queued is not None and queued.phase is Phase.QUEUED
    started = store.update_phase(job.job_id, Phase.EXECUTING, start_time=T0)
    assert started is not None and started.start_time == T0
    res = [Result("r", "r.csv", "text/csv")]
    done = store.update_phase(job.job_id, Phase.COMPLETED, end_time=T0, results=res)
    assert done is not None and done.results == tuple(res) and done.end_time == T0
    with pytest.raises(JobStateError):
        store.set_params(job.job_id, {"a": "b"})


def test_set_params_lowercases_and_requires_pending(store):
    job = store.create(make_job(parameters={"query": "x"}))
    updated = store.set_params(job.job_id, {"QUERY": "SELECT 2", "Lang": "ADQL"})
    assert updated.parameters == {"query": "SELECT 2", "lang": "ADQL"}


def test_delete_removes_row_and_folder(store):
    job = store.create(make_job())
    (store.result_dir(job.job_id) / "x.txt").write_text("hello")
    assert store.delete(job.job_id)
    assert store.get(job.job_id) is None
    assert not store.job_dir(job.job_id).exists()
    assert not store.delete(job.job_id)


def test_expired(store):
    old = store.create(make_job(created=T0 - timedelta(days=3)))
    store.create(make_job(created=T0))
    assert store.expired(T0) == [old.job_id]


def test_job_dir_rejects_path_tricks(store):
    for bad in ("../x", "a/b", "", "."):
        with pytest.raises(NotFoundError):
            store.job_dir(bad)


def test_restart_marks_running_jobs_as_error_and_keeps_others(tmp_path):
    store = JobStore(tmp_path / "j.sqlite", tmp_path / "files")
    phases = [Phase.PENDING, Phase.QUEUED, Phase.EXECUTING, Phase.COMPLETED, Phase.ABORTED]
    jobs = {p: store.create(make_job(phase=p)) for p in phases}
    store.close()

    reopened = JobStore(tmp_path / "j.sqlite", tmp_path / "files")
    assert set(reopened.recovered) == {jobs[Phase.QUEUED].job_id, jobs[Phase.EXECUTING].job_id}
    for phase, job in jobs.items():
        now = reopened.get(job.job_id)
        assert now is not None
        if phase in (Phase.QUEUED, Phase.EXECUTING):
            assert now.phase is Phase.ERROR
            assert now.error == ErrorSummary("transient", RESTART_MESSAGE, True)
            assert now.end_time is not None
        else:
            assert now == job
    reopened.close()


def test_concurrent_writers_do_not_lose_updates(store):
    jobs = [store.create(make_job()) for _ in range(20)]

    def work(job):
        store.set_params(job.job_id, {"n": job.job_id})
        store.update_phase(job.job_id, Phase.QUEUED, expected={Phase.PENDING})

    threads = [threading.Thread(target=work, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for job in jobs:
        now = store.require(job.job_id)
        assert now.phase is Phase.QUEUED and now.parameters == {"n": job.job_id}
