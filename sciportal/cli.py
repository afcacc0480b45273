"""The ``sciportal`` command: serve, demo, publish, unpublish, ingest, list, jobs.

Every failure the user can fix ends in one line on stderr and a non-zero
exit; nothing is half-written (publishing writes aside, then renames).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sciportal import __version__
from sciportal.config import Config, describe_settings, load_config
from sciportal.errors import SciportalError

log = logging.getLogger("sciportal")

DEMO_RD = Path(__file__).resolve().parent.parent / "rd" / "demo.yaml"


MAX_DEMO_ROWS = 100_000_000


class _Parser(argparse.ArgumentParser):
    """argparse with the one-line error every other failure of the command gives."""

    def error(self, message: str) -> Any:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _demo_rows(text: str) -> int:
    try:
        rows = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--rows expects a whole number, got {text!r}") from None
    if not 1 <= rows <= MAX_DEMO_ROWS:
        raise argparse.ArgumentTypeError(f"--rows must be 1 to {MAX_DEMO_ROWS:,}, got {rows:,}")
    return rows


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sciportal", description="IVOA VO services for sky surveys.")
    p.add_argument("--version", action="version", version=f"sciportal {__version__}")
    p.add_argument("--home", type=Path, help="data home (default ./var or $SCIPORTAL_HOME)")
    p.add_argument("--config", type=Path, help="TOML configuration file")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set server.port=9000",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or banners")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    s = sub.add_parser("serve", help="run the web server")
    s.add_argument("--host", help="interface to listen on")
    s.add_argument("--port", type=int, help="TCP port (0: any free port)")

    d = sub.add_parser("demo", help="generate and publish the demo survey")
    d.add_argument("--rows", type=_demo_rows, help="objects in the demo survey (default 1,000,000)")
    d.add_argument("--no-tiles", action="store_true", help="skip the coadd image tiles")
    d.add_argument("--serve", action="store_true", help="then run the server")
    d.add_argument("--host", help="interface to listen on (with --serve)")
    d.add_argument("--port", type=int, help="TCP port (with --serve)")

    pub = sub.add_parser("publish", help="ingest and register a resource descriptor")
    pub.add_argument("descriptor", type=Path)

    un = sub.add_parser("unpublish", help="remove a published schema, its tables and files")
    un.add_argument("schema")

    ing = sub.add_parser("ingest", help="publish one file with inferred metadata")
    ing.add_argument("file", type=Path)
    ing.add_argument("--schema", default="user", help="schema to publish into (default: user)")
    ing.add_argument("--table", help="table name (default: from the file name)")

    sub.add_parser("list", help="list published tables")
    sub.add_parser("config", help="describe every setting")

    j = sub.add_parser("jobs", help="administer UWS jobs")
    jsub = j.add_subparsers(
        dest="jobs_command", required=True, metavar="ACTION", parser_class=_Parser
    )
    jl = jsub.add_parser("list", help="list jobs")
    jl.add_argument("--phase", action="append", help="only jobs in this phase")
    jd = jsub.add_parser("delete", help="delete a job and its results")
    jd.add_argument("job_id")
    jsub.add_parser("purge", help="delete jobs past their destruction time")
    return p


def _config(args: argparse.Namespace) -> Config:
    overrides: dict[str, Any] = {}
    for item in args.set:
        if "=" not in item:
            raise SciportalError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        overrides[key.strip()] = value.strip()
    if getattr(args, "host", None):
        overrides["server.host"] = args.host
    if getattr(args, "port", None) is not None:
        overrides["server.port"] = args.port
    return load_config(args.config, args.home, overrides=overrides)


def _serve(config: Config, quiet: bool) -> int:
    from sciportal.web.app import build_app
    from sciportal.web.server import serve

    return serve(build_app(config), quiet=quiet)


def _metadata(config: Config) -> Any:
    from sciportal.metadata.store import MetadataStore

    config.state_dir.mkdir(parents=True, exist_ok=True)
    return MetadataStore(config.metadata_db)


def _demo(config: Config, args: argparse.Namespace) -> int:
    from sciportal.demo import generate
    from sciportal.store.publish import publish

    rows = args.rows if args.rows is not None else config["demo.rows"]
    out = config.home / "sources" / "demo"
    if not args.quiet:
        print(f"generating the demo survey ({rows:,} objects) in {out}", flush=True)
    generate(out, rows=rows, tiles=not args.no_tiles, progress=not args.quiet)
    store = _metadata(config)
    rd = DEMO_RD
    if not rd.is_file():  # installed without the source tree: the same descriptor, rendered
        from sciportal.demo.descriptor import render

        rd = config.home / "rd" / "demo.yaml"
        rd.parent.mkdir(parents=True, exist_ok=True)
        rd.write_text(render(), encoding="utf-8")
    report = publish(rd, config.home, store, progress=not args.quiet)
    if not args.quiet:
        print(report.summary(), flush=True)
    _cleanup_retired(config, store)
    if args.serve:
        return _serve(config, args.quiet)
    return 0


def _cleanup_retired(config: Config, store: Any) -> None:
    """Delete old versions of re-published tables that no query can still be reading.

    This process cannot see a running server's queries, so only versions
    retired longer ago than the longest query or job may run are removed; the
    server removes the others itself once its queries on them are done.
    """
    from sciportal.store.publish import cleanup_versions

    if config["uws.max_duration"] == 0:  # jobs may run for ever: only the server can tell
        return
    longest = max(config["query.sync_timeout"], config["uws.max_duration"])
    cleanup_versions(store, older_than_s=longest)


def _list(config: Config) -> int:
    store = _metadata(config)
    tables = store.list_tables()
    if not tables:
        print("nothing published (try: sciportal demo)")
        return 0
    width = max(len(t.name) for t in tables)
    for t in sorted(tables, key=lambda t: t.name):
        rows = f"{t.nrows:>14,}" if t.nrows is not None else " " * 14
        print(f"{t.name:<{width}}  {rows} rows  {len(t.columns):>4} columns  v{t.version}")
    return 0


def _jobs(config: Config, args: argparse.Namespace) -> int:
    from sciportal.errors import NotFoundError
    from sciportal.jobs.model import Phase
    from sciportal.jobs.scheduler import JobManager

    manager = JobManager.from_config(config, start=False)
    if args.jobs_command == "list":
        try:
            phases = [Phase(p.upper()) for p in args.phase] if args.phase else list(Phase)
        except ValueError:
            raise SciportalError(f"unknown phase in {args.phase}") from None
        for job in manager.store.in_phases(phases):
            print(
                f"{job.job_id}  {job.phase.value:<10} {job.owner or '-':<12} "
                f"{job.creation_time:%Y-%m-%dT%H:%M:%S}  {job.run_id or ''}"
            )
    elif args.jobs_command == "delete":
        found = manager.store.get(args.job_id)
        if found is None:
            raise NotFoundError(f"no such job: {args.job_id}")
        manager.delete(found.job_id, found.owner)
        print(f"deleted job {found.job_id}")
    elif args.jobs_command == "purge":
        print(f"deleted {len(manager.sweep())} expired jobs")
    return 0


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run one command; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = _config(args)
    if args.command == "serve":
        return _serve(config, args.quiet)
    if args.command == "demo":
        return _demo(config, args)
    if args.command == "publish":
        from sciportal.store.publish import publish

        store = _metadata(config)
        report = publish(args.descriptor, config.home, store, progress=not args.quiet)
        print(report.summary())
        _cleanup_retired(config, store)
        return 0
    if args.command == "unpublish":
        from sciportal.errors import NotFoundError
        from sciportal.store.publish import unpublish

        removed = unpublish(args.schema, config.home, _metadata(config))
        if not removed:
            raise NotFoundError(
                f"nothing is published in schema {args.schema!r} (see: sciportal list)"
            )
        print(f"unpublished {args.schema}: {', '.join(removed)}")
        return 0
    if args.command == "ingest":
        from sciportal.store.publish import ingest_file

        result = ingest_file(
            args.file,
            config.home,
            _metadata(config),
            schema=args.schema,
            table=args.table,
            progress=not args.quiet,
        )
        print(f"published; its descriptor is {result} (edit it and publish again to refine)")
        return 0
    if args.command == "list":
        return _list(config)
    if args.command == "config":
        print(describe_settings())
        return 0
    if args.command == "jobs":
        return _jobs(config, args)
    raise AssertionError(args.command)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: one-line errors and a non-zero exit for anything the user can fix."""
    try:
        return run(argv)
    except SciportalError as exc:
        print(f"sciportal: error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sciportal: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"sciportal: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug, not the user's doing: still one line, details with -v
        if {"-v", "--verbose"} & set(sys.argv[1:] if argv is None else argv):
            raise
        print(
            f"sciportal: internal error: {type(exc).__name__}: {exc} (run with -v for details)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
