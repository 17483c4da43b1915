"""``MetricsDiff.between``: what a delta is, for every pair of values a version can record (pure logic)."""

from __future__ import annotations

import json
import math

from hypothesis import example, given
from hypothesis import strategies as st

from gitfree import MetricDelta, MetricsDiff
from gitfree.versioning.models import METRIC_INT_MAX

ints = st.integers(-METRIC_INT_MAX, METRIC_INT_MAX)
floats = st.floats(allow_nan=False, allow_infinity=False)
values = ints | floats


def _one(old: int | float, new: int | float) -> MetricDelta:
    delta = MetricsDiff.between("ds@1", {"m": old}, "ds@2", {"m": new}).get("m")
    assert delta is not None
    return delta


@given(ints, ints)
def test_an_integer_minus_an_integer_is_that_integer(old: int, new: int) -> None:
    delta = _one(old, new)
    assert type(delta.delta) is int and delta.delta == new - old  # 64-bit values, a 65-bit difference: exact


@given(values, values)
@example(1.797692996717558e308, 1.797693100827822e308)  # as read, 1.04110264e301; in binary, 1.0411026387e301
def test_every_delta_is_a_finite_number_or_none_and_json_holds_it(old: int | float, new: int | float) -> None:
    delta = _one(old, new)
    for value in (delta.delta, delta.relative):
        assert value is None or math.isfinite(value)
    assert delta.status == ("unchanged" if old == new else "changed")
    if old == 0:
        assert delta.relative is None
    if delta.delta is not None and not (isinstance(old, int) and isinstance(new, int)):
        # The difference of the values as they read differs from binary's by at most their rounding to
        # the shortest repr (half a unit in the last place each), which a cancelling difference magnifies.
        assert math.isclose(
            delta.delta, float(new) - float(old), rel_tol=1e-9, abs_tol=max(1e-300, 1e-15 * max(abs(old), abs(new)))
        )
    json.dumps(MetricsDiff.between("a", {"m": old}, "b", {"m": new}).model_dump(mode="json"), allow_nan=False)
    assert str(delta) and delta.change


def test_deltas_are_taken_on_the_values_as_they_read() -> None:
    assert _one(0.89, 0.91).delta == 0.02  # binary floats give 0.020000000000000018
    assert _one(0.1, 0.3).delta == 0.2
    assert _one(3, 3.5).delta == 0.5 and type(_one(3, 4.0).delta) is float


def test_what_overflows_a_float_is_none_not_infinity() -> None:
    huge = _one(-1.7e308, 1.7e308)  # 3.4e308 does not fit in a float
    assert huge.delta is None and huge.relative == 2.0 and huge.status == "changed"
    assert huge.change == "▲ (+200.0%)" and str(huge) == "m -1.7e+308 → 1.7e+308 (+200.0%)"
    tiny = _one(5e-324, 1e308)  # a relative change of 2e631
    assert tiny.delta == 1e308 and tiny.relative is None


def test_added_removed_and_unchanged() -> None:
    diff = MetricsDiff.between("ds@1", {"gone": 1, "same": 2, "zero": 0}, "ds@2", {"new": 0.5, "same": 2.0, "zero": 7})
    assert diff.added == ["new"] and diff.removed == ["gone"] and [m.name for m in diff.changed] == ["zero"]
    assert [str(m) for m in diff.metrics] == [
        "gone removed (was 1)",
        "new 0.5 (added)",
        "same 2.0 (unchanged)",
        "zero 0 → 7 (+7)",
    ]
    assert [m.change for m in diff.metrics] == ["removed", "added", "=", "▲ +7"]
    assert str(_one(0.25, 0.2)) == "m 0.25 → 0.2 (-0.05, -20.0%)" and _one(0.25, 0.2).change == "▼ -0.05 (-20.0%)"
    assert _one(100000, 100001).change == "▲ +1 (+0.001%)"
    assert not MetricsDiff.between("a", {"m": 1}, "b", {"m": 1}) and not MetricsDiff.between("a", {}, "b", {})
