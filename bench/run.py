"""sciportal against GAVO DaCHS on the same data, side by side, in one run.

Usage (from the repository root)::

    python -m bench.run [--rows 2000000] [--repeat 5] [--only WORKLOAD ...]
                        [--skip-setup] [--parts server,adql,formats,ingest]

Generates and publishes the demo survey at ``--rows`` in a bench home under
``bench/work/``, loads the same rows into DaCHS (installing and configuring it
if missing, see ``bench/peer.py``), starts both servers, warms up, then runs
every workload against both in turn (A B, B A, ...) and prints one table:
medians, the ratio DaCHS/sciportal (>1: sciportal is faster), the row counts
of both (a difference, or different values in a small result, is FAIL), and
the peak RSS of each server process during the workload.  The same goes to
``bench/results/<time>-<rows>.json``.  The other parts (ADQL parse+translate,
serialization, ingest) are separate scripts run as subprocesses.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # ``python bench/run.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
import requests

from bench import peer
from bench import workloads as W

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "bench" / "work"
RESULTS = REPO / "bench" / "results"
#: warm-up (both services) slower than this: at most SLOW_REPEAT timed runs
SLOW_S = 20.0
SLOW_REPEAT = 3
OTHER_PARTS = {
    "adql": ["bench/adql_parse.py"],
    "formats": ["bench/formats_bench.py"],
    "ingest": ["bench/ingest_bench.py"],
}


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- sciportal side


def sciportal_home(rows: int) -> Path:
    return WORK / f"sciportal-{rows}"


def setup_sciportal(rows: int, *, force: bool = False) -> dict[str, Any]:
    """Generate + publish the demo at ``rows`` unless this home already has it."""
    home = sciportal_home(rows)
    marker = home / "bench-ready.json"
    if marker.exists() and not force:
        info = json.loads(marker.read_text())
        if info.get("rows") == rows:
            log(f"sciportal demo at {rows:,} rows already in {home}")
            return {"skipped": True, **info}
    if home.exists():
        shutil.rmtree(home)
    log(f"sciportal demo --rows {rows:,} --no-tiles in {home}")
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "sciportal.cli",
            "--home",
            str(home),
            "-q",
            "demo",
            "--rows",
            str(rows),
            "--no-tiles",
        ],
        check=True,
        cwd=REPO,
    )
    info = {"rows": rows, "demo_s": round(time.perf_counter() - t0, 2)}
    marker.write_text(json.dumps(info))
    log(f"  generated and published in {info['demo_s']} s")
    return {"skipped": False, **info}


class SciportalServer:
    """``sciportal serve --port 0`` as a child process; the URL comes from its banner."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.log_path = WORK / "sciportal-serve.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 120) -> str:
        logf = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sciportal.cli",
                "--home",
                str(self.home),
                "serve",
                "--port",
                "0",
            ],
            stdout=logf,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(
                r"listening on (http://\S+?)/?\s", self.log_path.read_text(errors="replace")
            )
            if m:
                self.url = m.group(1).rstrip("/")
                return self.url
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(
            f"sciportal serve did not start; {self.log_path}:\n"
            + self.log_path.read_text(errors="replace")[-3000:]
        )

    @property
    def tap(self) -> str:
        return f"{self.url}/tap"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()


# ---------------------------------------------------------------- memory


class PeakRSS(threading.Thread):
    """Samples the RSS of process trees every 20 ms; ``take()`` returns and resets peaks."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        super().__init__(daemon=True)
        self.procs = {k: [psutil.Process(p) for p in v] for k, v in pids.items()}
        self.peak = dict.fromkeys(pids, 0)
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    @staticmethod
    def _tree_rss(roots: list[psutil.Process]) -> int:
        total = 0
        for root in roots:
            try:
                for p in [root, *root.children(recursive=True)]:
                    total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    def run(self) -> None:
        while not self.stopped.wait(0.02):
            for name, roots in self.procs.items():
                rss = self._tree_rss(roots)
                with self.lock:
                    self.peak[name] = max(self.peak[name], rss)

    def take(self) -> dict[str, float]:
        with self.lock:
            out = {k: round(v / 2**20, 1) for k, v in self.peak.items()}
            self.peak = dict.fromkeys(self.peak, 0)
        return out


# ---------------------------------------------------------------- measuring


def _median(xs: list[float]) -> float:
    good = [x for x in xs if not math.isnan(x)]
    return statistics.median(good) if good else float("nan")


def _verdict(a: list[W.Outcome], b: list[W.Outcome]) -> str:
    if any(o.error for o in a):
        return "ERROR sciportal"
    if any(o.error for o in b):
        return "ERROR dachs"
    rows_a, rows_b = {o.rows for o in a}, {o.rows for o in b}
    if rows_a != rows_b or len(rows_a) != 1:
        return "FAIL rows"
    fps_a, fps_b = {o.fingerprint for o in a}, {o.fingerprint for o in b}
    if fps_a != fps_b:
        return "FAIL values"
    return "ok"


def measure(
    selected: list[W.Workload],
    services: dict[str, str],
    repeat: int,
    sampler: PeakRSS,
) -> list[dict[str, Any]]:
    """Warm up, then A B / B A alternation per workload; raw outcomes kept for the JSON."""
    sessions = {name: requests.Session() for name in services}
    results = []
    for w in selected:
        log(f"{w.name}: warm-up")
        t_warm = time.perf_counter()
        for name, tap in services.items():
            W.run(w, tap, sessions[name])
        warm_s = time.perf_counter() - t_warm
        # a slow workload (big DaCHS downloads) gets fewer repeats so 20M rows fit in 30 min
        n = min(repeat, SLOW_REPEAT) if warm_s > SLOW_S else repeat
        runs: dict[str, list[W.Outcome]] = {name: [] for name in services}
        sampler.take()
        t0 = time.perf_counter()
        order = list(services)
        for r in range(n):
            for name in order if r % 2 == 0 else reversed(order):
                runs[name].append(W.run(w, services[name], sessions[name]))
        peaks = sampler.take()
        a, b = runs["sciportal"], runs["dachs"]
        med_a, med_b = _median([o.seconds for o in a]), _median([o.seconds for o in b])
        row: dict[str, Any] = {
            "workload": w.name,
            "title": w.title,
            "sciportal_s": med_a,
            "dachs_s": med_b,
            "ratio": med_b / med_a if med_a > 0 and not math.isnan(med_a) else float("nan"),
            "sciportal_rows": a[0].rows,
            "dachs_rows": b[0].rows,
            "check": _verdict(a, b),
            "sciportal_peak_rss_mb": peaks.get("sciportal"),
            "dachs_peak_rss_mb": peaks.get("dachs"),
            "errors": sorted({f"{n}: {o.error}" for n in runs for o in runs[n] if o.error}),
            "runs": {n: [asdict(o) for o in runs[n]] for n in runs},
            "repeats": n,
            "wall_s": round(time.perf_counter() - t0, 2),
        }
        extra = _extra(w, a, b, med_a, med_b)
        if extra:
            row["note"] = extra
        results.append(row)
        log(
            f"  sciportal {med_a:.4f} s, DaCHS {med_b:.4f} s, "
            f"rows {row['sciportal_rows']}/{row['dachs_rows']} {row['check']}"
        )
        for err in row["errors"][:3]:
            log(f"  {err}")
    return results


def _extra(
    w: W.Workload, a: list[W.Outcome], b: list[W.Outcome], med_a: float, med_b: float
) -> str:
    """Throughput where it says more than seconds: rows/s for downloads, queries/s for clients."""
    if w.kind == "concurrent" and med_a > 0 and med_b > 0:
        return f"{len(w.queries) / med_a:.1f} vs {len(w.queries) / med_b:.1f} queries/s"
    if w.name.startswith("download") and med_a > 0 and med_b > 0 and a[0].rows > 0:
        return f"{a[0].rows / med_a / 1e6:.2f}M vs {b[0].rows / med_b / 1e6:.2f}M rows/s"
    return ""


# ---------------------------------------------------------------- report


def _fmt_s(x: float) -> str:
    if math.isnan(x):
        return "-"
    return f"{x:.4f}" if x < 1 else f"{x:.2f}"


def render_table(rows: list[dict[str, Any]]) -> str:
    head = [
        "workload",
        "sciportal s",
        "DaCHS s",
        "ratio",
        "rows sp",
        "rows DaCHS",
        "check",
        "sp RSS MB",
        "DaCHS RSS MB",
        "note",
    ]
    body = [
        [
            r["workload"],
            _fmt_s(r["sciportal_s"]),
            _fmt_s(r["dachs_s"]),
            "-" if math.isnan(r["ratio"]) else f"{r['ratio']:.2f}",
            str(r["sciportal_rows"]),
            str(r["dachs_rows"]),
            r["check"],
            str(r["sciportal_peak_rss_mb"]),
            str(r["dachs_peak_rss_mb"]),
            r.get("note", ""),
        ]
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(head), sep, *(line(b) for b in body)])


def run_other_parts(parts: list[str], rows: int) -> dict[str, Any]:
    """The engineers' separate scripts, each alone; their stdout is their report."""
    out: dict[str, Any] = {}
    for part in parts:
        script = REPO / OTHER_PARTS[part][0]
        if not script.exists():
            out[part] = {"skipped": f"{script} not present"}
            continue
        cmd = [sys.executable, str(script)]
        if part == "ingest":
            cmd += ["--rows", str(rows), "--workdir", str(WORK / "ingest")]
        log(f"part {part}: {' '.join(cmd[1:])}")
        t0 = time.perf_counter()
        res = subprocess.run(
            cmd,
            cwd=REPO,
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
        )
        out[part] = {
            "cmd": cmd[1:],
            "rc": res.returncode,
            "seconds": round(time.perf_counter() - t0, 1),
            "stdout": res.stdout,
            "stderr_tail": res.stderr[-2000:],
        }
    return out


# ---------------------------------------------------------------- main


def _parser() -> argparse.ArgumentParser:
    names = [w.name for w in W.all_workloads()]
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--rows", type=int, default=2_000_000, help="demo survey size (default 2,000,000)"
    )
    p.add_argument("--repeat", type=int, default=5, help="timed runs per service and workload")
    p.add_argument(
        "--only",
        nargs="+",
        metavar="WORKLOAD",
        choices=names,
        help=f"run only these workloads: {', '.join(names)}",
    )
    p.add_argument(
        "--skip-setup",
        action="store_true",
        help="use the bench home and DaCHS as they are (no generate/install/load)",
    )
    p.add_argument(
        "--parts", default="all", help="comma list of server,adql,formats,ingest (default: all)"
    )
    p.add_argument("--dachs-port", type=int, default=peer.DEFAULT_PORT)
    p.add_argument(
        "--reload", action="store_true", help="regenerate the demo and reload DaCHS even if present"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    parts = ["server", *OTHER_PARTS] if args.parts == "all" else args.parts.split(",")
    unknown = set(parts) - {"server", *OTHER_PARTS}
    if unknown:
        print(f"unknown part(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    WORK.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    report: dict[str, Any] = {
        "rows": args.rows,
        "repeat": args.repeat,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_start": os.getloadavg(),
        },
    }
    table_text = ""
    if "server" in parts:
        home = sciportal_home(args.rows)
        setup: dict[str, Any] = {}
        if not args.skip_setup:
            t0 = time.perf_counter()
            setup["sciportal"] = setup_sciportal(args.rows, force=args.reload)
            setup["dachs"] = peer.setup(home, WORK, args.dachs_port, force=args.reload)
            setup["total_s"] = round(time.perf_counter() - t0, 1)
        else:
            peer.start_server(args.dachs_port)
        report["setup"] = setup
        server = SciportalServer(home)
        try:
            server.start()
            log(f"sciportal at {server.url}, DaCHS at {peer.tap_url(args.dachs_port)}")
            services = {"sciportal": server.tap, "dachs": peer.tap_url(args.dachs_port)}
            _sanity(services)
            assert server.proc is not None
            sampler = PeakRSS({"sciportal": [server.proc.pid], "dachs": peer.server_pids()})
            sampler.start()
            selected = [w for w in W.all_workloads() if not args.only or w.name in args.only]
            rows = measure(selected, services, args.repeat, sampler)
            sampler.stopped.set()
        finally:
            server.stop()
        report["workloads"] = rows
        table_text = render_table(rows)
    others = [p for p in parts if p != "server"]
    if others:
        report["parts"] = run_other_parts(others, args.rows)
    report["total_s"] = round(time.perf_counter() - t_start, 1)
    report["machine"]["loadavg_end"] = os.getloadavg()
    report["table"] = table_text
    out = RESULTS / f"{time.strftime('%Y%m%dT%H%M%S')}-{args.rows}.json"
    out.write_text(json.dumps(report, indent=1, default=str))
    m = report["machine"]
    print(
        f"\nsciportal vs GAVO DaCHS, {args.rows:,} rows, median of {args.repeat} "
        f"({SLOW_REPEAT} where a warm-up took > {SLOW_S:.0f} s); ratio = DaCHS/sciportal, "
        f">1: sciportal faster\n{m['cpus']} CPUs, load average {m['loadavg_start'][0]:.1f} "
        f"at start, {m['loadavg_end'][0]:.1f} at end\n"
    )
    if table_text:
        print(table_text)
        if "setup" in report and report["setup"]:
            print(f"\nsetup: {json.dumps(_setup_summary(report['setup']))}")
    for part, info in report.get("parts", {}).items():
        print(f"\n## {part} ({info.get('seconds', '-')} s, rc {info.get('rc', '-')})\n")
        print(info.get("stdout") or info.get("skipped") or info.get("stderr_tail", ""))
    print(f"\ntotal {report['total_s']} s; JSON: {out.relative_to(REPO)}")
    failed = [r for r in report.get("workloads", []) if r["check"] != "ok"]
    return 1 if failed else 0


def _setup_summary(setup: dict[str, Any]) -> dict[str, Any]:
    sp, da = setup.get("sciportal", {}), setup.get("dachs", {})
    return {
        "total_s": setup.get("total_s"),
        "sciportal_demo_s": None if sp.get("skipped") else sp.get("demo_s"),
        "dachs_install_s": da.get("install_s"),
        "dachs_load_s": da.get("load_s"),
        "dachs_tables": [
            {k: (round(v, 1) if isinstance(v, float) else v) for k, v in t.items()}
            for t in da.get("tables", [])
        ],
    }


def _sanity(services: dict[str, str]) -> None:
    """Both must hold the same rows before any timing means anything."""
    counts = {}
    for name, tap in services.items():
        for table in ("demo.coadd", "demo.specz"):
            try:
                body = W.sync_query(
                    requests.Session(), tap, f"SELECT COUNT(*) AS n FROM {table}", "csv"
                )
                counts[(name, table)] = body.decode().splitlines()[1].strip()
            except (W.QueryFailed, requests.RequestException, IndexError) as exc:
                counts[(name, table)] = f"error: {exc}"[:200]
    for table in ("demo.coadd", "demo.specz"):
        a, b = counts[("sciportal", table)], counts[("dachs", table)]
        log(f"COUNT(*) {table}: sciportal {a}, DaCHS {b}" + ("" if a == b else "  <-- DIFFERENT"))


if __name__ == "__main__":
    sys.exit(main())
