"""Golden translations: each ADQL input with its expected SQL per dialect.

The fixture is tests/fixtures/adql/translations.yaml. After a deliberate
change, regenerate with SCIPORTAL_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from sciportal.adql import translate
from sciportal.errors import UnsupportedError
from sciportal.metadata.model import Column

from .conftest import STARS, Lookup

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "adql" / "translations.yaml"
DIALECTS = ("duckdb", "postgres")


def _cases() -> list[dict[str, str]]:
    return yaml.safe_load(FIXTURE.read_text())


def test_golden(lookup: Any) -> None:
    cases = _cases()
    if os.environ.get("SCIPORTAL_UPDATE_GOLDEN"):
        for case in cases:
            for d in DIALECTS:
                case[d] = translate(case["adql"], lookup, d).sql
        FIXTURE.write_text(yaml.safe_dump(cases, sort_keys=False, width=100, allow_unicode=True))
        pytest.skip("golden file regenerated")
    assert len(cases) >= 20
    for case in cases:
        for d in DIALECTS:
            assert translate(case["adql"], lookup, d).sql == case[d], (case["adql"], d)


@pytest.mark.parametrize(
    ("adql", "message"),
    [
        ("SELECT CENTROID(shape) FROM s.regions", "pgSphere has no polygon centroid"),
        (
            "SELECT ivo_epoch_prop_pos(ra, dec, 1, 2, 3, 4, 2016, 2020) FROM s.t",
            "ivo_epoch_prop_pos is not available on the PostgreSQL engine",
        ),
    ],
)
def test_postgres_unsupported_is_clear(lookup: Any, adql: str, message: str) -> None:
    with pytest.raises(UnsupportedError, match=message):
        translate(adql, lookup, "postgres")


def test_postgres_range_filter_needs_the_column(lookup: Any) -> None:
    """The _healpix_29 filter goes to PostgreSQL only for tables that declare the column."""
    q = "SELECT id FROM s.t WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE(45, 0, 0.1))"
    assert "_healpix_29" not in translate(q, lookup, "postgres").sql
    indexed = dataclasses.replace(STARS, columns=(*STARS.columns, Column("_healpix_29", "long")))
    assert '"t"."_healpix_29" >= ' in translate(q, Lookup([indexed]), "postgres").sql
