"""An S3 ETag is taken for the md5 of the bytes only when it is one (docs/design.md, "Versions by reference")."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitfree.versioning import layout


@given(st.binary(max_size=256))
def test_a_single_part_etag_is_the_md5_quoted_or_not(data: bytes) -> None:
    md5 = hashlib.md5(data).hexdigest()
    assert layout.md5_of_etag(f'"{md5}"', encrypted=False) == md5
    assert layout.md5_of_etag(md5, encrypted=False) == md5
    assert layout.md5_of_etag(f'"{md5.upper()}"', encrypted=False) == md5


@pytest.mark.parametrize(
    "etag",
    [
        '"9dc2b5968307ce171ec8a2a9251a60d9-1"',  # SeaweedFS's multipart ETag of one part
        '"9dc2b5968307ce171ec8a2a9251a60d9-12"',
        "9dc2b5968307ce171ec8a2a9251a60d9-3",
        '"9dc2b5968307ce171ec8a2a9251a60d"',  # 31 digits
        '"9dc2b5968307ce171ec8a2a9251a60d90"',  # 33
        '"zzc2b5968307ce171ec8a2a9251a60d9"',
        '"9dc2b5968307ce171ec8a2a9251a60d9',  # one quote
        "",
        '""',
        '"',
        'W/"9dc2b5968307ce171ec8a2a9251a60d9"',  # a weak ETag names no bytes
    ],
)
def test_anything_but_a_plain_md5_is_no_md5(etag: str) -> None:
    assert layout.md5_of_etag(etag, encrypted=False) is None


def test_an_encrypted_objects_etag_is_no_md5_even_when_it_looks_like_one() -> None:
    md5 = hashlib.md5(b"x").hexdigest()
    assert layout.md5_of_etag(f'"{md5}"', encrypted=True) is None
