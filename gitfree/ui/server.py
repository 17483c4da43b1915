"""Serving the web view: a listening socket and uvicorn (what ``gitfree ui`` runs)."""

from __future__ import annotations

import contextlib
import socket

import uvicorn
from starlette.applications import Starlette

from .auth import is_loopback

__all__ = ["is_loopback", "listen", "serve", "url_of"]


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port`` (``port`` 0: any free port), before the server starts, so the
    line saying where it listens is true when it is printed. ``OSError`` when it cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP said explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP (one made with
    # proto 0 answers every request after the first of a connection 40 ms late: Nagle and delayed ACKs).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://HOST:PORT/`` of a listening socket."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


CONNECTIONS = 100
"""Connections (open or waiting on a page) ``gitfree ui`` serves at once; beyond them uvicorn answers 503 at
once, so idle or slow clients cannot hold every socket and thread of the process."""


def serve(app: Starlette, sock: socket.socket, *, verbose: bool = False, connections: int = CONNECTIONS) -> None:
    """Serve ``app`` on ``sock`` until interrupted, then finish what is in flight (up to 5 s). Ctrl+C is how it
    is stopped, so it returns then; SIGTERM, re-raised by uvicorn once it has stopped, ends the process."""
    config = uvicorn.Config(
        app,
        log_level="info" if verbose else "warning",
        access_log=verbose,
        server_header=False,
        # The client is whoever connected: uvicorn's default trusts X-Forwarded-For from 127.0.0.1, so any local
        # client (a web page through DNS rebinding too) could claim a new address per guess and pass the login
        # throttle. Behind a proxy, serve create_app with uvicorn --proxy-headers (docs/design.md).
        proxy_headers=False,
        limit_concurrency=connections,
        timeout_graceful_shutdown=5,
        lifespan="off",
    )
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn raises the SIGINT it caught again once stopped
        uvicorn.Server(config).run(sockets=[sock])
