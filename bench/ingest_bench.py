"""Ingest speed and memory: sciportal publish vs a plain pyarrow Parquet copy.

Generates a DES-like table (N rows, 40 columns: ids, positions, magnitudes,
errors, flags, a tile name) as Parquet and FITS, then, in the same run and
each in a fresh process (so peak RSS is its own):

- baseline: read the file and write one Parquet copy (pyarrow; astropy for FITS)
- sciportal: publish a descriptor of that file into a HATS catalog

and prints rows/s, the ratio to the baseline and peak RSS.

    python bench/ingest_bench.py --rows 2000000 [--rows 20000000] [--formats parquet fits]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
BANDS = "grizY"
CHUNK = 1_000_000


def _chunk(n: int, start: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {
        "COADD_OBJECT_ID": np.arange(start, start + n, dtype=np.int64),
        "RA": rng.uniform(0, 360, n),
        "DEC": np.degrees(np.arcsin(rng.uniform(-1, 0.3, n))),
    }
    for b in BANDS:
        cols[f"MAG_AUTO_{b.upper()}"] = rng.normal(22, 1.5, n).astype(np.float32)
        cols[f"MAGERR_AUTO_{b.upper()}"] = rng.exponential(0.05, n).astype(np.float32)
        cols[f"FLUX_AUTO_{b.upper()}"] = rng.lognormal(5, 1, n).astype(np.float32)
        cols[f"FLUXERR_AUTO_{b.upper()}"] = rng.lognormal(2, 1, n).astype(np.float32)
        cols[f"FLAGS_{b.upper()}"] = rng.integers(0, 4, n).astype(np.int16)
        cols[f"SPREAD_MODEL_{b.upper()}"] = rng.normal(0, 0.01, n).astype(np.float32)
        cols[f"NEPOCHS_{b.upper()}"] = rng.integers(0, 20, n).astype(np.int32)
    cols["EBV_SFD98"] = rng.uniform(0, 0.2, n)
    cols["TILENAME"] = np.array(
        [f"DES{i % 9999:04d}-{i % 77:04d}" for i in range(start, start + n)]
    )
    return pa.table(cols)


def make_sources(workdir: Path, rows: int, formats: list[str]) -> dict[str, Path]:
    out = {}
    pq_path = workdir / f"des_{rows}.parquet"
    reuse = pq_path.exists() and pq.ParquetFile(pq_path).metadata.num_rows == rows
    if ("parquet" in formats or "fits" in formats) and not reuse:
        with pq.ParquetWriter(pq_path, _chunk(1, 0, 0).schema) as w:
            for start in range(0, rows, CHUNK):
                w.write_table(_chunk(min(CHUNK, rows - start), start, start))
    out["parquet"] = pq_path
    if "fits" in formats:
        from astropy.io import fits

        fits_path = workdir / f"des_{rows}.fits"
        out["fits"] = fits_path
        if reuse and fits_path.exists():
            return out
        schema = pq.read_schema(pq_path)
        cols = []
        for f in schema:
            fmt = {
                pa.int64(): "K",
                pa.float64(): "D",
                pa.float32(): "E",
                pa.int16(): "I",
                pa.int32(): "J",
                pa.string(): "14A",
            }[f.type]
            cols.append(fits.Column(f.name, fmt, unit="deg" if f.name in ("RA", "DEC") else None))
        hdu = fits.BinTableHDU.from_columns(cols, nrows=rows)
        pf = pq.ParquetFile(pq_path)
        start = 0
        for batch in pf.iter_batches(CHUNK):
            for f in schema:
                arr = batch.column(f.name).to_numpy(zero_copy_only=False)
                hdu.data[f.name][start : start + batch.num_rows] = arr
            start += batch.num_rows
        hdu.writeto(fits_path, overwrite=True)
        out["fits"] = fits_path
    return out


def _descriptor(src: Path, fmt: str, workdir: Path) -> Path:
    schema = pq.read_schema(workdir / src.with_suffix(".parquet").name)
    vo = {
        pa.int64(): "long",
        pa.float64(): "double",
        pa.float32(): "float",
        pa.int16(): "short",
        pa.int32(): "int",
        pa.string(): "char",
    }
    lines = [
        "schema: bench",
        "title: ingest bench",
        "tables:",
        f"  - name: des_{fmt}",
        "    position: {ra: ra, dec: dec}",
        "    source:",
        f'      paths: ["{src}"]',
        "    columns:",
    ]
    for f in schema:
        extra = ', unit: deg, ucd: "pos.eq.ra;meta.main"' if f.name == "RA" else ""
        extra = ', unit: deg, ucd: "pos.eq.dec;meta.main"' if f.name == "DEC" else extra
        size = ', arraysize: "*"' if f.type == pa.string() else ""
        lines.append(
            f"      - {{name: {f.name.lower()}, datatype: {vo[f.type]}{size}{extra}, from: {f.name}}}"
        )
    path = workdir / f"bench_{fmt}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _baseline(src: str, fmt: str, out: str) -> None:
    if fmt == "parquet":
        table = pq.read_table(src)
    else:
        from astropy.table import Table

        table = Table.read(src, hdu=1, memmap=True).to_pandas()
        table = pa.Table.from_pandas(table, preserve_index=False)
    pq.write_table(table, out)


def _ingest(descriptor: str, home: str) -> None:
    from sciportal.metadata.store import MetadataStore
    from sciportal.store.publish import publish

    st = MetadataStore(Path(home) / "meta.sqlite")
    publish(Path(descriptor), Path(home), st, progress=False)


def _child(target, args, queue) -> None:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    target(*args)
    dt = time.perf_counter() - t0
    queue.put((dt, _peak_rss()))


def _peak_rss() -> int:
    """Peak RSS of this process in bytes (VmHWM: unlike ru_maxrss it restarts at exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(target, *args) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    """Run ``target(*args)`` in a fresh process: (seconds, peak RSS bytes)."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(target, args, q))
    p.start()
    result = q.get()
    p.join()
    if p.exitcode:
        raise SystemExit(f"{target.__name__} failed (exit {p.exitcode})")
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, action="append", help="rows (repeatable); default 2e6")
    ap.add_argument("--formats", nargs="+", default=["parquet", "fits"])
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args(argv)
    rows_list = args.rows or [2_000_000]
    base = args.workdir or Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    print(f"workdir {base}; DaCHS reference ~3,000 rows/s")
    print(f"{'rows':>11} {'fmt':>8} {'copy r/s':>12} {'ingest r/s':>12} {'ratio':>6} "
          f"{'x DaCHS':>8} {'copy RSS':>9} {'ingest RSS':>10}")  # fmt: skip
    for rows in rows_list:
        work = base / f"n{rows}"
        work.mkdir(exist_ok=True)
        sources = make_sources(work, rows, args.formats)
        for fmt in args.formats:
            src = sources[fmt]
            t_copy, rss_copy = measure(_baseline, str(src), fmt, str(work / f"copy_{fmt}.parquet"))
            home = work / f"home_{fmt}"
            shutil.rmtree(home, ignore_errors=True)
            rd = _descriptor(src, fmt, work)
            t_ing, rss_ing = measure(_ingest, str(rd), str(home))
            print(
                f"{rows:>11,} {fmt:>8} {rows / t_copy:>12,.0f} {rows / t_ing:>12,.0f} "
                f"{t_ing / t_copy:>6.2f} {rows / t_ing / 3000:>8,.0f} "
                f"{rss_copy / 2**30:>8.2f}G {rss_ing / 2**30:>9.2f}G",
                flush=True,
            )
    if args.workdir is None:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
