"""Fixtures: one real SeaweedFS per test session, a fresh prefix and worker cache per test."""

from __future__ import annotations

import functools
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from botocore_data import share_botocore_loader
from figures import FIGURES, FULL, Figures
from helpers import ALL_KINDS, DEFAULT_KINDS, Servers, kind_of

from gitfree import Store
from gitfree.testing import Azurite, FakeGCS, SeaweedFS, azurite_binary, fake_gcs_binary

share_botocore_loader()  # botocore parses its JSON data once per test process, not once per S3 store


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's GITFREE_*/AWS_* settings or writes to their home directory."""
    for name in list(os.environ):
        if name.startswith(("GITFREE_", "AWS_", "GOOGLE_", "STORAGE_EMULATOR_HOST")):
            monkeypatch.delenv(name)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(autouse=True)
def _gitfree_logger_as_found() -> Iterator[None]:
    """The ``gitfree`` logger's level and handlers as each test found them: an in-process ``gitfree -vv`` (or a
    test's own logging) must not make a later test's CLI print tracebacks (with xdist, which tests share a
    process depends on the scheduling)."""
    logger = logging.getLogger("gitfree")
    level, handlers = logger.level, list(logger.handlers)
    yield
    logger.setLevel(level)
    logger.handlers[:] = handlers


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedFS]:
    with SeaweedFS(bucket="gitfree-tests") as server:
        yield server


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """One Azurite blob service per test process; the tests that ask skip with one line without it."""
    try:
        azurite_binary()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    with Azurite(container="gitfree-tests") as server:
        yield server


@pytest.fixture(scope="session")
def fake_gcs() -> Iterator[FakeGCS]:
    """One fake-gcs-server per test process; the tests that ask skip with one line without it (or without
    the gcs extra)."""
    try:
        fake_gcs_binary()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    pytest.importorskip("google.cloud.storage", reason="install the gcs extra: pip install -e '.[dev,gcs]'")
    with FakeGCS(bucket="gitfree-tests") as server:
        yield server


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect server per test process (per xdist worker), started by the first test that asks.

    Every Prefect test shares it (tests/on_prefect asks for it for each of its tests): a server costs about
    15 s to start here, and a second harness inside a first would leave Prefect's event worker reporting
    to the first one.
    """
    pytest.importorskip("prefect", reason="install the prefect extra: pip install -e '.[dev,prefect]'")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def s3_url(seaweedfs: SeaweedFS) -> str:
    return f"s3://{seaweedfs.bucket}/t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def servers(request: pytest.FixtureRequest, tmp_path: Path, s3_url: str) -> Servers:
    return Servers(request, tmp_path, s3_url)


@pytest.fixture
def make_store(tmp_path: Path, servers: Servers) -> Callable[..., Store]:
    """A store factory (``kind``: one of :data:`helpers.ALL_KINDS`); each call gets its own worker cache (as a
    separate worker would), all calls of one kind the same store."""
    counter = iter(range(1000))

    def make(kind: str = "s3", **kwargs: object) -> Store:
        if kind not in ALL_KINDS:
            raise ValueError(f"no store kind {kind!r}: one of {ALL_KINDS}")
        cache = tmp_path / f"cache-{next(counter)}"
        return Store(servers.url(kind), cache_dir=cache, **servers.options(kind), **kwargs)  # type: ignore[arg-type]

    return make


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``store`` runs each test on S3 and on a local directory; ``@pytest.mark.kinds(...)`` on a test or module
    names other kinds (``pytest.mark.kinds(*ALL_KINDS)``: also on Azurite and fake-gcs-server)."""
    defs = metafunc._arg2fixturedefs.get("store") if "store" in metafunc.fixturenames else None
    if not defs or defs[-1].func.__module__ != __name__:
        return  # no ``store``, or the test module's own
    if any("store" in _argnames(mark) for mark in metafunc.definition.iter_markers("parametrize")):
        return  # the test parametrises ``store`` itself
    mark = metafunc.definition.get_closest_marker("kinds")
    kinds = mark.args if mark is not None else DEFAULT_KINDS
    metafunc.parametrize("store", kinds, indirect=True)


def _argnames(mark: pytest.Mark) -> list[str]:
    names = mark.args[0] if mark.args else mark.kwargs.get("argnames", "")
    return [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)


@pytest.fixture
def store(request: pytest.FixtureRequest, make_store: Callable[..., Store]) -> Store:
    """The same tests against each kind of store (see :func:`pytest_generate_tests`)."""
    return make_store(request.param)


@pytest.fixture
def store_env(request: pytest.FixtureRequest, servers: Servers, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test's ``store``'s endpoint and credentials in the environment, for the CLI."""
    kind = kind_of(request.getfixturevalue("store"))
    for key, value in servers.env(kind).items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def s3_store(make_store: Callable[..., Store]) -> Store:
    return make_store("s3")


@pytest.fixture
def az_store(make_store: Callable[..., Store]) -> Callable[..., Store]:
    """A factory of stores on Azurite under the test's one fresh prefix; each call gets its own worker cache."""
    return functools.partial(make_store, "az")


@pytest.fixture
def gcs_store(make_store: Callable[..., Store]) -> Callable[..., Store]:
    """A factory of stores on fake-gcs-server under the test's one fresh prefix; each call gets its own worker
    cache."""
    return functools.partial(make_store, "gs")


# ---------------------------------------------------------------------------- reliability figures


@pytest.fixture(scope="session")
def figures() -> Figures:
    return FIGURES


def pytest_sessionfinish(session: pytest.Session) -> None:
    """An xdist worker sends its figures to the controller, which prints them all (``pytest_testnodedown``)."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["gitfree_figures"] = {
            "lines": FIGURES.lines,
            "counts": [[promise, what, n] for (promise, what), n in FIGURES.counts.items()],
        }


@pytest.hookimpl(optionalhook=True)  # an xdist hook: the controller, when a worker ends
def pytest_testnodedown(node: object, error: object) -> None:
    sent = getattr(node, "workeroutput", {}).get("gitfree_figures")
    if sent:
        for promise, lines in sent["lines"].items():
            for line in lines:
                FIGURES.add(promise, line)
        for promise, what, n in sent["counts"]:
            FIGURES.counts[promise, what] = FIGURES.counts.get((promise, what), 0) + n


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    found = {promise: list(lines) for promise, lines in FIGURES.lines.items()}
    for (promise, what), n in FIGURES.counts.items():
        found.setdefault(promise, []).append(f"{what}: {n}")
    if not found:
        return
    size = "full" if FULL else "small (make reliability runs the full size)"
    lines = [f"{promise}: {line}" for promise, items in sorted(found.items()) for line in items]
    terminalreporter.section(f"gitfree reliability figures, {size}")
    for line in lines:
        terminalreporter.write_line(line)
    target = os.environ.get("GITFREE_FIGURES_FILE")
    if target:
        Path(target).write_text("\n".join(lines) + "\n", encoding="utf-8")
