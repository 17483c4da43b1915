"""What the integrations (Prefect tasks, Airflow operators, flows, the CLI) share, written once.

This module imports only gitfree.versioning's models, config and errors (never prefect or airflow, and
not the store): it sits below :mod:`gitfree.versioning.store` in the layering.
"""

from __future__ import annotations

__all__ = ["format_size"]

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def format_size(n: int) -> str:
    """A size in bytes for people: ``"512 B"``, ``"1.5 KiB"``, ``"3.2 GiB"`` (binary units, up to TiB).

    Bytes are whole; larger units have one decimal. A value that would round to 1024.0 of a unit
    is written in the next one (``1048575`` is ``"1.0 MiB"``, not ``"1024.0 KiB"``).
    """
    value = float(n)
    for unit in _UNITS:
        shown = round(value) if unit == "B" else round(value, 1)
        if abs(shown) < 1024 or unit == _UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
