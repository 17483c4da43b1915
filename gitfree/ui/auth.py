"""Who may read the web view, and the headers every response carries.

Three ways to serve (docs/design.md, "The web view"):

* a token: every page asks for it, as ``Authorization: Bearer TOKEN`` or as the cookie the login form sets
  (an HMAC of the token, never the token itself), compared in constant time;
* no token (``auth`` on, the default of ``gitfree ui`` on 127.0.0.1): only requests addressed to this machine's
  loopback names (``Host: 127.0.0.1``, ``localhost``, ``[::1]``) are answered, so a web page elsewhere cannot
  read the view through DNS rebinding;
* ``auth=False`` (``--no-auth``): anyone who reaches the server.

:class:`Guard` is the outermost layer of the app: every response, an error or a refusal too, gets the
Content-Security-Policy (no inline script, nothing from elsewhere), ``nosniff``, no framing and no referrer.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlencode

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "COOKIE",
    "CSP",
    "RAW_CSP",
    "Access",
    "Guard",
    "Throttle",
    "client_of",
    "host_of",
    "is_loopback",
    "route_path",
]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
RAW_CSP = f"{CSP}; sandbox"
"""A stored file served as it is: in a sandbox too, whatever a browser makes of it."""
COOKIE = "gitfree_ui"
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}

Refusal = Callable[[Scope, int, str], Response]
"""Makes the page of a refused request: (scope, status, the one-line reason)."""


def host_of(headers: Headers) -> str:
    """The host name a request was addressed to, without its port (``[::1]:8765`` -> ``::1``); a ``Host`` that
    is not ``NAME`` or ``NAME:PORT`` is returned whole (and so is no loopback name)."""
    host = headers.get("host", "").strip().lower()
    if host.startswith("[") and "]" in host:
        inside, _, port = host[1:].partition("]")
        return inside if port == "" or (port.startswith(":") and port[1:].isdigit()) else host
    name, colon, port = host.rpartition(":")
    return name if colon and port.isdigit() and ":" not in name else host


def is_loopback(host: str) -> bool:
    """Whether only this machine can connect to ``host`` (``127.0.0.1``, ``localhost``, ``::1``, ``127.0.0.2``...)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def client_of(scope: Scope) -> str:
    """Who sent a request, for the login throttle: the client's address (behind a proxy, what the ASGI server
    makes of ``X-Forwarded-For`` with ``--proxy-headers``, else the proxy's own address)."""
    client = scope.get("client")
    return str(client[0]) if client else "?"


class Throttle:
    """Wrong tokens per client: after ``free`` wrong tokens in a row, each further try must wait 1 s, then
    2 s, 4 s... (at most ``longest``) after the last wrong one, and is refused unchecked (429, ``Retry-After``)
    until then, so guessing costs time whatever the token. A right token clears its client; a client with no
    wrong token for ``forget`` seconds is forgotten; at most ``clients`` are remembered (the oldest go)."""

    def __init__(
        self,
        free: int = 5,
        longest: float = 60.0,
        forget: float = 900.0,
        clients: int = 4096,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.free, self.longest, self.forget, self.clients = free, longest, forget, clients
        self.clock = clock or time.monotonic
        self.failures: OrderedDict[str, tuple[int, float]] = OrderedDict()  # client -> (wrong tries, last one)
        self.lock = threading.Lock()

    def _wait(self, count: int) -> float:
        return 0.0 if count < self.free else min(self.longest, 2.0 ** (count - self.free))

    def retry_after(self, client: str) -> int:
        """Seconds ``client`` must wait before its token is checked again (0: check it now)."""
        with self.lock:
            count, last = self.failures.get(client, (0, 0.0))
            left = last + self._wait(count) - self.clock() if count else 0.0
            return math.ceil(left) if left > 0 else 0

    def failed(self, client: str) -> None:
        with self.lock:
            now = self.clock()
            count, last = self.failures.pop(client, (0, now))
            self.failures[client] = (1 if now - last > self.forget else count + 1, now)
            while len(self.failures) > self.clients:
                self.failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        with self.lock:
            self.failures.pop(client, None)


class Access:
    """The token a request must show, or ``None``; ``auth=False`` lets every request in."""

    def __init__(self, token: str | None, auth: bool, throttle: Throttle | None = None) -> None:
        if token is not None and (not isinstance(token, str) or not token.strip()):
            raise ValueError("a token is a non-empty string")
        if token is not None and not auth:
            raise ValueError("a token was given with auth=False: give one or the other")
        self.token = token
        self.auth = auth
        self.throttle = throttle or Throttle()

    def throttled(self, scope: Scope) -> Response | None:
        """The 429 of a client that must wait before its token is checked again, or ``None``."""
        wait = self.throttle.retry_after(client_of(scope))
        if not wait:
            return None
        message = f"too many wrong tokens from {client_of(scope)}: wait {wait} s, then try again"
        return PlainTextResponse(message, status_code=429, headers={"retry-after": str(wait)})

    def bearer(self, headers: Headers) -> str | None:
        """The token of an ``Authorization: Bearer TOKEN`` header, or ``None``."""
        scheme, _, given = headers.get("authorization", "").partition(" ")
        return given.strip() if scheme.lower() == "bearer" and given.strip() else None

    @property
    def needs_token(self) -> bool:
        return self.token is not None

    def cookie(self) -> str:
        """The login cookie's value: an HMAC of the token (the token itself never goes into a cookie)."""
        assert self.token is not None  # noqa: S101 - only asked when there is a token
        return hmac.new(self.token.encode(), b"gitfree ui session 1", hashlib.sha256).hexdigest()

    def token_matches(self, given: str) -> bool:
        """``given`` is the token (constant time, whatever the lengths)."""
        if self.token is None:
            return False
        return hmac.compare_digest(given.encode(), self.token.encode())

    def admits(self, headers: Headers) -> bool:
        """Whether the request shows the token (bearer header or login cookie); true when none is needed."""
        if self.token is None:
            return True
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and given and self.token_matches(given.strip()):
            return True
        try:
            jar = SimpleCookie(headers.get("cookie", ""))
        except CookieError:
            return False
        morsel = jar.get(COOKIE)
        return morsel is not None and hmac.compare_digest(morsel.value.encode(), self.cookie().encode())

    def host_allowed(self, headers: Headers) -> bool:
        """Without a token (and with auth), only requests addressed to a loopback name are answered."""
        return not self.auth or self.token is not None or is_loopback(host_of(headers))


class Guard:
    """The outermost ASGI layer: the security headers on every response, then the host and token checks."""

    def __init__(self, app: ASGIApp, access: Access, refuse: Refusal) -> None:
        self.app = app
        self.access = access
        self.refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan (the app has no websocket route: the router refuses those)
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        send = _with_headers(send, raw=RAW_VIEW in path)
        headers = Headers(scope=scope)
        if path == "/healthz" or path.startswith("/static/"):
            await self.app(scope, receive, send)
            return
        if not self.access.host_allowed(headers):
            reason = (
                f"this view answers only requests to this machine (127.0.0.1 or localhost), not to "
                f"{host_of(headers) or 'no host'!r}; start it with a token (--token) to serve other hosts"
            )
            await self.refuse(scope, 403, reason)(scope, receive, send)
            return
        bearer = path != "/login" and self.access.bearer(headers) is not None
        refused = self.access.throttled(scope) if bearer else None  # a bearer token is a login: throttled
        if refused is not None:
            await refused(scope, receive, send)
            return
        if path == "/login" or self.access.admits(headers):
            await self.app(scope, receive, send)
            return
        if bearer:
            self.access.throttle.failed(client_of(scope))
        if scope.get("method") == "GET" and "text/html" in headers.get("accept", ""):  # a browser: the login form
            query = scope.get("query_string", b"").decode("latin-1")
            wanted = f"{scope.get('root_path', '')}{path}" + (f"?{query}" if query else "")
            login = f"{scope.get('root_path', '')}/login?{urlencode({'next': wanted})}"
            await RedirectResponse(login, status_code=303)(scope, receive, send)
            return
        await self.refuse(scope, 401, "this view needs its token: log in, or send Authorization: Bearer TOKEN")(
            scope, receive, send
        )


RAW_VIEW = "/-/raw/"


def route_path(scope: Scope) -> str:
    """The request's path inside the app: without the prefix it is mounted at (``root_path``)."""
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root) :] or "/"
    return path


def _with_headers(send: Send, *, raw: bool) -> Callable[[Message], Awaitable[None]]:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for name, value in HEADERS.items():
                headers[name] = value
            if raw:
                headers["content-security-policy"] = RAW_CSP
            if "cache-control" not in headers:
                headers["cache-control"] = "no-store"
        await send(message)

    return sending
