"""One botocore data loader for every boto3 session of the test process (tests/conftest.py installs it).

Each ``gitfree.Store`` on S3 opens a boto3 session of its own, and botocore gives each new session a
new loader, which reads and parses its JSON data again: S3's service model, its endpoint rules, the
partitions (about 0.15 s of CPU per store here; the suite opens over a thousand stores, and on 4 test
modules sharing the loader halved their CPU time). What a loader holds is botocore's read-only data, the
same for every session: one session creating many clients uses one loader the same way. Only the
test process shares it; a ``gitfree`` command the tests start loads its own, as a user's process does.
"""

from __future__ import annotations

from typing import Any

_loaders: dict[str | None, Any] = {}


class _SearchPaths(list[str]):
    """A loader's search paths, where each boto3 session appends its own data folder: once is enough."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


def share_botocore_loader() -> None:
    """From now on, sessions created with the same ``AWS_DATA_PATH`` share one loader (and its parsed files)."""
    import botocore.loaders
    import botocore.session

    create = botocore.loaders.create_loader

    def shared(search_path_string: str | None = None) -> Any:
        if search_path_string not in _loaders:
            loader = create(search_path_string)
            loader._search_paths = _SearchPaths(loader.search_paths)  # type: ignore[attr-defined]
            _loaders[search_path_string] = loader
        return _loaders[search_path_string]

    botocore.session.create_loader = shared
