"""The commit protocol against the real server: concurrent writers, a lost response, a server without
conditional writes (faults injected in the client, since SeaweedFS itself behaves), and secrets."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
from click.testing import CliRunner
from figures import Figures
from helpers import write_tree

from gitfree import ConfigError, Store
from gitfree.cli import cli
from gitfree.testing import SeaweedFS
from gitfree.versioning import catalog as catalog_module
from gitfree.versioning import layout


def test_lost_response_on_the_version_record_is_recognised(s3_store: Store, tmp_path: Path, figures: Figures) -> None:
    """The create succeeds on the server, but the client sees a timeout: it re-reads and finds its own id."""
    lost = []

    def lose_response(http_response: Any, parsed: Any, model: Any, context: Any, **kwargs: Any) -> None:
        key = kwargs.get("params", {}).get("Key", "") if "params" in kwargs else ""
        if not lost and "/versions/" in (key or context.get("gitfree_key", "")):
            lost.append(key)
            raise botocore.exceptions.ReadTimeoutError(endpoint_url="lost response")

    def remember_key(params: dict[str, Any], context: dict[str, Any], **kwargs: Any) -> None:
        context["gitfree_key"] = params.get("Key", "")

    events = s3_store.backend._client.meta.events  # type: ignore[attr-defined]
    events.register("before-parameter-build.s3.PutObject", remember_key)
    events.register("after-call.s3.PutObject", lose_response)
    version = s3_store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    assert lost, "the fault was not injected"
    assert version.number == 1
    assert [v.number for v in s3_store.log("ds")] == [1]
    assert s3_store.show("ds").id == version.id
    figures.add(
        "2. lost response",
        f"version record written but its response lost ({len(lost)} injected): commit reported success, "
        f"versions found: {len(s3_store.log('ds'))} (expected 1)",
    )


@pytest.mark.parametrize("header", ["If-None-Match", "If-Match"])
def test_server_ignoring_conditional_writes_is_refused(
    make_store: Callable[..., Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, header: str, figures: Figures
) -> None:
    """As if a proxy or an old server dropped the header: the store refuses to write, with a clear error."""
    monkeypatch.setattr(catalog_module, "_probed", set())
    store = make_store("s3")

    def drop_header(request: Any, **kwargs: Any) -> None:
        if header in request.headers:
            del request.headers[header]

    store.backend._client.meta.events.register("before-sign.s3.PutObject", drop_header)  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=f"ignores '{header}"):
        store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    assert store.datasets() == []
    assert not list(store.backend.list(layout.PROBES))
    figures.add(
        "7. no conditional writes",
        f"server dropping {header}: writing refused with ConfigError, datasets written: {len(store.datasets())}",
    )


def test_secrets_never_appear(
    seaweedfs: SeaweedFS,
    s3_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    figures: Figures,
) -> None:
    canary = seaweedfs.secret_key
    caplog.set_level(logging.DEBUG)
    store = Store(s3_url, cache_dir=tmp_path / "c", **seaweedfs.store_options())  # type: ignore[arg-type]
    texts = [repr(store), str(store.settings), repr(store.settings), repr(store.backend)]
    store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    store.pull("ds", tmp_path / "out")
    bad = Store(
        s3_url,
        cache_dir=tmp_path / "c2",
        endpoint_url=seaweedfs.endpoint,
        access_key_id="nobody",
        secret_access_key=canary,
    )
    with pytest.raises(ConfigError) as info:
        bad.commit("ds", write_tree(tmp_path / "src2", {"b": b"2"}))
    texts.append(str(info.value))
    texts.append(repr(info.value))

    monkeypatch.setenv("GITFREE_STORE", s3_url)
    for key, value in seaweedfs.env().items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    for args in (
        ["-vv", "log", "ds"],
        ["-vv", "show", "ds@9"],
        ["-vv", "commit", "ds", str(tmp_path / "src")],
        ["-vv", "pull", "ds", str(tmp_path / "o2")],
    ):
        result = runner.invoke(cli, ["--cache-dir", str(tmp_path / "c3"), *args])
        texts.append(result.output)
    texts += [r.getMessage() for r in caplog.records]
    texts += [str(r.args) for r in caplog.records]
    leaks = [t for t in texts if canary in t]
    figures.add(
        "9. secrets",
        f"canary secret searched in {len(texts)} texts (reprs, errors, CLI -vv output, {len(caplog.records)} "
        f"DEBUG log records): found {len(leaks)} times",
    )
    assert not leaks, leaks[:1]
