"""Write a descriptor back as YAML (for ``ingest FILE``: infer, then let the user edit)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from sciportal.descriptors.model import DEFAULT_PARTITION_ROWS, Descriptor, TableSpec


def _table_dict(spec: TableSpec, base: Path | None) -> dict[str, Any]:
    t = spec.table
    out: dict[str, Any] = {"name": t.short_name, "title": t.title, "description": t.description}
    if spec.position:
        out["position"] = {"ra": spec.position[0], "dec": spec.position[1]}
    if spec.partition_rows != DEFAULT_PARTITION_ROWS:
        out["partition_rows"] = spec.partition_rows
    out["bad_rows"] = spec.bad_rows
    paths = []
    for p in spec.source.patterns:
        if base is not None:
            try:
                p = os.path.relpath(p, base)
            except ValueError:  # another drive (Windows)
                pass
        paths.append(p)
    source: dict[str, Any] = {"paths": paths}
    if spec.source.format:
        source["format"] = spec.source.format
    if spec.source.options:
        source["options"] = dict(spec.source.options)
    out["source"] = source
    cols = []
    mappings = {m.name: m for m in spec.mappings}
    for c in t.columns:
        d: dict[str, Any] = {"name": c.name, "datatype": c.datatype}
        for key in ("arraysize", "xtype", "unit", "ucd", "utype"):
            value = getattr(c, key)
            if value is not None:
                d[key] = value
        d["description"] = c.description
        d["nullable"] = c.nullable
        d["principal"] = c.principal
        d["indexed"] = c.indexed
        m = mappings.get(c.name)
        if m is not None and m.source != c.name:
            d["from"] = m.source
        if m is not None and m.scale is not None:
            d["scale"] = m.scale
        cols.append(d)
    out["columns"] = cols
    return out


def dump(desc: Descriptor, relative_to: Path | None = None) -> str:
    """YAML text of a descriptor; source paths are made relative to ``relative_to`` if given.

    ``load(dump(d))`` gives back an equal descriptor (paths resolved the same way).
    """
    data: dict[str, Any] = {
        "schema": desc.schema,
        "title": desc.title,
        "description": desc.description,
        "creators": list(desc.creators),
        "subjects": list(desc.subjects),
    }
    if desc.reference_url:
        data["reference_url"] = desc.reference_url
    if desc.version is not None:
        data["version"] = desc.version
    if desc.services:
        data["services"] = list(desc.services)
    data["tables"] = [_table_dict(t, relative_to) for t in desc.tables]
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
