"""The demo survey: a deterministic, DES-like catalog, spec-z sample and coadd tiles.

``generate`` streams the coadd object table to Parquet one chunk (at most
10^6 rows) at a time, so 10^8 rows need no more memory than 10^6; every
chunk comes from its own random stream derived from (seed, chunk index), so
the same seed and row count give the same values. Column metadata lives in
``sciportal.demo.columns`` and is published by ``rd/demo.yaml``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sciportal.demo.columns import BANDS
from sciportal.demo.objects import COADD_SCHEMA, ID_BASE, generate_chunk
from sciportal.demo.sky import build_maps, deep_total
from sciportal.demo.specz import SPECZ_SCHEMA, chunk_quota, select_chunk
from sciportal.demo.tiles import TileSources, demo_tiles, render_tile, write_tile

__all__ = ["CHUNK_ROWS", "DemoFiles", "generate"]

CHUNK_ROWS = 1_000_000
ROW_GROUP_ROWS = 250_000
TILE_PIXELS = 512


@dataclass(frozen=True, slots=True)
class DemoFiles:
    """What ``generate`` wrote."""

    coadd: list[Path]
    specz: Path
    tiles: list[Path]


def _write_parquet(table: pa.Table, path: Path) -> None:
    """Write atomically (temporary name, then rename) so no half-written file is left."""
    tmp = path.with_name(f".{path.name}.tmp")
    # dictionaries only where values repeat; byte-stream-split floats compress
    # ~35% better under zstd and write 3x faster than dictionary attempts
    floats = [f.name for f in table.schema if pa.types.is_floating(f.type)]
    others = [f.name for f in table.schema if not pa.types.is_floating(f.type)]
    pq.write_table(
        table,
        tmp,
        compression="zstd",
        row_group_size=ROW_GROUP_ROWS,
        use_dictionary=[n for n in others if n not in ("coadd_object_id",)],
        use_byte_stream_split=floats,
        write_statistics=True,
    )
    os.replace(tmp, path)


def _share(total: int, rows: int, start: int, stop: int) -> int:
    """The part of ``total`` that rows ``[start, stop)`` carry (parts sum to ``total``)."""
    return total * stop // rows - total * start // rows


def generate(
    out_dir: Path,
    rows: int = 1_000_000,
    seed: int = 42,
    tiles: bool = True,
    progress: bool = False,
    *,
    tile_pixels: int = TILE_PIXELS,
    chunk_rows: int = CHUNK_ROWS,
) -> DemoFiles:
    """Generate the demo survey into ``out_dir``.

    Parameters
    ----------
    out_dir
        Folder for ``coadd-NNNN.parquet``, ``specz.parquet`` and ``tiles/``.
    rows
        Objects in the coadd table (1 to 10^8 and beyond; chunks of 10^6).
    seed
        Survey seed; the same seed and ``rows`` give the same values.
    tiles
        Also write the FITS coadd tiles (3 tiles x grizY).
    progress
        Show a tqdm progress bar over chunks.
    tile_pixels
        Side of the tile images in pixels (they always span the full tile).
    chunk_rows
        Rows per Parquet file and per generation step (bounds memory).
    """
    if rows < 1:
        raise ValueError(f"rows must be positive, got {rows}")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be positive, got {chunk_rows}")
    if tile_pixels < 16:
        raise ValueError(f"tile_pixels must be at least 16, got {tile_pixels}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # everything is written to a staging folder and moved into place only when the
    # whole survey exists, so an interrupted run leaves the previous survey intact
    staging = Path(tempfile.mkdtemp(prefix=".demo-staging-", dir=out_dir))
    try:
        names = _generate_into(staging, rows, seed, tiles, progress, tile_pixels, chunk_rows)
        return _install(staging, out_dir, names)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _generate_into(
    staging: Path,
    rows: int,
    seed: int,
    tiles: bool,
    progress: bool,
    tile_pixels: int,
    chunk_rows: int,
) -> DemoFiles:
    """Write the whole survey under ``staging``; returns the paths relative to it."""
    maps = build_maps(seed)
    collectors = [TileSources(spec) for spec in demo_tiles(tile_pixels)] if tiles else []
    nchunks = (rows + chunk_rows - 1) // chunk_rows
    chunk_ids: Iterable[int] = range(nchunks)
    if progress:
        from tqdm import tqdm

        chunk_ids = tqdm(chunk_ids, desc="demo catalog", unit="chunk")

    coadd: list[Path] = []
    specz_parts: list[pa.Table] = []
    for c in chunk_ids:
        start = c * chunk_rows
        stop = min(rows, start + chunk_rows)
        ndeep = _share(deep_total(rows), rows, start, stop)
        chunk = generate_chunk(seed, c, stop - start, ID_BASE + start, maps, ndeep)
        name = Path(f"coadd-{c:04d}.parquet")
        _write_parquet(chunk.table, staging / name)
        coadd.append(name)
        specz_parts.append(select_chunk(seed, c, chunk, chunk_quota(rows, start, stop)))
        for col in collectors:
            col.collect(chunk)
        del chunk

    specz = pa.concat_tables(specz_parts) if specz_parts else SPECZ_SCHEMA.empty_table()
    _write_parquet(specz.cast(SPECZ_SCHEMA), staging / "specz.parquet")

    tile_names: list[Path] = []
    if tiles:
        (staging / "tiles").mkdir()
        for ti, col in enumerate(collectors):
            for band, hdu in zip(BANDS, render_tile(col, seed, ti, maps.nepochs), strict=True):
                name = Path("tiles") / f"{col.spec.name}_{band if band != 'y' else 'Y'}.fits"
                write_tile(hdu, staging / name)
                tile_names.append(name)
    return DemoFiles(coadd=coadd, specz=Path("specz.parquet"), tiles=tile_names)


def _install(staging: Path, out_dir: Path, names: DemoFiles) -> DemoFiles:
    """Move the staged files into ``out_dir``, dropping chunks a larger earlier run left."""
    keep = {n.name for n in names.coadd}
    for stale in out_dir.glob("coadd-*.parquet"):
        if stale.name not in keep:
            stale.unlink()
    if names.tiles:
        (out_dir / "tiles").mkdir(exist_ok=True)
    for name in [*names.coadd, names.specz, *names.tiles]:
        os.replace(staging / name, out_dir / name)
    return DemoFiles(
        coadd=[out_dir / n for n in names.coadd],
        specz=out_dir / names.specz,
        tiles=[out_dir / n for n in names.tiles],
    )


# keep the schema importable from the package for callers that build descriptors
COADD_ARROW_SCHEMA = COADD_SCHEMA
