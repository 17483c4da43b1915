"""What is Azure's own, on a real Azurite blob service (``azurite`` fixture), no mocks: its conditions (409 for a
failed create, 412 for a failed swap), container names, credentials and their sources, a server that never answers.

The shared suites run on Azurite too (``pytest.mark.kinds(*ALL_KINDS)``, ``make_store("az")``): round trips in
test_store.py, lost answers and dropped conditions in test_protocol.py and test_faults.py, writers, kills and tag
races in test_reliability.py, corrupted objects in test_integrity.py, bad input in test_bad_input.py, the CLI in
test_cli.py."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import write_tree

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


def test_cli_says_a_bad_container_name_in_one_line_and_never_prints_the_key(azurite: Azurite, tmp_path: Path) -> None:
    env = {**azurite.env(), "GITFREE_CACHE_DIR": str(tmp_path / "cache")}
    runner = CliRunner()
    logged = runner.invoke(cli, ["--store", f"az://{azurite.container}/cli", "-vv", "log", "ds"], env=env)
    assert logged.exit_code == 3 and "does not exist" in logged.output, logged.output
    bad = runner.invoke(cli, ["--store", "az://Bad_Name/x", "log", "ds"], env=env)
    assert bad.exit_code == 2 and len(bad.output.strip().splitlines()) == 1, bad.output
    assert azurite.env()["GITFREE_AZURE_ACCOUNT_KEY"] not in logged.output + bad.output


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
        open_backend(settings).create("k", b"1")  # the port is closed now (test_bad_input.py: of a Store)


@pytest.mark.parametrize("op", ["create", "replace"])
def test_a_service_dropping_a_condition_is_refused_in_azures_words(
    az_store: Callable[..., Store], tmp_path: Path, op: str
) -> None:
    """As if a proxy in front of Azure stripped If-None-Match / If-Match: refused, nothing written, and the error
    says what to use in Azure's terms, not S3's (tests/test_faults.py runs the rest on every kind of store)."""
    store = az_store()
    with Faults(store) as faults:
        faults.drop_condition(op)
        with pytest.raises(ConfigError, match="ignores 'If-") as caught:
            store.commit("ds", write_tree(tmp_path / "src", {"a": b"1"}))
    assert "Use Azure Blob Storage itself, or Azurite." in str(caught.value) and "S3" not in str(caught.value)
    assert store.datasets() == []
