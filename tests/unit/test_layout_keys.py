"""Store keys (gitfree/versioning/layout.py): every builder's key is read back by its parser, and by
no other parser, for every valid dataset name, tag, version number, object name and lease id."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from unit_strategies import names, tags

from gitfree.versioning import layout

numbers = st.integers(min_value=1, max_value=10**12 - 1)  # 12 digits in a key
md5s = st.text("0123456789abcdef", min_size=32, max_size=32)
oids = st.builds(lambda md5, listing: md5 + (".dir" if listing else ""), md5s, st.booleans())
leases = st.builds(lambda n: str(uuid.UUID(int=n)), st.integers(min_value=0, max_value=2**128 - 1))

PARSERS = {
    "version": layout.parse_version_key,
    "tag": layout.parse_tag_key,
    "latest": layout.parse_latest_key,
    "object": layout.parse_object_key,
    "upload": layout.parse_upload_key,
    "used_by": layout.parse_used_by_key,
    "tag_event": layout.parse_tag_event_key,
    "run_use": layout.parse_run_use_key,
    "stages": layout.parse_stages_key,
    "step_result": layout.parse_step_result_key,
    "step_claim": layout.parse_step_claim_key,
    "reference": layout.parse_reference_key,
}


def only(kind: str, key: str) -> object:
    """What the parser of ``kind`` reads from ``key``, checking that no other parser reads it."""
    others = {other: parse(key) for other, parse in PARSERS.items() if other != kind}
    assert others == dict.fromkeys(others), f"{key!r} also parses as {others}"
    return PARSERS[kind](key)


@given(names, numbers)
def test_version_keys(name: str, number: int) -> None:
    key = layout.version_key(name, number)
    assert only("version", key) == (name, number)
    assert key.startswith(layout.versions_prefix(name))
    assert key.startswith(layout.dataset_prefix(name))


@given(names, numbers, numbers)
def test_version_keys_sort_as_their_numbers(name: str, a: int, b: int) -> None:
    assert (layout.version_key(name, a) < layout.version_key(name, b)) == (a < b)


@given(names, tags)
def test_tag_keys(name: str, tag: str) -> None:
    key = layout.tag_key(name, tag)
    assert only("tag", key) == (name, tag)
    assert key.startswith(layout.tags_prefix(name))
    assert key.startswith(layout.dataset_prefix(name))


@given(names)
def test_latest_keys(name: str) -> None:
    key = layout.latest_key(name)
    assert only("latest", key) == name
    assert key.startswith(layout.dataset_prefix(name))


@given(oids)
def test_object_keys_are_dvcs_remote_layout(oid: str) -> None:
    key = layout.object_key(oid)
    assert only("object", key) == oid
    assert key == f"files/md5/{oid[:2]}/{oid[2:]}"


@given(md5s)
def test_reference_table_keys(md5: str) -> None:
    key = layout.reference_key(md5)
    assert only("reference", key) == md5
    assert key == f"references/{md5}.json"
    assert layout.is_store_key(key)
    assert layout.parse_reference_key(f"references/{md5}.dir.json") is None
    assert layout.parse_reference_key(f"references/{md5[:31]}.json") is None


@given(leases)
def test_upload_keys(lease: str) -> None:
    key = layout.upload_key(lease)
    assert only("upload", key) == lease
    assert key.startswith(layout.UPLOADS)


@given(names, numbers, names, numbers)
def test_reverse_edge_keys(name: str, number: int, consumer: str, consumer_number: int) -> None:
    key = layout.used_by_key(name, number, consumer, consumer_number)
    assert only("used_by", key) == (name, number, consumer, consumer_number)
    assert key.startswith(layout.used_by_prefix(name, number))
    assert key.startswith(layout.used_by_prefix(name))
    assert key.startswith(layout.dataset_prefix(name))
    assert layout.is_store_key(key)


@given(names, tags, numbers)
def test_tag_history_keys(name: str, tag: str, seq: int) -> None:
    key = layout.tag_event_key(name, tag, seq)
    assert only("tag_event", key) == (name, tag, seq)
    assert key.startswith(layout.tag_history_prefix(name, tag))
    assert key.startswith(layout.tag_history_prefix(name))


@given(names)
def test_stages_keys(name: str) -> None:
    key = layout.stages_key(name)
    assert only("stages", key) == name
    assert key.startswith(layout.dataset_prefix(name))
    assert layout.is_store_key(key)


@given(names, st.sampled_from(sorted(layout.RESERVED_SEGMENTS)), st.integers(min_value=0, max_value=10**12 - 1))
def test_a_tag_named_like_a_reserved_segment_has_history_nothing_else_reads(name: str, tag: str, seq: int) -> None:
    """A tag named ``versions`` or ``tags`` is valid; its history entry ``datasets/<name>/tag-history/versions/
    <seq>.json`` must not read as version ``seq`` (or a tag) of a dataset ``<name>/tag-history``: GC and fsck
    would take it for a broken record, and ``datasets()`` would list a dataset that is not one."""
    key = layout.tag_event_key(name, tag, seq)
    assert only("tag_event", key) == (name, tag, seq)


@given(st.text(min_size=1, max_size=300), st.text(min_size=1, max_size=300), names, numbers)
def test_run_note_keys(run: str, other: str, name: str, number: int) -> None:
    """Any run id (Airflow's have ':' and '+') is one plain key segment, and two runs never share one."""
    key = layout.run_use_key(run, name, number)
    parsed = layout.parse_run_use_key(key)
    assert parsed is not None and only("run_use", key) == parsed
    segment, parsed_name, parsed_number = parsed
    assert (parsed_name, parsed_number) == (name, number)
    assert key.startswith(layout.run_prefix(run)) and layout.run_prefix(run) == f"{layout.RUNS}{segment}/"
    assert set(segment) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
    assert (layout.run_prefix(run) == layout.run_prefix(other)) == (run == other)
    assert layout.is_store_key(key)


@given(leases)
def test_lease_keys_are_under_leases(lease: str) -> None:
    key = layout.lease_key(lease)
    assert key.startswith(layout.LEASES)
    assert all(parse(key) is None for parse in PARSERS.values())


@given(names, names)
def test_one_datasets_prefix_holds_none_of_anothers_keys(a: str, b: str) -> None:
    """``raw`` and ``raw/sales`` may both be datasets; ``raw``'s records are never under ``raw/sales/``."""
    if a == b:
        return
    for key in (
        layout.version_key(a, 1),
        layout.tag_key(a, "prod"),
        layout.latest_key(a),
        layout.used_by_key(a, 1, b, 2),
        layout.tag_event_key(a, "prod", 1),
        layout.stages_key(a),
    ):
        assert not key.startswith(layout.versions_prefix(b))
        assert not key.startswith(layout.tags_prefix(b))
        assert not key.startswith(layout.used_by_prefix(b))
        assert not key.startswith(layout.tag_history_prefix(b))


def test_keys_that_are_not_records() -> None:
    for key in (
        layout.MARKER,
        layout.GC_LOCK,
        "datasets/x/versions/1.json",  # not 12 digits
        "datasets/x/versions/0000000000001.json",
        "datasets/x/versions/000000000001.json.tmp",
        "datasets/x/tags/a/b.json",
        "files/md5/ab/short",
        "files/md5/AB/" + "c" * 30,
        "files/md5/ab/" + "c" * 30 + ".txt",
        "uploads/not-a-lease.json",
        "other/datasets/x/latest.json",
    ):
        assert all(parse(key) is None for parse in PARSERS.values()), key


def test_step_keys_round_trip_and_name_only_what_they_are() -> None:
    key = "ab" * 32
    assert layout.step_prefix(key) == f"steps/{key}/"
    assert only("step_result", layout.step_result_key(key, "raw/sales", 7)) == (key, "raw/sales", 7)
    assert only("step_claim", layout.step_claim_key(key)) == key
    assert layout.step_claim_key(key).startswith(layout.step_prefix(key))
    assert layout.is_store_key(layout.step_claim_key(key))
    for bad in ("AB" * 32, "ab" * 31, "../" + "ab" * 31, ""):
        with pytest.raises(ValueError, match="not a step key"):
            layout.step_prefix(bad)
    for other in (f"steps/{key}/raw@1.json", f"steps/{key}/claim.json.tmp", f"steps/{key[:-1]}/claim.json"):
        assert layout.parse_step_result_key(other) is None and layout.parse_step_claim_key(other) is None
    # A result of a dataset with a reserved segment cannot be told from other keys: it is not one.
    assert layout.parse_step_result_key(f"steps/{key}/a/versions@000000000001.json") is None


@given(oids)
def test_an_object_name_says_whether_it_is_a_listing_and_which_md5_it_has(oid: str) -> None:
    md5 = oid[:32]
    assert layout.md5_of(oid) == md5 and layout.is_md5(md5)
    assert layout.is_listing(oid) == oid.endswith(".dir") == layout.is_listing(layout.object_key(oid))
    assert layout.listing_oid(md5) == f"{md5}.dir" and layout.is_listing(layout.listing_oid(md5))
    assert only("object", layout.object_key(layout.listing_oid(md5))) == layout.listing_oid(md5)
    assert re.fullmatch(layout.OID_PATTERN, oid) and not re.fullmatch(layout.OID_PATTERN, oid + "x")


@given(st.text("0123456789abcdef", min_size=32, max_size=32))
def test_probe_keys_are_under_probes_and_no_record(token: str) -> None:
    key = layout.probe_key(token)
    assert key == f"probes/{token}" and key.startswith(layout.PROBES) and layout.is_store_key(key)
    assert all(parse(key) is None for parse in PARSERS.values())


@given(oids, st.integers(min_value=0, max_value=10**6))
def test_obstores_staging_file_of_an_object_is_told_from_the_object_and_from_other_names(oid: str, n: int) -> None:
    name = layout.object_key(oid).rpartition("/")[2]
    assert layout.is_staged_object(f"{name}#{n}")
    assert not layout.is_staged_object(name)
    assert not layout.is_staged_object(f"{name}#")
    assert not layout.is_staged_object(f"x{name}#{n}")


def test_the_worker_caches_temporary_folder_is_no_key_of_a_store() -> None:
    assert layout.CACHE_TMP == ".gitfree-tmp/"
    assert not layout.is_store_key(f"{layout.CACHE_TMP}abc.tmp")
    assert not layout.CACHE_TMP.startswith(layout.OURS)
