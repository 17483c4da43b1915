"""AWS's credential names were mapped to gitfree's settings four times (the Prefect block, the Airflow hook
twice, the ingestion flow), each with its own precedence and its own idea of an empty value.

Issue 14: now ``gitfree.versioning.AWS_NAMES`` is the one mapping and ``StoreSettings.from_aws`` the one
precedence: gitfree's names win over AWS's, ``None`` and ``""`` are unset on either side, what neither
gives comes from ``GITFREE_*``; ``StoreSettings.s3fs_options`` is the way back to s3fs's names. The
block and the ingestion are covered by their own regression tests, the hook by tests/on_airflow.
"""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from gitfree.versioning import AWS_NAMES, InputError, StoreSettings


def test_aws_names_map_to_settings_and_gitfree_names_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITFREE_PROFILE", "from-env")
    aws = {
        "aws_access_key_id": "AKIA-AWS",
        "aws_secret_access_key": SecretStr("aws-s3cret"),
        "aws_session_token": "aws-t0ken",
        "region_name": "eu-west-1",
        "profile_name": "",
        "endpoint_url": "http://127.0.0.1:8333",
        "verify": False,  # not a credential: ignored
    }
    settings = StoreSettings.from_aws(aws, store="s3://b/p", region="us-east-2", session_token="")
    assert set(AWS_NAMES.values()) <= set(StoreSettings.model_fields)
    assert settings.access_key_id == "AKIA-AWS"
    assert settings.secret_access_key is not None and settings.secret_access_key.get_secret_value() == "aws-s3cret"
    assert settings.session_token is not None and settings.session_token.get_secret_value() == "aws-t0ken"
    assert settings.region == "us-east-2"  # gitfree's name wins
    assert settings.profile == "from-env"  # empty on both sides: the environment
    assert settings.s3fs_options() == {
        "endpoint_url": "http://127.0.0.1:8333",
        "key": "AKIA-AWS",
        "secret": "aws-s3cret",
        "token": "aws-t0ken",
        "profile": "from-env",
        "client_kwargs": {"region_name": "us-east-2"},
    }


def test_a_malformed_setting_is_an_input_error_without_its_value() -> None:
    with pytest.raises(InputError, match=r"^invalid store settings: jobs: ") as caught:
        StoreSettings.from_aws({"aws_secret_access_key": "s3cret-value"}, jobs="many-s3cret-value")
    assert "s3cret" not in str(caught.value)
    with pytest.raises(InputError, match="invalid store settings: bucket: Extra inputs are not permitted"):
        StoreSettings.from_aws(bucket="b")
