"""Source options (docs/design.md, "Source options"): how an endpoint is named, what the options read from
GITFREE_SOURCE_*, that they never borrow the store's credentials, and the table's ``endpoint`` field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gitfree import SourceOptions
from gitfree.versioning import ConfigError, InputError, StoreSettings
from gitfree.versioning.config import AWS_ENDPOINT, endpoint_id
from gitfree.versioning.models import References

MD5 = "0" * 32
S3 = {"path": "a.csv", "md5": MD5, "size": 3, "etag": MD5}
FILE = {"path": "a.csv", "md5": MD5, "size": 3, "mtime_ns": 1, "inode": 2, "device": 3}


@pytest.mark.parametrize(
    ("url", "named"),
    [
        (None, AWS_ENDPOINT),
        ("", AWS_ENDPOINT),
        ("http://127.0.0.1:8333", "http://127.0.0.1:8333"),
        ("HTTP://MinIO.Lab:9000/", "http://minio.lab:9000"),
        ("https://s3.example.com:443", "https://s3.example.com"),
        ("http://s3.example.com:80/", "http://s3.example.com"),
        ("https://gw.example.com/s3/", "https://gw.example.com/s3"),
    ],
)
def test_an_endpoint_is_named_the_same_by_every_worker(url: str | None, named: str) -> None:
    assert endpoint_id(url) == named


def test_source_options_come_from_gitfree_source_variables_and_never_show_a_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert SourceOptions.from_env() is None
    monkeypatch.setenv("GITFREE_SOURCE_ENDPOINT_URL", "http://minio.lab:9000/")
    monkeypatch.setenv("GITFREE_SOURCE_ACCESS_KEY_ID", "reader")
    monkeypatch.setenv("GITFREE_SOURCE_SECRET_ACCESS_KEY", "very-secret")
    options = SourceOptions.from_env()
    assert options is not None and options.endpoint() == "http://minio.lab:9000"
    assert "very-secret" not in repr(options) + str(options) + str(options.model_dump())


def test_source_options_never_borrow_the_stores_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's GITFREE_* keys and endpoint are not the source's: what the options do not give is unset."""
    monkeypatch.setenv("GITFREE_ENDPOINT_URL", "http://store:8333")
    monkeypatch.setenv("GITFREE_ACCESS_KEY_ID", "store-key")
    monkeypatch.setenv("GITFREE_SECRET_ACCESS_KEY", "store-secret")
    base = StoreSettings(store="s3://b/p", read_timeout=9.0)
    settings = SourceOptions(endpoint_url="http://source:9000", profile="lab").settings(base)
    assert (settings.endpoint_url, settings.access_key_id, settings.secret_access_key) == (
        "http://source:9000",
        None,
        None,
    )
    assert (settings.profile, settings.read_timeout) == ("lab", 9.0)


def test_a_bad_source_endpoint_names_its_setting() -> None:
    with pytest.raises(ConfigError, match=r"GITFREE_SOURCE_ENDPOINT_URL / --source-endpoint-url"):
        SourceOptions(endpoint_url="minio.lab:9000").endpoint()
    with pytest.raises(ValidationError):
        SourceOptions(endpoint="http://x:1")  # type: ignore[call-arg]


def test_a_bad_gitfree_source_variable_is_an_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A typo is refused (it would otherwise leave the source on the store's endpoint, or send it to AWS)."""
    monkeypatch.setenv("GITFREE_SOURCE_ENDPONT_URL", "http://minio.lab:9000")
    with pytest.raises(InputError) as caught:
        SourceOptions.from_env()
    assert str(caught.value) == (
        "GITFREE_SOURCE_ENDPONT_URL is not a source option: set one of GITFREE_SOURCE_ENDPOINT_URL, "
        "GITFREE_SOURCE_ACCESS_KEY_ID, GITFREE_SOURCE_SECRET_ACCESS_KEY, GITFREE_SOURCE_SESSION_TOKEN, "
        "GITFREE_SOURCE_REGION, GITFREE_SOURCE_PROFILE"
    )


def test_a_table_names_an_endpoint_only_for_s3_and_is_unchanged_without_one() -> None:
    plain = References(source="s3://b/p/", kind="s3", entries=[S3])
    assert b"endpoint" not in plain.data()
    named = References(source="s3://b/p/", kind="s3", entries=[S3], endpoint="http://x:1")
    assert b'"endpoint":"http://x:1"' in named.data()
    with pytest.raises(ValidationError, match="names no S3 endpoint"):
        References(source="file:///p/", kind="file", entries=[FILE], endpoint="http://x:1")
