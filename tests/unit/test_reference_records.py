"""The reference table's record (docs/design.md, "Versions by reference"): what a table may hold."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gitfree.versioning.models import References

MD5 = "0" * 32
S3 = {"path": "a.csv", "md5": MD5, "size": 3, "etag": MD5, "version_id": "3HL4kqtJlcpXroDTDmJ"}
FILE = {"path": "a.csv", "md5": MD5, "size": 3, "mtime_ns": 1, "inode": 2, "device": 3}
AZ = {"path": "a.csv", "md5": MD5, "size": 3, "etag": "0x8DC2F1A2B3C4D5E"}
GS = {"path": "a.csv", "md5": MD5, "size": 3, "etag": "CJ+K2pPe/4kDEAE=", "version_id": "1796221473059801"}


def table(kind: str = "s3", **changes: Any) -> dict[str, Any]:
    source = "s3://b/p/" if kind == "s3" else "file:///shared/p/"
    base: dict[str, Any] = {"source": source, "kind": kind, "entries": [S3 if kind == "s3" else FILE]}
    return {**base, **changes}


def test_s3_and_file_tables_parse_and_are_frozen() -> None:
    for kind in ("s3", "file"):
        parsed = References.model_validate(table(kind))
        assert parsed.format == 1
        with pytest.raises(ValidationError):
            parsed.kind = "file" if kind == "s3" else "s3"  # type: ignore[misc]


@pytest.mark.parametrize(
    "bad",
    [
        table(source="s3://b/p"),  # a prefix must be a folder: p/ and never every key starting with p
        table(entries=[]),
        table(entries=[S3, S3]),
        table(entries=[{**S3, "path": "b"}, {**S3, "path": "a"}]),
        table(entries=[{**S3, "etag": None}]),
        table(entries=[{**S3, "inode": 1}]),
        table(entries=[{**S3, "version_id": "null"}]),
        table("file", entries=[{**FILE, "inode": None}]),
        table("file", entries=[{**FILE, "etag": MD5}]),
        table(entries=[{**S3, "md5": "x" * 32}]),
        table(entries=[{**S3, "size": -1}]),
        table(entries=[{**S3, "owner": "me"}]),
        {**table(), "format": 2},
        {**table(), "kind": "gs"},  # an S3 VersionId is no generation
        {**table(), "kind": "hdfs"},
        {"source": "gs://b/p/", "kind": "gs", "entries": [{**GS, "version_id": None}]},  # no generation: no pin
        {"source": "gs://b/p/", "kind": "gs", "entries": [{**GS, "inode": 1}]},
        {"source": "az://c/p/", "kind": "az", "entries": [{**AZ, "etag": None}]},
        {"source": "az://c/p/", "kind": "az", "entries": [FILE]},
    ],
)
def test_a_table_that_does_not_hold_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        References.model_validate(bad)


def test_azure_and_gcs_tables_parse() -> None:
    """An az table's entries are as S3's (ETag, a versionId when the account keeps versions); a gs table's hold
    the generation, which pins the bytes, in ``version_id``."""
    az = References.model_validate({"source": "az://c/p/", "kind": "az", "entries": [AZ]})
    gs = References.model_validate({"source": "gs://b/p/", "kind": "gs", "entries": [GS]})
    assert (az.entries[0].etag, az.entries[0].version_id) == ("0x8DC2F1A2B3C4D5E", None)
    assert gs.entries[0].version_id == "1796221473059801"
