"""Infer a descriptor from a data file, for ``ingest FILE``.

What a file declares is kept (FITS TUNIT/TUCD/TCOMM, VOTable unit/ucd/
description, Parquet field metadata); what is invalid is dropped with a
note in the column description; ra/dec are found by UCD, then by name. The
result is written as YAML the user can edit, so inference never has to be
perfect, only a good start.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sciportal.descriptors.loader import REGULAR_IDENTIFIER, validate_ucd, validate_unit
from sciportal.descriptors.model import ColumnMapping, Descriptor, SourceSpec, TableSpec
from sciportal.descriptors.types import votable_type
from sciportal.errors import IngestError
from sciportal.healpix import SPATIAL_INDEX_COLUMN
from sciportal.metadata.model import Column, Table
from sciportal.store.readers import open_reader

RA_NAMES = ("ra", "raj2000", "ra_icrs", "ra_j2000", "alpha_j2000", "radeg", "ra_deg", "alpha")
DEC_NAMES = ("dec", "decl", "dej2000", "decj2000", "de_icrs", "dec_icrs", "dec_j2000",
             "delta_j2000", "dedeg", "dec_deg", "delta", "de")  # fmt: skip
_FITS_UNITS = {"degree": "deg", "degrees": "deg", "arcsecond": "arcsec", "mags": "mag"}


def sanitize(name: str) -> str:
    """A lower-case regular ADQL identifier made from any column/file name."""
    out = re.sub(r"[^A-Za-z0-9_]", "_", name.strip()).lower()
    if not out or not out[0].isalpha():
        out = "c_" + out
    return out


def _unit(raw: str | None) -> tuple[str | None, str]:
    if not raw:
        return None, ""
    raw = _FITS_UNITS.get(raw.strip().lower(), raw.strip())
    try:
        return validate_unit(raw), ""
    except ValueError:
        pass
    import astropy.units as u

    for fmt in ("fits", "cds", "generic"):
        try:
            text = u.Unit(raw, format=fmt).to_string("vounit")
            return validate_unit(text), ""
        except (ValueError, TypeError):
            continue
    return None, f" (unit in file: {raw!r}, not a VOUnit)"


def _ucd(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        return validate_ucd(raw)
    except ValueError:
        return None


def infer_descriptor(
    path: Path,
    *,
    schema: str = "user",
    table: str | None = None,
    fmt: str | None = None,
    options: dict[str, Any] | None = None,
    title: str | None = None,
) -> Descriptor:
    """A descriptor for one file: its columns, their metadata and, if found, ra/dec."""
    path = Path(path).resolve()
    reader = open_reader(path, fmt, options)
    arrow_schema = reader.schema()
    hints = reader.column_hints()
    columns: list[Column] = []
    mappings: list[ColumnMapping] = []
    used: set[str] = set()
    for f in arrow_schema:
        if f.name == SPATIAL_INDEX_COLUMN:
            continue
        try:
            datatype, arraysize, xtype = votable_type(f.type)
        except ValueError:
            continue  # nested types etc. are left out; the user can add an adapter
        if xtype == "timestamp":
            continue  # stored as text would need a conversion we do not do implicitly
        name = sanitize(f.name)
        while name in used:
            name += "_"
        used.add(name)
        h = hints.get(f.name, {})
        unit, note = _unit(h.get("unit"))
        columns.append(
            Column(
                name=name,
                datatype=datatype,
                arraysize=arraysize,
                unit=unit,
                ucd=_ucd(h.get("ucd")),
                utype=h.get("utype"),
                description=(h.get("description") or "") + note,
            )
        )
        mappings.append(ColumnMapping(name=name, source=f.name))
    if not columns:
        raise IngestError(f"{path}: no column of a storable type")
    position = _find_position(columns)
    if position:
        ra, dec = position
        columns = [
            _with_position_meta(
                c, "pos.eq.ra;meta.main" if c.name == ra else "pos.eq.dec;meta.main"
            )
            if c.name in position
            else c
            for c in columns
        ]
    tname = sanitize(table or path.name.split(".")[0])
    if not REGULAR_IDENTIFIER.match(schema):
        raise IngestError(f"schema {schema!r} is not a regular ADQL identifier")
    t = Table(
        name=f"{schema.lower()}.{tname}",
        columns=tuple(columns),
        title=title or path.name,
        description=f"Ingested from {path.name}",
        ra_column=position[0] if position else None,
        dec_column=position[1] if position else None,
    )
    spec = TableSpec(
        table=t,
        source=SourceSpec(patterns=(str(path),), format=reader.format, options=dict(options or {})),
        mappings=tuple(mappings),
        position=position,
    )
    return Descriptor(
        path=path.with_suffix(".yaml"),
        schema=schema.lower(),
        title=title or f"Tables ingested from {path.name}",
        description=f"Ingested from {path.name}; edit this descriptor to improve the metadata.",
        tables=(spec,),
    )


def _with_position_meta(c: Column, ucd: str) -> Column:
    from dataclasses import replace

    return replace(c, ucd=c.ucd or ucd, unit=c.unit or "deg", principal=True)


def _find_position(columns: list[Column]) -> tuple[str, str] | None:
    floats = [c for c in columns if c.datatype in ("float", "double") and not c.arraysize]

    def by_ucd(prefix: str) -> str | None:
        hits = [c for c in floats if c.ucd and c.ucd.split(";")[0] == prefix]
        main = [c for c in hits if "meta.main" in (c.ucd or "")]
        return (main or hits)[0].name if hits else None

    def by_name(names: tuple[str, ...]) -> str | None:
        lower = {c.name.lower(): c.name for c in floats}
        return next((lower[n] for n in names if n in lower), None)

    ra = by_ucd("pos.eq.ra") or by_name(RA_NAMES)
    dec = by_ucd("pos.eq.dec") or by_name(DEC_NAMES)
    return (ra, dec) if ra and dec and ra != dec else None
