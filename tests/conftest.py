"""Shared fixtures: a real sciportal server on an ephemeral port, with demo data."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

DEMO_ROWS = int(os.environ.get("SCIPORTAL_TEST_DEMO_ROWS", "30000"))


def sciportal(
    home: Path, *args: str, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run the sciportal CLI as a user would, in a subprocess."""
    env = dict(os.environ, SCIPORTAL_HOME=str(home))
    proc = subprocess.run(
        [sys.executable, "-m", "sciportal.cli", "--quiet", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"sciportal {' '.join(args)} failed: {proc.stderr}{proc.stdout}")
    return proc


@dataclass
class LiveServer:
    """A running server: its root URL, TAP URL, data home and process."""

    url: str
    home: Path
    process: subprocess.Popen[str]

    @property
    def tap(self) -> str:
        return f"{self.url}/tap"


def start_server(home: Path, *extra: str) -> LiveServer:
    """Start ``sciportal serve`` on port 0 and wait until it answers."""
    env = dict(os.environ, SCIPORTAL_HOME=str(home))
    proc = subprocess.Popen(
        [sys.executable, "-m", "sciportal.cli", "--quiet", *extra, "serve", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    url = None
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "listening on" in line:
            url = line.split("listening on", 1)[1].strip().rstrip("/")
            break
    if url is None:
        proc.kill()
        raise RuntimeError("server did not start:\n" + "".join(lines) + (proc.stdout.read() or ""))
    # drain output in the background so the pipe never fills
    import threading

    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
    with urllib.request.urlopen(f"{url}/health", timeout=10) as resp:
        assert resp.status == 200
    return LiveServer(url=url, home=home, process=proc)


def stop_server(server: LiveServer) -> int:
    """SIGTERM, then wait for a clean exit."""
    server.process.send_signal(signal.SIGTERM)
    try:
        return server.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.process.kill()
        return -9


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data home with the demo survey published (small, for speed)."""
    home = tmp_path_factory.mktemp("home")
    sciportal(home, "demo", "--rows", str(DEMO_ROWS), "--no-tiles")
    return home


@pytest.fixture(scope="session")
def server(demo_home: Path) -> Iterator[LiveServer]:
    """The real server over the demo survey, shared by the session."""
    srv = start_server(demo_home)
    yield srv
    stop_server(srv)


@pytest.fixture(scope="session")
def stilts() -> str:
    """Path of the STILTS command, or skip."""
    path = shutil.which("stilts")
    if path is None:
        pytest.skip("STILTS is not installed (apt-get install stilts)")
    return path


def xsdvalidate(stilts: str, tmp_path: Path, content: bytes) -> None:
    """The document validates against the IVOA schemas (STILTS xsdvalidate, bundled XSDs)."""
    doc = tmp_path / "doc.xml"
    doc.write_bytes(content)
    proc = subprocess.run(
        [stilts, "xsdvalidate", f"doc={doc}", "uselocals=true"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and "error" not in proc.stdout.lower(), proc.stdout + proc.stderr
