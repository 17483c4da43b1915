"""What is Google Cloud Storage's own, on a real fake-gcs-server (``fake_gcs`` fixture), no mocks: its generation
preconditions, bucket names, service-account keys and the emulator variable, a server that never answers.

The shared suites run on fake-gcs-server too (``pytest.mark.kinds(*ALL_KINDS)``, ``make_store("gs")``): round
trips in test_store.py, lost answers and dropped conditions in test_protocol.py and test_faults.py, writers, kills
and tag races in test_reliability.py, corrupted objects (and the quick fsck by GCS's md5) in test_integrity.py, bad
input in test_bad_input.py, the CLI in test_cli.py."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from gitfree import Store
from gitfree.cli import cli
from gitfree.testing import FakeGCS
from gitfree.versioning.backends import GCSBackend, KeyExists, KeyMissing, PreconditionFailed, open_backend
from gitfree.versioning.config import StoreSettings
from gitfree.versioning.errors import ConfigError, InputError

# A service-account key of the right shape whose private key is a real RSA key made for this test file only
# (no account has it): google-auth signs with it, and the server denies the token it makes.
_KEY = {
    "type": "service_account",
    "project_id": "gitfree-tests",
    "private_key_id": "0",
    "client_email": "nobody@gitfree-tests.iam.gserviceaccount.com",
    "client_id": "0",
}


def _backend(server: FakeGCS, prefix: str) -> GCSBackend:
    backend = open_backend(StoreSettings(store=f"gs://{server.bucket}/{prefix}", **server.store_options()))
    assert isinstance(backend, GCSBackend)
    return backend


def test_conditions_are_gcs_generation_preconditions(fake_gcs: FakeGCS) -> None:
    backend = _backend(fake_gcs, "conditions")
    generation = backend.create("k", b"1")
    assert generation.isdigit()
    with pytest.raises(KeyExists):  # ifGenerationMatch=0 answered 412
        backend.create("k", b"2")
    new = backend.replace("k", b"3", generation)
    with pytest.raises(PreconditionFailed):  # a stale generation answered 412
        backend.replace("k", b"4", generation)
    with pytest.raises(PreconditionFailed):  # a swap of a missing object is no create
        backend.replace("gone", b"5", new)
    for not_a_generation in ("0", "W/abc", ""):  # ifGenerationMatch=0 would be a create: never sent for a swap
        with pytest.raises(PreconditionFailed):
            backend.replace("gone", b"6", not_a_generation)
    assert not backend.exists("gone")
    assert backend.get("k") == (b"3", new)
    with pytest.raises(KeyMissing):
        backend.get("gone")
    assert backend.get_range("k", 0, 10) == b"3" and backend.get_range("k", 1, 10) == b""
    assert backend.size("k") == 1 and backend.md5("k") == ("eccbc87e4b5ce2fe28308fd9f2a7baf3", 1)
    assert [(info.key, info.etag) for info in backend.scan("")] == [("k", "eccbc87e4b5ce2fe28308fd9f2a7baf3")]
    backend.probe_conditional_writes()
    backend.delete("k")
    backend.delete("k")  # a missing key is no error
    assert not backend.exists("k")


def test_a_write_without_an_answer_is_outcome_unknown_and_a_refused_connection_a_config_error() -> None:
    """A server that takes the request and never answers: the write may have happened (OutcomeUnknown);
    nothing listening at all: one line saying the endpoint cannot be reached."""
    from gitfree.versioning.backends import OutcomeUnknown

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        settings = StoreSettings(
            store="gs://box/x", endpoint_url=f"http://127.0.0.1:{port}", read_timeout=0.3, retries=0
        )
        with pytest.raises(OutcomeUnknown):
            open_backend(settings).create("k", b"1")
    with pytest.raises(ConfigError, match="cannot reach the Google Cloud Storage endpoint"):
        open_backend(settings).create("k", b"1")  # the port is closed now


def test_bad_urls_and_missing_credentials_say_what_to_do(fake_gcs: FakeGCS, tmp_path: Path) -> None:
    options = fake_gcs.store_options()
    for bad in ("Bad_Name", "ab", "-ab", "goog-data", "192.168.1.1", "a" * 64, "a..b"):
        with pytest.raises(InputError, match="not a Google Cloud Storage bucket name"):
            Store(f"gs://{bad}/x", cache_dir=tmp_path, **options)
    for prefix in ("../x", "a//b", "a/./b"):
        with pytest.raises(InputError, match=r"no empty, '\.' or"):
            Store(f"gs://{fake_gcs.bucket}/{prefix}", cache_dir=tmp_path, **options)
    with pytest.raises(InputError, match="holds credentials") as caught:
        Store("gs://user:s3cret@box/x", cache_dir=tmp_path)
    assert "s3cret" not in str(caught.value)
    with pytest.raises(ConfigError, match="no Google Cloud credentials"):
        Store("gs://box/x", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="cannot be read"):
        Store("gs://box/x", cache_dir=tmp_path, gcs_credentials=str(tmp_path / "missing.json"))


def _service_account_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    # token_uri on a closed loopback port: the key is never sent anywhere but 127.0.0.1
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    return json.dumps({**_KEY, "private_key": pem, "token_uri": f"http://127.0.0.1:{port}/token"})


def test_a_service_account_key_is_read_and_never_printed(fake_gcs: FakeGCS, tmp_path: Path) -> None:
    key = _service_account_key()
    path = tmp_path / "key.json"
    path.write_text(key)
    found = StoreSettings().gcs_settings({"GOOGLE_APPLICATION_CREDENTIALS": str(path), "STORAGE_EMULATOR_HOST": "h:1"})
    assert found == {"key": key, "endpoint": "http://h:1", "project": "gitfree-tests"}
    own = StoreSettings(gcs_credentials=key, endpoint_url="https://gcs.internal", gcs_project="p1")
    env = {
        "GOOGLE_APPLICATION_CREDENTIALS": "/elsewhere.json",
        "STORAGE_EMULATOR_HOST": "h:1",
        "GOOGLE_CLOUD_PROJECT": "p2",
    }
    assert own.gcs_settings(env) == {"key": key, "endpoint": "https://gcs.internal", "project": "p1"}  # gitfree's win
    store = Store(
        f"gs://{fake_gcs.bucket}/keyed", cache_dir=tmp_path / "c", gcs_credentials=str(path), **fake_gcs.store_options()
    )
    with pytest.raises(ConfigError) as caught:  # its token cannot be had: one line, no key in it
        store.log("ds")
    private = json.loads(key)["private_key"]
    assert private.splitlines()[1] not in str(caught.value) and "\n" not in str(caught.value)
    assert private.splitlines()[1] not in repr(store.settings)
    not_a_key = tmp_path / "other.json"
    not_a_key.write_text('{"type": "authorized_user", "refresh_token": "r3fresh"}')
    with pytest.raises(ConfigError, match="not a service-account JSON key") as caught:
        Store("gs://box/x", cache_dir=tmp_path, gcs_credentials=str(not_a_key))
    assert "r3fresh" not in str(caught.value)


def test_cli_says_a_bad_bucket_name_in_one_line(fake_gcs: FakeGCS, tmp_path: Path) -> None:
    env = {**fake_gcs.env(), "GITFREE_CACHE_DIR": str(tmp_path / "cache")}
    bad = CliRunner().invoke(cli, ["--store", "gs://Bad_Name/x", "log", "ds"], env=env)
    assert bad.exit_code == 2 and len(bad.output.strip().splitlines()) == 1, bad.output
