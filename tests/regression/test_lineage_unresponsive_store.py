# mypy: disable-error-code="no-untyped-def,no-untyped-call,attr-defined"
"""Upstream lineage of a version with several inputs in another store whose endpoint accepts connections and
never answers: each input is read on its own, one after the other, each waiting the full read timeout with
retries (~9.4 s), so 5 inputs take ~47 s and 50 inputs ~8 min. The first failure says the store does not
answer; the rest should be external nodes at once (or be read in parallel)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from gitfree import Store
from gitfree.versioning.models import InputRef


def test_lineage_does_not_wait_for_a_dead_store_once_per_input(
    make_store: Callable[..., Store], src: Callable[[str], Path], tmp_path: Path
) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(100)
    held: list[object] = []

    def accept_forever() -> None:
        while True:
            held.append(listener.accept())  # accepted, never answered

    threading.Thread(target=accept_forever, daemon=True).start()
    port = listener.getsockname()[1]

    store = make_store("file")
    inputs = [InputRef(dataset="raw", number=n, store="s3://team-b/raw") for n in range(1, 6)]
    store.commit("model", src("m"), inputs=inputs)
    reader = Store(
        store.backend.root,
        cache_dir=tmp_path / "reader",
        endpoint_url=f"http://127.0.0.1:{port}",
        access_key_id="k",
        secret_access_key="s",
    )
    started = time.monotonic()
    graph = reader.lineage("model@1")
    took = time.monotonic() - started
    assert all(n.external for n in graph.nodes if n.id != "model@1")
    assert took < 20, f"lineage of one version with 5 inputs in a silent store took {took:.0f} s"
