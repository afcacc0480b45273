"""Async TAP: the UWS runner that executes a query job into a result file."""

from __future__ import annotations

from typing import Any

from sciportal.errors import SciportalError
from sciportal.jobs.model import Job, Result
from sciportal.jobs.scheduler import RunContext, Runner
from sciportal.services.tap import TapService


def tap_runner(tap: TapService) -> Runner:
    """A runner for ``tap`` jobs: same path as sync, output to the job's folder."""

    def run(job: Job, ctx: RunContext) -> list[Result]:
        args: dict[str, list[Any]] = {k.upper(): [v] for k, v in job.parameters.items()}
        for name, path in ctx.uploads.items():
            args[name.upper()] = [path.read_bytes()]
        req = tap.parse_request(args)
        prepared = tap.prepare(req, job.owner)
        result = tap.start(prepared, ctx.remaining(), ctx.on_cancel)
        final = ctx.result_dir / f"result.{req.writer.extension}"
        part = ctx.result_dir / f".result.{req.writer.extension}.part"
        try:
            with part.open("wb") as out:
                stats = tap.write(prepared, result, out)
            if ctx.cancelled.is_set():
                raise SciportalError("job aborted")
            part.replace(final)
        finally:
            part.unlink(missing_ok=True)
        rows = getattr(stats, "rows", None)
        return [
            Result(
                id="result",
                name=final.name,
                mime=req.writer.mime,
                size=final.stat().st_size,
                rows=rows,
            )
        ]

    return run
