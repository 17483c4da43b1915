"""Transfers report progress in bytes, so a bar moves while one large file goes.

Regression: the upload and download callbacks counted files, so a pull of one 500 MB file showed
``0/1`` until it was done, and so did its commit.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fsspec.callbacks import Callback
from helpers import read_tree, write_tree
from rich.console import Console

import gitfree.cli
from gitfree import Store
from gitfree.cli import cli
from gitfree.versioning import transfer

MiB = 1024 * 1024
SIZE = 20 * MiB + 12345


class Recorder(Callback):  # type: ignore[misc]  # fsspec is untyped
    def __init__(self, description: str, unit: str) -> None:
        super().__init__()
        self.description = description
        self.unit = unit
        self.seen: list[tuple[int | None, int]] = []

    def call(self, *args: Any, **kwargs: Any) -> None:
        self.seen.append((self.size, self.value))


def _recording(phases: list[Recorder]) -> Callable[[str, str], Callback]:
    def factory(description: str, unit: str) -> Callback:
        phases.append(Recorder(description, unit))
        return phases[-1]

    return factory


def _one(phases: list[Recorder], verb: str) -> Recorder:
    found = [p for p in phases if p.description.startswith(verb)]
    assert len(found) == 1, [p.description for p in phases]
    return found[0]


def _moved_with_the_bytes(phase: Recorder, size: int) -> None:
    assert phase.unit == "bytes"
    assert phase.seen[-1] == (size, size), phase.seen[-3:]
    between = {value for total, value in phase.seen if total == size and 0 < value < size}
    assert len(between) >= 2, phase.seen  # the bar moved before the end, more than once


@pytest.mark.parametrize("kind", ["s3", "file"])
@pytest.mark.parametrize("way", ["streamed", "ranged", "multipart"])
def test_one_large_file_moves_the_bar_as_its_bytes_go(
    make_store: Callable[..., Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, way: str, kind: str
) -> None:
    if way == "ranged":  # as a file over 64 MiB downloads, in parallel ranges
        monkeypatch.setattr(transfer, "RANGED_MIN", 4 * MiB)
    if way == "multipart":  # as a file over 100 MiB uploads, in parts
        monkeypatch.setattr(transfer, "SINGLE_PUT_MAX", 4 * MiB)
    data = os.urandom(SIZE)
    (tmp_path / "model.bin").write_bytes(data)
    writing: list[Recorder] = []
    make_store(kind, progress=_recording(writing)).commit("model", tmp_path / "model.bin")
    upload = _one(writing, "Uploading")
    if way == "multipart":
        _moved_with_the_bytes(upload, SIZE)
        assert make_store(kind).fsck(deep=True).ok  # the parts made the object whole
    else:  # one PUT: counted when it is done, in bytes
        assert upload.unit == "bytes" and upload.seen[-1] == (SIZE, SIZE)

    reading: list[Recorder] = []
    target = make_store(kind, progress=_recording(reading)).pull("model", tmp_path / "out")
    assert target.read_bytes() == data
    _moved_with_the_bytes(_one(reading, "Downloading"), SIZE)


def test_many_files_count_their_bytes_too(make_store: Callable[..., Store], tmp_path: Path) -> None:
    files = {f"f{i:02d}.bin": os.urandom(1000 + i) for i in range(30)}
    src = write_tree(tmp_path / "src", files)
    total = sum(len(b) for b in files.values())
    writing: list[Recorder] = []
    make_store(progress=_recording(writing)).commit("ds", src)
    assert _one(writing, "Uploading").seen[-1] == (total, total)
    reading: list[Recorder] = []
    assert read_tree(make_store(progress=_recording(reading)).pull("ds", tmp_path / "out")) == files
    download = _one(reading, "Downloading")
    assert download.unit == "bytes" and download.seen[-1] == (total, total)


def test_the_cli_bar_shows_sizes_for_a_transfer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal, a pull's download bar reads ``… MiB/20.0 MiB``, not ``0/1``."""
    monkeypatch.setenv("GITFREE_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("GITFREE_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "model.bin").write_bytes(os.urandom(SIZE))
    runner = CliRunner()
    assert runner.invoke(cli, ["commit", "model", str(tmp_path / "model.bin")]).exit_code == 0
    terminal = io.StringIO()
    monkeypatch.setattr(gitfree.cli, "err", Console(file=terminal, force_terminal=True, width=80))
    monkeypatch.setattr(gitfree.cli._Bars, "DELAY", 0)
    monkeypatch.setenv("GITFREE_CACHE_DIR", str(tmp_path / "fresh-cache"))
    result = runner.invoke(cli, ["pull", "model", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    shown = terminal.getvalue()
    assert "Downloading model@1" in shown
    assert "/20.0 MiB" in shown, shown
