"""The login form and the bearer header checked every guess at once, as fast as a client could send them: a
token could be guessed at thousands of tries a second. Now, per client address, after 5 wrong tokens in a
row each further try waits 1 s, 2 s, 4 s... (at most 60 s) and until then is refused unchecked with a 429
and ``Retry-After``, even when it is the right token (no oracle); a right token clears the client."""

from __future__ import annotations

import time

import httpx
import pytest
from ui.ui_helpers import seen, serve

from gitfree import Store
from gitfree.ui import create_app
from gitfree.ui.auth import Throttle

TOKEN = "tok-" + "7" * 40
WRONG = "tok-" + "8" * 40


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    work = tmp_path_factory.mktemp("ui-throttle")
    (work / "src").mkdir()
    (work / "src" / "a.csv").write_text("a\n1\n")
    made = Store(str(work / "store"), cache_dir=work / "cache")
    made.commit("raw/sales", work / "src", message="one")
    return made


def test_wrong_logins_make_the_next_one_wait(store: Store) -> None:
    with serve(create_app(store, token=TOKEN)) as site, site.client() as client:
        for _ in range(5):  # then 1 s to wait
            assert client.post("/login", data={"token": WRONG, "next": "/"}).status_code == 401
        waited = client.post("/login", data={"token": TOKEN, "next": "/"})
        assert waited.status_code == 429 and waited.headers["retry-after"] == "1"
        assert "set-cookie" not in waited.headers  # refused unchecked, the right token too
        assert waited.text == "too many wrong tokens from 127.0.0.1: wait 1 s, then try again"
        assert client.get("/", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 429
        other = httpx.Client(base_url=site.url, transport=httpx.HTTPTransport(local_address="127.0.0.2"))
        with other:  # another client is not held back
            assert other.get("/", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
        time.sleep(1.1)
        logged = client.post("/login", data={"token": TOKEN, "next": "/"})
        assert logged.status_code == 303 and "set-cookie" in logged.headers
        client.cookies.clear()
        refused = client.post("/login", data={"token": WRONG, "next": "/"})
        assert refused.status_code == 401 and "that is not the token" in seen(refused.text)  # cleared


def test_wrong_bearer_tokens_make_the_next_one_wait(store: Store) -> None:
    with serve(create_app(store, token=TOKEN)) as site, site.client() as client:
        for _ in range(5):
            assert client.get("/d/raw/sales", headers={"authorization": f"Bearer {WRONG}"}).status_code == 401
        waited = client.get("/d/raw/sales", headers={"authorization": f"Bearer {TOKEN}"})
        assert waited.status_code == 429 and waited.headers["retry-after"] == "1"
        assert waited.headers["x-content-type-options"] == "nosniff"  # the Guard's headers on a 429 too
        assert client.post("/login", data={"token": TOKEN, "next": "/"}).status_code == 429  # one count for both


def test_the_count_is_bounded_and_forgets() -> None:
    now = [1000.0]
    throttle = Throttle(free=2, longest=60.0, forget=900.0, clients=3, clock=lambda: now[0])
    for client in ("a", "b", "c", "d"):
        for _ in range(3):
            throttle.failed(client)
    assert list(throttle.failures) == ["b", "c", "d"]  # at most 3 clients remembered: the oldest went
    assert throttle.retry_after("d") == 2 and throttle.retry_after("a") == 0
    for _ in range(20):
        throttle.failed("d")
    assert throttle.retry_after("d") == 60  # never longer than `longest`
    now[0] += 901
    throttle.failed("d")  # 15 minutes with no wrong token: counted again from the first
    assert throttle.failures["d"][0] == 1 and throttle.retry_after("d") == 0
