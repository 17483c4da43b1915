"""A counting TCP proxy for HTTP/1.1 on loopback: requests by method, and bytes each way (for tests and the benchmark).

Every contender (gitfree, DVC, s5cmd, boto3) talks to the S3 endpoint it is given, so
pointing them at this proxy counts their requests the same way, without hooks into
any of them. It parses request heads (and skips bodies by ``Content-Length`` or
chunked encoding) and counts raw bytes on the wire. It adds latency, so timings are
taken without it, in separate runs.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Counts:
    requests: Counter[str] = field(default_factory=Counter)
    bytes_up: int = 0
    bytes_down: int = 0
    copies: int = 0
    """Of the PUTs, the server-side copies (``CopyObject``, ``UploadPartCopy``: a header ``x-amz-copy-source``)."""

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "requests": self.total,
            "by_method": dict(self.requests),
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
            "copies": self.copies,
        }


class _RequestParser:
    """Feeds on the client's byte stream; counts each request head it completes."""

    def __init__(self, counts: Counts) -> None:
        self.counts = counts
        self.buffer = b""
        self.body_left = 0
        self.chunked = False

    def _chunk(self) -> bool:
        """Consume one chunk of a chunked body (the last one ends the body); false until it has all come."""
        line_end = self.buffer.find(b"\r\n")
        if line_end < 0:
            return False
        size = int(self.buffer[:line_end].split(b";")[0] or b"0", 16)
        if size == 0:  # last chunk and (empty) trailer
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return False
            self.buffer = self.buffer[end + 4 :]
            self.chunked = False
            return True
        if len(self.buffer) < line_end + 2 + size + 2:
            return False
        self.buffer = self.buffer[line_end + 2 + size + 2 :]
        return True

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.body_left:
                take = min(self.body_left, len(self.buffer))
                self.buffer = self.buffer[take:]
                self.body_left -= take
                if self.body_left:
                    return
            if self.chunked:
                if not self._chunk():
                    return
                continue
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            lines = head.split(b"\r\n")
            method = lines[0].split(b" ", 1)[0].decode("ascii", "replace")
            self.counts.requests[method] += 1
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    self.body_left = int(value.strip())
                elif name == b"transfer-encoding" and b"chunked" in value.lower():
                    self.chunked = True
                elif name == b"x-amz-copy-source":
                    self.counts.copies += 1


class CountingProxy:
    """``with CountingProxy(upstream_port) as proxy:`` → ``proxy.endpoint``; ``proxy.take()`` resets."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.counts = Counts()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def take(self) -> Counts:
        """The counts since the last call, and start counting afresh."""
        with self._lock:
            counts, self.counts = self.counts, Counts()
        return counts

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: bool) -> None:
        parser = _RequestParser(self.counts) if up else None
        try:
            while data := await reader.read(1 << 16):
                with self._lock:
                    if parser is not None:
                        parser.counts = self.counts
                        parser.feed(data)
                        self.counts.bytes_up += len(data)
                    else:
                        self.counts.bytes_down += len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.close()
            return
        self._writers |= {client_writer, server_writer}
        await asyncio.gather(
            self._pump(client_reader, server_writer, up=True), self._pump(server_reader, client_writer, up=False)
        )

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop)
        self._server = future.result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()
        await asyncio.sleep(0.1)  # let the transports finish closing inside the loop

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
