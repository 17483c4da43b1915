"""The durations of ``gitfree gc --keep-within AGE`` and ``--grace AGE`` (the CLI's ``_Duration``)."""

from __future__ import annotations

from datetime import timedelta

import click
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitfree.cli import _Duration

UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse(text: str) -> timedelta:
    return _Duration().convert(text, None, None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", timedelta(0)),
        ("45", timedelta(seconds=45)),
        ("45s", timedelta(seconds=45)),
        ("90m", timedelta(minutes=90)),
        ("12h", timedelta(hours=12)),
        ("30d", timedelta(days=30)),
        ("2w", timedelta(weeks=2)),
        ("1.5h", timedelta(minutes=90)),
        (" 7D ", timedelta(days=7)),
    ],
)
def test_examples_of_the_help(text: str, expected: timedelta) -> None:
    assert parse(text) == expected


@given(st.integers(min_value=0, max_value=10**7), st.sampled_from(sorted(UNITS)), st.booleans())
def test_whole_amounts_of_every_unit(amount: int, unit: str, upper: bool) -> None:
    text = f"{amount}{unit.upper() if upper else unit}"
    assert parse(text) == timedelta(seconds=amount * UNITS[unit])


def test_a_timedelta_passes_through() -> None:
    assert parse(timedelta(hours=1)) == timedelta(hours=1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text", ["", "d", "-1s", "+1s", "1e3", "1_000", "1 d", "1dd", "1y", "1.d", ".5h", "inf", "nan"]
)
def test_malformed_durations_are_usage_errors(text: str) -> None:
    with pytest.raises(click.BadParameter, match="is not a duration"):
        parse(text)


@pytest.mark.parametrize("text", ["99999999999999999d", "1" + "0" * 20 + "w"])
def test_durations_too_long_for_the_clock_are_usage_errors(text: str) -> None:
    with pytest.raises(click.BadParameter, match="too long a duration"):
        parse(text)


@given(st.text(max_size=30))
@example("\u0663d")  # ARABIC-INDIC DIGIT THREE
@example("1" * 400)
def test_any_text_is_a_non_negative_duration_or_a_usage_error(text: str) -> None:
    try:
        value = parse(text)
    except click.BadParameter:
        return
    assert value >= timedelta(0)


def test_only_ascii_digits_are_amounts() -> None:
    with pytest.raises(click.BadParameter):
        parse("\u0663d")
