"""``gitfree ui`` as a user runs it: a real subprocess that says where it listens, serves pages and stops on
Ctrl+C; refuses, in one line, a host other machines can reach without a token; says which extra to install."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from ui.conftest import World

from gitfree.testing import free_port
from gitfree.ui.server import listen

GITFREE = str(Path(sys.executable).with_name("gitfree"))


def _env(world: World) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITFREE_", "AWS_"))}
    env["GITFREE_CACHE_DIR"] = str(world.work / "cache-cli")
    return env


@contextmanager
def running(args: list[str], env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``gitfree ui ARGS`` started, and its startup line (read before anything is asked of it)."""
    process = subprocess.Popen(
        [GITFREE, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line:
            process.wait(timeout=30)
            raise AssertionError(f"gitfree ui did not start: {process.stderr.read() if process.stderr else ''}")
        yield process, line
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_gitfree_ui_serves_the_store_and_stops_on_ctrl_c(file_world: World) -> None:
    port = free_port()
    args = ["--store", file_world.store.url, "ui", "--port", str(port)]
    with running(args, _env(file_world)) as (process, line):
        assert line == (
            f"gitfree ui: serving {file_world.store.url} at http://127.0.0.1:{port}/ "
            "(no token: only this machine can connect); Ctrl+C stops it"
        )
        page = httpx.get(f"http://127.0.0.1:{port}/d/raw/sales", timeout=30)
        assert page.status_code == 200 and "february grew" in page.text
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert process.stderr is not None and "Traceback" not in process.stderr.read()


def test_the_store_option_of_ui_and_a_token(file_world: World) -> None:
    env = {**_env(file_world), "GITFREE_UI_TOKEN": "tok-" + "5" * 30}
    with running(["ui", "--store", file_world.store.url, "--port", "0"], env) as (_, line):
        assert "(every visitor needs the token: log in, or send Authorization: Bearer TOKEN)" in line
        assert "tok-" not in line
        url = line.split(" at ", 1)[1].split(" ", 1)[0]
        assert httpx.get(url, timeout=30).status_code == 401
        authed = httpx.get(url, headers={"authorization": "Bearer tok-" + "5" * 30}, timeout=30)
        assert authed.status_code == 200 and "raw/sales" in authed.text


def test_another_host_needs_a_token_or_no_auth_said_on_purpose(file_world: World) -> None:
    env = _env(file_world)
    refused = subprocess.run(
        [GITFREE, "--store", file_world.store.url, "ui", "--host", "0.0.0.0"],  # noqa: S104 - refused before binding
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "error: --host 0.0.0.0 lets other machines connect: pass --token TOKEN (or set GITFREE_UI_TOKEN), or "
        "--no-auth to serve the store to anyone who reaches it"
    )
    assert refused.stdout == ""
    args = ["--store", file_world.store.url, "ui", "--host", "0.0.0.0", "--port", "0", "--no-auth"]  # noqa: S104
    with running(args, env) as (_, line):
        assert "(NO token (--no-auth): anyone who can reach it reads the store)" in line
    both = subprocess.run(
        [GITFREE, "ui", "--token", "x" * 20, "--no-auth"], env=env, capture_output=True, text=True, timeout=60
    )
    assert both.returncode == 2 and both.stderr.strip().count("\n") == 0 and "contradict" in both.stderr


def test_a_port_taken_and_an_unreachable_store_are_one_line(file_world: World) -> None:
    env = _env(file_world)
    with listen("127.0.0.1", 0) as taken:
        port = taken.getsockname()[1]
        busy = subprocess.run(
            [GITFREE, "--store", file_world.store.url, "ui", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert busy.returncode == 2
    assert busy.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: ") and busy.stderr.count("\n") == 1
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    unreachable = subprocess.run(
        [GITFREE, "--store", "s3://data/versions", "--endpoint-url", nobody, "ui", "--port", "0"],
        env={**env, "GITFREE_ACCESS_KEY_ID": "k", "GITFREE_SECRET_ACCESS_KEY": "s3cret-not-shown"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert unreachable.returncode == 6, unreachable.stderr
    assert unreachable.stderr.startswith("error: ") and unreachable.stderr.count("\n") == 1
    assert nobody.removeprefix("http://") in unreachable.stderr and "s3cret" not in unreachable.stderr
    assert unreachable.stdout == ""  # it never said it was serving


def test_without_the_ui_extra_it_says_what_to_install(file_world: World) -> None:
    """Starlette made unimportable the way Python blocks a module (``sys.modules[name] = None``)."""
    code = (
        "import sys; sys.modules['starlette'] = None; sys.argv = ['gitfree', 'ui']\n"
        "from gitfree.cli import main; main()\n"
    )
    env = _env(file_world)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 6
    assert result.stderr.strip() == (
        "error: the web view needs the ui extra: pip install 'gitfree[ui]' (starlette is not installed)"
    )


def test_the_listening_socket_is_tcp_so_replies_are_not_held_back() -> None:
    """asyncio sets TCP_NODELAY only on a socket whose protocol says TCP: without it every request after the
    first on a kept-alive connection was answered 40 ms late (Nagle's algorithm against delayed ACKs)."""
    with listen("127.0.0.1", 0) as sock:
        assert sock.proto == socket.IPPROTO_TCP


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.7"])
def test_loopback_hosts_need_no_token(host: str) -> None:
    from gitfree.ui.server import is_loopback

    assert is_loopback(host)
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2") and not is_loopback("example.com")  # noqa: S104


def test_connections_beyond_the_limit_are_refused_at_once_not_queued(file_world: World) -> None:
    """Idle clients (a slow-loris) holding CONNECTIONS sockets get further requests a 503 at once, instead of
    every socket and thread of the process; once they go, pages are served again."""
    from gitfree.ui.server import CONNECTIONS

    port = free_port()
    with running(["--store", file_world.store.url, "ui", "--port", str(port)], _env(file_world)):
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(CONNECTIONS)]
        try:
            time.sleep(0.5)  # every one accepted
            started = time.monotonic()
            refused = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
            assert refused.status_code == 503 and time.monotonic() - started < 2
        finally:
            for conn in idle:
                conn.close()
        time.sleep(0.5)
        assert httpx.get(f"http://127.0.0.1:{port}/d/raw/sales", timeout=30).status_code == 200
