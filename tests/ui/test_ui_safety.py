"""The web view is safe by default, over a real server: it never writes to the store, whatever the route and
method; paths cannot leave a version; the token is required where it must be and a wrong one fails; without a
token only requests to this machine are answered; every response carries the Content-Security-Policy and
``nosniff``; everything from the store is escaped; no credential reaches a page or a header; a store error is
one readable line, never a traceback."""

from __future__ import annotations

import html
import http.client
import re
from collections import deque
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from ui.conftest import World
from ui.ui_helpers import (
    HOSTILE_FILE,
    HOSTILE_LINK,
    HOSTILE_MESSAGE,
    HOSTILE_METRIC,
    keys_and_etags,
    links,
    raw_request,
    seen,
    serve,
)

from gitfree import GitfreeError, InputError, NotFoundError, Store
from gitfree.testing import Faults, SeaweedFS
from gitfree.ui import create_app
from gitfree.ui.auth import CSP, RAW_CSP
from gitfree.versioning import layout

ROUTES = [
    "/",
    "/?q=raw&page=1",
    "/d/raw/sales",
    "/d/raw/sales?page=2",
    "/d/raw/sales/-/diff?old=1&new=3",
    "/d/raw/sales/-/audit",
    "/d/raw/sales/-/metrics",
    "/v/raw/sales@3",
    "/v/raw/sales@prod",
    "/v/raw/sales@3?path=2026",
    "/v/raw/sales@3/-/dvc",
    "/v/raw/sales@3/-/lineage",
    "/v/raw/sales@3/-/files/2026/01.csv",
    "/v/raw/sales@3/-/raw/2026/01.csv",
    "/login",
    "/static/gitfree.css",
    "/healthz",
    "/nothing/here",
    "/d/raw/nope",
]
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]


def test_no_route_and_no_method_writes_to_the_store(world: World) -> None:
    """Every route x GET/HEAD/POST/PUT/DELETE/PATCH, with and without a token: the store's keys and their ETags,
    sizes and times are the same after as before; every method but GET and HEAD (POST on /login) is a 405."""
    before = keys_and_etags(world.store)
    assert len(before) > 30
    for token in (None, "s3cret-token"):
        with serve(create_app(world.store, token=token)) as site, site.client() as client:
            auth = {"authorization": f"Bearer {token}"} if token else {}
            for route in ROUTES:
                for method in METHODS if token is None else METHODS[2:]:  # the reads once: they do not differ
                    response = client.request(method, route, headers=auth, content=b"token=x&delete=1")
                    if route == "/nothing/here":
                        assert response.status_code == 404, (method, route)
                    elif method not in ("GET", "HEAD") and not (method == "POST" and route == "/login"):
                        assert response.status_code == 405, (method, route, response.status_code)
                        allowed = {"GET", "HEAD", "POST"} if route == "/login" else {"GET", "HEAD"}
                        assert set(response.headers["allow"].split(", ")) == allowed, (method, route)
    assert keys_and_etags(world.store) == before


@pytest.mark.parametrize(
    "target",
    [
        "/v/raw/sales@3/-/raw/../../../../etc/passwd",
        "/v/raw/sales@3/-/raw/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/v/raw/sales@3/-/raw/%2e%2e/%2e%2e/etc/passwd",
        "/v/raw/sales@3/-/files/..%2f..%2fetc%2fpasswd",
        "/v/raw/sales@3/-/raw//etc/passwd",
        "/v/raw/sales@3/-/raw/%2fetc%2fpasswd",
        "/v/raw/sales@3/-/raw/2026/./01.csv",
        "/v/raw/sales@3/-/raw/2026%5c01.csv",
        "/v/raw/sales@3/-/raw/2026/01.csv%00.png",
        "/v/raw/sales@3/-/raw/nope.csv",
        "/v/raw/sales@3/-/raw/2026",
        "/v/raw/sales@3?path=..%2f..",
        "/static/..%2fapp.py",
        "/static/../app.py",
        "/static/%2e%2e%2fapp.py",
        "/d/..%2f..%2fetc",
        "/v/..%2f..%2fetc@1",
    ],
)
def test_paths_outside_a_version_are_not_found(file_world: World, target: str) -> None:
    """Refused by the path check before any lookup (its message says why), else by the version's own listing."""
    with serve(create_app(file_world.store)) as site:
        response = raw_request(site.url, target)
    assert response.status_code == 404, (target, response.status_code)
    assert b"root:" not in response.body and b"import" not in response.body
    assert response.headers["content-security-policy"] in (CSP, RAW_CSP)
    unsafe = re.search(r"/-/(raw|files)/.*(\.\.|%2e%2e|//|%2f|/\./|%5c|%00)", target, re.I) or "path=.." in target
    if unsafe:
        assert b"a path in a version has no &#39;..&#39;, &#39;.&#39; or empty segments" in response.body, target


def test_the_token_is_asked_for_and_checked(file_world: World) -> None:
    token = "tok-" + "7" * 40
    wrong = "tok-" + "8" * 40  # the same length
    with serve(create_app(file_world.store, token=token)) as site, site.client() as client:
        assert client.get("/d/raw/sales").status_code == 401
        assert "this view needs its token" in seen(client.get("/d/raw/sales").text)
        browser = client.get("/d/raw/sales?page=1", headers={"accept": "text/html,application/xhtml+xml"})
        assert browser.status_code == 303 and browser.headers["location"] == "/login?next=%2Fd%2Fraw%2Fsales%3Fpage%3D1"
        form = client.get(browser.headers["location"])
        assert form.status_code == 200 and 'value="/d/raw/sales?page=1"' in form.text
        assert client.get("/d/raw/sales", headers={"authorization": f"Bearer {wrong}"}).status_code == 401
        assert client.get("/d/raw/sales", headers={"authorization": f"Bearer {token}"}).status_code == 200
        assert client.get("/healthz").text == "ok" and client.get("/static/gitfree.js").status_code == 200
        refused = client.post("/login", data={"token": wrong, "next": "/d/raw/sales"})
        assert refused.status_code == 401 and "that is not the token" in seen(refused.text)
        assert "set-cookie" not in refused.headers
        logged = client.post("/login", data={"token": token, "next": "/d/raw/sales"})
        assert logged.status_code == 303 and logged.headers["location"] == "/d/raw/sales"
        cookie = logged.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie and token not in cookie
        assert client.get("/d/raw/sales").status_code == 200  # the cookie
        client.cookies.clear()
        client.cookies.set("gitfree_ui", "0" * 64)
        assert client.get("/d/raw/sales").status_code == 401
        away = client.post("/login", data={"token": token, "next": "//evil.example/x"})
        assert away.headers["location"] == "/"  # never to another site


def test_without_a_token_only_requests_to_this_machine_are_answered(file_world: World) -> None:
    with serve(create_app(file_world.store)) as site:
        port = site.url.rpartition(":")[2]
        for host in ("evil.example", "evil.example:80", "192.168.1.9", "127.0.0.1.evil.example", "127.0.0.1:80@evil"):
            refused = raw_request(site.url, "/d/raw/sales", headers={"Host": host})
            assert refused.status_code == 403, host
            assert b"answers only requests to this machine" in refused.body
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "127.0.0.2"):
            assert raw_request(site.url, "/d/raw/sales", headers={"Host": host}).status_code == 200, host
    with serve(create_app(file_world.store, auth=False)) as site:
        assert raw_request(site.url, "/d/raw/sales", headers={"Host": "evil.example"}).status_code == 200


def test_every_response_has_the_security_headers(file_world: World) -> None:
    app = create_app(file_world.store, token="t" * 20)
    bearer = {"authorization": "Bearer " + "t" * 20}
    cases = [
        ("GET", "/d/raw/sales", bearer, 200),
        ("GET", "/v/raw/sales@prod", bearer, 302),
        ("GET", "/v/raw/sales@3/-/raw/2026/01.csv", bearer, 200),
        ("GET", "/static/gitfree.css", {}, 200),
        ("GET", "/d/raw/sales", {}, 401),
        ("GET", "/d/nope", bearer, 404),
        ("PUT", "/d/raw/sales", bearer, 405),
        ("GET", "/?page=x", bearer, 400),
    ]
    with serve(app) as site, site.client() as client:
        for method, url, headers, status in cases:
            response = client.request(method, url, headers=headers)
            assert response.status_code == status, (url, response.status_code)
            expected = RAW_CSP if "/-/raw/" in url else CSP
            assert response.headers["content-security-policy"] == expected, url
            assert response.headers["x-content-type-options"] == "nosniff", url
            assert response.headers["x-frame-options"] == "DENY", url
            assert response.headers["referrer-policy"] == "no-referrer", url
            cache = "public, max-age=3600" if url.startswith("/static/") else "no-store"
            assert response.headers["cache-control"] == cache, url
    assert "script-src 'self'" in CSP and "'unsafe-inline'" not in CSP


def test_an_unexpected_failure_is_a_page_with_the_headers_and_no_traceback(file_world: World) -> None:
    """A fault no real store produces (a bug's exception), through gitfree.faults: a 500 page of one line."""
    reader = file_world.reader("faulty")
    with serve(create_app(reader)) as site, site.client() as client, Faults(reader) as faults:
        faults.fail("list", layout.DATASETS, error=RuntimeError("boom at /secret/place"), times=2)
        response = client.get("/")
        # The page answered the failure: the server never saw an exception, so it keeps the connection.
        host, port = site.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.request("GET", "/")
        assert connection.getresponse().read() and connection.sock is not None
        connection.request("GET", "/healthz")
        assert connection.getresponse().read() == b"ok"
        connection.close()
    assert response.status_code == 500
    text = seen(response.text)
    assert "unexpected RuntimeError while reading the store; the server's log says more" in text
    assert "Traceback" not in response.text and "/secret/place" not in response.text
    assert response.headers["content-security-policy"] == CSP


def _crawl(client: httpx.Client, start: str = "/", limit: int = 400) -> dict[str, httpx.Response]:
    """Every page reachable from ``start`` by the view's own links (not the orchestrators'), and one download:
    the stored files themselves are data (their headers are checked in test_every_response_has_...)."""
    seen_urls: dict[str, httpx.Response] = {}
    queue = deque([start])
    while queue and len(seen_urls) < limit:
        url = queue.popleft()
        if url in seen_urls:
            continue
        response = client.get(url)
        seen_urls[url] = response
        if "text/html" in response.headers.get("content-type", ""):
            for href in links(response.text, actions=False):
                parts = urlsplit(href)
                local = not parts.scheme and not parts.netloc and href.startswith("/") and href not in seen_urls
                another_download = "/-/raw/" in href and any("/-/raw/" in u for u in seen_urls)
                if local and not another_download:
                    queue.append(href)
    return seen_urls


def test_everything_from_the_store_is_escaped_everywhere(file_world: World) -> None:
    with serve(create_app(file_world.store)) as site, site.client() as client:
        crawled = _crawl(client)
    assert len(crawled) > 30
    html_pages = {u: r for u, r in crawled.items() if "text/html" in r.headers.get("content-type", "")}
    statuses = {u: r.status_code for u, r in html_pages.items() if r.status_code != 200}
    assert statuses == {}
    for url, response in html_pages.items():
        page = response.text
        assert HOSTILE_MESSAGE not in page and "<img src=x" not in page and "<b>x</b>" not in page, url
        assert "acc<b>" not in page, url
        assert not [h for h in links(page) if h.lower().startswith(("javascript:", "data:", "vbscript:"))], url
        assert "onerror=" not in page.replace("onerror=alert(1)&gt;", ""), url
    everything = "".join(r.text for r in html_pages.values())
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in everything
    assert HOSTILE_FILE.replace("<", "&lt;").replace(">", "&gt;") in everything
    assert f"&#34;{HOSTILE_LINK}&#34;" in everything
    assert HOSTILE_METRIC.replace("<", "&lt;").replace(">", "&gt;") in everything


def test_no_credential_reaches_a_page_or_a_header(world: World, seaweedfs: SeaweedFS) -> None:
    if world.kind != "s3":
        pytest.skip("a file:// store has no credentials")
    secret, key = seaweedfs.secret_key, seaweedfs.access_key
    token = "tok-" + "9" * 30
    with serve(create_app(world.store, token=token)) as site, site.client() as client:
        client.post("/login", data={"token": token})
        crawled = _crawl(client)
        denied = client.get("/d/raw/nope")
    assert len(crawled) > 30
    for url, response in [*crawled.items(), ("/d/raw/nope", denied)]:
        head = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        for shown in (response.text if "text/html" in response.headers.get("content-type", "") else "", head):
            assert secret not in shown and token not in shown, url
            assert not re.search(re.escape(key) + r"(?!s/)", shown), url  # the bucket gitfree-tests holds the key


def test_a_store_error_is_one_readable_line(world: World, seaweedfs: SeaweedFS, tmp_path: Path) -> None:
    """Real failures: on SeaweedFS a reader whose secret key is wrong (the server refuses it), on file:// a record
    that is not JSON. The page says what the CLI says (``in_cli_terms``), in one line, with no traceback."""
    read: Callable[[], object]
    if world.kind == "s3":
        broken = world.reader("wrong-secret", secret_access_key="not-the-" + seaweedfs.secret_key)
        url, read = "/d/raw/sales", lambda: broken.log("raw/sales")
    else:
        broken = Store(tmp_path / "store", cache_dir=tmp_path / "cache")
        (tmp_path / "src").mkdir()
        (tmp_path / "src" / "f.txt").write_text("x")
        broken.commit("ds", tmp_path / "src")
        (Path(broken.url.removeprefix("file://")) / layout.version_key("ds", 1)).write_text("{not json")
        url, read = "/v/ds@1", lambda: broken.show("ds@1")
    with pytest.raises(GitfreeError) as caught:
        read()
    with serve(create_app(broken)) as site, site.client() as client:
        response = client.get(url)
    assert response.status_code == (404 if isinstance(caught.value, NotFoundError) else 502)
    message = re.search(r'<p class="error" role="alert">(.*?)</p>', response.text, re.S)
    assert message is not None and "\n" not in message[1]
    assert html.unescape(message[1]) == " ".join(caught.value.in_cli_terms().split())
    assert "Traceback" not in response.text and 'File "' not in response.text
    assert seaweedfs.secret_key not in response.text


def test_a_secret_in_what_the_store_holds_is_hidden_too(world: World, seaweedfs: SeaweedFS) -> None:
    """The app puts no credential in a page; should anything else ever carry one there (a library's message, a
    commit message pasted with a key in it), the store's secret key and the view's token are still hidden."""
    if world.kind != "s3":
        pytest.skip("a file:// store has no credentials")
    token = "tok-" + "3" * 30
    source = world.work / "src-leak"
    source.mkdir(exist_ok=True)
    (source / "f.txt").write_text("x")
    world.writer.commit("leak", source, message=f"key {seaweedfs.secret_key} and {token}", force=True)
    with serve(create_app(world.store, token=token)) as site, site.client() as client:
        page = client.get("/d/leak", headers={"authorization": f"Bearer {token}"}).text
    assert seaweedfs.secret_key not in page and token not in page
    assert "key [hidden] and [hidden]" in seen(page)


def test_bad_settings_are_refused_when_the_app_is_made(file_world: World) -> None:
    for bad in ("javascript:alert(1)", "ftp://prefect", "http://user:pw@prefect:4200", "prefect:4200"):
        with pytest.raises(InputError, match="must be an http:// or https:// URL of its UI"):
            create_app(file_world.store, prefect_ui_url=bad)
    with pytest.raises(ValueError, match="a token was given with auth=False"):
        create_app(file_world.store, token="t" * 20, auth=False)
    with pytest.raises(ValueError, match="a token is a non-empty string"):
        create_app(file_world.store, token=" ")


def test_the_login_form_takes_only_a_small_body(file_world: World) -> None:
    with serve(create_app(file_world.store, token="t" * 20)) as site, site.client() as client:
        response = client.post("/login", content=b"token=" + b"t" * 10_000)
    assert response.status_code == 413
    assert "the login form sends only the token" in seen(response.text)
