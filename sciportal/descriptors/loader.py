"""Load and validate resource descriptors (YAML) with line-precise errors.

The YAML is composed into nodes (not plain dicts) so every error can name
the file, the line and the dotted field (``tables[0].columns[3].ucd``): an
operator fixing a 600-column descriptor needs to land on the right line.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import yaml

from sciportal.descriptors.model import (
    DEFAULT_PARTITION_ROWS,
    SOURCE_FORMATS,
    ColumnMapping,
    Descriptor,
    SourceSpec,
    TableSpec,
)
from sciportal.descriptors.types import STORABLE_DATATYPES
from sciportal.errors import DescriptorError
from sciportal.healpix import SPATIAL_INDEX_COLUMN
from sciportal.metadata.model import Column, Table

REGULAR_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
SERVICES = ("tap", "scs", "sia", "soda", "datalink", "hips")

_TOP_KEYS = {
    "schema",
    "title",
    "description",
    "creators",
    "subjects",
    "reference_url",
    "version",
    "services",
    "tables",
}
_TABLE_KEYS = {
    "name",
    "title",
    "description",
    "utype",
    "position",
    "partition_rows",
    "bad_rows",
    "source",
    "columns",
}
_SOURCE_KEYS = {"paths", "format", "options"}
_COLUMN_KEYS = {
    "name",
    "datatype",
    "arraysize",
    "xtype",
    "unit",
    "ucd",
    "utype",
    "description",
    "nullable",
    "principal",
    "indexed",
    "std",
    "from",
    "scale",
}
_constructor = yaml.constructor.SafeConstructor()


class _Node:
    """A YAML node with its file, line and dotted field path, for messages."""

    def __init__(self, node: yaml.Node, file: Path, field: str) -> None:
        self.node = node
        self.file = file
        self.field = field

    @property
    def line(self) -> int:
        return self.node.start_mark.line + 1

    def fail(self, message: str) -> NoReturn:
        where = f"{self.file}, line {self.line}"
        if self.field:
            where += f", field {self.field}"
        raise DescriptorError(f"{where}: {message}")

    def _child_field(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.field}[{key}]"
        return f"{self.field}.{key}" if self.field else key

    def mapping(self, allowed: set[str]) -> dict[str, _Node]:
        if not isinstance(self.node, yaml.MappingNode):
            self.fail("expected a mapping (key: value pairs)")
        out: dict[str, _Node] = {}
        for knode, vnode in self.node.value:
            key = _constructor.construct_object(knode)
            child = _Node(vnode, self.file, self._child_field(str(key)))
            if not isinstance(key, str) or key not in allowed:
                _Node(knode, self.file, child.field).fail(
                    f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})"
                )
            if key in out:
                child.fail(f"duplicate key {key!r}")
            out[key] = child
        return out

    def sequence(self) -> list[_Node]:
        if not isinstance(self.node, yaml.SequenceNode):
            self.fail("expected a list")
        return [_Node(n, self.file, self._child_field(i)) for i, n in enumerate(self.node.value)]

    def value(self) -> Any:
        if not isinstance(self.node, yaml.ScalarNode):
            self.fail("expected a single value")
        return _constructor.construct_object(self.node)

    def string(self, *, allow_none: bool = False) -> str | None:
        v = self.value()
        if v is None and allow_none:
            return None
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            self.fail(f"expected text, got {v!r}")
        return str(v)

    def text(self) -> str:
        v = self.string()
        assert v is not None
        return v

    def boolean(self) -> bool:
        v = self.value()
        if not isinstance(v, bool):
            self.fail(f"expected true or false, got {v!r}")
        return v

    def integer(self, minimum: int | None = None) -> int:
        v = self.value()
        if isinstance(v, bool) or not isinstance(v, int):
            self.fail(f"expected an integer, got {v!r}")
        if minimum is not None and v < minimum:
            self.fail(f"must be at least {minimum}, got {v}")
        return v

    def number(self) -> float:
        v = self.value()
        if isinstance(v, bool) or not isinstance(v, int | float):
            self.fail(f"expected a number, got {v!r}")
        return float(v)

    def strings(self) -> list[str]:
        if isinstance(self.node, yaml.ScalarNode):
            return [self.text()]
        return [n.text() for n in self.sequence()]


def _opt(m: dict[str, _Node], key: str, get: Callable[[_Node], Any], default: Any = None) -> Any:
    node = m.get(key)
    if node is None or (isinstance(node.node, yaml.ScalarNode) and node.value() is None):
        return default
    return get(node)


def _required(m: dict[str, _Node], key: str, owner: _Node) -> _Node:
    if key not in m:
        owner.fail(f"missing required key {key!r}")
    return m[key]


def validate_unit(unit: str) -> str:
    """Check a unit string is valid VOUnit; returns it, raises ValueError otherwise."""
    import astropy.units as u

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            u.Unit(unit, format="vounit")
        except Exception as exc:  # astropy raises ValueError or warnings-as-errors
            raise ValueError(f"unit {unit!r} is not a valid VOUnit: {exc}") from None
    return unit


def validate_ucd(ucd: str) -> str:
    """Check a UCD against the UCD1+ controlled vocabulary (astropy's checker)."""
    from astropy.io.votable import ucd as ucdmod

    try:
        ucdmod.parse_ucd(ucd, check_controlled_vocabulary=True, has_colon=True)
    except ValueError as exc:
        raise ValueError(f"UCD {ucd!r} is not valid: {exc}") from None
    return ucd


def _identifier(node: _Node, what: str) -> str:
    name = node.text()
    if not REGULAR_IDENTIFIER.match(name):
        node.fail(
            f"{what} {name!r} is not a regular ADQL identifier (letter, then letters/digits/_)"
        )
    return name


def _column(node: _Node) -> tuple[Column, ColumnMapping]:
    m = node.mapping(_COLUMN_KEYS)
    name = _identifier(_required(m, "name", node), "column name")
    if name.lower() == SPATIAL_INDEX_COLUMN:
        m["name"].fail(f"{SPATIAL_INDEX_COLUMN} is reserved for the HEALPix index")
    dnode = _required(m, "datatype", node)
    datatype = dnode.text()
    if datatype not in STORABLE_DATATYPES:
        dnode.fail(f"datatype {datatype!r} is not one of {', '.join(STORABLE_DATATYPES)}")
    arraysize = _opt(m, "arraysize", lambda n: n.text())
    if arraysize is not None and not re.match(r"^(\d+|\d*\*)$", arraysize):
        m["arraysize"].fail(f"arraysize {arraysize!r} must be N, N* or *")
    unit = _opt(m, "unit", lambda n: n.string(allow_none=True)) or None
    if unit is not None:
        try:
            validate_unit(unit)
        except ValueError as exc:
            m["unit"].fail(str(exc))
    ucd = _opt(m, "ucd", lambda n: n.string(allow_none=True)) or None
    if ucd is not None:
        try:
            validate_ucd(ucd)
        except ValueError as exc:
            m["ucd"].fail(str(exc))
    source = _opt(m, "from", lambda n: n.text(), name)
    scale = _opt(m, "scale", lambda n: n.number())
    if scale is not None and datatype not in ("float", "double"):
        m["scale"].fail("scale needs a float or double column")
    col = Column(
        name=name,
        datatype=datatype,
        arraysize=arraysize,
        xtype=_opt(m, "xtype", lambda n: n.text()),
        unit=unit,
        ucd=ucd,
        utype=_opt(m, "utype", lambda n: n.text()),
        description=_opt(m, "description", lambda n: n.text(), ""),
        nullable=_opt(m, "nullable", lambda n: n.boolean(), True),
        principal=_opt(m, "principal", lambda n: n.boolean(), False),
        indexed=_opt(m, "indexed", lambda n: n.boolean(), False),
        std=_opt(m, "std", lambda n: n.boolean(), False),
    )
    return col, ColumnMapping(name=name, source=source, scale=scale)


def _resolve_path(pattern: str, base: Path, home: Path) -> str:
    pattern = pattern.replace("{home}", str(home))
    p = Path(pattern).expanduser()
    if not p.is_absolute():
        p = base / p
    return str(p)


def _source(node: _Node, base: Path, home: Path) -> SourceSpec:
    m = node.mapping(_SOURCE_KEYS)
    pnode = _required(m, "paths", node)
    patterns = pnode.strings()
    if not patterns:
        pnode.fail("at least one path is needed")
    fmt = _opt(m, "format", lambda n: n.text())
    if fmt is not None and fmt not in SOURCE_FORMATS:
        m["format"].fail(f"format {fmt!r} is not one of {', '.join(SOURCE_FORMATS)}")
    options: dict[str, Any] = {}
    if "options" in m and m["options"].node.tag != "tag:yaml.org,2002:null":
        if not isinstance(m["options"].node, yaml.MappingNode):
            m["options"].fail("expected a mapping of reader options")
        raw = _constructor.construct_mapping(m["options"].node, deep=True)
        options = {str(k): v for k, v in raw.items()}
    return SourceSpec(
        patterns=tuple(_resolve_path(p, base, home) for p in patterns),
        format=fmt,
        options=dict(options),
    )


def _table(node: _Node, schema: str, base: Path, home: Path) -> TableSpec:
    m = node.mapping(_TABLE_KEYS)
    name = _identifier(_required(m, "name", node), "table name").lower()
    cnodes = _required(m, "columns", node).sequence()
    if not cnodes:
        m["columns"].fail("a table needs at least one column")
    columns: list[Column] = []
    mappings: list[ColumnMapping] = []
    seen: set[str] = set()
    for cnode in cnodes:
        col, mapping = _column(cnode)
        if col.name.lower() in seen:
            cnode.fail(f"duplicate column {col.name!r}")
        seen.add(col.name.lower())
        columns.append(col)
        mappings.append(mapping)
    position = None
    if "position" in m:
        pm = m["position"].mapping({"ra", "dec"})
        pos = []
        for key in ("ra", "dec"):
            pnode = _required(pm, key, m["position"])
            cname = pnode.text()
            match = [c for c in columns if c.name.lower() == cname.lower()]
            if not match:
                pnode.fail(f"position column {cname!r} is not one of the table's columns")
            if match[0].datatype not in ("float", "double") or match[0].arraysize:
                pnode.fail(f"position column {cname!r} must be a float or double scalar")
            pos.append(match[0].name)
        position = (pos[0], pos[1])
    bad_rows = _opt(m, "bad_rows", lambda n: n.text(), "reject")
    if bad_rows not in ("reject", "skip"):
        m["bad_rows"].fail(f"bad_rows must be 'reject' or 'skip', got {bad_rows!r}")
    table = Table(
        name=f"{schema}.{name}",
        columns=tuple(columns),
        description=_opt(m, "description", lambda n: n.text(), ""),
        title=_opt(m, "title", lambda n: n.text(), ""),
        utype=_opt(m, "utype", lambda n: n.text()),
        ra_column=position[0] if position else None,
        dec_column=position[1] if position else None,
    )
    return TableSpec(
        table=table,
        source=_source(_required(m, "source", node), base, home),
        mappings=tuple(mappings),
        position=position,
        partition_rows=_opt(m, "partition_rows", lambda n: n.integer(1), DEFAULT_PARTITION_ROWS),
        bad_rows=bad_rows,
        line=node.line,
    )


def loads(text: str, path: Path, home: Path) -> Descriptor:
    """Validate descriptor text; ``path`` names it in errors and anchors relative paths."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context = getattr(exc, "context", None)
        what = f"{context}: {problem}" if context else problem
        raise DescriptorError(f"{path}{where}: not valid YAML ({what})") from None
    if root is None:
        raise DescriptorError(f"{path}, line 1: the descriptor is empty")
    top = _Node(root, path, "")
    m = top.mapping(_TOP_KEYS)
    schema = _identifier(_required(m, "schema", top), "schema name").lower()
    services = _opt(m, "services", lambda n: n.strings(), [])
    for i, s in enumerate(services):
        if s not in SERVICES:
            m["services"].fail(f"service #{i} {s!r} is not one of {', '.join(SERVICES)}")
    tnodes = _required(m, "tables", top).sequence()
    if not tnodes:
        m["tables"].fail("at least one table is needed")
    base = path.parent.resolve()
    tables = []
    names: set[str] = set()
    for tnode in tnodes:
        spec = _table(tnode, schema, base, home)
        if spec.table.name in names:
            tnode.fail(f"duplicate table {spec.table.short_name!r}")
        names.add(spec.table.name)
        tables.append(spec)
    return Descriptor(
        path=path,
        schema=schema,
        title=_required(m, "title", top).text(),
        description=_opt(m, "description", lambda n: n.text(), ""),
        creators=tuple(_opt(m, "creators", lambda n: n.strings(), [])),
        subjects=tuple(_opt(m, "subjects", lambda n: n.strings(), [])),
        reference_url=_opt(m, "reference_url", lambda n: n.text()),
        version=_opt(m, "version", lambda n: n.integer(1)),
        services=tuple(services),
        tables=tuple(tables),
    )


def load(path: Path, home: Path) -> Descriptor:
    """Load and validate the descriptor at ``path``; ``{home}`` in source paths is ``home``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DescriptorError(f"{path}: cannot read descriptor: {exc.strerror}") from None
    return loads(text, path, Path(home))
