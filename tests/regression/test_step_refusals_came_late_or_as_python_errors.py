"""Steps that could be refused when decorated were refused only when called, after the claim was taken and the
inputs pulled (positional-only parameters, async and generator functions), or not as gitfree's errors
(a partial: AttributeError; a deeply nested parameter: RecursionError); ``paths={"raw": "a.csv"}`` was split
into characters, ``{1: "a"}`` came to the body as ``{"1": "a"}``, and ``force="yes"`` passed as true."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from helpers import write_tree

from gitfree import InputError, Store, step
from gitfree.versioning import layout


async def coroutine(raw: Path, out: Path) -> None:
    (out / "x").write_text("x")


def generator(raw: Path, out: Path):  # type: ignore[no-untyped-def]
    yield (out / "x").write_text("x")


def positional(raw: Path, out: Path, /) -> None:
    (out / "x").write_text("x")


def plain(raw: Path, out: Path, n: object = 1) -> None:
    (out / "x").write_text(repr(n))


@pytest.mark.parametrize(
    ("fn", "text"),
    [
        (coroutine, "is an async or generator function"),
        (generator, "is an async or generator function"),
        (positional, "has positional-only parameters"),
        (functools.partial(plain, n=2), "a step is a function defined with def or lambda, not a partial"),
    ],
)
def test_what_cannot_be_a_step_is_refused_when_decorated(fn: object, text: str) -> None:
    with pytest.raises(InputError, match=text):
        step("features", {"raw": "raw"})(fn)  # type: ignore[arg-type]


def test_bad_paths_and_parameters_are_refused_before_anything(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    store.commit("raw", write_tree(tmp_path / "raw", {"a.csv": b"a"}))
    with pytest.raises(InputError, match=r"paths\['raw'\] is a list of paths inside that input"):
        step("features", {"raw": "raw"}, store=store, paths={"raw": "a.csv"})(plain)
    made = step("features", {"raw": "raw"}, store=store)(plain)
    nested: list[object] = []
    for _ in range(5000):
        nested = [nested]
    for value, text in [({1: "a"}, "the dict key 1 is not a string"), (nested, "not a JSON value")]:
        with pytest.raises(InputError, match=text):
            made(n=value)
    with pytest.raises(InputError, match="force is True or False, not 'yes'"):
        made(force="yes")  # type: ignore[arg-type]
    assert list(store.backend.list(layout.STEPS)) == []
    assert store.datasets() == ["raw"]
