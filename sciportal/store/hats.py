"""Write HATS catalogs (and plain Parquet datasets) from streams of batches.

Two passes over the source, memory bounded whatever its size:

1. positions only -> a row histogram at a fine HEALPix order (``histogram_order``);
   partitions are then chosen top-down like hats-import: a cell is one
   partition when it holds at most ``partition_rows`` rows, else its four
   children are tried (empty cells are dropped).
2. all columns -> each row gets its ``_healpix_29`` index and is routed to its
   partition; partitions are buffered in memory up to ``memory_budget`` bytes
   and spilled to Arrow IPC files beyond that. Each partition is finally
   sorted by ``_healpix_29`` and written with row groups of ``row_group_rows``
   rows, so the index column's statistics prune row groups for small cones.

Then ``dataset/_metadata``, ``dataset/_common_metadata``, ``partition_info.csv``,
``point_map.fits`` and ``properties``/``hats.properties`` as hats writes them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from sciportal.errors import IngestError
from sciportal.healpix import (
    DATASET_DIR,
    PARTITION_INFO_FILE,
    PROPERTIES_FILE,
    SPATIAL_INDEX_COLUMN,
    SPATIAL_INDEX_ORDER,
    HealpixPixel,
    healpix_29,
)

DEFAULT_ROW_GROUP_ROWS = 32_768
DEFAULT_HISTOGRAM_ORDER = 10
DEFAULT_MEMORY_BUDGET = 1 << 30  # bytes of buffered rows before spilling to disk
POINT_MAP_ORDER = 8
BUILDER = "sciportal"


@dataclass
class CatalogInfo:
    """What was written: where, how many rows, which partitions."""

    path: Path
    nrows: int
    pixels: list[HealpixPixel] = field(default_factory=list)
    positional: bool = True
    spilled_bytes: int = 0


def _progress(total: int | None, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="rows", unit_scale=True, disable=not enabled)


def _histogram(
    positions: Iterable[tuple[np.ndarray, np.ndarray]], order: int, bar
) -> tuple[np.ndarray, int]:
    """Row counts per HEALPix cell at ``order`` (int64 array of 12 * 4**order)."""
    counts = np.zeros(12 * 4**order, dtype=np.int64)
    shift = 2 * (SPATIAL_INDEX_ORDER - order)
    total = 0
    for ra, dec in positions:
        if len(ra) == 0:
            continue
        pix = np.right_shift(healpix_29(ra, dec), shift)
        lo, hi = int(pix.min()), int(pix.max())
        if hi - lo < 8 * len(pix):  # clustered batch: a short bincount is cheapest
            counts[lo : hi + 1] += np.bincount(pix - lo, minlength=hi - lo + 1)
        else:
            u, c = np.unique(pix, return_counts=True)
            counts[u] += c
        total += len(ra)
        bar.update(len(ra))
    return counts, total


def plan_partitions(counts: np.ndarray, order: int, max_rows: int) -> list[HealpixPixel]:
    """Top-down partitioning: keep a cell if it has <= max_rows rows, else split it.

    Cells at the histogram order are kept even when larger (nothing finer is
    known); empty cells are dropped. The result is sorted by index range.
    """
    levels = [counts]
    for _ in range(order):
        levels.append(levels[-1].reshape(-1, 4).sum(axis=1))
    levels.reverse()  # levels[k] = counts at order k
    out: list[HealpixPixel] = []
    cand = np.arange(12, dtype=np.int64)
    for k in range(order + 1):
        c = levels[k][cand]
        cand = cand[c > 0]
        c = c[c > 0]
        keep = (c <= max_rows) | (k == order)
        out.extend(HealpixPixel(k, int(p)) for p in cand[keep])
        cand = (cand[~keep][:, None] * 4 + np.arange(4)).reshape(-1)
    out.sort(key=lambda p: p.index_range())
    return out


def _partition_lookup(pixels: list[HealpixPixel], order: int) -> np.ndarray:
    """Map each cell at ``order`` to the index of the partition containing it (-1: none)."""
    lookup = np.full(12 * 4**order, -1, dtype=np.int32)
    for i, p in enumerate(pixels):
        shift = 2 * (order - p.order)
        lookup[p.pixel << shift : (p.pixel + 1) << shift] = i
    return lookup


class _PartitionBuffers:
    """Per-partition row buffers that spill to Arrow IPC files past a memory budget."""

    def __init__(self, n: int, spill_dir: Path, budget: int) -> None:
        self.buffers: list[list[pa.RecordBatch]] = [[] for _ in range(n)]
        self.spills: list[list[Path]] = [[] for _ in range(n)]
        self.spill_dir = spill_dir
        self.budget = budget
        self.nbytes = 0
        self.spilled_bytes = 0
        self._seq = 0

    def add(self, pid: int, batch: pa.RecordBatch) -> None:
        self.buffers[pid].append(batch)
        self.nbytes += batch.nbytes
        if self.nbytes > self.budget:
            self.spill()

    def spill(self) -> None:
        self._seq += 1
        for pid, batches in enumerate(self.buffers):
            if not batches:
                continue
            path = self.spill_dir / f"p{pid}-{self._seq}.arrow"
            with pa.OSFile(str(path), "wb") as sink, ipc.new_file(sink, batches[0].schema) as w:
                for b in batches:
                    w.write_batch(b)
            self.spills[pid].append(path)
            self.spilled_bytes += sum(b.nbytes for b in batches)
            self.buffers[pid] = []
        self.nbytes = 0

    def take(self, pid: int, schema: pa.Schema) -> pa.Table:
        """All rows of one partition (and forget them)."""
        parts = []
        for path in self.spills[pid]:
            with pa.memory_map(str(path)) as src:
                parts.append(ipc.open_file(src).read_all())
            path.unlink()
        parts.append(pa.Table.from_batches(self.buffers[pid], schema=schema))
        self.buffers[pid] = []
        self.spills[pid] = []
        return pa.concat_tables(parts)


def _with_index_field(schema: pa.Schema) -> pa.Schema:
    idx = pa.field(
        SPATIAL_INDEX_COLUMN,
        pa.int64(),
        metadata={"description": "HEALPix nested index at order 29 (HATS spatial index)"},
    )
    return pa.schema([idx, *schema], metadata=schema.metadata)


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """Columns worth dictionary-encoding: text and narrow integers.

    Floats and 64-bit ids rarely repeat; trying a dictionary on them for every
    small row group costs ~3x the write time for bigger files.
    """
    out = []
    for f in schema:
        t = f.type
        if (
            pa.types.is_string(t)
            or pa.types.is_large_string(t)
            or pa.types.is_boolean(t)
            or (pa.types.is_integer(t) and t.bit_width <= 32)
        ):
            out.append(f.name)
    return out


def _write_sorted(
    table: pa.Table, path: Path, row_group_rows: int, collector: list
) -> pq.FileMetaData:
    order = np.argsort(table.column(0).to_numpy(), kind="stable")
    table = table.take(pa.array(order))
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        table,
        path,
        row_group_size=row_group_rows,
        metadata_collector=collector,
        write_statistics=True,
        use_dictionary=dictionary_columns(table.schema),
    )
    return collector[-1]


def _write_properties(root: Path, props: dict[str, object]) -> None:
    lines = ["#HATS catalog"] + [f"{k}={v}" for k, v in props.items() if v is not None]
    text = "\n".join(lines) + "\n"
    (root / PROPERTIES_FILE).write_text(text)
    (root / "hats.properties").write_text(text)


def _dir_size_kb(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) // 1024


def _write_point_map(root: Path, counts: np.ndarray, order: int) -> None:
    from cdshealpix.skymap.skymap import SkymapImplicit

    target = min(order, POINT_MAP_ORDER)
    hist = counts.reshape(-1, 4 ** (order - target)).sum(axis=1) if target < order else counts
    skymap = SkymapImplicit(hist.astype(np.int64), null_value=0)
    if np.count_nonzero(hist == 0) > hist.size / 2:
        skymap = skymap.to_explicit()
    skymap.to_fits(str(root / "point_map.fits"))


def write_hats_catalog(
    root: Path,
    schema: pa.Schema,
    positions: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]],
    batches: Callable[[], Iterable[pa.RecordBatch]],
    *,
    name: str,
    ra_column: str,
    dec_column: str,
    partition_rows: int,
    row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
    histogram_order: int = DEFAULT_HISTOGRAM_ORDER,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    total_rows: int | None = None,
    progress: bool = False,
    workers: int | None = None,
) -> CatalogInfo:
    """Write a HATS catalog at ``root`` (which must not exist yet).

    ``positions()`` and ``batches()`` are called once each and must yield
    the same good rows in the same order (ra/dec in degrees; batches in
    ``schema``, without the ``_healpix_29`` column, which is added first).
    """
    root = Path(root)
    root.mkdir(parents=True)
    dataset = root / DATASET_DIR
    dataset.mkdir()
    with _progress(total_rows, f"{name}: positions", progress) as bar:
        counts, nrows = _histogram(positions(), histogram_order, bar)
    pixels = plan_partitions(counts, histogram_order, partition_rows) if nrows else []
    lookup = _partition_lookup(pixels, histogram_order)
    shift = 2 * (SPATIAL_INDEX_ORDER - histogram_order)
    full_schema = _with_index_field(schema)
    written = 0
    with tempfile.TemporaryDirectory(prefix="spill-", dir=root) as spill:
        buffers = _PartitionBuffers(len(pixels), Path(spill), memory_budget)
        with _progress(nrows, f"{name}: partitioning", progress) as bar:
            for batch in batches():
                if batch.num_rows == 0:
                    continue
                ra = batch.column(ra_column).to_numpy(zero_copy_only=False)
                dec = batch.column(dec_column).to_numpy(zero_copy_only=False)
                hp = healpix_29(ra, dec)
                pid = lookup[np.right_shift(hp, shift)]
                if (pid < 0).any():
                    raise IngestError(
                        f"{name}: pass 2 read positions pass 1 did not; did a source file change?"
                    )
                batch = pa.RecordBatch.from_arrays(
                    [pa.array(hp), *batch.columns], schema=full_schema
                )
                order = np.argsort(pid, kind="stable")
                spid = pid[order]
                starts = np.flatnonzero(np.r_[True, spid[1:] != spid[:-1]])
                ends = np.r_[starts[1:], len(spid)]
                sorted_batch = batch.take(pa.array(order))
                for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
                    buffers.add(int(spid[s]), sorted_batch.slice(s, e - s))
                written += batch.num_rows
                bar.update(batch.num_rows)
        if written != nrows:
            raise IngestError(
                f"{name}: pass 1 counted {nrows} good rows, pass 2 {written}; "
                "did a source file change during the publish?"
            )
        metas: dict[int, pq.FileMetaData] = {}

        def finish(pid: int) -> None:
            table = buffers.take(pid, full_schema)
            rel = pixels[pid].relative_path()
            collector: list = []
            md = _write_sorted(table, root / rel, row_group_rows, collector)
            md.set_file_path(rel[len(DATASET_DIR) + 1 :])
            metas[pid] = md

        nworkers = workers or min(2, os.cpu_count() or 1)
        with (
            _progress(len(pixels), f"{name}: writing partitions", progress) as bar,
            ThreadPoolExecutor(nworkers) as pool,
        ):
            for _ in pool.map(finish, range(len(pixels))):
                bar.update(1)
        spilled = buffers.spilled_bytes
    pq.write_metadata(full_schema, dataset / "_common_metadata")
    pq.write_metadata(
        full_schema,
        dataset / "_metadata",
        metadata_collector=[metas[i] for i in range(len(pixels))],
    )
    with open(root / PARTITION_INFO_FILE, "w") as f:
        f.write("Norder,Npix\n")
        for p in pixels:
            f.write(f"{p.order},{p.pixel}\n")
    _write_point_map(root, counts, histogram_order)
    now = datetime.now(UTC)
    _write_properties(
        root,
        {
            "obs_collection": name,
            "dataproduct_type": "object",
            "hats_nrows": nrows,
            "hats_col_ra": ra_column,
            "hats_col_dec": dec_column,
            "hats_col_healpix": SPATIAL_INDEX_COLUMN,
            "hats_col_healpix_order": SPATIAL_INDEX_ORDER,
            "hats_npix_suffix": ".parquet",
            "hats_max_rows": partition_rows,
            "hats_order": max((p.order for p in pixels), default=0),
            "moc_sky_fraction": f"{_sky_fraction(pixels):.5f}",
            "hats_builder": BUILDER,
            "hats_creation_date": now.strftime("%Y-%m-%dT%H:%M%Z"),
            "hats_estsize": _dir_size_kb(root),
            "hats_release_date": "2025-08-22",
            "hats_version": "v1.0",
        },
    )
    return CatalogInfo(root, nrows, pixels, True, spilled)


def _sky_fraction(pixels: list[HealpixPixel]) -> float:
    return float(sum(4.0 ** (-p.order) for p in pixels) / 12.0)


def write_parquet_dataset(
    root: Path,
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    *,
    name: str,
    row_group_rows: int = 131_072,
    file_rows: int = 10_000_000,
    total_rows: int | None = None,
    progress: bool = False,
) -> CatalogInfo:
    """A non-positional table: ``root/dataset/part-N.parquet`` plus ``_metadata`` files."""
    root = Path(root)
    dataset = root / DATASET_DIR
    dataset.mkdir(parents=True)
    collector: list[pq.FileMetaData] = []
    nrows = 0
    part = 0
    writer: pq.ParquetWriter | None = None
    in_file = 0

    def close() -> None:
        nonlocal writer
        if writer is not None:
            writer.close()
            md = pq.read_metadata(dataset / f"part-{part}.parquet")
            md.set_file_path(f"part-{part}.parquet")
            collector.append(md)
            writer = None

    with _progress(total_rows, f"{name}: writing", progress) as bar:
        for batch in _rechunk(batches, row_group_rows):
            if writer is None:
                writer = pq.ParquetWriter(
                    dataset / f"part-{part}.parquet",
                    schema,
                    use_dictionary=dictionary_columns(schema),
                )
                in_file = 0
            writer.write_batch(batch, row_group_size=row_group_rows)
            nrows += batch.num_rows
            in_file += batch.num_rows
            bar.update(batch.num_rows)
            if in_file >= file_rows:
                close()
                part += 1
        close()
    if not collector:  # an empty table is still a readable dataset
        pq.write_table(schema.empty_table(), dataset / "part-0.parquet")
        md = pq.read_metadata(dataset / "part-0.parquet")
        md.set_file_path("part-0.parquet")
        collector.append(md)
    pq.write_metadata(schema, dataset / "_common_metadata")
    pq.write_metadata(schema, dataset / "_metadata", metadata_collector=collector)
    return CatalogInfo(root, nrows, [], False)


def _rechunk(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Regroup batches into ``rows``-sized ones so row groups have a steady size."""
    pending: list[pa.RecordBatch] = []
    n = 0
    for b in batches:
        pending.append(b)
        n += b.num_rows
        while n >= rows:
            t = pa.Table.from_batches(pending)
            yield from t.slice(0, rows).combine_chunks().to_batches()
            rest = t.slice(rows)
            pending = rest.to_batches()
            n = rest.num_rows
    if n:
        yield from pa.Table.from_batches(pending).combine_chunks().to_batches()


def remove_tree(path: Path) -> None:
    """Delete a catalog directory (ignore if already gone)."""
    shutil.rmtree(path, ignore_errors=True)
