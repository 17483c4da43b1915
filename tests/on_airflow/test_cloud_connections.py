"""Connections to ``az://`` and ``gs://`` stores, without a DAG run: what each field gives, what is refused, what is
masked. (The DAG runs on Azurite and fake-gcs-server are in test_cloud_dags.py.)"""

from __future__ import annotations

import json

import pytest
from on_airflow.airflow_helpers import skip_without_airflow

skip_without_airflow()

from airflow.sdk import Connection  # noqa: E402

from gitfree.airflow.hooks import GitfreeHook, _connection_options  # noqa: E402
from gitfree.versioning import ConfigError  # noqa: E402

KEY = "QUNDT1VOVEtFWS0xMjM0NTY3ODkwYWJjZGVmZ2hpams="  # a test value, not a real key
KEYFILE = {"type": "service_account", "client_email": "a@p.iam.gserviceaccount.com", "private_key": "PEM-XYZ-123"}


def test_an_az_store_takes_the_account_and_key_as_azures_connection_does() -> None:
    conn = Connection(
        conn_id="c",
        conn_type="gitfree",
        host="az://ml-data",
        schema="versions",
        login="acct",
        password=KEY,
        extra=json.dumps({"endpoint_url": "http://127.0.0.1:10000/acct"}),
    )
    assert _connection_options(conn) == {
        "store": "az://ml-data/versions",
        "azure_account_name": "acct",
        "azure_account_key": KEY,
        "endpoint_url": "http://127.0.0.1:10000/acct",
    }
    sas = Connection(conn_id="c", conn_type="gitfree", host="az://ml-data", extra='{"sas_token": "sv=2024&sig=abc"}')
    assert _connection_options(sas)["azure_sas_token"] == "sv=2024&sig=abc"  # noqa: S105 - a test value
    string = "AccountName=acct;AccountKey=K2;BlobEndpoint=http://127.0.0.1:1/acct"
    extra = json.dumps({"connection_string": string})
    conn = Connection(conn_id="c", conn_type="gitfree", host="az://ml-data", extra=extra)
    assert _connection_options(conn) == {"store": "az://ml-data", "azure_connection_string": string}


def test_a_gs_store_takes_the_key_as_googles_connection_does() -> None:
    in_password = Connection(conn_id="c", conn_type="gitfree", host="gs://b/p", password=json.dumps(KEYFILE))
    assert _connection_options(in_password) == {"store": "gs://b/p", "gcs_credentials": json.dumps(KEYFILE)}
    as_dict = Connection(
        conn_id="c", conn_type="gitfree", host="gs://b/p", extra=json.dumps({"keyfile_dict": KEYFILE, "project": "p1"})
    )
    assert json.loads(_connection_options(as_dict)["gcs_credentials"]) == KEYFILE
    assert _connection_options(as_dict)["gcs_project"] == "p1"
    path = Connection(conn_id="c", conn_type="gitfree", host="gs://b/p", extra='{"key_path": "/secrets/sa.json"}')
    assert _connection_options(path)["gcs_credentials"] == "/secrets/sa.json"


def test_the_azure_and_google_providers_connections() -> None:
    wasb = Connection(
        conn_id="wasb_default",
        conn_type="wasb",
        host="http://127.0.0.1:10000/acct",
        login="acct",
        password=KEY,
        extra='{"tenant_id": "ignored"}',
    )
    assert _connection_options(wasb, "az://c/p") == {
        "azure_account_name": "acct",
        "azure_account_key": KEY,
        "endpoint_url": "http://127.0.0.1:10000/acct",
    }
    gcp = Connection(
        conn_id="google_cloud_default",
        conn_type="google_cloud_platform",
        extra=json.dumps({"extra__google_cloud_platform__key_path": "/k.json", "project": "p2", "num_retries": 5}),
    )
    assert _connection_options(gcp, "gs://b/p") == {"gcs_credentials": "/k.json", "gcs_project": "p2"}


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"host": "gs://b/p", "extra": '{"sas_token": "sv=1&sig=2"}'}, "extra sas_token (az:// stores only)"),
        ({"host": "gs://b/p", "login": "acct", "password": "{}"}, "login (s3:// and local stores only)"),
        ({"host": "az://c/p", "extra": '{"project": "p"}'}, "extra project (gs:// stores only)"),
        ({"host": "az://c/p", "extra": '{"region": "eu-west-1"}'}, "extra region (s3:// and local stores only)"),
        ({"host": "b", "extra": '{"connection_string": "AccountKey=K"}'}, "extra connection_string (az:// stores"),
        ({"host": "file:///srv/s", "extra": '{"key_path": "/k.json"}'}, "extra key_path (gs:// stores only)"),
    ],
)
def test_credentials_of_another_service_are_one_clear_error(fields: dict[str, str], named: str) -> None:
    conn = Connection(conn_id="mine", conn_type="gitfree", **fields)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="does not use") as raised:
        _connection_options(conn)
    message = str(raised.value)
    assert named in message and "'mine'" in message and "\n" not in message
    assert "sig=2" not in message and "AccountKey=K" not in message


def test_the_operators_store_decides_which_credentials_apply() -> None:
    """An ``s3://`` connection's keys, and an operator that writes to ``az://`` with it: refused, not ignored."""
    conn = Connection(conn_id="c", conn_type="gitfree", host="b", login="AKIA", password="s3cret")
    assert _connection_options(conn, "s3://other/p")["secret_access_key"] == "s3cret"  # noqa: S105 - a test value
    with pytest.raises(ConfigError, match=r"az://c/p does not use: login \(s3:// and local stores only\), password"):
        _connection_options(conn, "az://c/p")


def test_every_secret_the_hook_reads_is_masked_in_the_logs() -> None:
    from airflow.sdk._shared.secrets_masker import redact

    string = f"DefaultEndpointsProtocol=http;AccountName=acct;AccountKey={KEY};BlobEndpoint=http://127.0.0.1:1/a"
    conn = Connection(conn_id="c", conn_type="gitfree", host="az://c", extra=json.dumps({"connection_string": string}))
    _connection_options(conn)
    assert KEY not in str(redact(f"the key alone: {KEY}"))  # a part of the string, masked by itself
    gcs = Connection(conn_id="c", conn_type="gitfree", host="gs://b", extra=json.dumps({"keyfile_dict": KEYFILE}))
    _connection_options(gcs)
    assert "PEM-XYZ-123" not in str(redact(f"key: {json.dumps(KEYFILE)}"))


def test_the_connection_form_names_the_cloud_fields() -> None:
    behaviour = GitfreeHook.get_ui_field_behaviour()
    assert "account key" in behaviour["relabeling"]["password"]
    assert "az://" in behaviour["placeholders"]["host"] and "gs://" in behaviour["placeholders"]["host"]
