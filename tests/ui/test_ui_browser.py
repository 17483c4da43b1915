"""The web view in a real browser: one headless Chromium (selenium) over a uvicorn-served app on a SeaweedFS
store. Each page is loaded and checked for what a person sees, no console error, no script run from the store's
data (``window.__xss`` stays undefined) and no alert. ``GITFREE_UI_SCREENSHOTS=DIR`` saves a 1280x900 PNG of the
main pages into DIR (``GITFREE_UI_SCREENSHOTS=docs/ui`` makes the pictures of docs/ui.md); unset, nothing is
written."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import write_tree
from ui.conftest import World, make_world
from ui.ui_helpers import HOSTILE_CELL, HOSTILE_FILE, HOSTILE_LINK, HOSTILE_MESSAGE, HOSTILE_METRIC, Served, serve

from gitfree.testing import SeaweedFS
from gitfree.ui import create_app

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: pip install selenium")
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMEDRIVER = "/usr/bin/chromedriver"
if not (shutil.which("chromium") and os.path.exists(CHROMEDRIVER)):
    pytest.skip(
        "chromium and chromium-driver are not installed: apt-get install chromium chromium-driver (as root) "
        "to run the browser tests",
        allow_module_level=True,
    )

EU_VERSIONS = 32
SHOTS = os.environ.get("GITFREE_UI_SCREENSHOTS")
"""Read at import: the suite's isolated environment clears it before each test."""


def _png() -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes([200, 40, 40]) * 8 for _ in range(8))
    ihdr = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _parquet() -> bytes:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    sink = io.BytesIO()
    pq.write_table(pa.table({"city": ["lisbon", "porto"], "amount": [10, 20]}), sink)
    return sink.getvalue()


def _more(world: World) -> None:
    """What the shared world lacks: ``raw/sales/eu`` with a Parquet file, a PNG, a text file and many versions."""
    src = world.work / "src-eu"
    write_tree(src, {"eu.parquet": _parquet(), "flag.png": _png(), "notes.txt": b"plain notes\n"})
    for n in range(EU_VERSIONS):
        (src / "count.txt").write_text(f"{n}\n")
        world.writer.commit("raw/sales/eu", src, message=f"eu day {n}", metrics={"rows": n, "loss": 1 / (n + 1)})


@pytest.fixture(scope="module")
def browser_world(seaweedfs: SeaweedFS, tmp_path_factory: pytest.TempPathFactory) -> World:
    world = make_world("s3", seaweedfs, tmp_path_factory.mktemp("ui-browser"))
    _more(world)
    return world


@pytest.fixture(scope="module")
def site(browser_world: World) -> Iterator[Served]:
    with serve(create_app(browser_world.store)) as served:
        yield served


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    chrome.set_window_size(1280, 900)
    try:
        yield chrome
    finally:
        chrome.quit()


def visit(driver: Any, site: Served, path: str, shot: str | None = None) -> str:
    """Load ``path``; assert no console error, no alert and no script of the data ran; return the page's text."""
    driver.get(site.url + path)
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], f"{path}: {errors}"
    assert driver.execute_script("return window.__xss") is None, path
    try:
        alert = driver.switch_to.alert
        text = alert.text
        alert.dismiss()
        raise AssertionError(f"{path}: an alert ran: {text}")
    except NoAlertPresentException:
        pass
    if shot and SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SHOTS) / f"{shot}.png"))
    return str(driver.find_element(By.TAG_NAME, "body").text)


def test_datasets_page_and_filter(driver: Any, site: Served) -> None:
    text = visit(driver, site, "/", "datasets")
    for name in ("sales", "eu", "stores", "features", "churn"):
        assert name in text
    groups = [g.text for g in driver.find_elements(By.CSS_SELECTOR, "tr.group")]
    assert sorted(groups) == sorted(set(groups)) == ["models/", "raw/", "raw/sales/"], "a folder's heading twice"
    box = driver.find_element(By.CSS_SELECTOR, "form.filter input[name=q]")
    box.send_keys("churn")
    box.submit()
    # The filtered page, once it replaced this one (a fresh clone's run read rows of the page going away).
    WebDriverWait(driver, 10).until(lambda d: "q=churn" in d.current_url)
    names = WebDriverWait(driver, 10, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: [r.text for r in d.find_elements(By.CSS_SELECTOR, "table tbody td.name")] or None
    )
    assert names == ["models/churn"]
    assert driver.execute_script("return window.__xss") is None


def test_history_compare_leads_to_the_diff(driver: Any, site: Served) -> None:
    text = visit(driver, site, "/d/raw/sales/eu", "history")
    assert f"eu day {EU_VERSIONS - 1}" in text
    driver.find_element(By.CSS_SELECTOR, f"input[name=old][value='{EU_VERSIONS - 5}']").click()
    driver.find_element(By.CSS_SELECTOR, "form.compare button[type=submit]").click()
    WebDriverWait(driver, 10).until(lambda d: "/-/diff" in d.current_url)
    assert f"old={EU_VERSIONS - 5}" in driver.current_url
    text = visit(driver, site, driver.current_url.removeprefix(site.url), "diff")
    assert "count.txt" in text


def test_hostile_strings_show_as_text(driver: Any, site: Served) -> None:
    text = visit(driver, site, "/d/raw/sales")
    assert HOSTILE_MESSAGE in text
    text = visit(driver, site, "/v/raw/sales@1", "version")
    assert HOSTILE_FILE in text and HOSTILE_LINK in text and HOSTILE_MESSAGE in text
    assert driver.find_elements(By.CSS_SELECTOR, "button.copy")
    assert not driver.find_elements(By.CSS_SELECTOR, f"a[href^='{HOSTILE_LINK}']")
    cells = visit(driver, site, f"/v/raw/sales@1/-/files/{HOSTILE_FILE}")
    assert HOSTILE_CELL in cells
    assert not driver.find_elements(By.CSS_SELECTOR, "td b, img[src=x]")


def test_previews_of_each_kind(driver: Any, site: Served) -> None:
    csv = visit(driver, site, "/v/raw/sales@3/-/files/2026/02.csv", "preview-csv")
    cells = [c.text for c in driver.find_elements(By.CSS_SELECTOR, "table td")]
    assert "25" in cells and "amount" in csv
    parquet = visit(driver, site, "/v/raw/sales/eu@1/-/files/eu.parquet")
    assert "lisbon" in parquet and "porto" in parquet
    visit(driver, site, "/v/raw/sales/eu@1/-/files/flag.png")
    assert driver.find_elements(By.CSS_SELECTOR, "img")
    assert "plain notes" in visit(driver, site, "/v/raw/sales/eu@1/-/files/notes.txt")
    assert "stores" in visit(driver, site, "/v/raw/stores@1/-/files/stores.json")
    assert "<script>alert(2)</script>" in visit(driver, site, "/v/raw/sales@3/-/files/page.html")


def test_tree_folder_audit_and_metrics(driver: Any, site: Served) -> None:
    assert "01.csv" in visit(driver, site, "/v/raw/sales@3?path=2026")
    assert "prod" in visit(driver, site, "/d/raw/sales/-/audit", "audit")
    visit(driver, site, "/d/raw/sales/-/metrics")
    legend = driver.execute_script("return Array.from(document.querySelectorAll('svg title')).map(t => t.textContent)")
    assert any(HOSTILE_METRIC in t for t in legend)
    visit(driver, site, "/d/raw/sales/eu/-/metrics", "metrics")
    lines = driver.find_elements(By.CSS_SELECTOR, "svg polyline")
    assert len(lines) == 2
    titles = driver.execute_script(
        "return Array.from(document.querySelectorAll('svg .gf-point title')).map(t => t.textContent)"
    )
    assert any(t.startswith("rows @") for t in titles)


def test_lineage(driver: Any, site: Served) -> None:
    visit(driver, site, "/v/models/churn@1/-/lineage", "lineage")
    refs = {n.get_attribute("data-ref") for n in driver.find_elements(By.CSS_SELECTOR, "svg .gf-node")}
    assert {"models/churn@1", "features@1", "raw/sales@3", "raw/stores@1"} <= refs


def test_csp_blocks_an_injected_inline_script(driver: Any, site: Served) -> None:
    visit(driver, site, "/")
    driver.execute_script(
        "window.__csp = 0; document.addEventListener('securitypolicyviolation', () => { window.__csp += 1; });"
        "const s = document.createElement('script'); s.textContent = 'window.__xss = 1'; document.body.append(s);"
    )
    assert driver.execute_script("return window.__xss") is None
    assert driver.execute_script("return window.__csp") >= 1
    driver.get_log("browser")


def test_login_page_with_a_token(driver: Any, browser_world: World) -> None:
    with serve(create_app(browser_world.store, token="s3cret-token")) as served:
        text = visit(driver, served, "/d/raw/sales")
        assert "token" in text.lower()
        driver.find_element(By.CSS_SELECTOR, "input[name=token]").send_keys("s3cret-token")
        driver.find_element(By.CSS_SELECTOR, "form.login").submit()
        assert "february grew" in driver.find_element(By.TAG_NAME, "body").text
