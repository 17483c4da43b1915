"""The read-only web view of a store: ``gitfree ui``, or :func:`create_app` to mount it behind a proxy.

Pages: the datasets, a dataset's history, the diff of two versions, its metrics over versions and its audit
trail; a version (metadata, metrics with deltas, lineage, tags and their moves, the file tree, the ``.dvc``
pointer, commands to copy), its lineage graph, a file's preview and download. It needs the ``ui`` extra
(``pip install 'gitfree[ui]'``: Starlette, Jinja2, uvicorn, pyarrow), and nothing from the network: its CSS and
JS ship in the package.

Mounting it behind a proxy::

    # webview.py
    import os
    from gitfree import Store
    from gitfree.ui import create_app

    app = create_app(Store("s3://ml-data/versions"), token=os.environ["GITFREE_UI_TOKEN"])

    # uvicorn webview:app --host 0.0.0.0 --port 8765 --root-path /data --proxy-headers

A proxy that authenticates its users itself can pass ``auth=False`` (no token). The app only reads the store:
every route answers ``GET`` and ``HEAD`` (and ``POST`` on ``/login``), nothing else.
"""

from __future__ import annotations

UI_EXTRA = "the web view needs the ui extra: pip install 'gitfree[ui]'"
"""What a caller is told when Starlette, Jinja2 or uvicorn is missing."""
EXTRA_MODULES = frozenset({"starlette", "jinja2", "markupsafe", "uvicorn", "pyarrow", "anyio"})

try:
    from .app import create_app
except ModuleNotFoundError as exc:  # the extra is not installed: say which command installs it
    if exc.name is None or exc.name.partition(".")[0] not in EXTRA_MODULES:
        raise
    raise ModuleNotFoundError(f"{UI_EXTRA} ({exc.name} is not installed)", name=exc.name) from None

__all__ = ["create_app"]
