"""The ``GitfreeStore`` block on Azure Blob and GCS: real flows on the Prefect test server, against real Azurite and
fake-gcs-server (tests/conftest.py's ``azurite`` and ``fake_gcs``), through blocks saved on that server."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path
from typing import Any, cast

import pytest
from helpers import read_tree, write_tree
from on_prefect.prefect_helpers import committed_events, read_artifacts, wait_for
from prefect import flow
from prefect.client.orchestration import get_client

from gitfree.tasks import GitfreeStore, artifact_key, commit_dataset, pull_dataset
from gitfree.testing import AZURITE_ACCOUNT, AZURITE_KEY, Azurite, FakeGCS
from gitfree.versioning import ConfigError

FILES = {"a.csv": b"x,1\n", "deep/b.bin": bytes(range(256)) * 8}


def _document(name: str) -> Any:
    """The block document as Prefect's API serves it (no ``include_secrets``): what the UI shows."""
    with get_client(sync_client=True) as client:
        return client.read_block_document_by_name(name, block_type_slug="gitfree-store", include_secrets=False)


def _commit_and_pull(name: str, dataset: str, tmp_path: Path) -> tuple[int, str]:
    """A flow that loads the saved block, commits FILES through it and pulls the version back."""

    @flow(log_prints=True)
    def round_trip() -> tuple[int, str]:
        block = cast(GitfreeStore, GitfreeStore.load(name))
        print(f"using {block!r}")
        version = commit_dataset(dataset, write_tree(tmp_path / "src", FILES), store=block, message="via a block")
        pulled = pull_dataset(version.ref, tmp_path / "out", store=block)
        return pulled.number, str(version.ref)

    return round_trip()


def _flow_run_logs() -> str:
    with get_client(sync_client=True) as client:
        return "\n".join(log.message for log in client.read_logs(limit=200))


def _nothing_shows(secret: str, dataset: str, caplog: pytest.LogCaptureFixture) -> None:
    """``secret`` is in no log line (this process's, the server's), artifact or event of ``dataset``."""
    assert not [r for r in caplog.records if secret in r.getMessage()]
    assert secret not in _flow_run_logs()
    artifacts = read_artifacts(artifact_key(dataset))
    assert artifacts
    assert secret not in json.dumps([a.model_dump(mode="json") for a in artifacts])
    assert secret not in json.dumps([e.model_dump(mode="json") for e in committed_events(dataset)])


@pytest.mark.parametrize("way", ["account_key", "connection_string"])
def test_a_flow_commits_and_pulls_through_a_block_on_azurite(
    azurite: Azurite, way: str, dataset: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"az://{azurite.container}/prefect-{uuid.uuid4().hex[:8]}"
    if way == "account_key":
        credentials: dict[str, Any] = {
            "endpoint_url": azurite.endpoint,
            "azure_account_name": AZURITE_ACCOUNT,
            "azure_account_key": AZURITE_KEY,
        }
    else:
        credentials = {
            "azure_connection_string": f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
            f"AccountKey={AZURITE_KEY};BlobEndpoint={azurite.endpoint};"
        }
    name = f"az-{way.replace('_', '-')}-{dataset}"
    GitfreeStore(url=url, cache_dir=str(tmp_path / "cache"), **credentials).save(name)

    assert _commit_and_pull(name, dataset, tmp_path) == (1, f"{dataset}@1")
    assert read_tree(tmp_path / "out") == FILES

    # The saved block holds the secret as a Prefect secret: the API (and so the UI) serves it obfuscated.
    field = f"azure_{way}"
    document = _document(name)
    assert AZURITE_KEY not in json.dumps(document.data)
    assert set(str(document.data[field])) == {"*"}, document.data[field]
    assert field in GitfreeStore._to_block_schema().fields["secret_fields"]
    loaded = cast(GitfreeStore, GitfreeStore.load(name))
    assert AZURITE_KEY in getattr(loaded, field).get_secret_value()  # loaded by a worker, it is the real value
    assert AZURITE_KEY not in repr(loaded) + str(loaded)
    _nothing_shows(AZURITE_KEY, dataset, caplog)


def test_a_flow_commits_and_pulls_through_a_block_on_fake_gcs(
    fake_gcs: FakeGCS, dataset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)  # the block alone says where the emulator is
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    url = f"gs://{fake_gcs.bucket}/prefect-{uuid.uuid4().hex[:8]}"
    name = f"gs-{dataset}"
    GitfreeStore(
        url=url, endpoint_url=fake_gcs.endpoint, gcs_project="gitfree-tests", cache_dir=str(tmp_path / "cache")
    ).save(name)

    assert _commit_and_pull(name, dataset, tmp_path) == (1, f"{dataset}@1")
    assert read_tree(tmp_path / "out") == FILES
    assert cast(GitfreeStore, GitfreeStore.load(name)).get_store().show(dataset).message == "via a block"


def _service_account_key() -> str:
    """A real RSA service-account key whose token_uri is a closed loopback port (never used here)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "gitfree-tests",
            "private_key_id": "0",
            "private_key": pem,
            "client_email": "nobody@gitfree-tests.iam.gserviceaccount.com",
            "token_uri": f"http://127.0.0.1:{port}/token",
        }
    )


def test_a_service_account_key_is_a_prefect_secret(dataset: str, tmp_path: Path) -> None:
    key = _service_account_key()
    private = json.loads(key)["private_key"]
    name = f"gs-key-{dataset}"
    GitfreeStore(url="gs://some-bucket/versions", gcs_credentials=key, cache_dir=str(tmp_path / "c")).save(name)

    document = _document(name)
    assert private not in json.dumps(document.data)
    assert "nobody@gitfree-tests" not in json.dumps(document.data)  # the whole JSON is the secret
    loaded = cast(GitfreeStore, GitfreeStore.load(name))
    assert private not in repr(loaded)
    settings = loaded.store_settings()
    assert settings.gcs_credentials is not None and settings.gcs_credentials.get_secret_value() == key
    assert private not in repr(settings)
    assert settings.gcs_settings({})["project"] == "gitfree-tests"  # the key's project_id


@pytest.mark.parametrize(
    ("url", "given", "named"),
    [
        ("gs://b/p", {"azure_account_key": "K"}, "azure_account_key (az:// stores only)"),
        ("az://c/p", {"gcs_credentials": "{}"}, "gcs_credentials (gs:// stores only)"),
        ("az://c/p", {"access_key_id": "AKIA", "secret_access_key": "S"}, "access_key_id (s3:// and local stores"),
        ("s3://b/p", {"azure_sas_token": "sv=1"}, "azure_sas_token (az:// stores only)"),
        ("gs://b/p", {"aws_credentials": {"aws_access_key_id": "AKIA"}}, "aws_credentials (s3:// and local stores"),
        ("file:///srv/store", {"gcs_project": "p"}, "gcs_project (gs:// stores only)"),
    ],
)
def test_credentials_of_another_service_are_one_clear_error(url: str, given: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match="does not use") as raised:
        GitfreeStore(url=url, **given)
    message = str(raised.value)
    assert named in message and url in message and "\n" not in message
    for value in given.values():
        assert f"'{value}'" not in message


def test_a_store_from_gitfree_store_is_checked_when_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITFREE_STORE", "gs://b/p")
    block = GitfreeStore(azure_account_name="acct", azure_account_key="K")  # no url: known only when opened
    with pytest.raises(ConfigError, match=r"azure_account_name \(az:// stores only\), azure_account_key"):
        block.get_store()
    # the right service's credentials pass the check (the store itself is not reached here)
    assert GitfreeStore(url="az://c/p", azure_account_name="acct").store_settings().azure_account_name == "acct"


def test_the_event_of_a_version_by_reference_names_its_source(dataset: str, tmp_path: Path) -> None:
    """``version_event`` adds ``source`` for a version by reference: the Prefect event (and Airflow's asset event)."""
    from gitfree import Store

    store = Store((tmp_path / "store").as_uri(), cache_dir=tmp_path / "cache")
    source = write_tree(tmp_path / "shared", FILES)

    @flow
    def import_in_place() -> int:
        return commit_dataset(dataset, str(source), store=store, by_reference=True).number

    assert import_in_place() == 1
    [event] = wait_for(lambda: committed_events(dataset))
    assert event.payload["source"] == store.show(f"{dataset}@1").reference.source  # type: ignore[union-attr]
    assert str(source) in event.payload["source"]
