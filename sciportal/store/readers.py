"""Stream record batches out of source files, one reader per format.

Every reader yields Arrow record batches of at most ``batch_rows`` rows, so
ingestion memory does not depend on file size (VOTable is the exception:
astropy parses it whole, which is fine for the upload-sized files it is used
for). Any failure becomes an ``IngestError`` naming the file and, where
known, the row or column.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from sciportal.errors import IngestError

DEFAULT_BATCH_ROWS = 131_072
_EXTENSIONS = {
    ".parquet": "parquet",
    ".parq": "parquet",
    ".pq": "parquet",
    ".fits": "fits",
    ".fit": "fits",
    ".fts": "fits",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".vot": "votable",
    ".votable": "votable",
    ".xml": "votable",
}


def guess_format(path: Path) -> str:
    """The format of a file from its extension (``.gz`` is looked through)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".bz2"):
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in _EXTENSIONS:
        return _EXTENSIONS[suffixes[-1]]
    raise IngestError(f"{path}: cannot tell the format from the extension; set source.format")


class SourceReader:
    """Base reader: the schema, per-column metadata hints and a batch stream."""

    format = ""

    def __init__(self, path: Path, options: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.options = dict(options or {})
        if not self.path.exists():
            raise IngestError(f"{self.path}: source file does not exist")

    def schema(self) -> pa.Schema:
        """Column names and (source) types."""
        raise NotImplementedError

    def column_hints(self) -> dict[str, dict[str, str]]:
        """Units, UCDs and descriptions the file itself declares, by column."""
        return {}

    def num_rows(self) -> int | None:
        """Row count if cheap to know."""
        return None

    def batches(
        self, columns: list[str] | None = None, batch_rows: int = DEFAULT_BATCH_ROWS
    ) -> Iterator[pa.RecordBatch]:
        """Record batches with just ``columns`` (all if None), in file order."""
        raise NotImplementedError

    def fail(self, message: str) -> IngestError:
        return IngestError(f"{self.path}: {message}")

    def check_columns(self, columns: list[str] | None) -> None:
        if columns is None:
            return
        have = self.schema().names
        for c in columns:
            if c not in have:
                raise self.fail(
                    f"column {c!r} named in the descriptor is missing (the file has: "
                    f"{', '.join(have[:50])}{' ...' if len(have) > 50 else ''})"
                )


class ParquetReader(SourceReader):
    format = "parquet"

    def __init__(self, path: Path, options: dict[str, Any] | None = None) -> None:
        super().__init__(path, options)
        try:
            # no pre-buffering: it holds whole row groups of every column (~1 GB for
            # DES-like files) for no speed gain on local disks
            self._file = pq.ParquetFile(self.path, pre_buffer=False, buffer_size=1 << 20)
        except Exception as exc:
            raise self.fail(f"not a readable Parquet file ({exc})") from None

    def schema(self) -> pa.Schema:
        return self._file.schema_arrow

    def num_rows(self) -> int | None:
        return int(self._file.metadata.num_rows)

    def column_hints(self) -> dict[str, dict[str, str]]:
        out = {}
        for f in self.schema():
            meta = {k.decode(): v.decode() for k, v in (f.metadata or {}).items()}
            if meta:
                out[f.name] = meta
        return out

    def batches(
        self, columns: list[str] | None = None, batch_rows: int = DEFAULT_BATCH_ROWS
    ) -> Iterator[pa.RecordBatch]:
        self.check_columns(columns)
        row = 0
        try:
            for batch in self._file.iter_batches(batch_size=batch_rows, columns=columns):
                yield batch
                row += batch.num_rows
        except (OSError, pa.ArrowException) as exc:
            raise self.fail(f"unreadable after row {row}: {exc}") from None


class CsvReader(SourceReader):
    """CSV/TSV through pyarrow's streaming reader; types come from the caller."""

    format = "csv"

    def __init__(self, path: Path, options: dict[str, Any] | None = None, tsv: bool = False):
        super().__init__(path, options)
        opts = dict(self.options)
        self.delimiter = opts.pop("delimiter", "\t" if tsv else ",")
        self.comment = opts.pop("comment", None)
        self.null_values = opts.pop("null_values", None)
        self.skip_rows = int(opts.pop("skip_rows", 0))
        self.column_names = opts.pop("column_names", None)
        if opts:
            raise self.fail(f"unknown CSV options {sorted(opts)}")
        self.column_types: dict[str, pa.DataType] = {}
        self._schema: pa.Schema | None = None

    def _open(self, columns: list[str] | None, block_size: int) -> pacsv.CSVStreamingReader:
        read = pacsv.ReadOptions(
            block_size=block_size,
            skip_rows=self.skip_rows,
            column_names=self.column_names,
        )
        parse = pacsv.ParseOptions(delimiter=self.delimiter, newlines_in_values=False)
        conv_kw: dict[str, Any] = {"column_types": self.column_types, "strings_can_be_null": True}
        if self.null_values is not None:
            conv_kw["null_values"] = list(self.null_values)
        if columns is not None:
            conv_kw["include_columns"] = columns
        try:
            return pacsv.open_csv(
                self.path,
                read_options=read,
                parse_options=parse,
                convert_options=pacsv.ConvertOptions(**conv_kw),
            )
        except (OSError, pa.ArrowException) as exc:
            raise self.fail(f"not a readable CSV file ({exc})") from None

    def schema(self) -> pa.Schema:
        if self._schema is None:
            self._schema = self._open(None, 1 << 20).schema
        return self._schema

    def batches(
        self, columns: list[str] | None = None, batch_rows: int = DEFAULT_BATCH_ROWS
    ) -> Iterator[pa.RecordBatch]:
        self.check_columns(columns)
        reader = self._open(columns, 8 << 20)
        row = 0
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except (OSError, pa.ArrowException) as exc:
                raise self.fail(f"error after data row {row}: {exc}") from None
            for off in range(0, batch.num_rows, batch_rows):
                yield batch.slice(off, batch_rows)
            row += batch.num_rows


def _fits_column_to_arrow(raw: np.ndarray, col: Any, scaled: np.ndarray) -> pa.Array:
    """One FITS column chunk as Arrow: native byte order, TNULL as null, strings decoded."""
    if scaled.dtype.kind == "S":
        arr = pa.array(np.char.rstrip(scaled), type=pa.binary())
        return pc.utf8_rtrim_whitespace(arr.cast(pa.string()))
    if scaled.dtype.kind == "U":
        return pa.array(np.char.rstrip(scaled), type=pa.string())
    values = scaled
    if values.dtype.byteorder not in ("=", "|"):
        values = values.astype(values.dtype.newbyteorder("="))
    mask = None
    null = getattr(col, "null", None)
    if null is not None and raw.dtype.kind in "iu" and values.ndim == 1:
        try:
            mask = np.asarray(raw) == int(null)
        except (TypeError, ValueError):
            mask = None
    if values.ndim == 1:
        return pa.array(values, mask=mask if mask is not None and mask.any() else None)
    if values.ndim == 2:
        flat = pa.array(np.ascontiguousarray(values).reshape(-1))
        return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])
    raise ValueError(f"{values.ndim}-dimensional cells are not supported")


class FitsReader(SourceReader):
    """FITS binary tables via astropy with memmap, read in row chunks."""

    format = "fits"
    #: the map is reopened after this many bytes so RSS stays bounded on huge files
    remap_bytes = 256 << 20

    def __init__(self, path: Path, options: dict[str, Any] | None = None) -> None:
        super().__init__(path, options)
        from astropy.io import fits

        opts = dict(self.options)
        self.hdu_index = opts.pop("hdu", None)
        if opts:
            raise self.fail(f"unknown FITS options {sorted(opts)}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._hdul = fits.open(self.path, memmap=True, lazy_load_hdus=True)
                self._hdu = self._find_hdu()
        except IngestError:
            raise
        except Exception as exc:
            raise self.fail(f"not a readable FITS file ({exc})") from None
        self._check_size()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._data = self._hdu.data
        except Exception as exc:
            raise self.fail(f"unreadable table data ({exc})") from None
        if self._data is None:
            raise self.fail("the table HDU has no data")

    def _check_size(self) -> None:
        """A truncated file is named as such, with how many rows are complete."""
        nrows = int(self._hdu.header.get("NAXIS2", 0))
        rowlen = int(self._hdu.header.get("NAXIS1", 0))
        offset = int(self._hdu._data_offset)
        expected = offset + nrows * rowlen + int(self._hdu.header.get("PCOUNT", 0))
        size = self.path.stat().st_size
        if size < expected:
            complete = max(0, (size - offset) // max(rowlen, 1))
            raise self.fail(
                f"file is truncated: {nrows} rows of {rowlen} bytes need {expected} bytes, "
                f"the file has {size} (only {complete} complete rows)"
            )

    def _find_hdu(self) -> Any:
        from astropy.io import fits

        if self.hdu_index is not None:
            try:
                hdu = self._hdul[self.hdu_index]
            except (IndexError, KeyError):
                raise self.fail(f"no HDU {self.hdu_index!r}") from None
            if not isinstance(hdu, fits.BinTableHDU | fits.TableHDU):
                raise self.fail(f"HDU {self.hdu_index!r} is not a table")
            return hdu
        for hdu in self._hdul:
            if isinstance(hdu, fits.BinTableHDU | fits.TableHDU):
                return hdu
        raise self.fail("no table HDU found")

    def schema(self) -> pa.Schema:
        chunk = self.batch_at(0, 1)
        return chunk.schema

    def num_rows(self) -> int | None:
        return int(self._hdu.header.get("NAXIS2", 0))

    def column_hints(self) -> dict[str, dict[str, str]]:
        out = {}
        hdr = self._hdu.header
        for i, col in enumerate(self._data.columns, start=1):
            meta = {}
            if col.unit:
                meta["unit"] = str(col.unit).strip()
            ucd = hdr.get(f"TUCD{i}")
            if ucd:
                meta["ucd"] = str(ucd).strip()
            comment = hdr.comments[f"TTYPE{i}"] if f"TTYPE{i}" in hdr else ""
            desc = hdr.get(f"TCOMM{i}") or comment
            if desc:
                meta["description"] = str(desc).strip()
            if meta:
                out[col.name] = meta
        return out

    def batch_at(self, start: int, stop: int, columns: list[str] | None = None) -> pa.RecordBatch:
        chunk = self._data[start:stop]
        names = columns if columns is not None else list(self._data.columns.names)
        arrays = []
        for name in names:
            col = self._data.columns[name]
            try:
                if any(ch in str(col.format) for ch in "PQ"):
                    raise ValueError("variable-length array columns are not supported")
                scaled = chunk.field(name)
                raw = np.ndarray.__getitem__(chunk, name) if col.null is not None else scaled
                arrays.append(_fits_column_to_arrow(raw, col, np.asarray(scaled)))
            except Exception as exc:
                raise self.fail(f"rows {start + 1}-{stop}, column {name!r}: {exc}") from None
        return pa.RecordBatch.from_arrays(arrays, names=names)

    def batches(
        self, columns: list[str] | None = None, batch_rows: int = DEFAULT_BATCH_ROWS
    ) -> Iterator[pa.RecordBatch]:
        if columns is not None:
            have = list(self._data.columns.names)
            for c in columns:
                if c not in have:
                    raise self.fail(
                        f"column {c!r} named in the descriptor is missing (the file has: "
                        f"{', '.join(have[:50])})"
                    )
        n = self.num_rows() or 0
        rowlen = max(1, int(self._hdu.header.get("NAXIS1", 1)))
        remap_rows = max(batch_rows, self.remap_bytes // rowlen)
        for start in range(0, n, batch_rows):
            if start and start % remap_rows < batch_rows:
                self._remap()
            yield self.batch_at(start, min(n, start + batch_rows), columns)

    def _remap(self) -> None:
        """Close and reopen the memory map: pages read so far leave our RSS."""
        from astropy.io import fits

        index = self._hdul.index(self._hdu)
        del self._data
        self._hdul.close()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._hdul = fits.open(self.path, memmap=True, lazy_load_hdus=True)
            self._hdu = self._hdul[index]
            self._data = self._hdu.data


class VOTableReader(SourceReader):
    """VOTable through astropy; parsed whole (VOTable has no row index to seek)."""

    format = "votable"

    def __init__(self, path: Path, options: dict[str, Any] | None = None) -> None:
        super().__init__(path, options)
        from astropy.io.votable import parse

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._vot = parse(str(self.path))
                self._vt = self._vot.get_first_table()
        except Exception as exc:
            raise self.fail(f"not a readable VOTable ({exc})") from None
        self._table: pa.Table | None = None

    def _arrow(self) -> pa.Table:
        if self._table is None:
            arr = self._vt.array
            cols, names = [], []
            for f in self._vt.fields:
                name = f.name or f.ID
                data = arr[f.ID or f.name]
                values = np.ma.getdata(data)
                mask = np.ma.getmaskarray(data)
                if values.dtype.kind == "O":
                    vals = [None if m else str(v) for v, m in zip(values, mask, strict=True)]
                    cols.append(pa.array(vals, type=pa.string()))
                elif values.dtype.kind in "SU":
                    cols.append(pa.array(values.astype(str), mask=mask, type=pa.string()))
                elif values.ndim > 1:
                    flat = pa.array(np.ascontiguousarray(values).reshape(-1))
                    cols.append(pa.FixedSizeListArray.from_arrays(flat, values.shape[1]))
                else:
                    cols.append(pa.array(values, mask=mask if mask.any() else None))
                names.append(name)
            self._table = pa.Table.from_arrays(cols, names=names)
        return self._table

    def schema(self) -> pa.Schema:
        return self._arrow().schema

    def num_rows(self) -> int | None:
        return self._arrow().num_rows

    def column_hints(self) -> dict[str, dict[str, str]]:
        out = {}
        for f in self._vt.fields:
            meta = {}
            if f.unit is not None:
                meta["unit"] = str(f.unit.to_string("vounit"))
            if f.ucd:
                meta["ucd"] = f.ucd
            if f.description:
                meta["description"] = str(f.description)
            if f.utype:
                meta["utype"] = f.utype
            if meta:
                out[f.name or f.ID] = meta
        return out

    def batches(
        self, columns: list[str] | None = None, batch_rows: int = DEFAULT_BATCH_ROWS
    ) -> Iterator[pa.RecordBatch]:
        self.check_columns(columns)
        table = self._arrow()
        if columns is not None:
            table = table.select(columns)
        yield from table.to_batches(max_chunksize=batch_rows)


def open_reader(
    path: Path, fmt: str | None = None, options: dict[str, Any] | None = None
) -> SourceReader:
    """A reader for one source file (format from ``fmt`` or the extension)."""
    fmt = fmt or guess_format(Path(path))
    if fmt == "parquet":
        return ParquetReader(path, options)
    if fmt == "fits":
        return FitsReader(path, options)
    if fmt in ("csv", "tsv"):
        return CsvReader(path, options, tsv=fmt == "tsv")
    if fmt == "votable":
        return VOTableReader(path, options)
    raise IngestError(f"{path}: unknown format {fmt!r}")
