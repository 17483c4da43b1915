import pytest

from gitfree import InputError, parse_ref
from gitfree.versioning.refs import Ref, validate_dataset_name, validate_tag_name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("images", Ref("images", back=0)),
        ("images@latest", Ref("images", back=0)),
        ("images@latest~2", Ref("images", back=2)),
        ("images@7", Ref("images", number=7)),
        ("images@prod", Ref("images", tag="prod")),
        ("raw/sales@2026-q3", Ref("raw/sales", tag="2026-q3")),
        ("a.b_c-d/e@v1.0", Ref("a.b_c-d/e", tag="v1.0")),
    ],
)
def test_parse_ref(text: str, expected: Ref) -> None:
    assert parse_ref(text) == expected


def test_ref_round_trips_to_text() -> None:
    assert str(parse_ref("images@3")) == "images@3"
    assert str(parse_ref("images@latest~1")) == "images@latest~1"
    assert str(parse_ref("images")) == "images@latest"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "@3",
        "Images",
        "images@",
        "images@0",
        "images@-1",
        "images@latest~x",
        "images@Prod",
        "a//b",
        "/a",
        "a/",
        "../x",
        "a b",
        "images@3@4",
        "x/versions",
        "x/tags/y",
        "a/b.json",
    ],
)
def test_malformed_refs_are_refused_with_a_hint(text: str) -> None:
    with pytest.raises(InputError) as info:
        parse_ref(text)
    message = str(info.value)
    assert "ref" in message or "required" in message


@pytest.mark.parametrize("name", ["images", "raw/sales", "a0", "0a", "x.y-z_w/q"])
def test_valid_dataset_names(name: str) -> None:
    assert validate_dataset_name(name) == name


@pytest.mark.parametrize("tag", ["123", "latest", "latest~1", "Prod", "-x", "a/b", "x" * 101, ""])
def test_invalid_tags(tag: str) -> None:
    with pytest.raises(InputError):
        validate_tag_name(tag)
