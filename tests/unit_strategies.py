"""Hypothesis strategies shared by the unit tests: valid dataset names and tag names."""

from __future__ import annotations

from hypothesis import strategies as st

from gitfree.versioning.layout import RESERVED_SEGMENTS

_FIRST = "abcdefghijklmnopqrstuvwxyz0123456789"
_REST = _FIRST + "._-"
segments = st.builds(lambda a, b: a + b, st.sampled_from(_FIRST), st.text(_REST, max_size=12)).filter(
    lambda s: s not in RESERVED_SEGMENTS and not s.endswith(".json")
)
names = st.lists(segments, min_size=1, max_size=4).map("/".join).filter(lambda n: len(n) <= 200)
tags = st.builds(lambda a, b: a + b, st.sampled_from(_FIRST), st.text(_REST, max_size=20)).filter(
    lambda t: not t.isdigit() and t != "latest"
)
