"""Golden translations: each ADQL input with its expected SQL per dialect.

The fixture is tests/fixtures/adql/translations.yaml. After a deliberate
change, regenerate with SCIPORTAL_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from sciportal.adql import translate

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
