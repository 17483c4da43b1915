"""Each page of the web view over a real store (SeaweedFS and ``file://``) with nested datasets, several versions,
tags moved and deleted, metrics, lineage and hostile names, served by a real uvicorn: what a person sees."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from ui.conftest import World
from ui.ui_helpers import HOSTILE_FILE, HOSTILE_MESSAGE, HOSTILE_METRIC, RUN_ID, Served, links, seen, serve, title

from gitfree import Author
from gitfree.ui import create_app
from gitfree.ui import pages as ui_pages

GITFREE = str(Path(sys.executable).with_name("gitfree"))


def get(site: Served, url: str, status: int = 200) -> str:
    with site.client() as client:
        response = client.get(url)
    assert response.status_code == status, (url, response.status_code, seen(response.text)[:400])
    return response.text


def test_datasets_show_nested_names_newest_version_author_and_tags(site: Served) -> None:
    page = get(site, "/")
    text = seen(page)
    assert title(page) == "Datasets · gitfree"
    assert "Datasets 4" in text
    # Nested names under their prefix, in name order, each with its newest version, when, by whom, tags.
    assert re.search(r"features @1 .*? models/ models/churn @1 .*? raw/ raw/sales @3 .*? prod march", text), text
    assert "ana@ws1 (prefect: ingest, run " + RUN_ID + ")" in text
    hrefs = links(page)
    assert {"/d/raw/sales", "/v/raw/sales@3", "/d/models/churn", "/v/features@1"} <= set(hrefs)


def test_datasets_filter_and_pages(site: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    text = seen(get(site, "/?q=raw"))
    assert "Datasets 2 of 4" in text and "raw/sales" in text and "features" not in text
    assert "no dataset name contains zzz" in seen(get(site, "/?q=zzz"))
    monkeypatch.setattr(ui_pages, "DATASETS_PER_PAGE", 3)  # the server runs in this process
    first, second = seen(get(site, "/")), seen(get(site, "/?page=2"))
    assert "page 1 of 2" in first and "raw/stores" not in first
    assert "page 2 of 2" in second and "raw/stores" in second and "features" not in second
    assert "there is no page 3: the last page is 2" in seen(get(site, "/?page=3", 404))
    assert "?page= is a page number from 1, not '0'" in seen(get(site, "/?page=0", 400))


def test_history_lists_versions_newest_first_with_metrics_tags_and_a_compare_form(site: Served) -> None:
    page = get(site, "/d/raw/sales")
    text = seen(page)
    assert title(page) == "raw/sales: history · gitfree"
    assert re.search(r"@3 .* march .* @2 .* february grew .* @1 .* " + re.escape(HOSTILE_MESSAGE), text), text
    assert f"rows {HOSTILE_METRIC}" in text  # the chosen metrics' columns
    assert re.search(r"@3 \S+ \S+ UTC ana@ws1 .*? march 5 99 B prod 4 0\.7", text), text
    assert "/d/raw/sales/-/diff" in links(page) and 'name="old"' in page and 'name="new"' in page
    # The Prefect run is not a link: no Prefect UI was configured.
    assert not any("flow-run" in h for h in links(page))
    only_rows = seen(get(site, "/d/raw/sales?metrics=rows"))
    assert "rows" in only_rows and HOSTILE_METRIC not in only_rows


def test_history_pages_are_windows_of_version_numbers(site: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ui_pages, "HISTORY_PER_PAGE", 2)
    first, second = seen(get(site, "/d/raw/sales")), seen(get(site, "/d/raw/sales?page=2"))
    assert "@3" in first and "@2" in first and "@1" not in first and "page 1 of 2" in first
    assert "@1" in second and "@2" not in second
    get(site, "/d/raw/sales?page=3", 404)


def test_version_page_shows_record_metrics_lineage_tags_files_and_commands(site: Served, world: World) -> None:
    page = get(site, "/v/raw/sales@3")
    text = seen(page)
    assert title(page) == "raw/sales@3 · gitfree"
    assert "datasets / raw/sales / @3" in text  # the breadcrumbs
    for expected in ("march", "ana@ws1 (prefect: ingest", "task t1", "parent @2", world.store.show("raw/sales@3").md5):
        assert expected in text
    # Metrics with their deltas to the parent.
    assert re.search(rf"{re.escape(HOSTILE_METRIC)} 0\.7 0\.6 ▲ \+0\.1 \(\+16\.7%\)", text), text
    assert re.search(r"rows 4 3 ▲ \+1 \(\+33\.3%\)", text), text
    # Lineage one hop each way, linked; tags and their moves.
    assert "used by features@1" in text and "/v/features@1" in links(page)
    assert re.search(r"prod moved @1 → @3 .* march release", text), text
    # The files: folders collapsed with their counts, then files with sizes.
    assert re.search(r"name files size md5 2026/ 3 - .*? page\.html \S+ B", text), text
    # Commands to copy: the store URL, never a credential.
    url = world.store.url
    assert f"gitfree --store {url} pull raw/sales@3 DEST" in text
    assert f"from gitfree import Store; Store('{url}').pull('raw/sales@3', 'DEST')" in text
    assert "gitfree://raw/sales@3/" in text
    assert "/v/raw/sales@3/-/dvc" in links(page)


def test_a_version_without_a_parent_or_inputs_says_so(site: Served) -> None:
    text = seen(get(site, "/v/raw/sales@1"))
    assert "the first version: no deltas" in text and "no recorded inputs" in text
    assert 'source "javascript:alert(1)"' in text  # metadata, as JSON text
    assert re.search(r"old created → @2 .* old deleted @2 → .* not needed", seen(get(site, "/v/raw/sales@2")))
    made_from = seen(get(site, "/v/models/churn@1"))
    assert "made from features@1" in made_from and "nothing recorded as made from it" in made_from


def test_folders_open_and_paginate(site: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    page = get(site, "/v/raw/sales@3?path=2026")
    text = seen(page)
    assert title(page) == "raw/sales@3: 2026/ · gitfree"
    assert "datasets / raw/sales / @3 / 2026" in text
    assert re.search(r"\.\. 01\.csv \S+ B .* 02\.csv .* 03\.csv", text), text
    assert "/v/raw/sales@3/-/files/2026/02.csv" in links(page)
    monkeypatch.setattr(ui_pages, "FILES_PER_PAGE", 2)
    assert "03.csv" not in seen(get(site, "/v/raw/sales@3?path=2026"))
    assert "03.csv" in seen(get(site, "/v/raw/sales@3?path=2026&page=2"))
    assert "raw/sales@3 has no folder 'nope'" in seen(get(site, "/v/raw/sales@3?path=nope", 404))
    with site.client() as client:
        to_file = client.get("/v/raw/sales@3?path=2026/01.csv")
    assert to_file.status_code == 302 and to_file.headers["location"] == "/v/raw/sales@3/-/files/2026/01.csv"


def test_a_second_page_of_a_version_parses_no_listing(file_world: World) -> None:
    app = create_app(file_world.store)
    with serve(app) as site:
        get(site, "/v/raw/sales@3")
        get(site, "/v/raw/sales@3?path=2026")
        get(site, "/v/raw/sales@2")
    assert app.state.site.listings.built == 2  # one index per listing (@3 and @2), not one per page


def test_tags_and_latest_redirect_to_the_stable_number(site: Served) -> None:
    with site.client() as client:
        for ref, number in (("prod", 3), ("latest", 3), ("latest~2", 1)):
            response = client.get(f"/v/raw/sales@{ref}/-/files/2026/01.csv?x=1")
            assert response.status_code == 302
            assert response.headers["location"] == f"/v/raw/sales@{number}/-/files/2026/01.csv?x=1"
    assert "the tag 'old' of 'raw/sales' was deleted" in seen(get(site, "/v/raw/sales@old", 404))


def test_the_dvc_pointer_downloads_as_dvc_writes_it(site: Served, world: World, tmp_path: Path) -> None:
    with site.client() as client:
        response = client.get("/v/raw/sales@2/-/dvc")
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith('attachment; filename="src-sales.dvc"')
    exported = world.store.export_dvc("raw/sales@2", tmp_path / "src-sales.dvc")
    assert response.text == exported.read_text()


def test_diff_shows_files_metric_deltas_and_line_diffs(site: Served) -> None:
    page = get(site, "/d/raw/sales/-/diff?old=1&new=3")
    text = seen(page)
    assert title(page) == "raw/sales: diff @1..@3 · gitfree"
    assert "2 added, 1 removed, 1 modified" in text
    assert re.search(r"modified 2026/02\.csv 16 B 21 B added 2026/03\.csv 16 B removed README\.md 8 B added page", text)
    assert re.search(r"rows 2 4 ▲ \+2 \(\+100\.0%\)", text), text
    assert "@@ -1,2 +1,3 @@ day,amount 1,20 +2,25" in text  # the line diff of the changed CSV
    assert "/v/raw/sales@1/-/files/README.md" in links(page)  # a removed file links to the old version
    assert "a diff needs two versions" in seen(get(site, "/d/raw/sales/-/diff?old=1", 400))
    assert "'raw/sales' has no version 9" in seen(get(site, "/d/raw/sales/-/diff?old=1&new=9", 404))


def test_audit_is_the_timeline_of_commits_and_tag_moves(site: Served) -> None:
    page = get(site, "/d/raw/sales/-/audit")
    text = seen(page)
    assert title(page) == "raw/sales: audit · gitfree"
    assert re.search(
        r"deleted old @2 → .* not needed .* created old → @2 .* moved prod @1 → @3 .* march release .* "
        r"created prod → @1 .* first release .* committed @3 .* march",
        text,
    ), text


def test_raw_serves_the_bytes_inline_only_when_a_browser_cannot_run_them(site: Served, world: World) -> None:
    with site.client() as client:
        csv = client.get("/v/raw/sales@3/-/raw/2026/02.csv")
        page = client.get("/v/raw/sales@3/-/raw/page.html")
        head = client.head("/v/raw/sales@3/-/raw/2026/02.csv")
        hostile = client.get(f"/v/raw/sales@3/-/raw/{HOSTILE_FILE}")
    assert csv.content == b"day,amount\n1,20\n2,25\n"
    assert csv.headers["content-type"] == "text/csv; charset=utf-8" and csv.headers["content-disposition"] == "inline"
    assert page.content == b"<script>alert(2)</script>"
    assert page.headers["content-type"] == "application/octet-stream"
    assert page.headers["content-disposition"] == "attachment; filename=\"page.html\"; filename*=UTF-8''page.html"
    assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == str(len(csv.content))
    assert hostile.status_code == 200 and b"<b>x</b>" in hostile.content


def test_a_store_error_is_the_line_the_cli_prints(site: Served, world: World) -> None:
    page = get(site, "/d/raw/nope", 404)
    cli = subprocess.run(
        [GITFREE, "--store", world.store.url, "log", "raw/nope"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**world_env(world)},
    )
    assert cli.returncode == 3
    line = cli.stderr.strip().removeprefix("error: ")
    assert line in seen(page) and title(page) == "Not found · gitfree"


def world_env(world: World) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITFREE_", "AWS_"))}
    env["GITFREE_CACHE_DIR"] = str(world.work / "cache-cli")
    env["COLUMNS"] = "400"
    if world.kind == "s3":
        env |= {
            "GITFREE_ENDPOINT_URL": world.options["endpoint_url"],
            "GITFREE_ACCESS_KEY_ID": world.options["access_key_id"],
            "GITFREE_SECRET_ACCESS_KEY": world.options["secret_access_key"],
        }
    return env


def test_runs_link_to_the_orchestrator_ui_when_one_is_configured(file_world: World) -> None:
    app = create_app(file_world.store, prefect_ui_url="http://prefect.example:4200/")
    with serve(app) as site:
        page = get(site, "/d/raw/sales")
    assert f"http://prefect.example:4200/runs/flow-run/{RUN_ID}" in links(page)
    assert not any(h.startswith("javascript:") for h in links(page))


def test_the_metrics_page_charts_every_metric_with_a_table(site: Served) -> None:
    page = get(site, "/d/raw/sales/-/metrics")
    text = seen(page)
    assert title(page) == "raw/sales: metrics · gitfree"
    assert page.count('class="gf-metric-line"') == 2  # one line per metric
    assert f"{HOSTILE_METRIC.replace('<', '&lt;').replace('>', '&gt;')} @3: 0.7" in page  # a point's tooltip
    assert {"/v/raw/sales@1", "/v/raw/sales@2", "/v/raw/sales@3"} <= set(links(page))
    assert re.search(rf"version created {re.escape(HOSTILE_METRIC)} rows @3 .* 0\.7 4 @2 .* 0\.6 3 @1 .* 0\.5 2", text)
    assert "no version of raw/stores records metrics" in seen(get(site, "/d/raw/stores/-/metrics"))


def test_the_lineage_page_draws_and_lists_the_graph(site: Served) -> None:
    page = get(site, "/v/features@1/-/lineage")
    text = seen(page)
    assert title(page) == "features@1: lineage · gitfree"
    assert page.count('class="gf-node ') == 4  # raw/sales@3 and raw/stores@1 -> features@1 -> models/churn@1
    assert {"/v/raw/sales@3", "/v/raw/stores@1", "/v/models/churn@1"} <= set(links(page))
    assert re.search(r"version created message .*features@1 .* features", text)
    assert "3 hops each way" in text and "?depth=6" in " ".join(links(page))
    assert "?depth= is a number of hops from 1 to 50" in seen(get(site, "/v/features@1/-/lineage?depth=0", 400))


def test_the_file_page_previews_a_table_with_its_cells_as_text(site: Served) -> None:
    page = get(site, f"/v/raw/sales@3/-/files/{HOSTILE_FILE}")
    assert title(page) == f"raw/sales@3: {HOSTILE_FILE} · gitfree"
    assert "<th>name</th><th>html</th>" in page and "<td>&lt;b&gt;x&lt;/b&gt;</td>" in page
    assert f"datasets / raw/sales / @3 / {HOSTILE_FILE}" in seen(page)
    text_file = get(site, "/v/raw/stores@1/-/files/stores.json")
    assert '"stores": [' in seen(text_file) and "/v/raw/stores@1/-/raw/stores.json" in links(text_file)
    nested = seen(get(site, "/v/raw/sales@3/-/files/2026/02.csv"))
    assert "datasets / raw/sales / @3 / 2026 / 02.csv" in nested and "day amount 1 20 2 25" in nested
    assert "'2026' is a folder, not a file of raw/sales@3" in seen(get(site, "/v/raw/sales@3/-/files/2026", 404))
    binary = seen(get(site, "/v/models/churn@1/-/files/model.bin"))
    assert "no preview for this file: download it" in binary


def test_an_airflow_run_links_to_its_dag_run_with_every_part_quoted() -> None:
    links_to = ui_pages.RunLinks(airflow="http://airflow:8080")
    run = Author(user="ana", orchestrator="airflow", pipeline="sales dag", run_id="manual__2026-01-01T00:00:00+00:00")
    assert links_to.of(run) == "http://airflow:8080/dags/sales%20dag/runs/manual__2026-01-01T00%3A00%3A00%2B00%3A00"
    assert links_to.of(run.model_copy(update={"orchestrator": "prefect"})) is None  # no Prefect UI given
    assert links_to.of(Author(user="ana")) is None
