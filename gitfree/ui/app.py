"""The web view as a Starlette app: its routes, the token, the security headers and the error pages
(docs/design.md, "The web view").

Every route reads; none writes to the store (only ``GET`` and ``HEAD``, and ``POST`` on ``/login``, which sets a
cookie). Everything from the store reaches a page through Jinja2 with autoescaping, so a name, a message or a
metadata value is text, never markup, and the only links are the app's own URLs and the orchestrator UIs it was
given. A store error is a page with the one line the CLI prints for it, and the status it means (not found 404,
bad input 400, the store unreachable or broken 502 or 503); nothing else of it, no traceback, reaches the page.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import mimetypes
import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import escape
from starlette.applications import Starlette
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Scope

from gitfree.versioning import (
    ConfigError,
    ConflictError,
    GitfreeError,
    InputError,
    IntegrityError,
    NotFoundError,
    Store,
    UnsafePathError,
    Version,
    format_count,
    format_size,
    who,
)

from . import pages
from .auth import COOKIE, Access, Guard, client_of
from .listing import Listings
from .urls import Target, Urls, checked_path, not_found, parse_dataset, parse_version

__all__ = ["create_app"]

logger = logging.getLogger("gitfree.ui")

HERE = Path(__file__).parent
STATIC = {name: (HERE / "static" / name).read_bytes() for name in ("gitfree.css", "gitfree.js", "favicon.svg")}
"""The CSS and JS the pages load, read once: ``/static/NAME`` serves only these, from memory."""
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
INLINE_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "text/plain", "text/csv", "application/json"}
)
"""Types a stored file is served as for the browser to show; anything else (HTML, SVG, XML, JS, PDF...) is a
download (``application/octet-stream``, ``attachment``), so nothing stored ever runs in the view's origin."""
LOGIN_BODY_MAX = 8192
MESSAGE_MAX = 1000
"""The longest line an error page shows (the rest is cut, marked with an ellipsis)."""
CHUNK = 1 << 20
SECRET_SETTINGS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "GITFREE_SECRET_ACCESS_KEY", "GITFREE_SESSION_TOKEN")
STATUS = (
    (NotFoundError, 404),
    (InputError, 400),
    (UnsafePathError, 502),
    (IntegrityError, 502),
    (ConfigError, 502),
    (ConflictError, 503),
)
"""The status of a page that met a store error (other errors of the store: 502)."""


# ---------------------------------------------------------------------------- the app and its parts


@dataclass
class Site:
    """What every request of one app shares."""

    store: Store
    access: Access
    links: pages.RunLinks
    listings: Listings
    env: Environment
    secrets: tuple[str, ...]

    def urls(self, scope: Scope) -> Urls:
        return Urls(str(scope.get("root_path", "")))

    def scrub(self, text: str) -> str:
        """``text`` with any secret of the store (its secret key, session token) or the token replaced: nothing
        of the app puts one in a page, and this keeps it so if a message from a library ever did."""
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "[hidden]")
        return text

    def render(self, scope: Scope, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        urls = self.urls(scope)
        html = self.env.get_template(template).render(
            u=urls, store_url=pages.public_url(self.store.url), links=self.links, **context
        )
        return HTMLResponse(self.scrub(html), status_code=status)

    def error(self, scope: Scope, status: int, message: str) -> HTMLResponse:
        """The error page: the status and one line saying what happened and what to do."""
        titles = {400: "Bad request", 401: "Log in", 403: "Forbidden", 404: "Not found", 405: "Not allowed"}
        line = " ".join(self.scrub(message).split())
        if len(line) > MESSAGE_MAX:  # a message that quotes a 100 KB URL is not echoed whole
            line = line[:MESSAGE_MAX] + "…"
        title = titles.get(status, "The store cannot be read" if status in (502, 503) else "Error")
        response = self.render(scope, "error.html", status, title=title, message=line, code=status, crumbs=[])
        if status == 401:
            response.headers["www-authenticate"] = 'Bearer realm="gitfree"'
        return response


class _App(Starlette):
    """A Starlette app whose outermost layer is the :class:`~.auth.Guard` (headers on every response, a 500 too)."""

    guard: tuple[Access, Any]

    def build_middleware_stack(self) -> ASGIApp:
        access, refuse = self.guard
        return Guard(super().build_middleware_stack(), access, refuse)


def _secrets(store: Store, token: str | None) -> tuple[str, ...]:
    settings = store.settings
    found = [token]
    found += [s.get_secret_value() for s in (settings.secret_access_key, settings.session_token) if s is not None]
    found += [os.environ.get(name) for name in SECRET_SETTINGS]
    unique = {s for s in found if s and len(s) >= 4}
    return tuple(sorted(unique | {str(escape(s)) for s in unique}, key=len, reverse=True))


def create_app(
    store: Store,
    *,
    token: str | None = None,
    auth: bool = True,
    prefect_ui_url: str | None = None,
    airflow_ui_url: str | None = None,
) -> Starlette:
    """The read-only web view of ``store``, as an ASGI (Starlette) app: what ``gitfree ui`` serves.

    Args:
        store: the store to show; the app only reads it.
        token: if given, every page asks for it: ``Authorization: Bearer TOKEN``, or the login form at
            ``/login`` (which sets an ``HttpOnly``, ``SameSite=Strict`` cookie holding an HMAC of the token).
        auth: without a token, the app answers only requests addressed to ``127.0.0.1``, ``localhost`` or
            ``[::1]`` (so a web page elsewhere cannot reach it through DNS rebinding). ``auth=False`` serves
            anyone who reaches it, with no token: for a proxy that authenticates its users itself.
        prefect_ui_url: the Prefect UI (``http://prefect:4200``): an author's flow run becomes a link there.
        airflow_ui_url: the Airflow UI (``http://airflow:8080``): an author's DAG run becomes a link there.

    Raises:
        InputError: a UI URL that is not ``http(s)://HOST[/PATH]`` (or holds a user or password).
        ValueError: an empty token, or a token with ``auth=False``.

    Example:
        Behind a proxy at ``https://tools.example.com/data/``, in ``webview.py``::

            from gitfree import Store
            from gitfree.ui import create_app

            app = create_app(Store("s3://ml-data/versions"), token=os.environ["GITFREE_UI_TOKEN"])

        then ``uvicorn webview:app --root-path /data --proxy-headers``, or mount it in another Starlette app
        (``Mount("/data", app=app)``): every link and the login cookie follow the mount path.
    """
    access = Access(token, auth)
    links = pages.RunLinks(
        pages.checked_ui_url(prefect_ui_url, "the Prefect UI URL (GITFREE_PREFECT_UI_URL)"),
        pages.checked_ui_url(airflow_ui_url, "the Airflow UI URL (GITFREE_AIRFLOW_UI_URL)"),
    )
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=_when, size=_size, metric=_metric, who=who, json=_json, count=format_count)
    site = Site(store, access, links, Listings(), env, _secrets(store, token))
    app = _App(
        routes=_routes(),
        exception_handlers={
            HTTPException: _http_error,
            GitfreeError: _store_error,
            Exception: _unexpected,
        },
    )
    app.state.site = site
    app.guard = (access, lambda scope, status, message: site.error(scope, status, message))
    return app


class _AnyPath(PathConvertor):
    """Starlette's ``path`` that also matches a line break: a stored file may be named ``a\nb.csv``."""

    regex = "(?s:.*)"


register_url_convertor("anypath", _AnyPath())


def _routes() -> list[Route]:
    get = ["GET"]
    return [
        Route("/", _guarded(_home), methods=get),
        Route("/d/{rest:anypath}", _guarded(_dataset), methods=get),
        Route("/v/{rest:anypath}", _guarded(_version), methods=get),
        Route("/login", _guarded(_login), methods=["GET", "POST"]),
        Route("/static/{name}", _static, methods=get),
        Route("/healthz", _healthz, methods=get),
    ]


Endpoint = Callable[[Request], Response]
AsyncEndpoint = Callable[[Request], Awaitable[Response]]


def _guarded(endpoint: Endpoint | AsyncEndpoint) -> Endpoint | AsyncEndpoint:
    """``endpoint``, answering an unexpected exception with the error page itself: the server never sees it,
    so the connection stays up (a store error or a 404 goes on to its handler)."""
    if inspect.iscoroutinefunction(endpoint):

        async def run_async(request: Request) -> Response:
            try:
                return await endpoint(request)  # type: ignore[no-any-return]
            except (HTTPException, GitfreeError):
                raise
            except Exception as exc:
                return _failed(request, exc)

        return functools.wraps(endpoint)(run_async)

    def run(request: Request) -> Response:
        try:
            return endpoint(request)  # type: ignore[return-value]
        except (HTTPException, GitfreeError):
            raise
        except Exception as exc:
            return _failed(request, exc)

    return functools.wraps(endpoint)(run)


def _site(request: Request) -> Site:
    site: Site = request.app.state.site
    return site


# ---------------------------------------------------------------------------- template filters


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _size(size: int | None) -> str:
    return "?" if size is None else format_size(size)


def _metric(value: int | float | None) -> str:
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else repr(value)


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


# ---------------------------------------------------------------------------- errors


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for HTTPException
    messages = {
        404: "there is nothing at this address: go back to the datasets",
        405: f"{request.method} is not allowed here: this view only reads (GET)",
    }
    detail = exc.detail if exc.detail and exc.detail not in ("Not Found", "Method Not Allowed") else None
    response = _site(request).error(request.scope, exc.status_code, detail or messages.get(exc.status_code, "error"))
    if exc.headers:
        response.headers.update({k: v for k, v in exc.headers.items() if k.lower() == "allow"})
    return response


async def _store_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GitfreeError)  # noqa: S101 - registered for GitfreeError
    status = next((code for kind, code in STATUS if isinstance(exc, kind)), 502)
    return _site(request).error(request.scope, status, pages.safe_message(exc))


async def _unexpected(request: Request, exc: Exception) -> Response:
    return _failed(request, exc)


def _failed(request: Request, exc: Exception) -> Response:
    """The page of a failure that is no store error (a bug): its kind only; the server's log has the traceback."""
    logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    message = f"unexpected {type(exc).__name__} while reading the store; the server's log says more"
    return _site(request).error(request.scope, 500, message)


# ---------------------------------------------------------------------------- query parameters


def _page(request: Request, name: str = "page") -> int:
    raw = request.query_params.get(name, "1")
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= 10**9:
        raise InputError(f"?{name}= is a page number from 1, not {raw[:40]!r}")
    return int(raw)


def _n(page: int) -> int | None:
    """A page number in a URL: none for the first page."""
    return page if page > 1 else None


def _crumbs(urls: Urls, dataset: str | None = None, *more: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    crumbs: list[tuple[str, str | None]] = [("datasets", urls.home())]
    if dataset is not None:
        crumbs.append((dataset, urls.dataset(dataset)))
    return crumbs + list(more)


# ---------------------------------------------------------------------------- pages


def _home(request: Request) -> Response:
    site = _site(request)
    query = request.query_params.get("q", "")[:200]
    context = pages.datasets_page(site.store, query, _page(request))
    title = f"Datasets matching {query!r}" if query.strip() else "Datasets"
    urls = site.urls(request.scope)
    return site.render(
        request.scope,
        "datasets.html",
        title=title,
        crumbs=[("datasets", None)],
        page_url=lambda n: urls.home(q=query.strip() or None, page=_n(n)),
        **context,
    )


def _dataset(request: Request) -> Response:
    site = _site(request)
    dataset, view = parse_dataset(request.path_params["rest"])
    urls = site.urls(request.scope)
    if view is None:
        chosen = request.query_params.get("metrics")
        context = pages.history_page(site.store, dataset, _page(request), chosen)
        crumbs = [("datasets", urls.home()), (dataset, None)]
        return site.render(
            request.scope,
            "history.html",
            title=f"{dataset}: history",
            crumbs=crumbs,
            page_url=lambda n: urls.dataset(dataset, page=_n(n), metrics=chosen),
            **context,
        )
    if view == "diff":
        return _diff(request, site, dataset)
    if view == "audit":
        context = pages.audit_page(site.store, dataset, _page(request))
        crumbs = _crumbs(urls, dataset, ("audit", None))
        page_url = lambda n: urls.dataset(dataset, "audit", page=_n(n))  # noqa: E731
        return site.render(
            request.scope, "audit.html", title=f"{dataset}: audit", crumbs=crumbs, page_url=page_url, **context
        )
    return _metrics(request, site, dataset)


def _diff(request: Request, site: Site, dataset: str) -> Response:
    old, new = request.query_params.get("old", ""), request.query_params.get("new", "")
    if not old or not new:
        raise InputError("a diff needs two versions: ?old=N&new=M (choose them in the history)")
    context = pages.diff_page(site.store, dataset, old, new, _page(request))
    a, b = context["old"], context["new"]
    title = f"{dataset}: diff @{a.number}..@{b.number}"
    urls = site.urls(request.scope)
    crumbs = _crumbs(urls, dataset, (f"diff @{a.number}..@{b.number}", None))
    page_url = lambda n: urls.dataset(dataset, "diff", old=old, new=new, page=_n(n))  # noqa: E731
    return site.render(request.scope, "diff.html", title=title, crumbs=crumbs, page_url=page_url, **context)


def _metrics(request: Request, site: Site, dataset: str) -> Response:
    from .svg import metrics_chart  # ui-render's part of the view

    urls = site.urls(request.scope)
    points = sorted(site.store.metrics(dataset), key=lambda p: p.number)
    names = sorted({name for p in points for name in p.metrics})
    chart = metrics_chart(points, names, lambda n: urls.version(dataset, n))
    table = pages.Pages.checked(_page(request), 100, len(points))
    newest = points[::-1][table.start : table.stop]
    crumbs = _crumbs(urls, dataset, ("metrics", None))
    return site.render(
        request.scope,
        "metrics.html",
        title=f"{dataset}: metrics",
        crumbs=crumbs,
        dataset=dataset,
        chart=chart,
        names=names,
        points=newest,
        pages=table,
        page_url=lambda n: urls.dataset(dataset, "metrics", page=_n(n)),
    )


def _version(request: Request) -> Response:
    site = _site(request)
    target = parse_version(request.path_params["rest"])
    urls = site.urls(request.scope)
    if target.number is None:  # a tag or latest: to the stable URL of the number it names now
        version = site.store.show(target.ref)
        moved = urls.version(version.dataset, version.number, target.view, target.path)
        query = request.url.query
        return RedirectResponse(f"{moved}?{query}" if query else moved, status_code=302)
    version = site.store.show(target.ref)
    if target.view is None:
        return _version_page(request, site, version)
    if target.view == "dvc":
        return _dvc(site, version)
    if target.view == "raw":
        return _raw(request, site, version, target)
    if target.view == "files":
        return _file(request, site, version, target)
    return _lineage(request, site, version)


def _version_crumbs(urls: Urls, version: Version, *more: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    return _crumbs(urls, version.dataset, (f"@{version.number}", urls.version(version.dataset, version.number)), *more)


def _version_page(request: Request, site: Site, version: Version) -> Response:
    urls = site.urls(request.scope)
    folder = checked_path(request.query_params.get("path", "").strip("/"), str(request.url.path))
    index = site.listings.index(site.store, version)
    if folder in index.files:  # a file: its own page
        return RedirectResponse(urls.version(version.dataset, version.number, "files", folder), status_code=302)
    context = pages.version_page(site.store, version, folder, _page(request), site.listings, urls)
    crumbs = _version_crumbs(urls, version, *context["folders"])
    crumbs[-1] = (crumbs[-1][0], None)  # where you are is not a link
    title = f"{version.ref}: {folder}/" if folder else version.ref
    page_url = lambda n: urls.version(version.dataset, version.number, path=folder or None, page=_n(n))  # noqa: E731
    return site.render(request.scope, "version.html", title=title, crumbs=crumbs, page_url=page_url, **context)


def _dvc(site: Site, version: Version) -> Response:
    name = f"{version.pointer.out.path}.dvc"
    return PlainTextResponse(
        site.store.dvc_file(version),
        media_type="text/plain",
        headers={"content-disposition": _attachment(name)},
    )


def _lineage(request: Request, site: Site, version: Version) -> Response:
    from .svg import lineage_graph  # ui-render's part of the view

    urls = site.urls(request.scope)
    raw = request.query_params.get("depth", "3")
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= 50:
        raise InputError(f"?depth= is a number of hops from 1 to 50, not {raw[:40]!r}")
    lineage = site.store.lineage(version, "both", depth=int(raw))
    nodes = [pages.linked_node(node, lineage, urls) for node in lineage.nodes]
    graph = lineage_graph(lineage, lambda node: pages.linked_node(node, lineage, urls).href)
    crumbs = _version_crumbs(urls, version, ("lineage", None))
    return site.render(
        request.scope,
        "lineage.html",
        title=f"{version.ref}: lineage",
        crumbs=crumbs,
        version=version,
        lineage=lineage,
        nodes=nodes,
        graph=graph,
        depth=int(raw),
    )


def _file_crumbs(urls: Urls, version: Version, path: str) -> list[tuple[str, str | None]]:
    parts = path.split("/")
    folders = [
        (part, urls.version(version.dataset, version.number, path="/".join(parts[: i + 1])))
        for i, part in enumerate(parts[:-1])
    ]
    return _version_crumbs(urls, version, *folders, (parts[-1], None))


def _entry_of(site: Site, version: Version, target: Target) -> Any:
    index = site.listings.index(site.store, version)
    entry = index.files.get(target.path)
    if entry is None:
        what = "a folder, not a file" if index.is_folder(target.path) else "not one of its files"
        raise not_found(f"{target.path!r} is {what} of {version.ref}")
    return entry


def _file(request: Request, site: Site, version: Version, target: Target) -> Response:
    from .preview import preview  # ui-render's part of the view

    entry = _entry_of(site, version, target)
    urls = site.urls(request.scope)
    shown = preview(site.store, version, target.path)
    size = site.listings.sizes(site.store, [entry]).get(entry.md5)
    return site.render(
        request.scope,
        "file.html",
        title=f"{version.ref}: {target.path}",
        crumbs=_file_crumbs(urls, version, target.path),
        version=version,
        entry=entry,
        size=size,
        preview=shown,
        raw=urls.version(version.dataset, version.number, "raw", target.path),
    )


def _raw_type(path: str) -> tuple[str, bool]:
    """The Content-Type a stored file is served with, and whether the browser may show it (else a download)."""
    guessed, encoding = mimetypes.guess_type(path, strict=False)
    if path.lower().endswith(".webp"):  # not in every Python's table
        guessed, encoding = "image/webp", None
    if guessed in INLINE_TYPES and encoding is None:
        return (f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed), True
    return "application/octet-stream", False


def _attachment(name: str) -> str:
    fallback = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in name) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _raw(request: Request, site: Site, version: Version, target: Target) -> Response:
    entry = _entry_of(site, version, target)
    media, inline = _raw_type(entry.path)
    headers = {
        "content-disposition": "inline" if inline else _attachment(entry.path.rpartition("/")[2]),
        "etag": f'"{entry.md5}"',
    }
    if request.method == "HEAD":  # the size from the worker cache or one HEAD: the object is not fetched
        return Response(
            None,
            media_type=media,
            headers={"content-length": str(site.store.file(version, entry.path).size), **headers},
        )
    handle = site.store.open(version, entry.path)  # the worker cache's copy, proven intact (IntegrityError if not)
    headers["content-length"] = str(os.fstat(handle.fileno()).st_size)
    return StreamingResponse(_chunks(handle), media_type=media, headers=headers)


def _chunks(handle: IO[bytes]) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK):
            yield chunk


# ---------------------------------------------------------------------------- login, static, health


async def _login(request: Request) -> Response:
    site = _site(request)
    urls = site.urls(request.scope)
    if not site.access.needs_token:
        return RedirectResponse(urls.home(), status_code=303)
    if request.method == "GET":
        wanted = _local_next(urls, request.query_params.get("next"))
        return site.render(request.scope, "login.html", title="Log in", crumbs=[], next=wanted, wrong=False)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > LOGIN_BODY_MAX:
            return site.error(request.scope, 413, "the login form sends only the token: this request is too large")
    form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=4)
    given = (form.get("token") or [""])[0]
    wanted = _local_next(urls, (form.get("next") or [""])[0])
    throttled = site.access.throttled(request.scope)  # too many wrong tokens: this one is not even checked
    if throttled is not None:
        return throttled
    if not site.access.token_matches(given):
        site.access.throttle.failed(client_of(request.scope))
        return site.render(request.scope, "login.html", 401, title="Log in", crumbs=[], next=wanted, wrong=True)
    site.access.throttle.succeeded(client_of(request.scope))
    response = RedirectResponse(wanted, status_code=303)
    response.set_cookie(
        COOKIE,
        site.access.cookie(),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=f"{urls.root}/",
    )
    return response


def _local_next(urls: Urls, wanted: str | None) -> str:
    """Where to go after logging in: a path of this app only (never ``//elsewhere`` or a full URL)."""
    home = urls.home()
    if not wanted or not wanted.startswith(f"{urls.root}/") or wanted.startswith("//") or "\\" in wanted:
        return home
    if any(ord(c) < 32 for c in wanted):
        return home
    return wanted


async def _static(request: Request) -> Response:  # async: from memory, never behind pages waiting on the store
    name = request.path_params["name"]
    body = STATIC.get(name)
    if body is None:
        raise not_found(f"there is no static file {name!r}")
    media = STATIC_TYPES[Path(name).suffix]
    return Response(body, media_type=media, headers={"cache-control": "public, max-age=3600"})


async def _healthz(request: Request) -> Response:  # async: answered while every worker thread waits on the store
    return PlainTextResponse("ok")
