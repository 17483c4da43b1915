"""The store on Azure Blob Storage: a real Azurite blob service (``azurite`` fixture), no mocks."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import read_tree, write_tree

from gitfree import Store
from gitfree.cli import cli
from gitfree.testing import AZURITE_ACCOUNT, Azurite, Faults
from gitfree.versioning.backends import AzureBackend, KeyExists, PreconditionFailed, open_backend
from gitfree.versioning.config import StoreSettings
from gitfree.versioning.errors import ConfigError, InputError


def _backend(azurite: Azurite, prefix: str) -> AzureBackend:
    backend = open_backend(StoreSettings(store=f"az://{azurite.container}/{prefix}", **azurite.store_options()))
    assert isinstance(backend, AzureBackend)
    return backend


def test_conditions_are_azures_own(azurite: Azurite) -> None:
    backend = _backend(azurite, "conditions")
    etag = backend.create("k", b"1")
    with pytest.raises(KeyExists):  # If-None-Match: * answered 409 BlobAlreadyExists
        backend.create("k", b"2")
    new = backend.replace("k", b"3", etag)
    with pytest.raises(PreconditionFailed):  # a stale If-Match answered 412 ConditionNotMet
        backend.replace("k", b"4", etag)
    with pytest.raises(PreconditionFailed):  # a swap of a missing blob is no create
        backend.replace("gone", b"5", new)
    assert backend.get("k") == (b"3", new)
    assert backend.get_range("k", 0, 10) == b"3" and backend.get_range("k", 1, 10) == b""
    assert [info.key for info in backend.scan("")] == ["k"]
    backend.probe_conditional_writes()
    backend.delete("k")
    backend.delete("k")  # a missing key is no error
    assert not backend.exists("k")


def test_round_trip_log_and_tags(az_store: Callable[..., Store], tmp_path: Path) -> None:
    files = {"a.txt": b"alpha", "sub/b.bin": bytes(range(256)) * 40}
    store = az_store()
    version = store.commit("images", write_tree(tmp_path / "src", files), message="first")
    assert version.number == 1
    other = az_store()  # another worker: its own cache
    assert read_tree(other.pull("images@1", tmp_path / "out")) == files
    store.tag("images@1", "prod")
    assert other.resolve("images@prod").number == 1


def test_concurrent_writers_make_gap_free_versions(az_store: Callable[..., Store], tmp_path: Path) -> None:
    stores = [az_store() for _ in range(4)]
    numbers: list[int] = []
    errors: list[BaseException] = []

    def commit(i: int) -> None:
        try:
            numbers.append(stores[i].commit("ds", write_tree(tmp_path / f"w{i}", {"f": f"{i}".encode()})).number)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=commit, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(numbers) == [1, 2, 3, 4]
    assert [v.number for v in stores[0].log("ds")] == [4, 3, 2, 1]


def test_a_lost_answer_to_a_commit_is_recognised(az_store: Callable[..., Store], tmp_path: Path) -> None:
    store = az_store()
    src = write_tree(tmp_path / "src", {"f": b"x"})
    with Faults(store) as faults:
        lost = faults.lose("create", re.compile(r"^datasets/[^/]+/versions/"))
        version = store.commit("ds", src)
    assert lost.fired, "the fault was not injected"
    assert version.number == 1
    assert [v.number for v in az_store().log("ds")] == [1]


def test_bad_urls_and_missing_credentials_say_what_to_do(azurite: Azurite, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not an Azure container name"):
        Store("az://Bad_Name/x", cache_dir=tmp_path, **azurite.store_options())
    for prefix in ("../x", "a//b", "a/./b"):
        with pytest.raises(InputError, match=r"no empty, '\.' or"):
            Store(f"az://{azurite.container}/{prefix}", cache_dir=tmp_path, **azurite.store_options())
    with pytest.raises(InputError, match="holds credentials") as caught:
        Store("az://acct:s3cret@box/x", cache_dir=tmp_path)
    assert "s3cret" not in str(caught.value)
    with pytest.raises(ConfigError, match="no credentials for the Azure account"):
        Store("az://box/x", cache_dir=tmp_path, settings=StoreSettings(azure_account_name="someone"))
    missing = Store("az://no-such-container/x", cache_dir=tmp_path, **azurite.store_options())
    with pytest.raises(ConfigError, match="does not exist"):
        missing.log("ds")


def test_a_wrong_key_is_refused_without_printing_it(azurite: Azurite, tmp_path: Path) -> None:
    wrong = "V3JvbmcgYnV0IHdlbGwtZm9ybWVkIGtleQ=="
    store = Store(
        f"az://{azurite.container}/wrong",
        cache_dir=tmp_path,
        endpoint_url=azurite.endpoint,
        azure_account_name=AZURITE_ACCOUNT,
        azure_account_key=wrong,
    )
    with pytest.raises(ConfigError, match="denied access") as caught:
        store.log("ds")
    assert wrong not in str(caught.value)


def test_connection_string_is_read_from_the_environment(azurite: Azurite) -> None:
    conn = (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey=K==;BlobEndpoint={azurite.endpoint};"
    )
    found = StoreSettings().azure_credentials({"AZURE_STORAGE_CONNECTION_STRING": conn})
    assert found == {"account": AZURITE_ACCOUNT, "key": "K==", "endpoint": azurite.endpoint}


def test_cli_commit_pull_log(azurite: Azurite, tmp_path: Path) -> None:
    url = f"az://{azurite.container}/cli"
    env = {**azurite.env(), "GITFREE_CACHE_DIR": str(tmp_path / "cache")}
    src = write_tree(tmp_path / "src", {"a.txt": b"hello"})
    runner = CliRunner()
    committed = runner.invoke(cli, ["--store", url, "commit", "ds", str(src), "-m", "first"], env=env)
    assert committed.exit_code == 0, committed.output
    pulled = runner.invoke(cli, ["--store", url, "pull", "ds@1", str(tmp_path / "out")], env=env)
    assert pulled.exit_code == 0, pulled.output
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"hello"
    logged = runner.invoke(cli, ["--store", url, "log", "ds"], env=env)
    assert logged.exit_code == 0 and "first" in logged.output, logged.output
    assert azurite.env()["GITFREE_AZURE_ACCOUNT_KEY"] not in committed.output + pulled.output + logged.output
    bad = runner.invoke(cli, ["--store", "az://Bad_Name/x", "log", "ds"], env=env)
    assert bad.exit_code != 0 and len(bad.output.strip().splitlines()) == 1, bad.output


@pytest.mark.parametrize("op", ["create", "replace"])
def test_a_service_dropping_a_condition_is_refused(az_store: Callable[..., Store], tmp_path: Path, op: str) -> None:
    """As if a proxy in front of Azure stripped If-None-Match / If-Match: the probe refuses, nothing is written."""
    store = az_store()
    with Faults(store) as faults:
        faults.drop_condition(op)
        with pytest.raises(ConfigError, match="ignores 'If-"):
            store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    assert store.datasets() == []
    assert not list(store.backend.list("probes/"))


def test_two_workers_racing_for_a_new_tag(az_store: Callable[..., Store], tmp_path: Path) -> None:
    """Both create the same tag at once: one wins, the other gets ConflictError; the tag names the winner."""
    from gitfree.versioning.errors import ConflictError

    store = az_store()
    for i in range(2):
        store.commit("ds", write_tree(tmp_path / f"v{i}", {"a": f"{i}".encode()}))
    workers = [az_store(), az_store()]
    outcomes: list[object] = []
    barrier = threading.Barrier(2)

    def tag(i: int) -> None:
        barrier.wait()
        try:
            outcomes.append(workers[i].tag(f"ds@{i + 1}", "prod").number)
        except ConflictError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=tag, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = [o for o in outcomes if isinstance(o, int)]
    assert len(won) == 1 and sum(isinstance(o, ConflictError) for o in outcomes) == 1, outcomes
    assert store.resolve("ds@prod").number == won[0]


def test_a_write_without_an_answer_is_outcome_unknown_and_a_refused_connection_a_config_error() -> None:
    """A server that takes the request and never answers: the write may have happened (OutcomeUnknown);
    nothing listening at all: one line saying the endpoint cannot be reached."""
    from gitfree.versioning.backends import OutcomeUnknown

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        settings = StoreSettings(
            store="az://box/x",
            endpoint_url=f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}",
            azure_account_name=AZURITE_ACCOUNT,
            azure_account_key="S2V5",
            read_timeout=0.3,
            retries=0,
        )
        with pytest.raises(OutcomeUnknown):
            open_backend(settings).create("k", b"1")
    with pytest.raises(ConfigError, match="cannot reach the Azure endpoint"):
        open_backend(settings).create("k", b"1")  # the port is closed now
