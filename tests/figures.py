"""Figures of the reliability tests: one line per promise, printed at the end of the run (see conftest)."""

from __future__ import annotations

import os

FULL = os.environ.get("GITFREE_RELIABILITY") == "full"
"""``make reliability`` runs the reliability tests at full size; the default suite at a small one."""


class Figures:
    """One line per promise of the reliability issue, printed at the end of the run."""

    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = {}
        self.counts: dict[tuple[str, str], int] = {}

    def add(self, promise: str, line: str) -> None:
        self.lines.setdefault(promise, []).append(line)

    def count(self, promise: str, what: str) -> None:
        """One more case of ``what`` that held (printed as ``what: N``)."""
        self.counts[promise, what] = self.counts.get((promise, what), 0) + 1


FIGURES = Figures()
