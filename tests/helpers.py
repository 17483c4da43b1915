"""Helpers shared by the tests: write and read small file trees."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gitfree import Store
from gitfree.testing import Azurite, FakeGCS, SeaweedFS

#: The kinds of store the shared suites run on: S3 (SeaweedFS), a local directory, Azure Blob (Azurite) and
#: Google Cloud Storage (fake-gcs-server). ``@pytest.mark.kinds(*ALL_KINDS)`` runs a ``store`` test on each.
ALL_KINDS = ("s3", "file", "az", "gs")
#: The kinds a ``store`` test runs on without a ``kinds`` mark.
DEFAULT_KINDS = ("s3", "file")
#: The kinds on an object-storage server.
REMOTE_KINDS = ("s3", "az", "gs")


def kind_of(store: Store) -> str:
    """The kind of ``store`` (one of :data:`ALL_KINDS`), from its URL's scheme."""
    scheme = store.url.split("://", 1)[0] if "://" in store.url else "file"
    return scheme if scheme in ALL_KINDS else "file"


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def random_tree(root: Path, n: int, seed: int = 0, max_size: int = 4096) -> dict[str, bytes]:
    rng = random.Random(seed)
    files = {f"d{i % 7}/sub{i % 3}/f{i:04d}.bin": rng.randbytes(rng.randint(0, max_size)) for i in range(n)}
    write_tree(root, files)
    return files


class Servers:
    """The servers one test reaches, each started (once per test process) when first asked for: per kind of store
    (:data:`helpers.ALL_KINDS`), the store URL under the test's one fresh prefix, the ``Store`` options and the
    ``GITFREE_*``/emulator variables the CLI needs."""

    def __init__(self, request: pytest.FixtureRequest, tmp_path: Path, s3_url: str) -> None:
        self._request, self._tmp_path = request, tmp_path
        self.prefix = s3_url.rsplit("/", 1)[1]

    def server(self, kind: str) -> SeaweedFS | Azurite | FakeGCS:
        name = {"s3": "seaweedfs", "az": "azurite", "gs": "fake_gcs"}[kind]
        server: SeaweedFS | Azurite | FakeGCS = self._request.getfixturevalue(name)  # only the tests that ask start it
        return server

    def url(self, kind: str) -> str:
        if kind == "file":
            return str(self._tmp_path / "file-store")
        server = self.server(kind)
        where = server.container if isinstance(server, Azurite) else server.bucket
        return f"{kind}://{where}/{self.prefix}"

    def options(self, kind: str) -> dict[str, Any]:
        return {} if kind == "file" else self.server(kind).store_options()

    def env(self, kind: str) -> dict[str, str]:
        return {} if kind == "file" else self.server(kind).env()


@dataclass
class Place:
    """A source of files to version by reference (an S3, Azure or GCS prefix, or a local folder), how to write
    and remove its files, and stores to commit them into (tests/test_by_reference.py and the tests beside it)."""

    kind: str
    url: str
    write: Callable[[str, bytes], object]
    remove: Callable[[str], object]
    store: Callable[..., Store]
    extra: dict[str, Any] = field(default_factory=dict)

    def fill(self, files: dict[str, bytes]) -> None:
        for path, data in files.items():
            self.write(path, data)
