"""The VO's own validator, STILTS taplint, finds no errors and no failures."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import LiveServer


def test_taplint_clean(server: LiveServer, stilts: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.run(
        [stilts, "taplint", f"tapurl={server.tap}", "stages=-LOC", "maxrepeat=3", "format=text"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = proc.stdout + proc.stderr
    (tmp_path / "taplint.txt").write_text(out)
    totals = re.search(r"Totals:\s+Errors:\s*(\d+);\s*Warnings:\s*(\d+);.*?Failures:\s*(\d+)", out)
    assert totals, out[-3000:]
    errors, failures = int(totals.group(1)), int(totals.group(3))
    bad = [line for line in out.splitlines() if line.startswith(("E-", "F-"))]
    assert errors == 0 and failures == 0, "\n".join(bad[:60])
