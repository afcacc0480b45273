"""The job manager: real threads, real SQLite, runners that sleep or block on events."""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from sciportal.errors import (
    LimitExceeded,
    NotFoundError,
    ServiceUnavailable,
    UnsupportedError,
    UsageError,
)
from sciportal.jobs.model import JobStateError, Phase, Result
from sciportal.jobs.scheduler import (
    SHUTDOWN_MESSAGE,
    TIMEOUT_MESSAGE,
    JobLimits,
    JobManager,
    RunContext,
)
from sciportal.jobs.store import RESTART_MESSAGE, JobStore


class Gate:
    """A runner that blocks until released (or cancelled) and records what happened."""

    def __init__(self):
        self.release = threading.Event()
        self.started: list[str] = []
        self.cancel_calls: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, job, ctx: RunContext):
        with self.lock:
            self.started.append(job.job_id)
        ctx.on_cancel(lambda: self.cancel_calls.append(job.job_id))
        while not self.release.is_set() and not ctx.cancelled.is_set():
            time.sleep(0.005)
        (ctx.result_dir / "out.txt").write_text(job.parameters.get("text", "done"))
        return [Result("result", "out.txt", "text/plain", rows=1)]


class Clock:
    def __init__(self):
        self.now = datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self):
        return self.now


def wait_phase(manager, job_id, owner, phase, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = manager.get(job_id, owner)
        if job.phase is phase:
            return job
        time.sleep(0.01)
    raise AssertionError(f"job stayed {manager.get(job_id, owner).phase}, wanted {phase}")


@pytest.fixture
def make_manager(tmp_path):
    managers = []

    def make(limits=None, clock=None, runner=None, start=True):
        store = JobStore(tmp_path / "jobs.sqlite", tmp_path / "files")
        kwargs = {"clock": clock} if clock else {}
        manager = JobManager(store, limits or JobLimits(), start=start, **kwargs)
        manager.register_runner("test", runner or Gate())
        managers.append(manager)
        return manager

    yield make
    for m in managers:
        m.shutdown(timeout=2)
        m.store.close()


def test_job_runs_to_completion_with_results(make_manager):
    gate = Gate()
    gate.release.set()
    m = make_manager(runner=gate)
    job = m.create("test", "alice", {"TEXT": "hello"}, run_id="r1")
    assert job.phase is Phase.PENDING and job.parameters == {"text": "hello"}
    assert job.run_id == "r1"
    m.run(job.job_id, "alice")
    done = wait_phase(m, job.job_id, "alice", Phase.COMPLETED)
    assert done.results == (Result("result", "out.txt", "text/plain", 5, 1),)
    res, path = m.result_file(job.job_id, "alice", "result")
    assert path.read_text() == "hello" and res.size == 5
    assert done.start_time is not None and done.end_time is not None
    assert done.creation_time <= done.start_time <= done.end_time
    with pytest.raises(NotFoundError):
        m.result_file(job.job_id, "alice", "other")


def test_jobs_are_private_to_their_owner(make_manager):
    m = make_manager()
    alice = m.create("test", "alice", {})
    anon = m.create("test", None, {})
    for who, job in (("bob", alice), (None, alice), ("alice", anon), ("bob", anon)):
        with pytest.raises(NotFoundError):
            m.get(job.job_id, who)
        with pytest.raises(NotFoundError):
            m.run(job.job_id, who)
        with pytest.raises(NotFoundError):
            m.abort(job.job_id, who)
        with pytest.raises(NotFoundError):
            m.delete(job.job_id, who)
    assert m.get(anon.job_id, None) == anon
    assert [j.job_id for j in m.list("alice")] == [alice.job_id]
    assert [j.job_id for j in m.list(None)] == [anon.job_id]
    with pytest.raises(NotFoundError):
        m.get(alice.job_id, "alice", job_type="other")


def test_global_and_per_owner_limits_queue_extra_jobs(make_manager):
    gate = Gate()
    m = make_manager(JobLimits(max_running=2, max_running_per_owner=1), runner=gate)
    a1, a2 = (m.create("test", "alice", {}) for _ in range(2))
    b1 = m.create("test", "bob", {})
    c1 = m.create("test", "carol", {})
    for job in (a1, a2, b1, c1):
        m.run(job.job_id, job.owner)
    wait_phase(m, a1.job_id, "alice", Phase.EXECUTING)
    wait_phase(m, b1.job_id, "bob", Phase.EXECUTING)
    time.sleep(0.1)
    # alice's second job waits for her first (per owner), carol for a free slot (global)
    assert m.get(a2.job_id, "alice").phase is Phase.QUEUED
    assert m.get(c1.job_id, "carol").phase is Phase.QUEUED
    assert m.running_count() == 2 and m.running_count("alice") == 1
    # running the same job again changes nothing
    assert m.run(a2.job_id, "alice").phase is Phase.QUEUED
    m.abort(b1.job_id, "bob")
    # bob's slot frees: a2 is first in the queue but alice is at her limit, so carol runs
    wait_phase(m, c1.job_id, "carol", Phase.EXECUTING)
    assert m.get(a2.job_id, "alice").phase is Phase.QUEUED
    gate.release.set()
    for job in (a1, a2, c1):
        wait_phase(m, job.job_id, job.owner, Phase.COMPLETED)
    assert gate.started.index(a2.job_id) > gate.started.index(c1.job_id)
    assert m.running_count() == 0


def test_abort_executing_job_calls_cancel_callbacks(make_manager):
    gate = Gate()
    m = make_manager(runner=gate)
    job = m.create("test", "alice", {})
    m.run(job.job_id, "alice")
    wait_phase(m, job.job_id, "alice", Phase.EXECUTING)
    aborted = m.abort(job.job_id, "alice")
    assert aborted.phase is Phase.ABORTED and aborted.end_time is not None
    assert gate.cancel_calls == [job.job_id]
    time.sleep(0.1)  # the runner returns normally afterwards; its outcome is dropped
    assert m.get(job.job_id, "alice").phase is Phase.ABORTED
    assert m.abort(job.job_id, "alice").phase is Phase.ABORTED  # idempotent
    with pytest.raises(JobStateError):
        m.run(job.job_id, "alice")


def test_abort_queued_and_pending_jobs_never_run(make_manager):
    gate = Gate()
    m = make_manager(JobLimits(max_running=1), runner=gate)
    first, queued, pending = (m.create("test", None, {}) for _ in range(3))
    m.run(first.job_id, None)
    m.run(queued.job_id, None)
    wait_phase(m, first.job_id, None, Phase.EXECUTING)
    assert m.abort(queued.job_id, None).phase is Phase.ABORTED
    assert m.abort(pending.job_id, None).phase is Phase.ABORTED
    gate.release.set()
    wait_phase(m, first.job_id, None, Phase.COMPLETED)
    time.sleep(0.05)
    assert gate.started == [first.job_id]


def test_execution_duration_is_enforced(make_manager):
    gate = Gate()
    m = make_manager(JobLimits(default_execution_duration=1), runner=gate)
    job = m.create("test", "alice", {})
    t0 = time.monotonic()
    m.run(job.job_id, "alice")
    failed = wait_phase(m, job.job_id, "alice", Phase.ERROR, timeout=5)
    elapsed = time.monotonic() - t0
    assert 0.9 <= elapsed < 2.0
    assert failed.error is not None and TIMEOUT_MESSAGE in failed.error.message
    assert gate.cancel_calls == [job.job_id]


def test_execution_duration_is_clamped(make_manager):
    m = make_manager(JobLimits(max_execution_duration=100))
    job = m.create("test", "alice", {})
    assert m.set_execution_duration(job.job_id, "alice", 50).execution_duration == 50
    assert m.set_execution_duration(job.job_id, "alice", 500).execution_duration == 100
    assert m.set_execution_duration(job.job_id, "alice", 0).execution_duration == 100
    with pytest.raises(UsageError):
        m.set_execution_duration(job.job_id, "alice", -1)
    unlimited = make_manager(JobLimits(max_execution_duration=0))
    job2 = unlimited.create("test", "alice", {})
    assert unlimited.set_execution_duration(job2.job_id, "alice", 0).execution_duration == 0


def test_destruction_sweep_deletes_jobs_and_files(make_manager):
    clock = Clock()
    gate = Gate()
    gate.release.set()
    m = make_manager(JobLimits(default_destruction=timedelta(hours=1)), clock=clock, runner=gate)
    old = m.create("test", "alice", {})
    m.run(old.job_id, "alice")
    wait_phase(m, old.job_id, "alice", Phase.COMPLETED)
    folder = m.store.job_dir(old.job_id)
    assert (folder / "results" / "out.txt").is_file()
    clock.now += timedelta(minutes=30)
    young = m.create("test", "alice", {})
    assert m.sweep() == []
    clock.now += timedelta(minutes=31)
    assert m.sweep() == [old.job_id]
    assert not folder.exists()
    with pytest.raises(NotFoundError):
        m.get(old.job_id, "alice")
    assert m.get(young.job_id, "alice").phase is Phase.PENDING


def test_destruction_sweep_runs_by_itself_and_stops_running_jobs(make_manager):
    clock = Clock()
    gate = Gate()
    m = make_manager(JobLimits(sweep_interval=0.05), clock=clock, runner=gate)
    job = m.create("test", "alice", {})
    m.run(job.job_id, "alice")
    wait_phase(m, job.job_id, "alice", Phase.EXECUTING)
    m.set_destruction(job.job_id, "alice", clock.now - timedelta(seconds=1))
    deadline = time.monotonic() + 3
    while m.store.get(job.job_id) is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert m.store.get(job.job_id) is None
    assert gate.cancel_calls == [job.job_id]


def test_destruction_is_clamped_and_needs_a_time_zone(make_manager):
    clock = Clock()
    m = make_manager(JobLimits(max_destruction=timedelta(days=2)), clock=clock)
    job = m.create("test", "alice", {})
    far = m.set_destruction(job.job_id, "alice", clock.now + timedelta(days=300))
    assert far.destruction == clock.now + timedelta(days=2)
    near = m.set_destruction(job.job_id, "alice", clock.now + timedelta(hours=5))
    assert near.destruction == clock.now + timedelta(hours=5)
    with pytest.raises(UsageError):
        m.set_destruction(job.job_id, "alice", datetime(2031, 1, 1))


def test_runner_errors_are_classified(make_manager):
    def runner(job, ctx):
        kind = job.parameters["kind"]
        if kind == "usage":
            raise UnsupportedError("no such function FOO")
        if kind == "timeout":
            from sciportal.errors import ExecutionTimeout

            raise ExecutionTimeout("engine timed out")
        raise ZeroDivisionError("division by zero")

    m = make_manager(runner=runner)
    expected = {
        "usage": ("fatal", "no such function FOO"),
        "timeout": ("transient", "engine timed out"),
        "bug": ("fatal", "internal error: division by zero"),
    }
    for kind, (etype, message) in expected.items():
        job = m.create("test", None, {"kind": kind})
        m.run(job.job_id, None)
        failed = wait_phase(m, job.job_id, None, Phase.ERROR)
        assert failed.error is not None
        assert (failed.error.type, failed.error.message) == (etype, message)


def test_parameters_change_only_while_pending(make_manager):
    gate = Gate()
    m = make_manager(runner=gate)
    job = m.create("test", "alice", {"a": "1"})
    assert m.set_parameters(job.job_id, "alice", {"A": "2"}).parameters == {"a": "2"}
    m.run(job.job_id, "alice")
    with pytest.raises(JobStateError):
        m.set_parameters(job.job_id, "alice", {"a": "3"})


def test_wait_semantics(make_manager):
    gate = Gate()
    m = make_manager(JobLimits(max_wait=5), runner=gate)
    job = m.create("test", "alice", {})
    # phase given and different: immediate
    t0 = time.monotonic()
    assert m.wait(job.job_id, "alice", 10, Phase.EXECUTING).phase is Phase.PENDING
    # active phase with nothing happening: returns after the timeout
    assert m.wait(job.job_id, "alice", 0.3).phase is Phase.PENDING
    assert 0.25 <= time.monotonic() - t0 < 1.0

    m.run(job.job_id, "alice")
    wait_phase(m, job.job_id, "alice", Phase.EXECUTING)
    threading.Timer(0.2, gate.release.set).start()
    t0 = time.monotonic()
    done = m.wait(job.job_id, "alice", -1, Phase.EXECUTING)  # -1: as long as allowed
    assert done.phase is Phase.COMPLETED
    assert 0.15 <= time.monotonic() - t0 < 2.0
    # a finished job never blocks
    t0 = time.monotonic()
    assert m.wait(job.job_id, "alice", 10).phase is Phase.COMPLETED
    assert time.monotonic() - t0 < 0.1
    assert m.wait_timeout(None) == 5 and m.wait_timeout(100) == 5 and m.wait_timeout(2) == 2


def test_subscribe_reports_changes_and_deletion(make_manager):
    gate = Gate()
    gate.release.set()
    m = make_manager(runner=gate)
    job = m.create("test", None, {})
    seen = []
    unsubscribe = m.subscribe(job.job_id, lambda j: seen.append(None if j is None else j.phase))
    m.run(job.job_id, None)
    wait_phase(m, job.job_id, None, Phase.COMPLETED)
    time.sleep(0.05)
    assert seen == [Phase.QUEUED, Phase.EXECUTING, Phase.COMPLETED]
    m.delete(job.job_id, None)
    assert seen[-1] is None
    unsubscribe()


def test_uploads_are_stored_for_the_runner(make_manager):
    captured = {}

    def runner(job, ctx):
        captured.update({k: p.read_bytes() for k, p in ctx.uploads.items()})
        return []

    m = make_manager(JobLimits(max_upload_bytes=10), runner=runner)
    job = m.create("test", None, {}, uploads={"t1": b"abc", "t2.vot": b"12345"})
    assert m.upload_names(job.job_id) == ["t1", "t2.vot"]
    assert m.upload_file(job.job_id, None, "t1").read_bytes() == b"abc"
    m.run(job.job_id, None)
    wait_phase(m, job.job_id, None, Phase.COMPLETED)
    assert captured == {"t1": b"abc", "t2.vot": b"12345"}
    with pytest.raises(UsageError):
        m.create("test", None, {}, uploads={"../evil": b"x"})
    with pytest.raises(LimitExceeded):
        m.create("test", None, {}, uploads={"big": b"x" * 11})
    with pytest.raises(UsageError):
        m.create("nosuchtype", None, {})


def test_shutdown_stops_running_and_queued_jobs(make_manager):
    gate = Gate()
    m = make_manager(JobLimits(max_running=1), runner=gate)
    running, queued = (m.create("test", "alice", {}) for _ in range(2))
    m.run(running.job_id, "alice")
    m.run(queued.job_id, "alice")
    wait_phase(m, running.job_id, "alice", Phase.EXECUTING)
    m.shutdown(timeout=2)
    for job in (running, queued):
        now = m.get(job.job_id, "alice")
        assert now.phase is Phase.ERROR
        assert now.error is not None and now.error.message == SHUTDOWN_MESSAGE
    assert gate.cancel_calls == [running.job_id]
    assert m.running_count() == 0
    with pytest.raises(ServiceUnavailable):
        m.create("test", "alice", {})


def test_jobs_survive_a_crash_in_a_defined_phase(tmp_path):
    gate = Gate()
    store = JobStore(tmp_path / "j.sqlite", tmp_path / "files")
    m = JobManager(store, JobLimits(max_running=1))
    m.register_runner("test", gate)
    pending, running, queued = (m.create("test", "alice", {"n": str(i)}) for i in range(3))
    m.run(running.job_id, "alice")
    m.run(queued.job_id, "alice")
    wait_phase(m, running.job_id, "alice", Phase.EXECUTING)
    # "crash": a second process opens the same database without any shutdown
    store2 = JobStore(tmp_path / "j.sqlite", tmp_path / "files")
    m2 = JobManager(store2, start=False)
    m2.register_runner("test", Gate())
    assert m2.get(pending.job_id, "alice").phase is Phase.PENDING
    assert m2.get(pending.job_id, "alice").parameters == {"n": "0"}
    for job in (running, queued):
        now = m2.get(job.job_id, "alice")
        assert now.phase is Phase.ERROR and now.error is not None
        assert now.error.message == RESTART_MESSAGE
    gate.release.set()
    m.shutdown(timeout=2)
    m2.shutdown(timeout=1)
    store.close()
    store2.close()


def test_from_config_uses_the_uws_settings(tmp_path):
    from sciportal.config import load_config

    config = load_config(
        home=tmp_path,
        environ={},
        overrides={"uws.max_jobs": 3, "uws.max_duration": 120, "uws.default_duration": 100},
    )
    m = JobManager.from_config(config)
    try:
        assert m.limits.max_running == 3
        assert m.limits.max_execution_duration == 120
        assert m.limits.default_execution_duration == 100
        assert m.store.db_path == config.jobs_db
        assert m.store.files_root == config.jobs_dir
    finally:
        m.shutdown(timeout=1)
        m.store.close()


def test_admin_beside_a_running_server_leaves_its_jobs_alone(tmp_path):
    """`sciportal jobs list` opens the store while a server runs: no restart policy then."""
    from sciportal.config import load_config
    from sciportal.jobs.model import Job, new_job_id

    config = load_config(home=tmp_path, environ={})
    config.state_dir.mkdir(parents=True, exist_ok=True)
    server_store = JobStore(config.jobs_db, config.jobs_dir)
    now = datetime.now(UTC)
    job = server_store.create(
        Job(
            job_id=new_job_id(),
            job_type="tap",
            owner=None,
            phase=Phase.EXECUTING,
            creation_time=now,
            destruction=now + timedelta(days=1),
            execution_duration=60,
        )
    )
    admin = JobManager.from_config(config, start=False)
    try:
        assert admin.store.require(job.job_id).phase is Phase.EXECUTING
    finally:
        admin.store.close()
    restarted = JobManager.from_config(config)
    try:
        assert restarted.store.require(job.job_id).phase is Phase.ERROR
    finally:
        restarted.shutdown(timeout=1)
        restarted.store.close()
    server_store.close()
