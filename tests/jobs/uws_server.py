"""A small UWS server for the HTTP tests: real JobManager and resources, a dummy runner.

Run as ``python uws_server.py STATE_DIR``; prints ``PORT <n>`` once listening.
The runner is not under test: it sleeps, fails or echoes its input on request.
Owners come from an ``X-Test-User`` header so ownership can be tested.
"""

from __future__ import annotations

import logging
import sys
from datetime import timedelta
from pathlib import Path

from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import Site

from sciportal.errors import UsageError
from sciportal.jobs.model import Job, Result
from sciportal.jobs.scheduler import JobLimits, JobManager, RunContext
from sciportal.jobs.store import JobStore
from sciportal.web.uws import JobListResource, default_parse_params


def runner(job: Job, ctx: RunContext) -> list[Result]:
    params = job.parameters
    if "sleep" in params:
        ctx.cancelled.wait(float(params["sleep"]))
    if "fail" in params:
        raise UsageError(params["fail"])
    if "crash" in params:
        raise RuntimeError(params["crash"])
    (ctx.result_dir / "result.txt").write_text(params.get("text", "done"))
    results = [Result("result", "result.txt", "text/plain", rows=1)]
    for name, path in ctx.uploads.items():
        (ctx.result_dir / f"echo-{name}").write_bytes(path.read_bytes())
        results.append(Result(f"upload-{name}", f"echo-{name}", "application/octet-stream"))
    return results


def parse_params(values: dict[str, list[str]]) -> dict[str, str]:
    if "bad" in values:
        raise UsageError("parameter BAD is not allowed")
    return default_parse_params(values)


def owner_of(request: object) -> str | None:
    user = request.getHeader(b"x-test-user")  # type: ignore[attr-defined]
    return user.decode() if user else None


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    state = Path(sys.argv[1])
    limits = JobLimits(
        max_running=2,
        max_running_per_owner=2,
        default_execution_duration=30,
        max_execution_duration=60,
        max_destruction=timedelta(days=10),
        max_wait=3.0,
    )
    manager = JobManager(JobStore(state / "jobs.sqlite", state / "files"), limits)
    manager.register_runner("demo", runner)
    root = Resource()
    tap = Resource()
    root.putChild(b"tap", tap)
    tap.putChild(
        b"async", JobListResource(manager, "demo", parse_params=parse_params, owner_of=owner_of)
    )
    proxied = Resource()
    root.putChild(b"proxied", proxied)
    proxied.putChild(
        b"async",
        JobListResource(manager, "demo", owner_of=owner_of, base_url="https://example.org/prefix/"),
    )
    port = reactor.listenTCP(0, Site(root), interface="127.0.0.1")  # type: ignore[attr-defined]
    reactor.addSystemEventTrigger("before", "shutdown", manager.shutdown)  # type: ignore[attr-defined]
    print(f"PORT {port.getHost().port}", flush=True)
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
