"""The ``GitfreeStore`` block had one schema where prefect-aws was installed and another where it was not.

Issue 14: ``aws_credentials`` was declared only when ``import prefect_aws`` worked, so the block's schema
(and its checksum, which Prefect keys block schemas by) depended on the machine: a block saved with
AwsCredentials on one machine lost its credentials where prefect-aws was missing, and every
registration from the other kind of machine made a new schema. Now the field is always there, with a
schema of gitfree's own (the AWS field names of an ``AwsCredentials`` block); an ``AwsCredentials`` block
is still accepted, saved as a reference to it, and loads as one where prefect-aws is installed.

"Without prefect-aws" is a subprocess in which ``import prefect_aws`` fails (``sys.modules`` entry None).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import cast

import pytest

pytest.importorskip("prefect", reason="install the prefect extra: pip install -e '.[dev,prefect]'")

from helpers import write_tree
from prefect.settings import PREFECT_API_URL

from gitfree.tasks import GitfreeStore
from gitfree.testing import SeaweedFS

_SCHEMA = """
import json, sys
if sys.argv[1] == "without":
    sys.modules["prefect_aws"] = None  # import prefect_aws raises ImportError
from gitfree.tasks import GitfreeStore
schema = GitfreeStore.model_json_schema()
print(json.dumps({"checksum": GitfreeStore._calculate_schema_checksum(), "schema": schema}, sort_keys=True))
"""


def _schema(prefect_aws: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", _SCHEMA, prefect_aws], capture_output=True, text=True, timeout=120, check=True
    )
    loaded: dict[str, object] = json.loads(result.stdout)
    return loaded


def test_the_schema_is_the_same_with_and_without_prefect_aws() -> None:
    pytest.importorskip("prefect_aws")
    with_aws, without_aws = _schema("with"), _schema("without")
    assert with_aws == without_aws
    schema = without_aws["schema"]
    assert isinstance(schema, dict)
    assert "aws_credentials" in schema["properties"]
    # the credentials' secrets are secret fields of the block (obfuscated by the server), on either machine
    assert {"aws_credentials.aws_secret_access_key", "aws_credentials.aws_session_token"} <= set(
        schema["secret_fields"]
    )


@pytest.fixture(scope="module")
def _prefect_server(prefect_harness: None) -> None:
    """The process's temporary Prefect server (tests/conftest.py's ``prefect_harness``) for this module."""


_LOAD_AND_COMMIT = """
import sys
if sys.argv[1] == "without":
    sys.modules["prefect_aws"] = None
from gitfree.tasks import GitfreeStore
block = GitfreeStore.load(sys.argv[2])
print(type(block.aws_credentials).__name__)
print(block.get_store().commit(sys.argv[3], sys.argv[4]).ref)
"""


@pytest.mark.usefixtures("_prefect_server")
def test_a_block_saved_with_aws_credentials_works_where_prefect_aws_is_missing(
    seaweedfs: SeaweedFS, s3_url: str, tmp_path: Path
) -> None:
    prefect_aws = pytest.importorskip("prefect_aws")
    from prefect_aws.client_parameters import AwsClientParameters

    name = f"t-{uuid.uuid4().hex[:10]}"
    prefect_aws.AwsCredentials(
        aws_access_key_id=seaweedfs.access_key,
        aws_secret_access_key=seaweedfs.secret_key,
        region_name="us-east-1",
        aws_client_parameters=AwsClientParameters(endpoint_url=seaweedfs.endpoint),
    ).save(f"aws-{name}")
    GitfreeStore(
        url=s3_url, cache_dir=str(tmp_path / "cache"), aws_credentials=prefect_aws.AwsCredentials.load(f"aws-{name}")
    ).save(f"store-{name}")

    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    for where, kind, number in (("without", "AwsCredentialsValues", 1), ("with", "AwsCredentials", 2)):
        source = write_tree(tmp_path / where, {"f": where.encode()})
        result = subprocess.run(
            [sys.executable, "-c", _LOAD_AND_COMMIT, where, f"store-{name}", "demo", str(source)],
            capture_output=True,
            text=True,
            timeout=180,
            env=env,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.split() == [kind, f"demo@{number}"]
        assert seaweedfs.secret_key not in result.stdout + result.stderr


@pytest.mark.usefixtures("_prefect_server")
def test_the_secrets_of_nested_credentials_are_not_served(s3_url: str) -> None:
    """The server hides the secret access key of a saved AwsCredentials block (a reference, served with that
    block's own schema) and, for credentials given inline, now also their session token (prefect-aws's
    schema does not call it secret: the server served it before)."""
    from prefect.client.orchestration import get_client

    prefect_aws = pytest.importorskip("prefect_aws")
    name = f"t-{uuid.uuid4().hex[:10]}"
    prefect_aws.AwsCredentials(
        aws_access_key_id="AKIAREF", aws_secret_access_key="ref-s3cret", aws_session_token="ref-t0ken"
    ).save(f"aws-{name}")
    referenced = prefect_aws.AwsCredentials.load(f"aws-{name}")
    GitfreeStore(url=s3_url, aws_credentials=referenced).save(f"ref-{name}")
    inline = prefect_aws.AwsCredentials(
        aws_access_key_id="AKIAINL", aws_secret_access_key="inline-s3cret", aws_session_token="inline-t0ken"
    )
    GitfreeStore(url=s3_url, aws_credentials=inline).save(f"inline-{name}")

    with get_client(sync_client=True) as client:
        for doc_name, secrets in (
            (f"ref-{name}", ("ref-s3cret",)),  # the referenced block's own schema: its token is not secret
            (f"inline-{name}", ("inline-s3cret", "inline-t0ken")),
        ):
            served = client.read_block_document_by_name(doc_name, "gitfree-store", include_secrets=False)
            text = json.dumps(served.data, default=str)
            assert not [secret for secret in secrets if secret in text], text
    for doc_name, key_id in ((f"ref-{name}", "AKIAREF"), (f"inline-{name}", "AKIAINL")):
        loaded = cast(GitfreeStore, GitfreeStore.load(doc_name))
        assert loaded.store_settings().access_key_id == key_id
        assert "s3cret" not in repr(loaded)
