"""The commit protocol against the real servers (SeaweedFS, Azurite, fake-gcs-server) and the file backend: a lost
response, a server without conditional writes (faults injected with gitfree.testing.Faults, since the servers
themselves behave), and secrets."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from figures import Figures
from helpers import ALL_KINDS, kind_of, write_tree

from gitfree import ConfigError, Store
from gitfree.cli import cli
from gitfree.testing import Faults, SeaweedFS
from gitfree.versioning import layout

VERSIONS = re.compile(r"^datasets/[^/]+/versions/")


@pytest.mark.kinds(*ALL_KINDS)
def test_lost_response_on_the_version_record_is_recognised(store: Store, tmp_path: Path, figures: Figures) -> None:
    """The create succeeds on the server, but the client sees a timeout: it re-reads and finds its own id."""
    with Faults(store) as faults:
        lost = faults.lose("create", VERSIONS)
        version = store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    assert lost.fired, "the fault was not injected"
    assert version.number == 1
    assert [v.number for v in store.log("ds")] == [1]
    assert store.show("ds").id == version.id
    figures.add(
        "2. lost response",
        f"version record written but its response lost ({len(lost.fired)} injected, {kind_of(store)}): commit "
        f"reported success, versions found: {len(store.log('ds'))} (expected 1)",
    )


@pytest.mark.kinds(*ALL_KINDS)
@pytest.mark.parametrize("proven", [False, True], ids=["new-store", "proven-store"])
@pytest.mark.parametrize("header", ["If-None-Match", "If-Match"])
def test_server_ignoring_conditional_writes_is_refused(
    store: Store, tmp_path: Path, header: str, proven: bool, figures: Figures
) -> None:
    """As if a proxy or an old server dropped the header: the store refuses to write, with a clear error.
    A store this process already proved writable is proven again when it is reached through the proxy."""
    if proven:
        store.commit("ds", write_tree(tmp_path / "v1", {"a": b"1"}))
    with Faults(store) as faults:
        faults.drop_condition("create" if header == "If-None-Match" else "replace")
        # each service's own name of the condition: 'If-None-Match: *' / 'If-Match', or GCS's ifGenerationMatch
        condition = store.backend.create_condition if header == "If-None-Match" else store.backend.swap_condition
        assert header in condition or kind_of(store) == "gs"
        with pytest.raises(ConfigError, match=f"ignores {re.escape(condition)}"):
            store.commit("ds", write_tree(tmp_path / "src", {"a": b"2"}))
    if proven:
        assert [v.number for v in store.log("ds")] == [1]
    else:
        assert store.datasets() == []
        assert not store.backend.exists(layout.MARKER), "a refused store was marked as a store"
    assert not list(store.backend.list(layout.PROBES))
    assert not list(store.backend.list(layout.LEASES))
    figures.add(
        "7. no conditional writes",
        f"server dropping {header} ({kind_of(store)}, {'proven' if proven else 'new'} store): writing refused "
        f"with ConfigError, versions written through it: 0",
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
    store = Store(s3_url, cache_dir=tmp_path / "c", **seaweedfs.store_options())
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
