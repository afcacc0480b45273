"""Time parse + resolve + translate of typical ADQL queries, side by side with GAVO DaCHS.

Usage: python bench/adql_parse.py [--repeat N]

Ours: sciportal.adql.translate (DuckDB and PostgreSQL dialects). DaCHS:
gavo.adql parseAnnotating + morphPG + flatten of the same queries over the
same table metadata, run with the Debian python (/usr/bin/python3, package
python3-gavo) in a subprocess when it is importable there; skipped otherwise.
Prints the median milliseconds per query and the ratio DaCHS / ours.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sciportal.adql import translate  # noqa: E402
from sciportal.metadata.model import Column, Table  # noqa: E402

COLUMNS = {
    "main": [
        ("id", "long", None),
        ("ra", "double", "deg"),
        ("dec", "double", "deg"),
        ("mag_g", "float", "mag"),
        ("mag_r", "float", "mag"),
        ("flags", "int", None),
        ("name", "char", None),
        ("pmra", "double", "mas/yr"),
        ("pmdec", "double", "mas/yr"),
    ],
    "other": [
        ("id", "long", None),
        ("ra", "double", "deg"),
        ("dec", "double", "deg"),
        ("z", "double", None),
    ],
}

QUERIES = [
    "SELECT * FROM survey.main WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 10.5, -20.2, 0.05))",
    "SELECT TOP 100 id, ra, dec, mag_g FROM survey.main WHERE mag_g < 20 ORDER BY mag_g",
    "SELECT COUNT(*) FROM survey.main",
    "SELECT flags, COUNT(*) AS n, AVG(mag_g - mag_r) AS color FROM survey.main GROUP BY flags HAVING COUNT(*) > 10",
    "SELECT m.id, o.z FROM survey.main AS m JOIN survey.other AS o "
    "ON 1 = CONTAINS(POINT('ICRS', m.ra, m.dec), CIRCLE('ICRS', o.ra, o.dec, 1.0/3600))",
    "SELECT id, DISTANCE(POINT('ICRS', ra, dec), POINT('ICRS', 150, 2)) AS d FROM survey.main "
    "WHERE DISTANCE(POINT('ICRS', ra, dec), POINT('ICRS', 150, 2)) < 0.1 ORDER BY d",
    "SELECT id FROM survey.main WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), "
    "POLYGON('ICRS', 10, 10, 12, 10, 12, 12, 10, 12))",
    "SELECT id FROM survey.main WHERE ra BETWEEN 10 AND 11 AND dec BETWEEN -5 AND -4 AND flags = 0",
    "SELECT TOP 10 * FROM survey.main WHERE name LIKE 'NGC%' OR name IS NULL",
    "SELECT id FROM survey.main WHERE id IN (SELECT id FROM survey.other WHERE z > 0.5)",
    "SELECT a.id, b.id FROM survey.main AS a, survey.other AS b WHERE a.id = b.id AND b.z BETWEEN 0.1 AND 0.2",
    "SELECT id, mag_g FROM survey.main WHERE mag_g < 15 UNION SELECT id, z AS mag_g FROM survey.other WHERE z > 2",
    "SELECT ROUND(mag_g, 2) AS g, SQRT(POWER(pmra, 2) + POWER(pmdec, 2)) AS pm, LOWER(name) "
    "FROM survey.main WHERE flags < 4",
    "SELECT m.id, m.mag_g FROM survey.main AS m LEFT OUTER JOIN survey.other AS o ON m.id = o.id "
    "WHERE o.id IS NULL",
    "SELECT TOP 5 id, ra, dec FROM survey.main WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), "
    "BOX('ICRS', 200, 30, 1, 1)) ORDER BY id",
]

DACHS_SCRIPT = textwrap.dedent(
    """
    import json, statistics, sys, time
    from gavo import adql
    from gavo.adql import nodes
    from gavo.adql.fieldinfo import FieldInfo

    spec = json.loads(sys.stdin.read())
    types = {"long": "bigint", "double": "double precision", "float": "real", "int": "integer", "char": "text"}

    class Getter:
        def __init__(self):
            self.extra = {}
        def __call__(self, table):
            name = table.name.lower() if hasattr(table, "name") else str(table).lower()
            short = name.split(".")[-1]
            if short in self.extra:
                return self.extra[short]
            cols = spec["columns"][short]
            return [(c, FieldInfo(types[t], u or "", "")) for c, t, u in cols]
        def addExtraFieldInfos(self, name, seq):
            self.extra[str(name).lower()] = seq

    out = []
    for q in spec["queries"]:
        times = []
        for _ in range(spec["repeat"]):
            t0 = time.perf_counter()
            ctx, tree = adql.parseAnnotating(q, Getter())
            _, tree = adql.morphPG(tree)
            nodes.flatten(tree)
            times.append(time.perf_counter() - t0)
        out.append(statistics.median(times) * 1000)
    print(json.dumps(out))
    """
)


class Lookup:
    def __init__(self) -> None:
        self.tables = {
            f"survey.{name}": Table(
                f"survey.{name}",
                tuple(
                    Column(c, t, arraysize="*" if t == "char" else None, unit=u) for c, t, u in cols
                ),
                ra_column="ra",
                dec_column="dec",
            )
            for name, cols in COLUMNS.items()
        }

    def get_table(self, name: str) -> Table | None:
        return self.tables.get(name)

    def list_tables(self) -> list[Table]:
        return list(self.tables.values())


def time_ours(repeat: int, dialect: str) -> list[float]:
    lookup = Lookup()
    translate(QUERIES[0], lookup, dialect)  # build the parser once
    out = []
    for q in QUERIES:
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            translate(q, lookup, dialect, maxrec=10000)
            times.append(time.perf_counter() - t0)
        out.append(statistics.median(times) * 1000)
    return out


def time_dachs(repeat: int) -> list[float] | None:
    spec = json.dumps({"queries": QUERIES, "columns": COLUMNS, "repeat": repeat})
    try:
        proc = subprocess.run(
            ["/usr/bin/python3", "-c", DACHS_SCRIPT],
            input=spec,
            capture_output=True,
            text=True,
            timeout=600,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"DaCHS not run: {exc}", file=sys.stderr)
        return None
    if proc.returncode != 0:
        print("DaCHS not run:", proc.stderr.strip().splitlines()[-1:], file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    ours = time_ours(args.repeat, "duckdb")
    ours_pg = time_ours(args.repeat, "postgres")
    dachs = time_dachs(max(5, args.repeat // 3))
    print(f"{'#':>2} {'ours duckdb':>12} {'ours pg':>9} {'DaCHS':>8} {'ratio':>7}  query")
    for i, q in enumerate(QUERIES):
        d = f"{dachs[i]:8.2f}" if dachs else "       -"
        r = f"{dachs[i] / ours_pg[i]:6.1f}x" if dachs else "      -"
        print(f"{i + 1:2d} {ours[i]:12.3f} {ours_pg[i]:9.3f} {d} {r}  {q[:60]}")
    med_ours = statistics.median(ours_pg)
    line = f"median ms/query: ours duckdb {statistics.median(ours):.3f}, ours pg {med_ours:.3f}"
    if dachs:
        line += f", DaCHS {statistics.median(dachs):.2f}, ratio {statistics.median(dachs) / med_ours:.1f}x"
    print(line)


if __name__ == "__main__":
    main()
