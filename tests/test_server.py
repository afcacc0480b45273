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
