"""The ``gitfree`` command: the store's API from a shell.

Exit codes: 0 success, 1 other failure, 2 bad usage or input, 3 not found,
4 conflict, 5 integrity (missing or corrupted data), 6 configuration
(store URL, credentials, bucket, server), 7 unsafe path in a version;
141 (128 + SIGPIPE, silently, as git and coreutils) when the reader of standard
output goes away (``gitfree cat ... | head``). Every failure is one line on stderr, in the CLI's
terms (:meth:`GitfreeError.in_cli_terms`: ``--move``, where the API says ``move=True``).
``gitfree ui`` exits 2 for a ``--host`` other machines can reach given neither ``--token`` nor
``--no-auth``, or an address it cannot listen on, and 6 when the ``ui`` extra is not installed; it runs
until interrupted (Ctrl+C: 0).

``--json`` prints one shape per concept. A version is always the same object: ``ref``, every field
of its record, ``tags`` (``log``: a list of them; ``show``: one, with ``files`` under ``--files``;
``commit``: one, with ``created``; ``pull``: one, with ``dest``). A tag is ``ref`` and its record
(``tag``: one; ``tags``: a list). A version's metrics in a history are ``ref``, ``number``,
``created_at`` and ``metrics`` (``metrics``: a list of them); two versions' metrics compared are
``old``, ``new``, ``metrics`` (one object per metric) and ``added``/``removed`` (``metrics diff``;
``diff`` adds it to its own object as ``metrics``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shlex
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NoReturn
from urllib.parse import urlsplit
from urllib.request import url2pathname

import click
from fsspec.callbacks import Callback
from pydantic import BaseModel
from rich.cells import cell_len, set_cell_size
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn, TimeElapsedColumn
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from .versioning import (
    AuditEvent,
    ConfigError,
    FileEntry,
    GitfreeError,
    InputError,
    IntegrityError,
    Lineage,
    LineageNode,
    MetricsDiff,
    MetricsPoint,
    NotFoundError,
    SourceOptions,
    Store,
    Tag,
    TagEvent,
    Tree,
    Version,
    format_count,
    format_size,
    parse_metric,
    step_status,
    who,
)

STDOUT_CLOSED = 141
"""Exit code when the reader of standard output went away: 128 + SIGPIPE, as a shell reports git or cat."""
STALE = 8
"""Exit code of ``gitfree stale`` when a newest version was made from inputs that have newer versions, or an
input could not be checked."""


def _stdout_closed() -> NoReturn:
    """End quietly: the reader of stdout is gone (``gitfree cat ... | head``), as git and coreutils do.

    Standard output is pointed at /dev/null first, so the interpreter's final flush of what is
    still buffered cannot fail again ("Exception ignored ... BrokenPipeError") — the recipe of
    Python's documentation (signal module, "Note on SIGPIPE").
    """
    _bars.stop()
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (tests), or already gone
        pass
    sys.exit(STDOUT_CLOSED)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""Control characters other than newline and tab (C0, DEL, C1)."""


def _visible(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


class _Console(Console):
    """Rich output that never reads data as markup or emoji codes, and ends quietly on a closed pipe."""

    def __init__(self, *, stderr: bool = False) -> None:
        super().__init__(stderr=stderr, soft_wrap=True, markup=False, emoji=False)

    def on_broken_pipe(self) -> None:
        self.quiet = True
        if not self.stderr:
            _stdout_closed()  # else nothing more can be said; the exit code still tells

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        # Data never drives the terminal: control characters in messages, metadata or file names (ESC
        # sequences that retitle, clear or recolour it) are shown as visible escapes, as `ls -b` does.
        # Rich's own control segments (cursor moves of the progress bars) pass as they are.
        return super()._render_buffer(
            segment if segment.control else Segment(_CONTROL.sub(_visible, segment.text), segment.style)
            for segment in buffer
        )


# Data (names, paths, messages) goes through these as plain text: markup is never parsed
# (`s3://BUCKET[/PREFIX]` or a file named `[red]` prints as it is).
out = _Console()
err = _Console(stderr=True)


# ---------------------------------------------------------------------------- progress


class _Done(ProgressColumn):
    """How far a phase is: ``3/10`` files, or ``120.5 MiB/500.0 MiB`` for a phase counted in bytes."""

    def render(self, task: Task) -> Text:
        if task.fields.get("unit") == "bytes":
            total = format_size(int(task.total)) if task.total is not None else "?"
            return Text(f"{format_size(int(task.completed))}/{total}", style="progress.download")
        count = str(int(task.total)) if task.total is not None else "?"
        return Text(f"{int(task.completed):{len(count)}d}/{count}", style="progress.download")


class _Bars:
    """Rich progress bars for long phases; a phase shows only once it has run for a moment."""

    DELAY = 0.5

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self.generation = 0

    def factory(self, description: str, unit: str) -> Callback:
        return _Bar(self, description, unit)

    def progress(self) -> Progress:
        if self._progress is None:
            self._progress = Progress(
                TextColumn("{task.description}", markup=False),  # descriptions hold file names
                BarColumn(),
                _Done(),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            )
            self._progress.start()
        return self._progress

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self.generation += 1


class _Bar(Callback):  # type: ignore[misc]  # fsspec is untyped
    """One phase's bar. ``unit`` is ``"file"`` (a count) or ``"bytes"``: the store's uploads and downloads
    count bytes and set it so."""

    def __init__(self, bars: _Bars, description: str, unit: str = "file") -> None:
        super().__init__()
        self._bars = bars
        self._description = description
        self.unit = unit
        self._started = time.monotonic()
        self._task: TaskID | None = None
        self._generation = -1

    def call(self, *args: Any, **kwargs: Any) -> None:
        if self._task is not None and self._bars.generation != self._generation:
            return  # the display ended (results are being printed); stay quiet
        if self._task is None:
            if time.monotonic() - self._started < _Bars.DELAY or not err.is_terminal:
                return
            self._task = self._bars.progress().add_task(self._description, total=self.size, unit=self.unit)
            self._generation = self._bars.generation
        self._bars.progress().update(self._task, completed=self.value, total=self.size, unit=self.unit)


# ---------------------------------------------------------------------------- output helpers


def _size(size: int | None) -> str:
    return "?" if size is None else format_size(size)


def _when(moment: datetime, seconds: bool = True) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def _metric(value: int | float) -> str:
    """A metric as recorded: an integer as an integer, a float with every digit it has."""
    return str(value) if isinstance(value, int) else repr(value)


def _who(version: Version) -> str:
    author = version.author
    who = f"{author.user or '?'}@{author.host or '?'}"
    if author.pipeline:
        who += f" ({author.orchestrator or 'run'}: {author.pipeline})"
    return who


_bars = _Bars()


def _output() -> Console:
    """The console for results; progress bars end first so they never mix with output."""
    _bars.stop()
    return out


def _print_json(value: BaseModel | Sequence[Any] | dict[str, Any] | str) -> None:
    _bars.stop()
    if isinstance(value, BaseModel):
        data: Any = value.model_dump(mode="json")
    elif isinstance(value, list):
        data = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    else:
        data = value
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


# One JSON shape per concept. A version is always the object of _version_json, whichever command
# prints it (log: a list of them; show, commit, pull: one, with what the command adds); a tag is
# always the object of _tag_json (tag: one; tags: a list).


def _version_json(version: Version, tags: Sequence[str]) -> dict[str, Any]:
    """A version for scripts: ``ref`` (``images@3``), every field of its record, and ``tags`` (the names
    pointing at it, sorted)."""
    return {"ref": version.ref, **version.model_dump(mode="json"), "tags": sorted(tags)}


def _tag_json(tag: Tag) -> dict[str, Any]:
    """A tag for scripts: ``ref`` (``images@prod``) and every field of its record (``number``: the version)."""
    return {"ref": tag.ref, **tag.model_dump(mode="json")}


def _event_json(event: TagEvent) -> dict[str, Any]:
    """A tag history event for scripts: ``ref`` (``images@prod``) and every field of its entry."""
    return {"ref": event.ref, **event.model_dump(mode="json")}


def _said(message: str, gate: str) -> str:
    return f"{message} [{gate}]" if message and gate else message or gate


def _or_dash(number: int | None) -> str:
    return "-" if number is None else str(number)


def _change(event: AuditEvent) -> str:
    """The version of a commit or a drop; ``2 → 4`` for a tag move, ``→ 1`` for a creation, ``3 →`` for a deletion."""
    if event.kind != "tag":
        return _or_dash(event.number)
    before = "" if event.previous is None else str(event.previous)
    after = "" if event.number is None else str(event.number)
    return f"{before} → {after}".strip()


def _tags_by_number(store: Store, dataset: str) -> dict[int, list[str]]:
    names: dict[int, list[str]] = {}
    for tag in store.tags(dataset):
        names.setdefault(tag.number, []).append(tag.tag)
    return names


def _parse_pairs(pairs: Sequence[str], what: str, convert: Callable[[str], Any]) -> dict[str, Any]:
    result = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise InputError(f"{what} must be KEY=VALUE, got {pair!r}")
        try:
            result[key] = convert(raw)
        except InputError as exc:
            raise InputError(f"{what} {key!r}: {exc}") from None
        except ValueError:
            raise InputError(f"{what} {key!r} must be a number, got {raw[:60]!r}") from None
    return result


def _json_or_text(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


@dataclass(frozen=True)
class _Column:
    """A column of a listing table. ``flex`` columns share what the others leave of the width."""

    header: str
    justify: Literal["left", "right"] = "left"
    flex: bool = False
    overflow: Literal["ellipsis", "fold"] = "ellipsis"
    """What a flex cell too long for its column does: cut with … (one line per row) or fold onto more lines."""
    style: str | None = None


_GAP = 2
"""Spaces between two columns."""


def _listing(
    columns: Sequence[_Column], rows: Sequence[Sequence[str | Text]], width: int, *, header: bool = True
) -> Table:
    """A table of ``rows`` as wide as its content, and never wider than ``width``.

    Fixed columns keep their full width; the flex columns share the rest, the narrowest content first
    (so a short column is never cut to make room for a long one).
    """

    def cells(value: str | Text) -> int:
        return value.cell_len if isinstance(value, Text) else cell_len(value)

    natural = [max([cells(c.header) if header else 0] + [cells(row[i]) for row in rows]) for i, c in enumerate(columns)]
    widths = list(natural)
    flex = sorted((i for i, c in enumerate(columns) if c.flex), key=lambda i: natural[i])
    room = width - _GAP * (len(columns) - 1) - sum(natural[i] for i, c in enumerate(columns) if not c.flex)
    for k, i in enumerate(flex):
        share = room // (len(flex) - k)
        widths[i] = max(min(natural[i], share), min(natural[i], cells(columns[i].header) if header else 0), 1)
        room -= widths[i]
    table = Table(
        box=None, show_edge=False, pad_edge=False, padding=(0, _GAP // 2), header_style="bold", show_header=header
    )
    for column, w in zip(columns, widths, strict=True):
        ellipsis = column.flex and column.overflow == "ellipsis"
        table.add_column(
            column.header,
            justify=column.justify,
            width=w,
            no_wrap=ellipsis or not column.flex,
            overflow=column.overflow,
            style=column.style,
        )
    for row in rows:
        table.add_row(*row)
    return table


def _print_table(table: Table) -> None:
    """Tables are laid out in the console's width (results go through ``soft_wrap``, which would not)."""
    _output().print(table, soft_wrap=False)


def _version_table(versions: Sequence[Version], tags: dict[int, list[str]], metrics: Sequence[str] = ()) -> Table:
    columns = [
        _Column("version", "right"),
        _Column("created"),
        _Column("files", "right"),
        _Column("size", "right"),
        _Column("author", flex=True),
        _Column("tags", flex=True),
        _Column("message", flex=True),
    ]
    rows = [
        [
            str(v.number),
            _when(v.created_at, seconds=False),
            str(v.nfiles),
            format_size(v.size),
            _one_line(_who(v)),
            ", ".join(tags.get(v.number, [])),
            _one_line(v.message),
        ]
        for v in versions
    ]
    for k, name in enumerate(metrics):  # `log --metric NAME`: a column each, after size; values fold, never cut
        header = name if cell_len(name) <= 12 else set_cell_size(name, 11).rstrip() + "…"
        columns.insert(4 + k, _Column(header, "right", flex=True, overflow="fold"))
        for row, v in zip(rows, versions, strict=True):
            row.insert(4 + k, _metric(v.metrics[name]) if name in v.metrics else "-")
    return _listing(columns, rows, out.width)


# ---------------------------------------------------------------------------- the command


class OneLineErrors(click.Group):
    """A click group that turns every failure into one line on stderr and its exit code.

    No traceback, no usage block: a :class:`GitfreeError` exits with its ``exit_code``, a usage
    error with 2, an unexpected exception with 1 (``-vv`` adds the traceback), a closed stdout
    quietly with 141. ``gitfree-flows`` uses it too.
    """

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except BrokenPipeError:  # --help or --version into a closed pipe
            _stdout_closed()
        except click.exceptions.NoArgsIsHelpError:
            raise  # `gitfree` alone shows the help
        except click.ClickException as exc:  # a bad global option
            _usage_error(exc)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            try:
                result = super().invoke(ctx)
            except click.exceptions.Exit:
                sys.stdout.flush()
                raise
            sys.stdout.flush()  # a closed stdout shows here when the output fitted in the buffer
            return result
        except BrokenPipeError:
            _stdout_closed()
        except GitfreeError as exc:
            _fail(exc.in_cli_terms(), exc.exit_code, exc)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.ClickException as exc:  # a subcommand's usage error
            _usage_error(exc)
        except (click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            _fail(f"unexpected {type(exc).__name__}: {exc} (run with -vv for details)", 1, exc)
        finally:
            _bars.stop()


def _usage_error(exc: click.ClickException) -> NoReturn:
    message = exc.format_message()
    if isinstance(exc, click.UsageError) and exc.ctx is not None:
        message = f"{message.rstrip('.')}; see '{exc.ctx.command_path} --help'"
    _fail(message, exc.exit_code)


def _one_line(text: str) -> str:
    """What gitfree prints about a failure or a warning is one line, always."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\a": "\\a",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\v": "\\v",
    "\f": "\\f",
    "\r": "\\r",
}


def _unsafe(char: str) -> bool:
    """A character a terminal would act on or hide: a control (line breaks, ESC), a format character (a
    bidirectional override) or a line or paragraph separator."""
    return unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")


def _escaped(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    if not _unsafe(char):
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _shown_path(path: str) -> str:
    """A file name as people read it, as ``ls -b`` and git quote: a name with a line break, an escape
    sequence or another control character is put in double quotes with C escapes (``"a\\nb"``), as is
    one that starts with a quote; any other is printed as it is. ``--json`` prints names exactly."""
    if not path.startswith('"') and not any(_unsafe(c) for c in path):
        return path
    return '"' + "".join(_escaped(c) for c in path) + '"'


class _WarningLines(logging.Handler):
    """``warning: <message>`` on stderr, one line per record, never markup."""

    def emit(self, record: logging.LogRecord) -> None:
        line = _one_line(record.getMessage())
        with contextlib.suppress(BrokenPipeError, ValueError):
            err.print(f"[yellow]warning:[/] {escape(line)}", highlight=False, markup=True)


def _fail(message: str, code: int, exc: BaseException | None = None) -> NoReturn:
    _bars.stop()
    if exc is not None and logging.getLogger("gitfree").isEnabledFor(logging.DEBUG):
        err.print_exception()
    line = _one_line(message)
    with contextlib.suppress(BrokenPipeError):  # stderr gone too: the exit code still tells
        err.print(f"[bold red]error:[/] {escape(line)}", highlight=False, markup=True)
    sys.exit(code)


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option(
    "--store",
    "store_url",
    envvar="GITFREE_STORE",
    show_envvar=True,
    help="Store URL (s3://bucket/prefix, file:///path). Default: a local directory.",
)
@click.option(
    "--endpoint-url", envvar="GITFREE_ENDPOINT_URL", show_envvar=True, help="S3 endpoint of a non-AWS server."
)
@click.option("--profile", envvar="GITFREE_PROFILE", show_envvar=True, help="AWS profile for credentials.")
@click.option(
    "--cache-dir",
    envvar="GITFREE_CACHE_DIR",
    show_envvar=True,
    type=click.Path(file_okay=False),
    help="Worker cache directory.",
)
@click.option("-j", "--jobs", type=click.IntRange(1, 256), help="Parallel transfers.")
@click.option("-v", "--verbose", count=True, help="-v: say what happens; -vv: debug output and tracebacks.")
@click.version_option(package_name="gitfree")
@click.pass_context
def cli(
    ctx: click.Context,
    store_url: str | None,
    endpoint_url: str | None,
    profile: str | None,
    cache_dir: str | None,
    jobs: int | None,
    verbose: int,
) -> None:
    """Version datasets on S3 or a local directory, with DVC's format and no git."""
    logger = logging.getLogger("gitfree")
    if verbose:
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=err, show_path=False, show_time=False, markup=False)
        logger.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
    else:
        # Warnings (a record skipped because it cannot be read, ...) are one line each on stderr.
        handler = _WarningLines()
        logger.setLevel(logging.WARNING)
    logger.handlers = [h for h in logger.handlers if not isinstance(h, _WarningLines)]
    logger.addHandler(handler)

    def make_store() -> Store:
        return Store(
            store_url,
            endpoint_url=endpoint_url,
            profile=profile,
            cache_dir=cache_dir,
            jobs=jobs,
            progress=_bars.factory,
        )

    ctx.obj = make_store


def _store(ctx: click.Context) -> Store:
    factory: Callable[[], Store] = ctx.find_root().obj
    return factory()


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


@cli.command()
@click.argument("dataset")
@click.argument("path", type=click.Path(path_type=str))
@click.option("-m", "--message", default="", help="What this version is.")
@click.option("--meta", multiple=True, metavar="KEY=VALUE", help="Metadata (VALUE is JSON or text); repeatable.")
@click.option("--metric", multiple=True, metavar="KEY=NUMBER", help="A metric; repeatable.")
@click.option("--input", "inputs", multiple=True, metavar="REF", help="A version this one was made from; repeatable.")
@click.option("--force", is_flag=True, help="Create a version even if the data is unchanged.")
@click.option(
    "--by-reference",
    is_flag=True,
    help="Version the files where they are (PATH: s3://BUCKET/PREFIX/, a shared folder, or on an az:// or gs:// "
    "store az://CONTAINER/PREFIX/ or gs://BUCKET/PREFIX/); upload nothing.",
)
@click.option(
    "--source-endpoint-url",
    help="By reference: the source's S3 endpoint, when not the store's. Default: GITFREE_SOURCE_ENDPOINT_URL; "
    "keys: GITFREE_SOURCE_ACCESS_KEY_ID, GITFREE_SOURCE_SECRET_ACCESS_KEY.",
)
@click.option("--source-region", help="By reference: the source's region. Default: GITFREE_SOURCE_REGION.")
@click.option("--source-profile", help="By reference: the source's AWS profile. Default: GITFREE_SOURCE_PROFILE.")
@json_option
@click.pass_context
def commit(
    ctx: click.Context,
    dataset: str,
    path: str,
    message: str,
    meta: tuple[str, ...],
    metric: tuple[str, ...],
    inputs: tuple[str, ...],
    force: bool,
    by_reference: bool,
    source_endpoint_url: str | None,
    source_region: str | None,
    source_profile: str | None,
    as_json: bool,
) -> None:
    """Commit PATH (a file or directory) as the next version of DATASET."""
    flags = {"endpoint_url": source_endpoint_url, "region": source_region, "profile": source_profile}
    if any(flags.values()) and not by_reference:
        raise InputError(
            "--source-endpoint-url, --source-region and --source-profile are for a commit by reference: add "
            "--by-reference, or leave them out"
        )
    store = _store(ctx)
    version = store.commit(
        dataset,
        path,
        message=message,
        metadata=_parse_pairs(meta, "--meta", _json_or_text),
        metrics=_parse_pairs(metric, "--metric", parse_metric),
        inputs=list(inputs),
        force=force,
        by_reference=by_reference,
        # Without flags, the store's own (GITFREE_SOURCE_*, for s3:// sources only).
        source_options=_source_options(flags) if any(flags.values()) else None,
    )
    if as_json:
        # A version this call created had no tag when it was made: no need to ask.
        tags = [] if version.created else _tags_by_number(store, dataset).get(version.number, [])
        _print_json({**_version_json(version, tags), "created": bool(version.created)})
    elif not version.created:
        _output().print(f"unchanged: {version.ref} already holds this data ({_amount(version)})")
    else:
        where = f" by reference to {version.reference.source}" if version.reference else ""
        _output().print(f"committed {version.ref}{where}: {_amount(version)}")


def _amount(version: Version) -> str:
    """``4 files, 10.0 KiB``."""
    return f"{format_count(version.nfiles, 'file')}, {format_size(version.size)}"


def _source_options(flags: dict[str, str | None]) -> SourceOptions:
    """The source options of ``commit --by-reference --source-*``: ``GITFREE_SOURCE_*`` with the flags over them."""
    given = {name: value for name, value in flags.items() if value}
    options = SourceOptions.from_env()
    return SourceOptions(**{**(options.model_dump(exclude_none=True) if options else {}), **given})


@cli.command()
@click.argument("ref")
@click.argument("dest", type=click.Path(path_type=str))
@click.option("--overwrite", is_flag=True, help="Replace DEST if it holds other data.")
@click.option(
    "--path", "paths", multiple=True, metavar="PATH", help="Pull only this file or folder of the version; repeatable."
)
@json_option
@click.pass_context
def pull(ctx: click.Context, ref: str, dest: str, overwrite: bool, paths: tuple[str, ...], as_json: bool) -> None:
    """Materialise the version REF at DEST."""
    store = _store(ctx)
    version = store.show(ref)
    target = store.pull(version, dest, overwrite=overwrite, paths=list(paths) or None)
    if as_json:
        tags = _tags_by_number(store, version.dataset).get(version.number, [])
        _print_json({**_version_json(version, tags), "dest": str(target)})
    else:
        _output().print(f"pulled {version.ref} to {target}")


@cli.command()
@click.argument("dataset")
@click.option("-n", "--limit", type=click.IntRange(min=1), help="Show at most this many versions.")
@click.option(
    "--metric", "metric_names", multiple=True, metavar="NAME", help="Add a column of this metric; repeatable."
)
@json_option
@click.pass_context
def log(ctx: click.Context, dataset: str, limit: int | None, metric_names: tuple[str, ...], as_json: bool) -> None:
    """The versions of DATASET, newest first."""
    store = _store(ctx)
    versions = store.log(dataset, limit=limit)
    names = list(dict.fromkeys(metric_names))
    unseen = [n for n in names if not any(n in v.metrics for v in versions)]
    if unseen:  # recorded only by older versions, or by none (NotFoundError naming those that exist)
        store.metrics(dataset, unseen, limit=1)
    tags = _tags_by_number(store, dataset)
    if as_json:
        _print_json([_version_json(v, tags.get(v.number, [])) for v in versions])
        return
    _print_table(_version_table(versions, tags, names))


@cli.command()
@click.argument("ref")
@click.option("--files", "with_files", is_flag=True, help="List the files of the version too.")
@json_option
@click.pass_context
def show(ctx: click.Context, ref: str, with_files: bool, as_json: bool) -> None:
    """Details of the version REF (images, images@3, images@prod, images@latest~1)."""
    store = _store(ctx)
    version = store.show(ref)
    tags = _tags_by_number(store, version.dataset).get(version.number, [])
    files = store.files(version, sizes=True) if with_files else None
    if as_json:
        data = _version_json(version, tags)
        if files is not None:
            data["files"] = [f.model_dump(mode="json") for f in files]
        _print_json(data)
        return
    rows = [
        ("version", version.ref),
        ("tags", ", ".join(sorted(tags)) or "-"),
        ("id", str(version.id)),
        ("created", _when(version.created_at)),
        ("author", _who(version)),
        ("message", version.message),
        ("files", str(version.nfiles)),
        ("size", f"{format_size(version.size)} ({version.size} bytes)"),
        ("md5", version.md5),
        ("parent", str(version.parent) if version.parent else "-"),
        ("inputs", ", ".join(str(i) for i in version.inputs) or "-"),
    ]
    if version.reference is not None:
        rows.insert(7, ("source", f"{version.reference.source} (by reference)"))
    rows += [(f"metric {k}", _metric(v)) for k, v in version.metrics.items()]
    rows += [(f"meta {k}", json.dumps(v, ensure_ascii=False)) for k, v in version.metadata.items()]
    if version.author.run_id:
        rows.append(("run", f"{version.author.run_id} / task {version.author.task_id or '-'}"))
    details = [_Column("", style="bold"), _Column("", flex=True, overflow="fold")]
    _print_table(_listing(details, rows, out.width, header=False))
    if files is not None:
        columns = [_Column("path", flex=True, overflow="fold"), _Column("md5"), _Column("size", "right")]
        _print_table(_listing(columns, [(_shown_path(f.path), f.md5, _size(f.size)) for f in files], out.width))


@cli.command()
@click.argument("old")
@click.argument("new")
@json_option
@click.pass_context
def diff(ctx: click.Context, old: str, new: str, as_json: bool) -> None:
    """Files added, removed and modified from OLD to NEW, then how their metrics changed."""
    store = _store(ctx)
    result = store.diff(old, new)
    metrics = store.compare(result.old, result.new)  # the exact refs: what was compared, even if a tag moves
    if as_json:
        _print_json({**result.model_dump(mode="json"), "metrics": metrics.model_dump(mode="json")})
        return
    columns = [
        _Column(""),
        _Column("path", flex=True, overflow="fold"),
        _Column("old size", "right"),
        _Column("new size", "right"),
    ]
    marks = {"added": Text("+", "green"), "removed": Text("-", "red"), "modified": Text("~", "yellow")}
    rows = [
        (
            marks[e.status],
            _shown_path(e.path),
            _size(e.old_size) if e.old_md5 else "",
            _size(e.new_size) if e.new_md5 else "",
        )
        for e in result.entries
    ]
    if rows:
        _print_table(_listing(columns, rows, out.width))
    _output().print(
        f"{result.old} → {result.new}: {len(result.added)} added, {len(result.removed)} removed, "
        f"{len(result.modified)} modified"
    )
    if metrics.metrics:
        _print_metrics_diff(metrics)


# ---------------------------------------------------------------------------- metrics across versions


class _MetricsGroup(click.Group):
    """``gitfree metrics DATASET`` is ``gitfree metrics log DATASET``: a first word that names no subcommand
    (``log``, ``diff``) is a dataset. So ``diff`` is always the subcommand, and a dataset named ``diff`` or
    ``log`` is listed with ``gitfree metrics log diff``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["log", *args]
        return super().parse_args(ctx, args)


@cli.group(cls=_MetricsGroup)
def metrics() -> None:
    """Metrics across versions: `gitfree metrics DATASET` lists them, `gitfree metrics diff A B` compares two.

    \b
    gitfree metrics images [--metric acc] [--limit 10] [--json]
    gitfree metrics diff images@6 images@7 [--json]

    The first word is a subcommand if it is `log` or `diff`, else a dataset: a dataset named
    `diff` or `log` is listed with `gitfree metrics log diff`.
    """


class _OneDataset(click.Command):
    """``gitfree metrics DATASET``: more words than a dataset is most likely a mistyped ``diff`` (``gitfree
    metrics dif A B`` reads ``dif`` as a dataset), and the error says how to compare two versions."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            if "unexpected extra argument" not in exc.format_message():
                raise
            raise click.UsageError(
                f"{exc.format_message().rstrip('.')}: gitfree metrics lists the metrics of one dataset; "
                "to compare two versions, run gitfree metrics diff OLD NEW",
                ctx,
            ) from None


@metrics.command(name="log", cls=_OneDataset)
@click.argument("dataset")
@click.option("--metric", "names", multiple=True, metavar="NAME", help="Only this metric; repeatable.")
@click.option("-n", "--limit", type=click.IntRange(min=1), help="Show at most this many versions.")
@json_option
@click.pass_context
def metrics_log(ctx: click.Context, dataset: str, names: tuple[str, ...], limit: int | None, as_json: bool) -> None:
    """The metrics of DATASET's versions, newest first, each against the previous version recording it.

    A version that records none of the metrics is left out; so are versions garbage collection dropped.
    """
    if "@" in dataset:
        name = dataset.partition("@")[0]
        raise InputError(
            f"metrics lists the history of a dataset: give its name ({name!r}), or compare two versions with "
            f"`gitfree metrics diff {dataset} {name}`"
        )
    store = _store(ctx)
    points = store.metrics(dataset, list(names) or None, limit=None if limit is None else limit + 1)
    complete = limit is None or len(points) <= limit  # else the oldest shown may have an older value unread
    shown = points if limit is None else points[:limit]
    if as_json:
        _print_json(shown)
    elif not points:
        _output().print(
            f"{dataset} has no metrics: none of its versions records one "
            f"(`gitfree commit {dataset} PATH --metric NAME=NUMBER` records some)",
            highlight=False,
        )
    else:
        _print_table(_metrics_history_table(points, len(shown), complete))


def _metrics_history_table(points: Sequence[MetricsPoint], shown: int, complete: bool) -> Table:
    """One row per version and metric (the newest ``shown`` of ``points``); ``change`` is against the next
    older point recording that metric (``first`` when there is none and ``complete`` says all was read)."""
    rows: list[list[str]] = []
    for k, point in enumerate(points[:shown]):
        for j, (name, value) in enumerate(sorted(point.metrics.items())):
            older = next((p for p in points[k + 1 :] if name in p.metrics), None)
            if older is not None:
                change = MetricsDiff.between(older.ref, older.metrics, point.ref, point.metrics).get(name)
                trend = change.change if change is not None else ""
            else:
                trend = "first" if complete else ""
            when = _when(point.created_at, seconds=False) if j == 0 else ""
            rows.append([str(point.number), when, name, _metric(value), trend])
    columns = [
        _Column("version", "right"),
        _Column("created"),
        _Column("metric", flex=True, overflow="fold"),
        _Column("value", "right", flex=True, overflow="fold"),
        _Column("change", flex=True, overflow="fold"),
    ]
    return _listing(columns, rows, out.width)


@metrics.command(name="diff")
@click.argument("old", required=False)
@click.argument("new", required=False)
@json_option
@click.pass_context
def metrics_diff(ctx: click.Context, old: str | None, new: str | None, as_json: bool) -> None:
    """How the metrics changed from version OLD to version NEW (delta, and relative change)."""
    if old is None or new is None:
        raise click.UsageError(
            "metrics diff compares two versions: gitfree metrics diff OLD NEW (e.g. images@6 images@7); "
            "to list the metrics of a dataset named 'diff', run gitfree metrics log diff",
            ctx,
        )
    result = _store(ctx).compare(old, new)
    if as_json:
        _print_json(result)
    elif not result.metrics:
        _output().print(f"neither {result.old} nor {result.new} records a metric", highlight=False)
    else:
        _print_metrics_diff(result)


def _print_metrics_diff(result: MetricsDiff) -> None:
    columns = [
        _Column("metric", flex=True, overflow="fold"),
        _Column("old", "right", flex=True, overflow="fold"),
        _Column("new", "right", flex=True, overflow="fold"),
        _Column("change", flex=True, overflow="fold"),
    ]
    rows = [
        [m.name, "-" if m.old is None else _metric(m.old), "-" if m.new is None else _metric(m.new), m.change]
        for m in result.metrics
    ]
    _print_table(_listing(columns, rows, out.width))
    same = sum(m.status == "unchanged" for m in result.metrics)
    _output().print(
        f"{result.old} → {result.new}: {len(result.changed)} metric(s) changed, {same} unchanged, "
        f"{len(result.added)} added, {len(result.removed)} removed",
        highlight=False,
    )


@cli.command()
@click.argument("ref")
@click.argument("name")
@click.option("--move", is_flag=True, help="Move the tag if it already points elsewhere.")
@click.option(
    "--expect",
    type=click.IntRange(min=1),
    metavar="N",
    help="Move only if the tag is at version N now (compare-and-swap); implies --move.",
)
@click.option("-m", "--message", default="", help="Why; kept in the tag's history.")
@json_option
@click.pass_context
def tag(ctx: click.Context, ref: str, name: str, move: bool, expect: int | None, message: str, as_json: bool) -> None:
    """Point the tag NAME at the version REF."""
    record = _store(ctx).tag(ref, name, move=move, expect=expect, message=message)
    if as_json:
        _print_json(_tag_json(record))
    else:
        _output().print(f"{record.ref} → {record.dataset}@{record.number}")


@cli.command()
@click.argument("dataset")
@click.argument("name")
@click.option("--expect", type=click.IntRange(min=1), metavar="N", help="Delete only if the tag is at version N now.")
@click.option("-m", "--message", default="", help="Why; kept in the tag's history.")
@json_option
@click.pass_context
def untag(ctx: click.Context, dataset: str, name: str, expect: int | None, message: str, as_json: bool) -> None:
    """Delete the tag NAME of DATASET (the deletion is kept in its history)."""
    record = _store(ctx).untag(dataset, name, expect=expect, message=message)
    if as_json:
        _print_json(_tag_json(record))
    else:
        _output().print(f"deleted {record.ref} (it pointed at {record.version_ref})")


@cli.command(name="tag-history")
@click.argument("dataset")
@click.argument("name")
@json_option
@click.pass_context
def tag_history(ctx: click.Context, dataset: str, name: str, as_json: bool) -> None:
    """Every creation, move and deletion of the tag NAME of DATASET, oldest first."""
    events = _store(ctx).tag_history(dataset, name)
    if as_json:
        _print_json([_event_json(e) for e in events])
        return
    columns = [
        _Column("seq", "right"),
        _Column("when"),
        _Column("action"),
        _Column("from", "right"),
        _Column("to", "right"),
        _Column("by", flex=True),
        _Column("message", flex=True, overflow="fold"),
    ]
    rows = [
        [
            str(e.seq),
            _when(e.created_at),
            e.action,
            _or_dash(e.previous),
            _or_dash(e.number),
            _one_line(who(e.author)),
            _one_line(_said(e.message, e.gate)),
        ]
        for e in events
    ]
    _print_table(_listing(columns, rows, out.width))


@cli.command()
@click.argument("ref")
@click.argument("stage")
@click.option(
    "--require",
    multiple=True,
    metavar="METRIC OP [N]",
    help="A metric gate; repeatable. 'accuracy>=': at least the current holder's; 'f1>=0.9': at least 0.9 "
    "(operators >=, >, <=, <, ==).",
)
@click.option("-m", "--message", default="", help="Why; kept in the stage's history.")
@json_option
@click.pass_context
def promote(ctx: click.Context, ref: str, stage: str, require: tuple[str, ...], message: str, as_json: bool) -> None:
    """Move the stage tag STAGE to REF if REF passes every --require (and holds the stage before STAGE,
    when the dataset has a stage order). Exit 4 if refused."""
    record = _store(ctx).promote(ref, stage, require=list(require), message=message)
    if as_json:
        _print_json({**_tag_json(record), "written": bool(record.written)})
        return
    if not record.written:
        _output().print(f"{record.version_ref} already holds {record.tag}: nothing changed")
        return
    was = f"was {record.dataset}@{record.previous}" if record.previous is not None else "it had no holder"
    _output().print(
        f"promoted {record.version_ref} to {record.tag} ({was})" + (f": {record.gate}" if record.gate else "")
    )


@cli.command()
@click.argument("dataset")
@click.argument("order", nargs=-1)
@click.option("--clear", is_flag=True, help="Remove the stage order.")
@json_option
@click.pass_context
def stages(ctx: click.Context, dataset: str, order: tuple[str, ...], clear: bool, as_json: bool) -> None:
    """Show, or with ORDER set, the stage order of DATASET (e.g. dev staging production) that promote follows."""
    store = _store(ctx)
    if clear and order:
        raise InputError("give the stages in order, or --clear to remove them, not both")
    names = store.set_stages(dataset, list(order)) if order or clear else store.stages(dataset)
    if as_json:
        click.echo(json.dumps(names))
    elif names:
        _output().print(f"{dataset}: {' → '.join(names)}")
    else:
        _output().print(f"{dataset} has no stage order")


@cli.command()
@click.argument("dataset")
@click.option("-n", "--limit", type=click.IntRange(min=1), help="Show at most this many events.")
@json_option
@click.pass_context
def audit(ctx: click.Context, dataset: str, limit: int | None, as_json: bool) -> None:
    """What happened to DATASET, newest first: commits, versions GC dropped, tag creations, moves and deletions."""
    events = _store(ctx).audit(dataset, limit=limit)
    if as_json:
        _print_json([{"ref": e.ref, **e.model_dump(mode="json")} for e in events])
        return
    columns = [
        _Column("when"),
        _Column("event"),
        _Column("tag", flex=True, overflow="fold"),  # a long tag name folds: the fixed columns stay whole
        _Column("version", "right"),
        _Column("by", flex=True),
        _Column("message", flex=True, overflow="fold"),
    ]
    rows = [
        [
            _when(e.at),
            e.action,
            e.tag or "",
            _change(e),
            _one_line(who(e.author)),
            _one_line(_said(e.message, e.gate)),
        ]
        for e in events
    ]
    _print_table(_listing(columns, rows, out.width))


@cli.command(name="ls")
@click.argument("ref")
@click.argument("path", default="")
@click.option("-l", "--long", "with_sizes", is_flag=True, help="Show sizes (one request per file not in the cache).")
@json_option
@click.pass_context
def ls(ctx: click.Context, ref: str, path: str, with_sizes: bool, as_json: bool) -> None:
    """List the files and folders of REF under PATH (folders end with /)."""
    store = _store(ctx)
    version = store.show(ref)
    tree = Tree.build(store.files(version, sizes=with_sizes))
    prefix = path.strip("/")
    children: dict[str, list[FileEntry]]
    if prefix in tree.files:  # PATH names a file
        children = {prefix.rsplit("/", 1)[-1]: [tree.files[prefix]]}
    elif prefix in tree.dirs:
        children = {name: tree.under(f"{prefix}/{name}".strip("/")) for name in tree.children(prefix)}
    else:
        raise NotFoundError(f"{version.ref} has nothing at {prefix!r}; `gitfree ls {version.ref}` lists its top level")
    rows: list[dict[str, Any]] = []
    for name, items in sorted(children.items()):
        sizes = [i.size for i in items]
        rows.append(
            {
                "name": name,
                "type": "directory" if name.endswith("/") else "file",
                "files": len(items),
                "size": sum(s for s in sizes if s is not None) if with_sizes and None not in sizes else None,
                "md5": None if name.endswith("/") else items[0].md5,
            }
        )
    if as_json:
        _bars.stop()
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    console = _output()
    for row in rows:
        size = f"{_size(row['size']):>10}  " if with_sizes else ""
        console.print(f"{size}{_shown_path(row['name'])}", highlight=False)


@cli.command(name="cat")
@click.argument("ref")
@click.argument("path", default="")
@click.pass_context
def cat(ctx: click.Context, ref: str, path: str) -> None:
    """Write the file PATH of REF to standard output (only its object is fetched)."""
    with _store(ctx).open(ref, path) as f:
        _bars.stop()
        sys.stdout.flush()
        while chunk := f.read(1 << 20):
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()


@cli.command()
@click.argument("dataset")
@json_option
@click.pass_context
def tags(ctx: click.Context, dataset: str, as_json: bool) -> None:
    """The tags of DATASET."""
    records = _store(ctx).tags(dataset)
    if as_json:
        _print_json([_tag_json(t) for t in records])
        return
    columns = [_Column("tag", flex=True, overflow="fold"), _Column("version", "right"), _Column("since")]
    _print_table(_listing(columns, [(t.tag, str(t.number), _when(t.created_at)) for t in records], out.width))


@cli.command()
@json_option
@click.pass_context
def datasets(ctx: click.Context, as_json: bool) -> None:
    """The datasets in the store."""
    names = _store(ctx).datasets()
    if as_json:
        click.echo(json.dumps(names))
    else:
        console = _output()
        for name in names:
            console.print(name, highlight=False)


# ---------------------------------------------------------------------------- lineage


@cli.command()
@click.argument("ref")
@click.option("--down", "direction", flag_value="down", help="What was made from REF (default: what it was made from).")
@click.option("--both", "direction", flag_value="both", help="Both: what REF was made from and what was made from it.")
@click.option("--depth", type=click.IntRange(min=0), metavar="N", help="Follow at most N hops from REF.")
@click.option(
    "--format", "fmt", type=click.Choice(["tree", "dot", "mermaid"]), default="tree", help="Output for people or docs."
)
@json_option
@click.pass_context
def lineage(ctx: click.Context, ref: str, direction: str | None, depth: int | None, fmt: str, as_json: bool) -> None:
    """What REF was made from, transitively (with --down: what was made from it), as a tree, dot or mermaid."""
    graph = _store(ctx).lineage(ref, direction or "up", depth)
    if as_json:
        _print_json(graph)
    elif fmt == "dot":
        _bars.stop()
        click.echo(graph.to_dot(), nl=False)
    elif fmt == "mermaid":
        _bars.stop()
        click.echo(graph.to_mermaid(), nl=False)
    else:
        _print_lineage(graph)


def _node_text(graph: Lineage, node: LineageNode) -> Text:
    text = Text(node.ref, style="bold" if node.id == graph.root else "")
    if node.store != graph.store:
        text.append(f"  {node.store}", style="cyan")
    if node.dropped:
        text.append(f"  {node.note}", style="yellow")
    elif node.external:
        text.append(f"  not readable: {node.note}", style="red")
    else:
        when = _when(node.created_at, seconds=False) if node.created_at else ""
        author = node.author
        who = f"{author.user or '?'}@{author.host or '?'}" if author else ""
        if author and author.pipeline:
            who += f" ({author.orchestrator or 'run'}: {author.pipeline})"
        text.append(f"  {when}  {who}", style="dim")
        if node.message:
            text.append(f"  {node.message}")
    return text


_TREE_LEVELS = 40
"""The deepest a lineage tree is drawn; deeper versions are counted (``--json`` and ``--format`` give them all)."""


def _print_lineage(graph: Lineage) -> None:
    from rich.tree import Tree as RichTree

    root = graph.node(graph.root)
    sides = {"up": [("made from", graph.inputs_of)], "down": [("used by", graph.consumers_of)]}
    sides["both"] = [*sides["up"], *sides["down"]]
    top = RichTree(_node_text(graph, root))
    for title, follow in sides[graph.direction]:
        branch = top.add(Text(title, style="italic")) if graph.direction == "both" else top
        _grow(graph, branch, root.id, follow)
        if graph.depth == 0:
            branch.add(Text("not followed (--depth 0)", style="dim"))
        elif not follow(root.id):
            branch.add(Text("nothing" if title == "made from" else "nothing recorded", style="dim"))
    console = _output()
    # Laid out in the console's width (results soft-wrap, which would cut a long line at the edge: a ref
    # lost its @N): a node's line folds under its branch instead.
    console.print(top, highlight=False, soft_wrap=False)


def _grow(graph: Lineage, branch: Any, root_id: str, follow: Callable[[str], list[str]]) -> None:
    """Add what ``follow`` gives, level by level under ``branch`` (iteratively: a chain may be thousands long).
    A node already shown is named again, not repeated; below ``_TREE_LEVELS`` levels, versions are counted."""
    shown = {root_id}
    stack: list[tuple[str, Any, int]] = [(root_id, branch, 0)]
    hidden: set[str] = set()
    while stack:
        node_id, under, level = stack.pop()
        children = follow(node_id)
        if level >= _TREE_LEVELS:
            hidden |= {c for c in children if c not in shown}
            continue
        for child in reversed(children):  # popped in order
            node = graph.node(child)
            text = _node_text(graph, node)
            if child in shown:
                under.add(text.append("  (see above)", style="dim"))
                continue
            shown.add(child)
            if node.more:
                text.append("  (its inputs are beyond --depth)", style="dim")
            stack.append((child, under.add(text), level + 1))
    if hidden:
        more = {n.id for n in graph.nodes} - shown
        branch.add(
            Text(f"... {len(more)} more version(s) deeper than {_TREE_LEVELS} levels (see --json or --format dot)")
        )


@cli.command()
@click.argument("datasets", nargs=-1)
@json_option
@click.pass_context
def stale(ctx: click.Context, datasets: tuple[str, ...], as_json: bool) -> None:
    """Newest versions made from inputs that have newer versions since: what to rebuild.

    Exit 0 when nothing is, 8 when something is, or when an input could not be checked (its store cannot
    be read): each line says which."""
    store = _store(ctx)
    found = store.stale(datasets)
    if as_json:
        _print_json(found)
    else:
        console = _output()
        for item in found:
            console.print(str(item), highlight=False)
        if not found:
            what = f"{len(datasets)} dataset(s)" if datasets else "every dataset"
            console.print(f"nothing is stale ({what} checked)", highlight=False)
    if found:
        ctx.exit(STALE)


@cli.command()
@click.argument("datasets", nargs=-1)
@json_option
@click.pass_context
def status(ctx: click.Context, datasets: tuple[str, ...], as_json: bool) -> None:
    """Whether each dataset's newest version (default: of every dataset a versioned step made) is what its
    step would make now: no input has a newer version, and the step's code, code_version and parameter
    defaults are what it was made with (when the step can be imported from the current directory).

    Exit 0 when all are up to date, 8 when one is not (each line says why)."""
    found = step_status(_store(ctx), datasets)
    if as_json:
        _print_json(found)
    else:
        console = _output()
        for item in found:
            for line in item.lines():
                console.print(line, highlight=False)
        if not found:
            console.print("no versioned step made any dataset here", highlight=False)
    if any(not item.up_to_date for item in found):
        ctx.exit(STALE)


@cli.command()
@click.argument("datasets", nargs=-1)
@click.option("-n", "--dry-run", is_flag=True, help="Only say what would be written and removed.")
@json_option
@click.pass_context
def reindex(ctx: click.Context, datasets: tuple[str, ...], dry_run: bool, as_json: bool) -> None:
    """Record every version among the consumers of its inputs (versions made before gitfree recorded it), and
    remove records of that kind that do not hold. Idempotent; `fsck --repair` does it too."""
    report = _store(ctx).reindex(datasets, dry_run=dry_run)
    if as_json:
        _print_json(report)
        return
    console = _output()
    verb = ("would write", "would remove") if dry_run else ("wrote", "removed")
    for key in report.written:
        console.print(f"  {verb[0]} {key}", highlight=False)
    for key in report.removed:
        console.print(f"  {verb[1]} {key}", highlight=False)
    console.print(
        f"{verb[0]} {len(report.written)} and {verb[1]} {len(report.removed)} lineage edge(s); {report.edges} edge(s) "
        f"for {report.versions} version(s)",
        highlight=False,
    )


if TYPE_CHECKING:  # generic only in recent click versions
    _TimedeltaParam = click.ParamType[timedelta]
else:
    _TimedeltaParam = click.ParamType


class _Duration(_TimedeltaParam):
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` or plain seconds."""

    name = "duration"
    _UNITS: ClassVar[dict[str, int]] = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([smhdw]?)", str(value).strip().lower())
        if match is None:
            self.fail(f"{value!r} is not a duration: write e.g. 30d, 12h, 90m, 45s or 0", param, ctx)
        amount, unit = float(match[1]), match[2] or "s"
        try:
            return timedelta(seconds=amount * self._UNITS[unit])
        except OverflowError:
            self.fail(f"{value!r} is too long a duration: write at most a few thousand days", param, ctx)


@cli.command()
@click.option("--keep-last", type=click.IntRange(min=1), metavar="N", help="Keep the last N versions of each dataset.")
@click.option("--keep-within", type=_Duration(), metavar="AGE", help="Keep versions younger than AGE (e.g. 30d).")
@click.option(
    "--grace",
    type=_Duration(),
    metavar="AGE",
    help="Never delete objects younger than this. Default: lease TTL + clock skew (15m).",
)
@click.option("-n", "--dry-run", is_flag=True, help="Only say what would be deleted.")
@click.option(
    "--delete-foreign",
    is_flag=True,
    help="Also delete objects gitfree did not write (e.g. a DVC project's, pushed to the same remote) that no "
    "version references. Without it they are only counted.",
)
@json_option
@click.pass_context
def gc(
    ctx: click.Context,
    keep_last: int | None,
    keep_within: timedelta | None,
    grace: timedelta | None,
    dry_run: bool,
    delete_foreign: bool,
    as_json: bool,
) -> None:
    """Drop versions the retention policy does not keep, and delete gitfree's objects no kept version references.

    The newest and every tagged version of each dataset are always kept; with no
    --keep-* option every version is, and only orphaned objects (left by crashed
    commits) go. A dropped version's number is never reused. Objects gitfree did not
    write are left alone unless --delete-foreign. Safe while commits run.
    """
    report = _store(ctx).gc(
        keep_last=keep_last, keep_within=keep_within, grace=grace, dry_run=dry_run, delete_foreign=delete_foreign
    )
    if as_json:
        _print_json(report)
        return
    console = _output()
    if dry_run:
        for ref in report.versions_deleted:
            console.print(f"  version {ref}", highlight=False)
        for key in report.deleted:
            console.print(f"  object  {key}", highlight=False)
    for line in _gc_summary(report, dry_run):
        console.print(line, highlight=False)
    if report.foreign_objects:
        what = (
            ("would be deleted" if dry_run else "deleted")
            if report.foreign_deleted
            else "left alone (not written by gitfree; --delete-foreign deletes them)"
        )
        console.print(
            f"{format_count(report.foreign_objects, 'foreign object')} ({format_size(report.foreign_bytes)}) {what}",
            highlight=False,
        )
    _print_tables(console, report, dry_run)
    if report.run_notes_removed:
        console.print(
            f"{report.run_notes_removed} run note(s) over 30 days old (lineage of finished orchestrator runs) "
            + ("would be removed" if dry_run else "removed"),
            highlight=False,
        )
    if report.step_notes_removed:
        console.print(
            f"{report.step_notes_removed} step note(s) of dropped versions "
            + ("would be removed" if dry_run else "removed"),
            highlight=False,
        )
    if report.step_claims_stale:
        console.print(
            f"{report.step_claims_stale} claim(s) of workers that died running a step (the next call of each "
            "step takes it over)",
            highlight=False,
        )


def _gc_summary(report: Any, dry_run: bool) -> list[str]:
    """What a GC did (or would do), a line each, each fitting 80 columns; counts that are 0 are left out, but the
    first line's."""
    verb = "would delete" if dry_run else "deleted"
    lines = [
        f"{verb} {format_count(len(report.versions_deleted), 'version')} and "
        f"{format_count(report.objects_deleted, 'object')} ({format_size(report.bytes_deleted)}); kept "
        f"{format_count(report.versions_kept, 'version')} and {format_count(report.objects_kept, 'object')}"
    ]
    if report.objects_too_young:
        lines.append(
            f"{format_count(report.objects_too_young, 'unreferenced object')} younger than the grace period left"
        )
    stale = report.leases_stale if dry_run else report.leases_removed
    leases = [format_count(report.leases_live, "commit") + " in flight"] if report.leases_live else []
    if stale:
        leases.append(
            f"{format_count(stale, 'stale lease')} of dead commits " + ("would be removed" if dry_run else "removed")
        )
    return lines + (["; ".join(leases)] if leases else [])


def _print_tables(console: Console, report: Any, dry_run: bool) -> None:
    """The reference tables (of versions by reference) a GC removed, or would remove."""
    if dry_run:
        for key in report.tables_deleted:
            console.print(f"  table   {key}", highlight=False)
    if report.tables_deleted or report.tables_too_young:
        console.print(
            f"{format_count(len(report.tables_deleted), 'reference table')} no kept version names "
            + ("would be removed" if dry_run else "removed")
            + (f"; {report.tables_too_young} younger than the grace period left" if report.tables_too_young else ""),
            highlight=False,
        )


@cli.command()
@click.argument("datasets", nargs=-1)
@click.option("--deep", is_flag=True, help="Download and hash every object (default: trust S3's md5 ETags).")
@click.option("--repair", is_flag=True, help="Re-upload missing or damaged objects the worker cache holds intact.")
@json_option
@click.pass_context
def fsck(ctx: click.Context, datasets: tuple[str, ...], deep: bool, repair: bool, as_json: bool) -> None:
    """Check that every version's objects are in the store and hash right (exit 5 if not)."""
    report = _store(ctx).fsck(deep=deep, repair=repair, datasets=datasets)
    if as_json:
        _print_json(report)
    else:
        console = _output()
        by_version: dict[str, list[Any]] = {}
        for problem in report.problems:
            by_version.setdefault(problem.ref or problem.key, []).append(problem)
        for where, found in by_version.items():
            console.print(f"{where}:", highlight=False)
            for p in found:
                state = "repaired" if p.repaired else p.kind.replace("_", " ")
                console.print(f"  {state}: {p.key} ({p.detail})", highlight=False)
        for note in report.notes:  # breaks no version: a materialised file's source drifted
            console.print(
                f"{note.ref}: note: {note.kind.replace('_', ' ')}: {note.key} ({note.detail})", highlight=False
            )
        for line in _fsck_summary(report):
            console.print(line, highlight=False)
    if not report.ok:
        ctx.exit(IntegrityError.exit_code)


def _fsck_summary(report: Any) -> list[str]:
    """What fsck checked and found, a line per fact, each fitting 80 columns."""
    checked = (
        f"checked {format_count(report.versions, 'version')} of {format_count(report.datasets, 'dataset')}, "
        f"{format_count(report.tags, 'tag')}, {format_count(report.objects, 'object')}"
    )
    lines = [checked + (f", {format_count(report.sources, 'source object')}" if report.sources else "")]
    if any(p.kind == "drift" for p in report.problems):
        lines += [
            "a drifted source cannot be repaired here: restore it, or commit the source again",
            "(materialize a version while its source still holds it)",
        ]
    if report.unverified:
        lines.append(f"{format_count(report.unverified, 'object')} checked for presence only (use --deep)")
    if report.stale_leases:
        lines.append(f"{format_count(report.stale_leases, 'stale lease')} (gc removes them)")
    broken = report.broken_versions
    if broken:
        lines.append(format_count(len(broken), "broken version"))
    elif report.ok:
        lines.append("no problems")
    return lines


@cli.command()
@click.argument("ref")
@click.pass_context
def materialize(ctx: click.Context, ref: str) -> None:
    """Copy the files of REF, a version by reference, into the store (then `gitfree export` works)."""
    store = _store(ctx)
    version = store.materialize(ref)
    _output().print(f"materialized {version.ref}: its {version.nfiles} files are in {store.url}", highlight=False)


@cli.command(name="export")
@click.argument("ref")
@click.argument("path", type=click.Path(path_type=str))
@click.pass_context
def export(ctx: click.Context, ref: str, path: str) -> None:
    """Write the .dvc file of REF at PATH, for a git+DVC project whose remote is this store."""
    store = _store(ctx)
    target = store.export_dvc(ref, path)
    _output().print(f"wrote {target}; in its project: {' && '.join(_dvc_setup(store, target.name))}", highlight=False)


def _dvc_setup(store: Store, dvc_file: str) -> list[str]:
    """The DVC commands that make this store a project's remote and pull ``dvc_file`` from it.

    DVC takes a local remote as a plain path (it accepts a ``file://`` URL as a remote but then
    finds nothing under it), and a non-AWS S3 server as the remote's ``endpointurl``.
    """
    local = store.url.startswith("file://")
    remote = url2pathname(urlsplit(store.url).path) if local else store.url
    steps = [f"dvc remote add -d store {shlex.quote(remote)}"]
    if store.url.startswith("s3://"):
        endpoint = store.settings.resolved_endpoint()
        if endpoint:
            steps.append(f"dvc remote modify store endpointurl {shlex.quote(endpoint)}")
        if store.settings.profile:
            steps.append(f"dvc remote modify store profile {shlex.quote(store.settings.profile)}")
    steps.append(f"dvc pull {shlex.quote(dvc_file)}")
    return steps


# ---------------------------------------------------------------------------- the web view

UI_EXTRA = "the web view needs the ui extra: pip install 'gitfree[ui]'"


@cli.command(name="ui")
@click.option("--store", "ui_store", metavar="URL", help="Store URL (default: gitfree's --store, GITFREE_STORE).")
@click.option("--host", default="127.0.0.1", help="Address to listen on; any but this machine's needs a token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, help="Port to listen on (0: any free one).")
@click.option("--open", "open_browser", is_flag=True, help="Open the view in a web browser.")
@click.option("--token", envvar="GITFREE_UI_TOKEN", show_envvar=True, help="Ask every visitor for this token.")
@click.option("--no-auth", is_flag=True, help="Serve any --host with no token (anyone reaching it reads the store).")
@click.option("--prefect-ui-url", envvar="GITFREE_PREFECT_UI_URL", show_envvar=True, help="Link flow runs there.")
@click.option("--airflow-ui-url", envvar="GITFREE_AIRFLOW_UI_URL", show_envvar=True, help="Link DAG runs there.")
@click.pass_context
def ui(
    ctx: click.Context,
    ui_store: str | None,
    host: str,
    port: int,
    open_browser: bool,
    token: str | None,
    no_auth: bool,
    prefect_ui_url: str | None,
    airflow_ui_url: str | None,
) -> None:
    """Serve a read-only web view of the store: datasets, history, versions, files, diffs, metrics, lineage.

    It listens on 127.0.0.1 (this machine only) unless --host says otherwise; any other host needs --token
    (or GITFREE_UI_TOKEN), or --no-auth said on purpose. It needs the ui extra: pip install 'gitfree[ui]'.
    """
    try:
        from .ui import create_app
        from .ui.server import is_loopback, listen, serve, url_of
    except ImportError as exc:
        missing = (exc.name or "a module").partition(".")[0]
        raise ConfigError(f"{UI_EXTRA} ({missing} is not installed)") from None
    if token is not None and not token.strip():  # `--token "$UNSET"`: never serve without the token asked for
        raise InputError("--token is empty: pass the token every visitor must show (or leave --token out)")
    _check_ui_access(host, token, no_auth, is_loopback(host))
    store = _ui_store(ctx, ui_store)
    store.datasets()  # a store that cannot be read fails now, with its one line, not on every page
    app = create_app(store, token=token, auth=not no_auth, prefect_ui_url=prefect_ui_url, airflow_ui_url=airflow_ui_url)
    try:
        sock = listen(host, port)
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise InputError(f"cannot listen on {host}:{port}: {why}; pass another --port or --host") from None
    url = url_of(sock)
    click.echo(f"gitfree ui: serving {store.url} at {url} ({_ui_access(token, no_auth)}); Ctrl+C stops it")
    sys.stdout.flush()
    if open_browser:
        import webbrowser

        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
    serve(app, sock, verbose=ctx.find_root().params.get("verbose", 0) > 0)


def _ui_access(token: str | None, no_auth: bool) -> str:
    """What the startup line says of who may read the view."""
    if token:
        return "every visitor needs the token: log in, or send Authorization: Bearer TOKEN"
    if no_auth:
        return "NO token (--no-auth): anyone who can reach it reads the store"
    return "no token: only this machine can connect"


def _check_ui_access(host: str, token: str | None, no_auth: bool, loopback: bool) -> None:
    """Refuse a web view other machines could read without a token, unless --no-auth says so."""
    if token and no_auth:
        raise InputError("--token and --no-auth contradict each other: pass one of them")
    if not loopback and not token and not no_auth:
        raise InputError(
            f"--host {host} lets other machines connect: pass --token TOKEN (or set GITFREE_UI_TOKEN), "
            "or --no-auth to serve the store to anyone who reaches it"
        )


def _ui_store(ctx: click.Context, url: str | None) -> Store:
    """The store to show: ``--store`` of ``ui`` if given, else gitfree's; no progress bars (a server)."""
    params = ctx.find_root().params
    return Store(
        url or params.get("store_url"),
        endpoint_url=params.get("endpoint_url"),
        profile=params.get("profile"),
        cache_dir=params.get("cache_dir"),
        jobs=params.get("jobs"),
    )


def main() -> None:
    cli(prog_name="gitfree")


if __name__ == "__main__":
    main()
