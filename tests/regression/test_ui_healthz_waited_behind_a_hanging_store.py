"""With the store hanging (an endpoint that accepts connections and never answers), 45 pages waiting on it
took every worker thread of the server, and ``/healthz`` (what a supervisor polls to tell a dead server from
a busy one) and the CSS and JS waited behind them for seconds. They read nothing of the store and are now
answered by the event loop at once."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from ui.ui_helpers import serve

from gitfree import Store, StoreSettings
from gitfree.ui import create_app


@pytest.fixture
def hanging_endpoint() -> Iterator[str]:
    """An S3 endpoint that accepts every connection and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(200)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()
    for conn in held:
        conn.close()


def test_health_and_static_answer_while_pages_wait_on_a_hanging_store(hanging_endpoint: str, tmp_path: Path) -> None:
    store = Store(
        "s3://bucket/hangs",
        endpoint_url=hanging_endpoint,
        access_key_id="hang-key",
        secret_access_key="hang-secret-1234",
        settings=StoreSettings(read_timeout=1.0),
        cache_dir=tmp_path / "cache",
    )
    with serve(create_app(store)) as site, ThreadPoolExecutor(45) as pool:
        waiting = [pool.submit(httpx.get, f"{site.url}/d/raw/sales", timeout=60) for _ in range(45)]
        time.sleep(0.5)  # every worker thread is now waiting on the store
        for path in ("/healthz", "/static/gitfree.css"):
            started = time.monotonic()
            assert httpx.get(f"{site.url}{path}", timeout=60).status_code == 200
            assert time.monotonic() - started < 1.0, path
        assert {f.result().status_code for f in waiting} == {502}  # and each page then says why, bounded
