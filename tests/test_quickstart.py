"""The README's first command, as a newcomer runs it: set up, demo, serve, and the printed example works."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from pathlib import Path

import pyvo

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_serves_the_demo_and_its_printed_example_runs(tmp_path: Path) -> None:
    env = dict(
        os.environ,
        SCIPORTAL_HOME=str(tmp_path / "home"),
        SCIPORTAL_SKIP_APT="1",  # the suite's own set-up already installed the Debian packages
    )
    proc = subprocess.Popen(
        [
            "bash",
            str(ROOT / "deploy" / "quickstart.sh"),
            "--rows",
            "3000",
            "--no-tiles",
            "--port",
            "0",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    done = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Stop with Ctrl-C" in line:
                done.set()
        done.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert done.wait(600), "".join(lines)
        out = "".join(lines)
        assert proc.poll() is None, out
        url = re.search(r"TAP service: (\S+)", out)
        assert url, out
        rows = pyvo.dal.TAPService(url.group(1)).run_sync("SELECT TOP 5 * FROM demo.coadd")
        assert len(rows) == 5 and "ra" in rows.fieldnames
        # the pyvo line it printed is a shell command that works as printed
        example = re.search(r"pyvo:\s+(.+)$", out, re.M)
        assert example, out
        ran = subprocess.run(
            example.group(1), shell=True, capture_output=True, text=True, timeout=120
        )
        assert ran.returncode == 0, ran.stderr
        assert "demo" in out and len(ran.stdout.strip().splitlines()) >= 3
        assert "TOPCAT" in out
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 0, "".join(lines)
