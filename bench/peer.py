"""The peer of the benchmark: GAVO DaCHS serving the same demo survey.

Everything a fresh Debian machine needs is done here, idempotently: install
PostgreSQL 15 + pgSphere, start the cluster (before installing
``gavodachs2-server``, whose postinst talks to it), write ``/etc/gavo.rc``,
write a DaCHS resource descriptor generated from sciportal's own ``rd/demo.yaml``
(same columns, types, units, UCDs, descriptions, indexed columns; a pgSphere
position index through DaCHS's ``//scs#pgs-pos-index`` mixin), let ``dachs imp``
create the tables from a tiny seed file, then bulk-load every row with
PostgreSQL COPY (DaCHS's own importer manages ~3,000 rows/s here, hours at
20M) and rebuild exactly the indices DaCHS made.

Rows are loaded in HEALPix (NESTED, order 12) order so the heap is spatially
clustered, which is what DaCHS's ``CLUSTER`` on the pgSphere index would give;
the CLUSTER itself is skipped because it rewrites the whole table.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEMO_RD = REPO / "rd" / "demo.yaml"
GAVO_RC = Path("/etc/gavo.rc")
INPUTS = Path("/var/gavo/inputs")
RESDIR = "sciportal_demo"
RD_ID = f"{RESDIR}/q"
DB = "gavo"
DEFAULT_PORT = 8089

# sciportal (VOTable) datatype -> PostgreSQL type as DaCHS spells it
_SQL_TYPES = {
    "boolean": "boolean",
    "short": "smallint",
    "int": "integer",
    "long": "bigint",
    "float": "real",
    "double": "double precision",
    "char": "text",
    "unicodeChar": "unicode",
}


def log(msg: str) -> None:
    """Progress on stderr, so stdout stays the result table."""
    print(f"[dachs] {msg}", file=sys.stderr, flush=True)


def _as_root(cmd: Sequence[str]) -> list[str]:
    return list(cmd) if os.geteuid() == 0 else ["sudo", *cmd]


def _as_postgres(cmd: Sequence[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return ["sudo", "-u", "postgres", *cmd]


def _run(cmd: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run a setup command; on failure show its output, which names the cause."""
    res = subprocess.run(list(cmd), text=True, capture_output=True, **kw)
    if res.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout[-3000:]}{res.stderr[-3000:]}"
        )
    return res


def psql(sql: str, *, db: str = DB) -> str:
    """Run SQL as the PostgreSQL superuser; tuples-only, unaligned output."""
    return _run(
        _as_postgres(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql])
    ).stdout.strip()


# ---------------------------------------------------------------- install


def _dpkg_installed(pkg: str) -> bool:
    res = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
    return res.returncode == 0 and "install ok installed" in res.stdout


def _apt_install(pkgs: list[str]) -> None:
    missing = [p for p in pkgs if not _dpkg_installed(p)]
    if not missing:
        return
    log(f"installing {' '.join(missing)} (apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    _run(_as_root(["apt-get", "update", "-q"]), env=env)
    _run(_as_root(["apt-get", "install", "-y", "-q", *missing]), env=env)


def ensure_postgres() -> None:
    """PostgreSQL 15 with pgSphere, cluster running."""
    _apt_install(["postgresql-15", "postgresql-15-pgsphere"])
    status = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True).stdout
    if not any(
        line.split()[:2] == ["15", "main"] and "online" in line for line in status.splitlines()
    ):
        log("starting PostgreSQL 15 main")
        _run(_as_root(["pg_ctlcluster", "15", "main", "start"]))


def ensure_dachs() -> None:
    """DaCHS installed and its database initialised (``dachs init`` when missing)."""
    ensure_postgres()
    _apt_install(["gavodachs2-server"])
    has_db = psql("SELECT 1 FROM pg_database WHERE datname = 'gavo'", db="postgres") == "1"
    if not has_db or not (Path("/var/gavo/etc/feed")).exists():
        log("dachs init")
        _run(_as_root(["dachs", "init"]))


def write_config(port: int) -> bool:
    """Write /etc/gavo.rc from the template; True when it changed."""
    text = (HERE / "dachs" / "gavo.rc.template").read_text().format(port=port)
    if GAVO_RC.exists() and GAVO_RC.read_text() == text:
        return False
    if GAVO_RC.exists() and "sciportal's bench" not in GAVO_RC.read_text():
        backup = GAVO_RC.with_suffix(".rc.before-bench")
        log(f"keeping the previous {GAVO_RC} as {backup}")
        shutil.copy2(GAVO_RC, backup)
    GAVO_RC.write_text(text)
    return True


# ---------------------------------------------------------------- the RD


def _attr(name: str, value: object) -> str:
    return f" {name}={quoteattr(str(value))}"


def _column_xml(col: dict[str, Any], table: dict[str, Any]) -> str:
    dtype = col["datatype"]
    sql = _SQL_TYPES[dtype]
    if col.get("arraysize") and dtype not in ("char", "unicodeChar"):
        sql += "[]"
    parts = [_attr("name", col["name"]), _attr("type", sql)]
    if col.get("unit"):
        parts.append(_attr("unit", col["unit"]))
    if col.get("ucd"):
        parts.append(_attr("ucd", col["ucd"]))
    if not col.get("nullable", True):
        parts.append(_attr("required", "True"))
    parts.append(_attr("verbLevel", 10 if col.get("principal") else 30))
    desc = col.get("description") or ""
    return f"    <column{''.join(parts)}\n      description={quoteattr(desc)}/>"


def _indexed_columns(table: dict[str, Any]) -> list[str]:
    """B-tree indices for the RD's indexed columns, except those the position and PK cover."""
    pos = table.get("position") or {}
    covered = {pos.get("ra"), pos.get("dec"), _primary(table)}
    return [c["name"] for c in table["columns"] if c.get("indexed") and c["name"] not in covered]


def _primary(table: dict[str, Any]) -> str | None:
    """The meta.id;meta.main column, if unique in the demo (the coadd id is; specz repeats no id)."""
    for c in table["columns"]:
        if (c.get("ucd") or "").startswith("meta.id;meta.main"):
            return str(c["name"])
    return None


def render_rd(descriptor: dict[str, Any]) -> str:
    """A DaCHS RD with the same tables as sciportal's descriptor, seeded from seed/*.csv."""
    schema = descriptor["schema"]
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        "<!-- Generated by sciportal's bench/peer.py from rd/demo.yaml; do not edit. -->",
        f'<resource schema="{schema}" resdir="{RESDIR}">',
        f'  <meta name="title">{escape(descriptor.get("title", schema))}</meta>',
        f'  <meta name="description">{escape(descriptor.get("description", ""))}</meta>',
        '  <meta name="creationDate">2024-01-01T00:00:00</meta>',
    ]
    for creator in descriptor.get("creators", []):
        out.append(f'  <meta name="creator.name">{escape(creator)}</meta>')
    for subject in descriptor.get("subjects", []):
        out.append(f'  <meta name="subject">{escape(subject)}</meta>')
    for table in descriptor["tables"]:
        name = table["name"]
        attrs = [_attr("id", name), _attr("onDisk", "True"), _attr("adql", "True")]
        primary = _primary(table) if name == "coadd" else None
        if primary:
            attrs.append(_attr("primary", primary))
        if table.get("position"):
            attrs.append(_attr("mixin", "//scs#pgs-pos-index"))
        out.append(f"  <table{''.join(attrs)}>")
        out.append(f'    <meta name="title">{escape(table.get("title", name))}</meta>')
        out.append(f'    <meta name="description">{escape(table.get("description", ""))}</meta>')
        for colname in _indexed_columns(table):
            out.append(f'    <index columns="{colname}"/>')
        out.extend(_column_xml(c, table) for c in table["columns"])
        out.append("  </table>")
    for table in descriptor["tables"]:
        name = table["name"]
        out.append(f'  <data id="import_{name}">')
        out.append(f'    <sources pattern="seed/{name}.csv"/>')
        out.append("    <csvGrammar/>")
        out.append(f'    <make table="{name}"><rowmaker idmaps="*"/></make>')
        out.append("  </data>")
    out.append("</resource>")
    return "\n".join(out) + "\n"


def load_descriptor(path: Path = DEMO_RD) -> dict[str, Any]:
    """sciportal's resource descriptor as plain data."""
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


# ---------------------------------------------------------------- loading


@dataclass
class LoadReport:
    """What loading the peer cost, for the bench's setup summary."""

    table: str
    rows: int
    seconds_copy: float
    seconds_index: float
    skipped: bool = False


def _source_glob(table: dict[str, Any], home: Path) -> list[str]:
    return [p.replace("{home}", str(home)) for p in table["source"]["paths"]]


def _table_rows(qname: str) -> int | None:
    exists = psql(f"SELECT to_regclass('{qname}') IS NOT NULL")
    if exists != "t":
        return None
    return int(psql(f"SELECT count(*) FROM {qname}"))


def _write_seed(table: dict[str, Any], home: Path, dest: Path) -> None:
    """A few real rows for ``dachs imp`` to create the table from."""
    import duckdb
    import pyarrow.csv as pacsv

    cols = ", ".join(f'"{c["name"]}"' for c in table["columns"])
    con = duckdb.connect()
    arrow = con.sql(
        f"SELECT {cols} FROM read_parquet({_source_glob(table, home)!r}) LIMIT 5"
    ).to_arrow_table()
    pacsv.write_csv(arrow, dest)


def _index_statements(qname: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(constraint name, definition) and (index name, CREATE INDEX) DaCHS made on the table."""
    schema, name = qname.split(".")
    cons = psql(
        "SELECT conname || '\t' || pg_get_constraintdef(oid) FROM pg_constraint "
        f"WHERE conrelid = '{qname}'::regclass AND contype IN ('p', 'u')"
    )
    constraints = [tuple(line.split("\t", 1)) for line in cons.splitlines() if line]
    idx = psql(
        "SELECT indexname || '\t' || indexdef FROM pg_indexes "
        f"WHERE schemaname = '{schema}' AND tablename = '{name}'"
    )
    con_names = {c[0] for c in constraints}
    indices = [tuple(line.split("\t", 1)) for line in idx.splitlines() if line]
    return (
        [(c[0], c[1]) for c in constraints],
        [(i[0], i[1]) for i in indices if i[0] not in con_names],
    )


def _copy_rows(table: dict[str, Any], home: Path, qname: str, workdir: Path) -> int:
    """Stream every source row, HEALPix-ordered, through pyarrow's CSV writer into COPY."""
    import duckdb
    import pyarrow.csv as pacsv

    names = [c["name"] for c in table["columns"]]
    cols = ", ".join(f'"{n}"' for n in names)
    order = "hpix_4096, ra" if "hpix_4096" in names else ("ra" if "ra" in names else names[0])
    con = duckdb.connect()
    tmp = workdir / "duckdb_tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    con.execute(f"SET temp_directory = '{tmp}'")
    con.execute("SET memory_limit = '3GB'")
    con.execute("SET threads = 2")
    con.execute("SET preserve_insertion_order = true")
    reader = con.sql(
        f"SELECT {cols} FROM read_parquet({_source_glob(table, home)!r}) ORDER BY {order}"
    ).to_arrow_reader(200_000)
    copy = f"COPY {qname} ({cols}) FROM STDIN WITH (FORMAT csv, HEADER true)"
    proc = subprocess.Popen(
        _as_postgres(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", DB, "-c", copy]),
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    rows = 0
    try:
        with pacsv.CSVWriter(proc.stdin, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
        proc.stdin.close()
    except BrokenPipeError:
        pass
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.wait() != 0:
        raise RuntimeError(f"COPY into {qname} failed: {err}")
    return rows


def _source_rows(table: dict[str, Any], home: Path) -> int:
    import duckdb

    glob = _source_glob(table, home)
    row = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet({glob!r})").fetchone()
    assert row is not None
    return int(row[0])


def load(
    home: Path, workdir: Path, descriptor: dict[str, Any] | None = None, *, force: bool = False
) -> list[LoadReport]:
    """Publish the demo's tables in DaCHS with the rows of ``home``'s demo sources.

    Skips a table that already holds the same number of rows as its source.
    """
    descriptor = descriptor or load_descriptor()
    schema = descriptor["schema"]
    rddir = INPUTS / RESDIR
    (rddir / "seed").mkdir(parents=True, exist_ok=True)
    rd_text = render_rd(descriptor)
    rd_path = rddir / "q.rd"
    rd_changed = not rd_path.exists() or rd_path.read_text() != rd_text
    rd_path.write_text(rd_text)

    wanted = {t["name"]: _source_rows(t, home) for t in descriptor["tables"]}
    have = {name: _table_rows(f"{schema}.{name}") for name in wanted}
    if not force and not rd_changed and all(have[n] == wanted[n] for n in wanted):
        log(f"DaCHS already holds {wanted} rows; not reloading")
        return [LoadReport(n, wanted[n], 0.0, 0.0, skipped=True) for n in wanted]

    for table in descriptor["tables"]:
        _write_seed(table, home, rddir / "seed" / f"{table['name']}.csv")
    subprocess.run(_as_root(["chown", "-R", "dachsroot:gavo", str(rddir)]), check=False)
    log(f"dachs imp {RD_ID} (creates the tables, indices and TAP_SCHEMA entries)")
    _run(_as_root(["dachs", "imp", RD_ID]))

    reports = []
    for table in descriptor["tables"]:
        qname = f"{schema}.{table['name']}"
        constraints, indices = _index_statements(qname)
        psql(f"TRUNCATE {qname}")
        for cname, _ in constraints:
            psql(f"ALTER TABLE {qname} DROP CONSTRAINT {cname}")
        for iname, _ in indices:
            psql(f"DROP INDEX {schema}.{iname}")
        t0 = time.perf_counter()
        log(f"COPY {wanted[table['name']]:,} rows into {qname}")
        rows = _copy_rows(table, home, qname, workdir)
        t1 = time.perf_counter()
        log(
            f"  {rows:,} rows in {t1 - t0:.1f} s ({rows / max(t1 - t0, 1e-9):,.0f} rows/s); indexing"
        )
        for cname, cdef in constraints:
            psql(
                f"SET maintenance_work_mem = '1GB'; ALTER TABLE {qname} ADD CONSTRAINT {cname} {cdef}"
            )
        for _, idef in indices:
            psql(f"SET maintenance_work_mem = '1GB'; {idef}")
        psql(f"VACUUM ANALYZE {qname}")
        t2 = time.perf_counter()
        log(f"  indices + ANALYZE in {t2 - t1:.1f} s")
        # DaCHS shows the row estimate in TAP_SCHEMA/VOSI from dc.tablemeta
        psql(f"UPDATE dc.tablemeta SET nrows = {rows} WHERE tablename = '{qname}'")
        reports.append(LoadReport(table["name"], rows, t1 - t0, t2 - t1))
    return reports


# ---------------------------------------------------------------- the server


def tap_url(port: int) -> str:
    return f"http://localhost:{port}/tap"


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"{tap_url(port)}/availability", timeout=5) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_server(port: int, *, restart: bool = False, timeout: float = 120) -> None:
    """``dachs serve start`` (or restart) and wait until TAP answers."""
    if restart or not _answers(port):
        action = "restart" if _answers(port) or restart else "start"
        log(f"dachs serve {action} (port {port})")
        subprocess.run(_as_root(["dachs", "serve", action]), capture_output=True, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _answers(port):
            return
        time.sleep(0.5)
    raise RuntimeError(f"DaCHS did not answer on {tap_url(port)} within {timeout:.0f} s")


def stop_server() -> None:
    subprocess.run(_as_root(["dachs", "serve", "stop"]), capture_output=True, text=True)


def server_pids() -> list[int]:
    """PIDs of the DaCHS server (for its RSS, reported alongside ours)."""
    pidfile = Path("/var/gavo/state/web.pid")
    try:
        return [int(pidfile.read_text().split()[0])]
    except (OSError, ValueError, IndexError):
        return []


def setup(
    home: Path, workdir: Path, port: int = DEFAULT_PORT, *, force: bool = False
) -> dict[str, Any]:
    """Everything: install, configure, load, serve; returns timings for the report."""
    t0 = time.perf_counter()
    ensure_dachs()
    t1 = time.perf_counter()
    changed = write_config(port)
    reports = load(home, workdir, force=force)
    t2 = time.perf_counter()
    start_server(port, restart=changed or any(not r.skipped for r in reports))
    t3 = time.perf_counter()
    return {
        "install_s": round(t1 - t0, 2),
        "load_s": round(t2 - t1, 2),
        "serve_s": round(t3 - t2, 2),
        "tables": [r.__dict__ for r in reports],
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.peer HOME [PORT]``: set up DaCHS alone (the bench calls setup())."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m bench.peer SCIPORTAL_HOME [PORT]", file=sys.stderr)
        return 2
    home = Path(args[0]).resolve()
    port = int(args[1]) if len(args) > 1 else DEFAULT_PORT
    print(json.dumps(setup(home, home / "dachs-work", port), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
