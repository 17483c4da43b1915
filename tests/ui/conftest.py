"""Fixtures of the web view's tests: one store with something of everything per backend (SeaweedFS and
``file://``), committed once per module, and the app over it served by a real uvicorn."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ui.ui_helpers import Served, build, serve

from gitfree import Store
from gitfree.testing import SeaweedFS
from gitfree.ui import create_app


@dataclass
class World:
    """A built store: ``writer`` made it, ``store`` reads it with a worker cache of its own (as a server would)."""

    kind: str
    writer: Store
    store: Store
    work: Path
    options: dict[str, Any]

    def reader(self, name: str, **options: Any) -> Store:
        """Another reader of the same store (its own cache), with ``options`` (e.g. other credentials)."""
        return Store(self.store.url, cache_dir=self.work / f"cache-{name}", **{**self.options, **options})


def make_world(kind: str, seaweedfs: SeaweedFS | None, work: Path) -> World:
    if kind == "s3":
        assert seaweedfs is not None
        url, options = f"s3://{seaweedfs.bucket}/ui-{uuid.uuid4().hex[:12]}", seaweedfs.store_options()
    else:
        url, options = str(work / "store"), {}
    writer = Store(url, cache_dir=work / "cache-writer", **options)
    build(writer, work)
    return World(kind, writer, Store(writer.url, cache_dir=work / "cache-reader", **options), work, options)


@pytest.fixture(scope="module", params=["s3", "file"])
def world(request: pytest.FixtureRequest, seaweedfs: SeaweedFS, tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(request.param, seaweedfs, tmp_path_factory.mktemp(f"ui-{request.param}"))


@pytest.fixture(scope="module")
def file_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The world on ``file://`` only, for what does not depend on the backend."""
    return make_world("file", None, tmp_path_factory.mktemp("ui-file-only"))


@pytest.fixture(scope="module")
def site(world: World) -> Iterator[Served]:
    with serve(create_app(world.store)) as served:
        yield served
