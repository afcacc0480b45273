"""The benchmark's workloads and the plain-HTTP TAP client that runs them.

Both services get byte-identical requests (same ADQL, RESPONSEFORMAT, MAXREC),
so a difference in time is a difference in the server.  Results are checked,
not trusted: rows are counted by parsing the response (CSV lines; VOTable with
astropy, or STILTS for big documents), and small CSV results are compared
value by value between the services (``fingerprint``), so an answer that is
fast because it is wrong shows up as a failure.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import shutil
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

#: cone centres inside the demo footprint (checked by the row counts in every run)
CONE_CENTRES: tuple[tuple[float, float], ...] = ((335.0, -45.0), (338.5, -42.0), (341.0, -47.5))
#: columns of the download workloads: 30 of the coadd table's 39
DOWNLOAD_COLUMNS = (
    "coadd_object_id, ra, dec, tilename, mag_auto_g, mag_auto_r, mag_auto_i, mag_auto_z, "
    "mag_auto_y, magerr_auto_g, magerr_auto_r, magerr_auto_i, magerr_auto_z, magerr_auto_y, "
    "flags_g, flags_r, flags_i, flags_z, flags_y, spread_model_i, spreaderr_model_i, "
    "class_star_i, extended_class_coadd, flux_radius_i, a_image, b_image, theta_j2000, "
    "ebv_sfd98, dnf_zmean, dnf_zsigma"
)
CONE_COLUMNS = "coadd_object_id, ra, dec, mag_auto_g, mag_auto_r, mag_auto_i, class_star_i"
#: big enough never to truncate a workload, identical for both services
MAXREC = 2_000_000
#: VOTable BINARY2 on both (DaCHS: format key ``votableb2``, alias ``votable/b2``)
B2 = "votable/b2"
#: results up to this many rows are compared value by value between services
FINGERPRINT_ROWS = 20_000
TIMEOUT = 900.0


@dataclass(frozen=True)
class Workload:
    """One measured thing; ``kind`` picks the client: sync, concurrent or async."""

    name: str
    title: str
    queries: tuple[str, ...]
    fmt: str = "csv"
    kind: str = "sync"
    clients: int = 1
    note: str = ""


@dataclass
class Outcome:
    """One timed run of a workload against one service."""

    seconds: float
    rows: int
    nbytes: int
    queries: int = 1
    fingerprint: str | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _cone(ra: float, dec: float, radius_deg: float) -> str:
    return (
        f"SELECT {CONE_COLUMNS} FROM demo.coadd WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), "
        f"CIRCLE('ICRS', {ra}, {dec}, {radius_deg:.6f}))"
    )


def _grid(n: int) -> list[tuple[float, float]]:
    """``n`` distinct cone centres spread over RA 330..345, Dec -50..-40 (footprint)."""
    out = []
    for i in range(n):
        out.append((330.5 + (i * 7.3) % 14.0, -49.5 + (i * 3.7) % 9.0))
    return out


def all_workloads() -> list[Workload]:
    """Every workload, in the order they run and print."""
    cones = [
        Workload(
            f"cone_{arcmin}arcmin",
            f"cone {arcmin}' (per query, {len(CONE_CENTRES)} positions)",
            tuple(_cone(ra, dec, arcmin / 60.0) for ra, dec in CONE_CENTRES),
        )
        for arcmin in (1, 6, 30)
    ]
    downloads = []
    for rows, label in ((100_000, "100k"), (1_000_000, "1M")):
        q = f"SELECT TOP {rows} {DOWNLOAD_COLUMNS} FROM demo.coadd"
        downloads.append(
            Workload(f"download_{label}_b2", f"{label} rows x 30 cols, BINARY2", (q,), fmt=B2)
        )
        downloads.append(Workload(f"download_{label}_csv", f"{label} rows x 30 cols, CSV", (q,)))
    concurrent = Workload(
        "concurrent_cones_16",
        "16 clients x 4 cones of 6' (whole batch)",
        tuple(_cone(ra, dec, 0.1) for ra, dec in _grid(64)),
        kind="concurrent",
        clients=16,
    )
    async_rt = Workload(
        "async_roundtrip",
        "async job: submit, run, wait, fetch",
        (_cone(335.0, -45.0, 0.1),),
        kind="async",
    )
    return [
        *cones,
        Workload(
            "count_cuts",
            "COUNT with magnitude cuts (full scan)",
            (
                "SELECT COUNT(*) AS n FROM demo.coadd WHERE mag_auto_i BETWEEN 18 AND 22.5 "
                "AND mag_auto_g - mag_auto_r > 0.4 AND flags_i < 4",
            ),
        ),
        Workload(
            "histogram",
            "histogram GROUP BY 0.5 mag bin",
            (
                "SELECT FLOOR(mag_auto_i * 2) / 2 AS bin, COUNT(*) AS n FROM demo.coadd "
                "GROUP BY bin ORDER BY bin",
            ),
        ),
        Workload(
            "top100_indexed",
            "TOP 100 ORDER BY mag_auto_i (indexed)",
            (
                "SELECT TOP 100 coadd_object_id, ra, dec, mag_auto_i FROM demo.coadd "
                "WHERE mag_auto_i IS NOT NULL ORDER BY mag_auto_i",
            ),
        ),
        Workload(
            "top100_sort",
            "TOP 100 ORDER BY mag_auto_r (not indexed)",
            (
                "SELECT TOP 100 coadd_object_id, ra, dec, mag_auto_r FROM demo.coadd "
                "WHERE mag_auto_r IS NOT NULL ORDER BY mag_auto_r",
            ),
        ),
        *downloads,
        concurrent,
        async_rt,
    ]


# ---------------------------------------------------------------- counting


class QueryFailed(Exception):
    """The service answered with an error (HTTP or QUERY_STATUS=ERROR)."""


_STATUS = re.compile(rb'<INFO[^>]*name="QUERY_STATUS"[^>]*value="(\w+)"[^>]*>(.*?)</INFO>', re.S)
_STATUS_ALT = re.compile(
    rb'<INFO[^>]*value="(\w+)"[^>]*name="QUERY_STATUS"[^>]*>(.*?)</INFO>', re.S
)
_count_cache: dict[str, int] = {}
_cache_lock = threading.Lock()


def _votable_status(head: bytes, tail: bytes) -> tuple[str, str] | None:
    for chunk in (head, tail):
        for pattern in (_STATUS, _STATUS_ALT):
            m = pattern.search(chunk)
            if m and m.group(1) != b"OK":
                return m.group(1).decode(), m.group(2).decode(errors="replace").strip()
    return None


def count_votable(body: bytes) -> int:
    """Rows in a VOTable: astropy for small documents, STILTS (JVM, much faster) for big ones."""
    key = hashlib.blake2b(body, digest_size=16).hexdigest()
    with _cache_lock:
        if key in _count_cache:
            return _count_cache[key]
    if len(body) < 8_000_000 or shutil.which("stilts") is None:
        from astropy.io.votable import parse

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = parse(io.BytesIO(body)).get_first_table()
        rows = len(table.array)
    else:
        rows = _stilts_count(body)
    with _cache_lock:
        _count_cache[key] = rows
    return rows


def _stilts_count(body: bytes) -> int:
    with tempfile.NamedTemporaryFile(suffix=".vot") as f:
        f.write(body)
        f.flush()
        res = subprocess.run(
            ["stilts", "tpipe", f"in={f.name}", "ifmt=votable", "omode=count"],
            capture_output=True,
            text=True,
            check=True,
        )
    m = re.search(r"rows:\s*(\d+)", res.stdout)
    if not m:
        raise QueryFailed(f"stilts could not count the VOTable: {res.stdout} {res.stderr}")
    return int(m.group(1))


def count_csv(body: bytes) -> int:
    """Data lines of a headered CSV (no quoted newlines in this survey)."""
    n = body.count(b"\n")
    if body and not body.endswith(b"\n"):
        n += 1
    return max(n - 1, 0)


def _norm(value: str) -> str:
    """One spelling per value across services: floats to 6 significant digits, NULL as ''."""
    value = value.strip()
    if value == "":
        return ""
    try:
        return f"{float(value):.6g}"
    except ValueError:
        return value


def fingerprint_csv(body: bytes) -> str:
    """Order-insensitive digest of a CSV's values (header excluded: auto-names differ)."""
    reader = csv.reader(io.StringIO(body.decode("utf-8", errors="replace")))
    next(reader, None)
    rows = sorted("\x1f".join(_norm(v) for v in row) for row in reader if row)
    return hashlib.blake2b("\n".join(rows).encode(), digest_size=12).hexdigest()


def count(body: bytes, fmt: str) -> int:
    """Rows of a result; raises QueryFailed for an error document."""
    if fmt == "csv":
        if body.lstrip().startswith(b"<?xml") or body.lstrip().startswith(b"<VOTABLE"):
            status = _votable_status(body[:4096], body[-4096:])
            raise QueryFailed(status[1] if status else body[:300].decode(errors="replace"))
        return count_csv(body)
    status = _votable_status(body[:8192], body[-8192:])
    if status and status[0] == "ERROR":
        raise QueryFailed(status[1])
    return count_votable(body)


# ---------------------------------------------------------------- clients


def sync_query(session: requests.Session, tap: str, adql: str, fmt: str) -> bytes:
    """One TAP sync query; the whole body (timing includes the transfer)."""
    resp = session.post(
        f"{tap}/sync",
        data={
            "REQUEST": "doQuery",
            "LANG": "ADQL",
            "QUERY": adql,
            "RESPONSEFORMAT": fmt,
            "MAXREC": MAXREC,
        },
        timeout=TIMEOUT,
    )
    if resp.status_code != 200:
        status = _votable_status(resp.content[:8192], b"")
        raise QueryFailed(f"HTTP {resp.status_code}: {status[1] if status else resp.text[:300]}")
    return resp.content


def _check(w: Workload, bodies: Sequence[bytes]) -> tuple[int, str | None]:
    rows = sum(count(b, w.fmt) for b in bodies)
    fp = None
    if w.fmt == "csv" and rows <= FINGERPRINT_ROWS:
        fp = hashlib.blake2b(
            "|".join(fingerprint_csv(b) for b in bodies).encode(), digest_size=12
        ).hexdigest()
    return rows, fp


def run_sync(w: Workload, tap: str, session: requests.Session) -> Outcome:
    """Queries one after the other; seconds is per query."""
    bodies = []
    t0 = time.perf_counter()
    for q in w.queries:
        bodies.append(sync_query(session, tap, q, w.fmt))
    elapsed = time.perf_counter() - t0
    rows, fp = _check(w, bodies)
    return Outcome(elapsed / len(w.queries), rows, sum(map(len, bodies)), len(w.queries), fp)


def run_concurrent(w: Workload, tap: str, session: requests.Session) -> Outcome:
    """``clients`` threads share the queries; seconds is the whole batch (wall clock)."""
    local = threading.local()

    def one(q: str) -> bytes:
        if not hasattr(local, "s"):
            local.s = requests.Session()
        return sync_query(local.s, tap, q, w.fmt)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=w.clients) as pool:
        bodies = list(pool.map(one, w.queries))
    elapsed = time.perf_counter() - t0
    rows, fp = _check(w, bodies)
    return Outcome(
        elapsed,
        rows,
        sum(map(len, bodies)),
        len(w.queries),
        fp,
        extra={"queries_per_s": round(len(w.queries) / elapsed, 1)},
    )


_PHASE = re.compile(r"<(?:\w+:)?phase>\s*(\w+)\s*</(?:\w+:)?phase>")
_FINAL = {"COMPLETED", "ERROR", "ABORTED", "ARCHIVED"}


def run_async(w: Workload, tap: str, session: requests.Session) -> Outcome:
    """Create, POST PHASE=RUN, block with UWS 1.1 WAIT, fetch results/result; delete after."""
    t0 = time.perf_counter()
    resp = session.post(
        f"{tap}/async",
        data={
            "REQUEST": "doQuery",
            "LANG": "ADQL",
            "QUERY": w.queries[0],
            "RESPONSEFORMAT": w.fmt,
            "MAXREC": MAXREC,
        },
        timeout=TIMEOUT,
    )
    if resp.status_code != 200:
        raise QueryFailed(f"async submit: HTTP {resp.status_code}: {resp.text[:300]}")
    job = resp.url.rstrip("/")
    # PHASE=RUN on the creating POST is optional in UWS and DaCHS ignores it,
    # so both get the portable two-step start (what pyvo does)
    resp = session.post(f"{job}/phase", data={"PHASE": "RUN"}, timeout=TIMEOUT)
    if resp.status_code != 200:
        raise QueryFailed(f"async run: HTTP {resp.status_code}: {resp.text[:300]}")
    phase = _phase(resp.text)
    deadline = time.monotonic() + TIMEOUT
    while phase not in _FINAL:
        if time.monotonic() > deadline:
            raise QueryFailed(f"async job {job} still {phase}")
        r = session.get(job, params={"WAIT": "30", "PHASE": phase}, timeout=TIMEOUT)
        phase = _phase(r.text)
    if phase != "COMPLETED":
        raise QueryFailed(f"async job ended {phase}")
    result = session.get(f"{job}/results/result", timeout=TIMEOUT)
    if result.status_code != 200:
        raise QueryFailed(f"async result: HTTP {result.status_code}")
    elapsed = time.perf_counter() - t0
    body = result.content
    try:
        session.delete(job, timeout=30)
    except requests.RequestException:
        pass
    rows, fp = _check(w, [body])
    return Outcome(elapsed, rows, len(body), 1, fp)


def _phase(text: str) -> str:
    m = _PHASE.search(text)
    if not m:
        raise QueryFailed(f"no UWS phase in {text[:300]!r}")
    return m.group(1)


def run(w: Workload, tap: str, session: requests.Session) -> Outcome:
    """Run one workload once; errors become an Outcome with ``error`` set."""
    runner = {"sync": run_sync, "concurrent": run_concurrent, "async": run_async}[w.kind]
    try:
        return runner(w, tap, session)
    except (
        QueryFailed,
        requests.RequestException,
        subprocess.CalledProcessError,
        ValueError,
    ) as exc:
        return Outcome(float("nan"), -1, 0, error=f"{type(exc).__name__}: {exc}"[:500])
