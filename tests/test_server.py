"""The server process: graceful shutdown and restart behaviour."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import requests

from tests.conftest import start_server


def test_sigterm_lets_a_download_finish(demo_home: Path) -> None:
    srv = start_server(demo_home)
    result: dict[str, object] = {}

    def download() -> None:
        # a slow reader: the response is still streaming when SIGTERM arrives
        with requests.get(
            f"{srv.tap}/sync",
            params={
                "LANG": "ADQL",
                "QUERY": "SELECT * FROM demo.coadd",
                "RESPONSEFORMAT": "csv",
                "MAXREC": "1000000",
            },
            stream=True,
            timeout=120,
        ) as r:
            result["status"] = r.status_code
            size = 0
            for chunk in r.iter_content(65536):
                size += len(chunk)
                time.sleep(0.05)
            result["lines"] = size
            result["text_tail"] = chunk[-200:]

    t = threading.Thread(target=download)
    t.start()
    time.sleep(1.0)
    srv.process.send_signal(signal.SIGTERM)
    t.join(timeout=120)
    code = srv.process.wait(timeout=60)
    assert code == 0
    assert result.get("status") == 200
    assert (
        isinstance(result.get("lines"), int) and result["lines"] > 1_000_000
    )  # the whole table came
    # and no new connections are accepted after exit
    try:
        requests.get(f"{srv.url}/health", timeout=2)
        raise AssertionError("server still answering after exit")
    except requests.ConnectionError:
        pass


def test_server_sweep_removes_retired_versions(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from sciportal.config import load_config
    from sciportal.web import app as app_module
    from tests.conftest import sciportal
    from tests.engines.engine_util import run

    home = tmp_path / "home"
    src = tmp_path / "cat.csv"
    src.write_text(
        "id,ra,dec\n" + "".join(f"{i},{20 + i / 100},{-40 + i / 100}\n" for i in range(30))
    )
    sciportal(home, "ingest", str(src), "--schema", "mine", "--table", "cat")
    app = app_module.build_app(load_config(home=home, environ={}))
    try:
        sciportal(home, "publish", str(home / "rd" / "mine.cat.yaml"))
        v1 = home / "catalogs" / "mine" / "cat" / "v1"
        assert app.cleanup_retired() == []  # within the grace period
        monkeypatch.setattr(app_module, "RETIRED_GRACE_S", 0.0)
        assert app.cleanup_retired() == [str(v1)]
        assert not v1.exists()
        # the current version still answers
        batches = list(run(app.engine, app.metadata, "SELECT COUNT(*) AS n FROM mine.cat"))
        assert batches[0].column("n")[0].as_py() == 30
    finally:
        app.jobs.shutdown(timeout=1)
