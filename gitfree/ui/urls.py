"""The web view's URLs, built in one place and parsed in one place (docs/design.md, "The web view").

Dataset names are lowercase segments ``[a-z0-9][a-z0-9._-]*`` joined by ``/``, so no segment is ``-``: as in
GitLab, ``/-/`` separates a dataset name from what follows (``/d/raw/sales/-/diff``,
``/v/raw/sales@3/-/files/2026/05.csv``). Every part taken from the store (a file's path) is percent-encoded
when a URL is built, and a path that could leave its version (``..``, ``.``, empty segments, a backslash, a NUL,
a leading ``/``) is refused when one is parsed, whether it came raw or percent-encoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from starlette.exceptions import HTTPException

from gitfree.versioning import GitfreeError, parse_ref, validate_dataset_name

__all__ = ["SEPARATOR", "Target", "Urls", "checked_path", "parse_dataset", "parse_version"]

SEPARATOR = "/-/"
DATASET_VIEWS = frozenset({"diff", "metrics", "audit"})
VERSION_VIEWS = frozenset({"dvc", "lineage", "files", "raw"})
"""What may follow ``/-/`` on a dataset's URL and on a version's (``files`` and ``raw`` take a path)."""


def _query(params: dict[str, object]) -> str:
    items = {k: v for k, v in params.items() if v is not None and v != ""}
    return f"?{urlencode(items)}" if items else ""


class Urls:
    """The URLs of one app, under ``root`` (the path it is mounted at behind a proxy, ``""`` at the top)."""

    def __init__(self, root: str = "") -> None:
        self.root = root.rstrip("/")

    def home(self, **query: object) -> str:
        return f"{self.root}/{_query(query)}"

    def dataset(self, name: str, view: str | None = None, **query: object) -> str:
        """``/d/NAME`` (the history), or ``/d/NAME/-/VIEW`` (diff, metrics, audit)."""
        tail = f"{SEPARATOR}{view}" if view else ""
        return f"{self.root}/d/{quote(name, safe='/')}{tail}{_query(query)}"

    def version(self, name: str, selector: int | str, view: str | None = None, file: str = "", **query: object) -> str:
        """``/v/NAME@N``, ``/v/NAME@N/-/VIEW`` (dvc, lineage), ``/v/NAME@N/-/files/FILE`` or ``.../-/raw/FILE``."""
        tail = f"{SEPARATOR}{view}" if view else ""
        if file:
            tail += "/" + quote(file, safe="/")
        return f"{self.root}/v/{quote(name, safe='/')}@{quote(str(selector), safe='~')}{tail}{_query(query)}"

    def static(self, name: str) -> str:
        return f"{self.root}/static/{quote(name)}"

    def login(self, next_url: str | None = None) -> str:
        return f"{self.root}/login{_query({'next': next_url})}"


def not_found(message: str) -> HTTPException:
    return HTTPException(404, detail=message)


def _dataset(name: str, url: str) -> str:
    try:
        return validate_dataset_name(name)
    except GitfreeError as exc:
        raise not_found(f"{url} names no dataset: {exc}") from None


def parse_dataset(rest: str) -> tuple[str, str | None]:
    """``raw/sales`` -> (``raw/sales``, None); ``raw/sales/-/diff`` -> (``raw/sales``, ``diff``); else 404."""
    name, sep, view = rest.partition(SEPARATOR)
    name = name.rstrip("/")
    dataset = _dataset(name, f"/d/{rest}")
    if sep and view not in DATASET_VIEWS:
        raise not_found(f"/d/{rest} is not a page of {dataset}: its pages are the history, diff, metrics and audit")
    return dataset, view if sep else None


@dataclass(frozen=True)
class Target:
    """What a ``/v/`` URL names: a version (by number, tag or ``latest``), a view of it, and a path in it."""

    dataset: str
    selector: str
    view: str | None = None
    path: str = ""

    @property
    def number(self) -> int | None:
        """The version number, when the URL names one (else it names a tag or ``latest``: redirect)."""
        return int(self.selector) if self.selector.isascii() and self.selector.isdigit() else None

    @property
    def ref(self) -> str:
        return f"{self.dataset}@{self.selector}"


def parse_version(rest: str) -> Target:
    """``raw/sales@3/-/files/a/b.csv`` -> Target(``raw/sales``, ``3``, ``files``, ``a/b.csv``); else 404."""
    head, sep, tail = rest.partition(SEPARATOR)
    url = f"/v/{rest}"
    name, at, selector = head.rstrip("/").partition("@")
    if not at:
        raise not_found(f"{url} names no version: write /v/DATASET@N (or @TAG, @latest)")
    try:
        parse_ref(f"{_dataset(name, url)}@{selector}")
    except GitfreeError as exc:
        raise not_found(f"{url} names no version: {exc}") from None
    if not sep:
        return Target(name, selector)
    view, _, path = tail.partition("/")
    if view not in VERSION_VIEWS or (view in ("dvc", "lineage") and path):
        raise not_found(f"{url} is not a page of {name}@{selector}: its pages are the files, lineage and .dvc file")
    if view in ("files", "raw"):
        if not path:
            raise not_found(f"{url} names no file: write {url.rstrip('/')}/PATH")
        return Target(name, selector, view, checked_path(path, url))
    return Target(name, selector, view)


def checked_path(path: str, url: str) -> str:
    """``path`` if it is a relative path inside a version (``""``: the top); else 404. The path arrives
    percent-decoded, so ``..%2f..%2fetc%2fpasswd`` is judged as ``../../etc/passwd``."""
    if not path:
        return ""
    bad = (
        path.startswith("/")
        or "\\" in path
        or "\x00" in path
        or any(part in ("", ".", "..") for part in path.split("/"))
    )
    if bad:
        raise not_found(f"{url} names no file: a path in a version has no '..', '.' or empty segments")
    return path
