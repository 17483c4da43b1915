"""Metric values at the edges: what "integers stay integers, 64 bits" accepts.

- ``-9223372036854775808`` (INT64_MIN) fits in 64 bits but is refused ("must fit in 64 bits"): the check is
  ``-METRIC_INT_MAX <= value <= METRIC_INT_MAX`` with ``METRIC_INT_MAX = 2**63 - 1``.
- ``--metric rows=1_000`` is recorded as the float ``1000.0`` (Python's float() takes underscores), and
  ``--metric n=١٢`` (Arabic-Indic digits) as ``12.0``, although the CLI promises an integer stays an integer
  and refs take ASCII digits only.
- Through the API, ``metrics={"ok": True}`` is recorded as ``1`` and ``metrics={"n": "5"}`` as ``5``: a bool
  and a string pass as numbers (pydantic's lax mode), where NaN is refused by name; and numpy's ``int64(3)``
  is recorded as the float ``3.0``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import write_tree

from gitfree import InputError, Store
from gitfree.cli import cli

# Found on 2026-12-01 by a hostile pass over the refactored core. Text was the last to be refused: the Airflow
# operator now parses its rendered (templated) metrics itself (tests/regression/test_airflow_retries_and_created.py).


def _store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store", cache_dir=tmp_path / "cache")


def test_int64_min_is_a_64_bit_integer(tmp_path: Path) -> None:
    version = _store(tmp_path).commit("m", write_tree(tmp_path / "s", {"f": b"1"}), metrics={"low": -(2**63)})
    assert version.metrics == {"low": -(2**63)}


@pytest.mark.parametrize("raw", ["1_000", "١٢"])
def test_the_cli_reads_a_metric_as_an_ascii_integer_or_refuses_it(tmp_path: Path, raw: str) -> None:
    src = write_tree(tmp_path / "s", {"f": b"1"})
    args = ["--store", str(tmp_path / "store"), "--cache-dir", str(tmp_path / "cache")]
    result = CliRunner().invoke(cli, [*args, "commit", "m", str(src), "--metric", f"n={raw}"])
    if result.exit_code == 2:
        return  # refused: fine
    assert result.exit_code == 0, result.output
    value = _store(tmp_path).show("m").metrics["n"]
    assert isinstance(value, int), f"--metric n={raw} was recorded as {value!r}"


@pytest.mark.parametrize("value", [True, "5", " 0.5", ""])
def test_a_metric_that_is_not_a_number_is_refused(tmp_path: Path, value: object) -> None:
    with pytest.raises(InputError):
        _store(tmp_path).commit("m", write_tree(tmp_path / "s", {"f": b"1"}), metrics={"x": value})  # type: ignore[dict-item]


def test_numpys_integers_are_integers(tmp_path: Path) -> None:
    """``len(df)`` is an int, but ``df["x"].sum()`` and ``np.count_nonzero`` are numpy integers: pydantic
    made them floats (``3.0``)."""
    np = pytest.importorskip("numpy")
    version = _store(tmp_path).commit(
        "m", write_tree(tmp_path / "s", {"f": b"1"}), metrics={"rows": np.int64(3), "acc": np.float64(0.5)}
    )
    assert version.metrics == {"rows": 3, "acc": 0.5} and type(version.metrics["rows"]) is int
    assert type(_store(tmp_path).show("m").metrics["rows"]) is int
