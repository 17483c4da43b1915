"""An endpoint that refuses connections, or accepts them and never answers, fails the CLI in seconds.

Regression: with the old hard-coded client settings (10 s connect, 120 s read, 6 attempts) a
listener that never answers hung ``gitfree`` for more than 140 s, and a refused port took up to
half a minute of backoff. Now ``GITFREE_CONNECT_TIMEOUT`` / ``GITFREE_READ_TIMEOUT`` /
``GITFREE_RETRIES`` (3 s, 2.5 s, 2) bound both: exit 6, one line that names the setting to change.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

GITFREE = str(Path(sys.executable).with_name("gitfree"))
SILENT_BOUND = 20.0
"""Seconds; measured about 9-11 s (3 attempts of 2.5 s, backoff, interpreter start), with slack for a busy machine."""
REFUSED_BOUND = 8.0
"""Seconds; measured about 2 s (backoff only: a refused connection fails at once)."""


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A listener on 127.0.0.1 that accepts every connection and never sends a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    server.close()


@pytest.fixture
def refused_port() -> int:
    """A port nothing listens on: bound, then closed."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()
    return port


def _datasets(tmp_path: Path, port: int, timeout: float) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "GITFREE_STORE": "s3://bucket/prefix",
        "GITFREE_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "GITFREE_ACCESS_KEY_ID": "key",
        "GITFREE_SECRET_ACCESS_KEY": "secret",
        "GITFREE_CACHE_DIR": str(tmp_path / "cache"),
    }
    started = time.monotonic()
    result = subprocess.run([GITFREE, "datasets"], capture_output=True, text=True, env=env, timeout=timeout)
    return result, time.monotonic() - started


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_a_silent_listener_fails_within_the_bound(tmp_path: Path, silent_port: int) -> None:
    result, elapsed = _datasets(tmp_path, silent_port, timeout=SILENT_BOUND + 20)
    print(f"silent listener: exit {result.returncode} after {elapsed:.1f} s")
    line = _one_line(result)
    assert result.returncode == 6
    assert "did not answer" in line and "GITFREE_READ_TIMEOUT" in line
    assert elapsed < SILENT_BOUND


def test_a_refused_port_fails_within_the_bound(tmp_path: Path, refused_port: int) -> None:
    result, elapsed = _datasets(tmp_path, refused_port, timeout=120)
    print(f"refused port: exit {result.returncode} after {elapsed:.1f} s")
    assert elapsed < REFUSED_BOUND
    line = _one_line(result)
    assert result.returncode == 6
    assert "cannot reach the S3 endpoint" in line and "GITFREE_CONNECT_TIMEOUT" in line
