"""Store settings (gitfree/versioning/config.py): the bounds of every number, the endpoint check,
where a value comes from (argument, GITFREE_*, AWS names, AWS_ENDPOINT_URL*) and that no error
message shows a secret. No store is opened."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from gitfree.versioning.config import AWS_NAMES, StoreSettings, validate_endpoint_url
from gitfree.versioning.errors import ConfigError, InputError

BOUNDS: dict[str, tuple[Any, Any, list[Any]]] = {
    # field: (lowest accepted, highest accepted, refused)
    "jobs": (1, 256, [0, -1, 257]),
    "lease_ttl": (1e-3, 86400.0, [0, -1.0, 86400.1]),
    "clock_skew": (0.0, 86400.0, [-0.1, 86401]),
    "gc_wait": (0.0, 7 * 86400.0, [-1, 7 * 86400 + 1]),
    "commit_attempts": (1, 10**6, [0, -5]),
    "connect_timeout": (1e-3, 3600.0, [0, 3601]),
    "read_timeout": (1e-3, 3600.0, [0, 3601]),
    "transfer_timeout": (1e-3, 86400.0, [0, 86401]),
    "retries": (0, 20, [-1, 21]),
}


@pytest.mark.parametrize("field", sorted(BOUNDS))
def test_numbers_within_their_bounds(field: str) -> None:
    low, high, refused = BOUNDS[field]
    assert getattr(StoreSettings(**{field: low}), field) == low
    assert getattr(StoreSettings(**{field: high}), field) == high
    for value in refused:
        with pytest.raises(ValidationError):
            StoreSettings(**{field: value})


@pytest.mark.parametrize("field", sorted(BOUNDS))
def test_numbers_from_the_environment(field: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _low, high, refused = BOUNDS[field]
    monkeypatch.setenv(f"GITFREE_{field.upper()}", str(high))
    assert getattr(StoreSettings(), field) == high
    monkeypatch.setenv(f"GITFREE_{field.upper()}", str(refused[0]))
    with pytest.raises(ValidationError):
        StoreSettings()


def test_an_unknown_setting_is_refused() -> None:
    with pytest.raises(ValidationError, match="extra"):
        StoreSettings(endpoint="http://x")  # type: ignore[call-arg]


@pytest.mark.parametrize("field", ["store", "endpoint_url", "access_key_id", "region", "profile"])
def test_empty_text_is_unset(field: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert getattr(StoreSettings.model_validate({field: ""}), field) is None
    monkeypatch.setenv(f"GITFREE_{field.upper()}", "")
    assert getattr(StoreSettings(), field) is None


def test_nothing_configured_is_a_local_store_and_cache(tmp_path: Path) -> None:
    settings = StoreSettings()
    assert settings.resolved_store().startswith("file://")
    assert settings.resolved_cache_dir().is_absolute()
    assert settings.resolved_endpoint() is None
    assert settings.s3fs_options() == {}


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8333",
        "https://s3.example.com",
        "HTTP://HOST:1",
        "http://seaweedfs:8333/",
        "http://[::1]:9000",
        "https://minio.internal:443/base/path",
    ],
)
def test_well_formed_endpoints_are_kept(url: str) -> None:
    assert validate_endpoint_url(url) == url


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("127.0.0.1:8333", "needs a scheme"),
        ("localhost", "needs a scheme"),
        ("ftp://host:21", "must start with http:// or https://"),
        ("s3://bucket", "must start with http:// or https://"),
        ("http://", "names no host"),
        ("http://:8333", "names no host"),
        ("http://host:0", "is not a valid URL"),
        ("http://host:99999", "is not a valid URL"),
        ("http://host:port", "is not a valid URL"),
        ("http://host:1?x=1", "is not a valid URL"),
        ("http://host:1#frag", "is not a valid URL"),
        ("http://[::1", "is not a valid URL"),
    ],
)
def test_malformed_endpoints_name_the_setting(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as info:
        validate_endpoint_url(url, "MY_SETTING")
    assert "MY_SETTING" in str(info.value)


@given(st.text(max_size=40))
def test_any_endpoint_text_is_kept_or_a_config_error(url: str) -> None:
    try:
        kept = validate_endpoint_url(url)
    except ConfigError as exc:
        refused = str(exc)
    else:
        refused = ""
        assert kept == url
        assert url.lower().startswith(("http://", "https://"))
    assert not refused or "GITFREE_ENDPOINT_URL" in refused


def test_the_endpoint_comes_from_the_setting_then_aws_s3_then_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://aws:1")
    assert StoreSettings().resolved_endpoint() == "http://aws:1"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://aws-s3:2")
    assert StoreSettings().resolved_endpoint() == "http://aws-s3:2"
    monkeypatch.setenv("GITFREE_ENDPOINT_URL", "http://gitfree:3")
    assert StoreSettings().resolved_endpoint() == "http://gitfree:3"
    assert StoreSettings(endpoint_url="http://argument:4").resolved_endpoint() == "http://argument:4"
    monkeypatch.delenv("GITFREE_ENDPOINT_URL")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "aws-s3:2")
    with pytest.raises(ConfigError, match="AWS_ENDPOINT_URL_S3"):
        StoreSettings().resolved_endpoint()


aws_values = st.fixed_dictionaries({}, optional={name: st.sampled_from(["", "v-" + name]) for name in AWS_NAMES})
gitfree_values = st.fixed_dictionaries(
    {}, optional={field: st.sampled_from(["", None, "g-" + field]) for field in AWS_NAMES.values()}
)


@given(aws_values, gitfree_values)
def test_gitfree_names_win_over_aws_names_and_empty_is_unset(aws: dict[str, str], given_: dict[str, Any]) -> None:
    fields = StoreSettings.fields_from_aws(aws, **given_)
    for aws_name, field in AWS_NAMES.items():
        mine, theirs = given_.get(field), aws.get(aws_name)
        expected = mine if mine else (theirs if theirs else None)
        assert fields.get(field) == expected


def test_other_aws_keys_are_ignored() -> None:
    assert StoreSettings.fields_from_aws({"verify": False, "aws_access_key_id": "AKIA"}) == {"access_key_id": "AKIA"}


@pytest.mark.parametrize(
    ("field", "value"), [("jobs", "many-jobs"), ("lease_ttl", "-1234.5"), ("nope", "nope-value"), ("retries", 9999)]
)
def test_from_aws_errors_name_the_setting_never_its_value(field: str, value: object) -> None:
    with pytest.raises(InputError, match=f"invalid store settings: {field}") as info:
        StoreSettings.from_aws({"aws_secret_access_key": "s3cret-value"}, **{field: value})
    assert "s3cret-value" not in str(info.value)
    assert str(value) not in str(info.value)


def test_secrets_are_not_shown() -> None:
    settings = StoreSettings(access_key_id="AKIA", secret_access_key="s3cret-value", session_token="tok-value")
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert "s3cret-value" not in text and "tok-value" not in text


def test_s3fs_options_reach_s3_as_the_store_does() -> None:
    settings = StoreSettings(
        endpoint_url="http://127.0.0.1:8333",
        access_key_id="AKIA",
        secret_access_key="s3cret",
        session_token="tok",
        region="eu-west-1",
        profile="ml",
    )
    assert settings.s3fs_options() == {
        "endpoint_url": "http://127.0.0.1:8333",
        "key": "AKIA",
        "secret": "s3cret",
        "token": "tok",
        "profile": "ml",
        "client_kwargs": {"region_name": "eu-west-1"},
    }
    # A key without its secret is not passed: s3fs then uses the AWS chain, as the store does.
    assert "key" not in StoreSettings(access_key_id="AKIA").s3fs_options()


@pytest.mark.parametrize(
    ("url", "foreign"),
    [
        ("s3://b/p", ["azure_account_key", "gcs_credentials"]),
        ("S3://b/p", ["azure_account_key", "gcs_credentials"]),
        ("az://c/p", ["access_key_id", "gcs_credentials"]),
        (" az://c/p", ["access_key_id", "gcs_credentials"]),  # as open_backend reads it
        ("gs://b/p", ["access_key_id", "azure_account_key"]),
        ("file:///srv/store", ["azure_account_key", "gcs_credentials"]),
        ("/srv/store", ["azure_account_key", "gcs_credentials"]),
    ],
)
def test_credentials_of_another_service_are_named(url: str, foreign: list[str]) -> None:
    """What an integration refuses (Prefect block, Airflow connection): the credentials the store's service does not
    take; ``endpoint_url`` and the other settings are every service's."""
    given = ["access_key_id", "azure_account_key", "gcs_credentials", "endpoint_url", "cache_dir", "jobs"]
    assert StoreSettings(store=url).foreign_credentials(given) == foreign
