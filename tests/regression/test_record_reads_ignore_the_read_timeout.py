"""Batched record reads wait for the transfer timeout, not GITFREE_READ_TIMEOUT, and end with exit 1.

README, "Timeouts": GITFREE_READ_TIMEOUT (2.5 s) is "for the server to answer a manifest request (records, tags,
leases, listings)". A single record read (``show ds@1``) honours it: against a server that accepts record GETs
and never answers, it fails in 3 x 2.5 s with ConfigError (exit 6, "did not answer within 2.5 s"). But ``log``,
``latest~K``, a missing ``ds@N``'s message, and GC's and fsck's inventories read records through obstore
(``Transfer.read_many``), whose client timeout is GITFREE_TRANSFER_TIMEOUT (120 s): with the defaults
``gitfree log ds`` hung 241 s and then failed with exit 1 ("Generic S3 error ... in 240.1s"), where the same
server makes ``show ds@1`` fail in 11 s with exit 6.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import write_tree

from gitfree import ConfigError, GitfreeError, Store
from gitfree.testing import SeaweedFS
from gitfree.versioning.config import StoreSettings


class _HangingProxy:
    """Forwards HTTP to ``upstream``; a request whose first line matches ``pattern`` is never forwarded."""

    def __init__(self, upstream: int, pattern: str) -> None:
        self.upstream, self.pattern = upstream, re.compile(pattern.encode())
        self.loop = asyncio.new_event_loop()
        self.port = 0

    async def _down(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        except OSError:
            pass

    async def _handle(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        sr, sw = await asyncio.open_connection("127.0.0.1", self.upstream)
        self.loop.create_task(self._down(sr, cw))
        buf, body, hanging = b"", 0, False
        while data := await cr.read(65536):
            if hanging:
                continue
            buf += data
            out = b""
            while True:
                if body:
                    take = min(body, len(buf))
                    out, buf, body = out + buf[:take], buf[take:], body - take
                    if body:
                        break
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                head, buf = buf[: end + 4], buf[end + 4 :]
                if self.pattern.search(head.split(b"\r\n")[0]):
                    hanging, buf = True, b""
                    break
                out += head
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        body = int(value)
            if out:
                sw.write(out)
                await sw.drain()

    def __enter__(self) -> _HangingProxy:
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        server = asyncio.run_coroutine_threadsafe(asyncio.start_server(self._handle, "127.0.0.1", 0), self.loop)
        self.port = server.result(10).sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture
def stalled(seaweedfs: SeaweedFS, s3_url: str, tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    store = Store(s3_url, cache_dir=tmp_path / "c0", **seaweedfs.store_options())
    for i in range(3):
        store.commit("ds", write_tree(tmp_path / "src", {f"f{i}": b"x"}))
    prefix = s3_url.removeprefix("s3://")
    with _HangingProxy(int(seaweedfs.endpoint.rsplit(":", 1)[1]), rf"^GET /{prefix}/datasets/ds/versions/0") as proxy:
        options = {**seaweedfs.store_options(), "endpoint_url": f"http://127.0.0.1:{proxy.port}"}
        settings = StoreSettings(read_timeout=1.0, retries=0, transfer_timeout=30.0)
        yield store, Store(s3_url, cache_dir=tmp_path / "c1", settings=settings, **options)


def test_one_record_read_honours_the_read_timeout(stalled: tuple[Store, Store]) -> None:
    _, reader = stalled
    started = time.monotonic()
    with pytest.raises(ConfigError, match="did not answer within 1 s"):
        reader.show("ds@1")
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("call", ["log", "gc-dry-run", "fsck"])
def test_batched_record_reads_honour_the_read_timeout_too(stalled: tuple[Store, Store], call: str) -> None:
    _, reader = stalled
    run: Callable[[], object] = {
        "log": lambda: reader.log("ds"),
        "gc-dry-run": lambda: reader.gc(dry_run=True),
        "fsck": lambda: reader.fsck(),
    }[call]
    started = time.monotonic()
    with pytest.raises(GitfreeError) as caught:
        run()
    took = time.monotonic() - started
    assert took < 10 and isinstance(caught.value, ConfigError), (
        f"{call}: {type(caught.value).__name__} after {took:.0f} s (read timeout 1 s, transfer timeout 30 s): "
        f"{caught.value}"
    )
