"""Refs, dataset names and tag names (gitfree/versioning/refs.py): every valid ref parses and prints
back to itself, and nothing else parses."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from unit_strategies import names, tags

from gitfree import InputError
from gitfree.versioning.refs import Ref, parse_ref, validate_dataset_name, validate_tag_name

numbers = st.integers(min_value=1, max_value=10**15)


@given(names)
def test_valid_names_are_returned_unchanged(name: str) -> None:
    assert validate_dataset_name(name) == name


@given(names, tags)
def test_valid_tags_are_returned_unchanged(name: str, tag: str) -> None:
    assert validate_tag_name(tag) == tag


@given(names, numbers)
def test_number_refs_round_trip(name: str, number: int) -> None:
    ref = parse_ref(f"{name}@{number}")
    assert ref == Ref(name, number=number)
    assert parse_ref(str(ref)) == ref


@given(names, tags)
def test_tag_refs_round_trip(name: str, tag: str) -> None:
    ref = parse_ref(f"{name}@{tag}")
    assert ref == Ref(name, tag=tag)
    assert str(ref) == f"{name}@{tag}"


@given(names, st.integers(min_value=0, max_value=10**6))
def test_latest_refs_round_trip(name: str, back: int) -> None:
    ref = parse_ref(f"{name}@latest~{back}")
    assert ref == Ref(name, back=back)
    assert parse_ref(str(ref)) == ref
    assert parse_ref(name) == parse_ref(f"{name}@latest") == Ref(name, back=0)


def test_a_parsed_ref_is_returned_as_it_is() -> None:
    ref = Ref("images", number=3)
    assert parse_ref(ref) is ref


@given(st.text(max_size=40))
@example("images@\u0663")  # ARABIC-INDIC DIGIT THREE: \d would take it
@example("images@\u00b3")  # SUPERSCRIPT THREE
@example("images@latest~\u0661")
@example("ds@0")
@example("ds@00")
@example("a" * 201)
@example("x/versions@1")
@example("x/latest.json")
def test_any_text_parses_to_a_valid_ref_or_is_refused_with_input_error(text: str) -> None:
    try:
        ref = parse_ref(text)
    except InputError as exc:
        refused = str(exc)
    else:
        refused = ""
    if refused:
        assert "ref" in refused or "required" in refused
        return
    # What parses is made of valid parts, and prints as a ref that parses to the same thing.
    validate_dataset_name(ref.dataset)
    assert sum(x is not None for x in (ref.number, ref.tag, ref.back)) == 1
    if ref.number is not None:
        assert ref.number >= 1
    if ref.tag is not None:
        validate_tag_name(ref.tag)
    assert parse_ref(str(ref)) == ref
    assert text.isascii()


@pytest.mark.parametrize("value", [None, 3, b"images", ["images"]])
def test_non_text_is_refused(value: object) -> None:
    with pytest.raises(InputError):
        parse_ref(value)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        validate_dataset_name(value)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        validate_tag_name(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["a" * 200, "/".join(["a" * 9] * 20) + "a"])
def test_names_up_to_200_characters(name: str) -> None:
    assert validate_dataset_name(name) == name
    with pytest.raises(InputError, match="limit is 200"):
        validate_dataset_name(name + "b")


def test_tags_up_to_100_characters() -> None:
    assert validate_tag_name("t" * 100) == "t" * 100
    with pytest.raises(InputError):
        validate_tag_name("t" * 101)
    with pytest.raises(InputError, match="malformed ref"):
        parse_ref("ds@" + "t" * 101)


@pytest.mark.parametrize("tag", ["1", "007", "latest"])
def test_tags_that_would_read_as_another_ref_are_refused(tag: str) -> None:
    with pytest.raises(InputError, match=r"version number|reserved"):
        validate_tag_name(tag)


@pytest.mark.parametrize("name", ["raw/used-by", "used-by/x", "a/tag-history/b", "a/versions", "tags"])
def test_names_with_a_segment_of_the_store_layout_are_refused(name: str) -> None:
    """``raw/used-by`` would put its records among ``raw``'s reverse lineage edges (and ``a/tag-history`` among
    ``a``'s tag history): the layout's segments are reserved."""
    with pytest.raises(InputError, match="reserved by the store layout"):
        validate_dataset_name(name)
