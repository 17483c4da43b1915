"""Bounded previews of one file of a version: text, CSV/TSV, Parquet, JSON, images, or none.

A preview reads a few ranges of the file through :meth:`gitfree.Store.peek` (never the whole file, whatever
its size) and never raises for what a file holds: binary junk named ``.csv``, a cut UTF-8 sequence, a corrupt
or truncated Parquet file, JSON nested too deep, all give a :class:`Preview` with a ``note`` saying why it
shows what it shows (or nothing). The bytes are not hash-verified: a preview is for looking; the download
route reads through :meth:`gitfree.Store.open`, which verifies.

What each kind reads (the defaults of :class:`Budget`):

- text: the first 64 KiB, decoded as UTF-8 with replacement (a byte-order mark selects UTF-16 or UTF-32);
  a file with NUL bytes, or with more than 1 % of bytes that decode to nothing, is binary: no preview.
- CSV/TSV (``.csv``, ``.tsv``, ``.tab``): the first 100 rows from the first 1 MiB, with Python's ``csv``
  module; ragged rows are padded, a line cut by the 1 MiB is dropped, at most 50 columns and 1,000
  characters a cell are shown. A first line longer than 1 MiB, or a cell longer than the ``csv`` module
  takes, is shown as text instead.
- Parquet (``.parquet``, ``.pq``, or a file starting with ``PAR1``): pyarrow reads through a file object
  whose reads are :meth:`~gitfree.Store.peek` ranges, at most 8 MiB in all. The footer first: pyarrow reads
  the last 64 KiB of the file, whose last 8 bytes are the footer's length and the ``PAR1`` magic, and the
  rest of the footer in one more read if it is longer. Then, column by column (the first 50), only the
  pages of the first row group that hold its first 100 rows (buffered reads of 64 KiB, no pre-buffering
  of whole column chunks). A column that would take the reads past 8 MiB, and those after it, are left
  out with a note; none fitting is "too large to preview". The work runs in a thread with a deadline
  (5 s): a preview that takes longer is abandoned with a note (its reads stop at the deadline).
- JSON (``.json``): pretty-printed if the file is at most 1 MiB and parses, else the text preview.
- images (``.png``, ``.jpg``/``.jpeg``, ``.gif``, ``.webp``, or those magic bytes) of at most 10 MiB: kind
  ``image`` with the media type, when the first 16 bytes are that format's signature; the page shows it
  from the raw route. SVG is never an image here (it is text: it can hold script).
- anything else: no preview, with the size.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from gitfree.versioning import FileEntry, GitfreeError, Ref, Store, Version, format_size

__all__ = ["Budget", "Preview", "preview"]

Kind = Literal["text", "table", "json", "image", "none"]

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif"}
IMAGE_TYPES[".webp"] = "image/webp"
_MAGIC: list[tuple[Callable[[bytes], bool], str]] = [
    (lambda b: b.startswith(b"\x89PNG\r\n\x1a\n"), "image/png"),
    (lambda b: b.startswith(b"\xff\xd8\xff"), "image/jpeg"),
    (lambda b: b.startswith((b"GIF87a", b"GIF89a")), "image/gif"),
    (lambda b: b.startswith(b"RIFF") and b[8:12] == b"WEBP", "image/webp"),
]
_BOMS = [  # longest first: UTF-32 LE starts with UTF-16 LE's mark
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
]


@dataclass(frozen=True)
class Budget:
    """How much a preview may read and show."""

    text: int = 64 * 1024
    """Bytes of a text preview."""
    table: int = 1024 * 1024
    """Bytes a CSV/TSV preview reads."""
    rows: int = 100
    """Rows of a table."""
    columns: int = 50
    """Columns of a table."""
    cell: int = 1000
    """Characters of a table cell."""
    json: int = 1024 * 1024
    """The largest JSON file pretty-printed (larger ones are shown as text)."""
    parquet: int = 8 * 1024 * 1024
    """Bytes a Parquet preview reads in all (footer and pages)."""
    image: int = 10 * 1024 * 1024
    """The largest image shown inline."""
    seconds: float = 5.0
    """How long a Parquet preview may take."""


@dataclass(frozen=True)
class Preview:
    """What a page shows of one file: ``kind`` says which of the other fields matter.

    - ``text``: ``text`` (``truncated`` when only the start of the file is shown);
    - ``table``: ``columns`` and ``rows`` (strings; every row as long as ``columns``);
    - ``json``: ``text``, pretty-printed;
    - ``image``: ``media_type`` (the page shows the file from its raw URL);
    - ``none``: nothing to show; ``note`` says why.

    ``note`` is a sentence for people (what was left out, or why there is no preview); ``size`` is the file's
    size and ``read`` the bytes the preview read. Every string is data from the store: escape it.
    """

    kind: Kind
    path: str
    size: int
    text: str = ""
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    truncated: bool = False
    note: str = ""
    media_type: str = ""
    read: int = 0


def preview(store: Store, version: str | Ref | Version, path: str, *, budget: Budget | None = None) -> Preview:
    """A bounded preview of the file at ``path`` of ``version`` (see the module's docstring for what each kind
    reads). What the file holds never raises: a file that cannot be previewed gives kind ``none`` and a note.

    Raises:
        NotFoundError: the version, or the file in it, does not exist (the message says what does).
        InputError: ``path`` is a folder of the version.
        GitfreeError: the store could not be read (the same errors as :meth:`gitfree.Store.peek`).
    """
    budget = budget or Budget()
    resolved = store.show(version)
    entry = store.file(resolved, path)
    reader = _Reader(store, resolved, entry)
    return _dispatch(reader, budget)


# ---------------------------------------------------------------------------- reading


@dataclass
class _Reader:
    """Ranged reads of one file, counted."""

    store: Store
    version: Version
    entry: FileEntry
    read: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def size(self) -> int:
        return self.entry.size or 0

    @property
    def name(self) -> str:
        return self.entry.path

    @property
    def suffix(self) -> str:
        base = self.name.rpartition("/")[2].lower()
        return base[base.rfind(".") :] if "." in base.lstrip(".") else ""

    def peek(self, offset: int, length: int) -> bytes:
        data = self.store.peek(self.version, self.entry, offset, length)
        with self.lock:
            self.read += len(data)
        return data

    def result(self, kind: Kind, **fields: Any) -> Preview:
        return Preview(kind=kind, path=self.name, size=self.size, read=self.read, **fields)

    def nothing(self, note: str) -> Preview:
        return self.result("none", note=note)


def _dispatch(reader: _Reader, budget: Budget) -> Preview:
    suffix = reader.suffix
    if reader.size == 0:
        return reader.nothing("the file is empty (0 bytes)")
    if suffix in PARQUET_SUFFIXES:
        return _parquet(reader, budget)
    if suffix in TABLE_SUFFIXES:
        return _table(reader, budget, TABLE_SUFFIXES[suffix])
    if suffix == ".json":
        return _json(reader, budget)
    if suffix in IMAGE_TYPES:
        return _image(reader, budget, IMAGE_TYPES[suffix])
    head = reader.peek(0, min(reader.size, budget.text))
    kind = _media_type(head)
    if kind:
        return _image(reader, budget, kind)
    if head.startswith(b"PAR1") and reader.size >= 12 and reader.peek(-4, 4) == b"PAR1":
        return _parquet(reader, budget)
    return _text(reader, budget, head)


def _media_type(head: bytes) -> str:
    return next((media for matches, media in _MAGIC if matches(head)), "")


def _cut_note(shown: int, reader: _Reader) -> str:
    return f"showing the first {format_size(shown)} of {format_size(reader.size)}"


# ---------------------------------------------------------------------------- text


def _decode(data: bytes, complete: bool) -> str | None:
    """``data`` as text (``complete``: it is the whole file, else a cut multibyte sequence at its end is
    dropped), or ``None`` if it looks binary."""
    encoding, body = "utf-8", data
    for bom, name in _BOMS:
        if data.startswith(bom):
            encoding, body = name, data[len(bom) :]
            break
    else:
        if b"\x00" in data:
            encoding = _utf16_without_bom(data) or ""
            if not encoding:
                return None
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    text = decoder.decode(body, final=complete)
    if encoding.startswith("utf-8") and text.count("\ufffd") > max(4, len(body) // 100):
        return None
    controls = sum(1 for ch in text[:4096] if ch < " " and ch not in "\t\n\r\f\v\x1b")
    return None if controls > max(4, len(text[:4096]) // 20) else text


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 without a byte-order mark, told by where the zero bytes of ASCII text fall."""
    sample = data[:4096]
    even, odd = sample[0::2], sample[1::2]
    if not odd:
        return None
    if odd.count(0) > len(odd) * 0.4 and even.count(0) < len(even) * 0.05:
        return "utf-16-le"
    if even.count(0) > len(even) * 0.4 and odd.count(0) < len(odd) * 0.05:
        return "utf-16-be"
    return None


def _text(reader: _Reader, budget: Budget, head: bytes | None = None, note: str = "") -> Preview:
    data = head if head is not None and len(head) >= min(reader.size, budget.text) else None
    if data is None:
        data = reader.peek(0, min(reader.size, budget.text))
    data = data[: budget.text]
    complete = len(data) >= reader.size
    text = _decode(data, complete)
    if text is None:
        return reader.nothing(f"no preview: binary data ({format_size(reader.size)})")
    cut = "" if complete else _cut_note(len(data), reader)
    return reader.result("text", text=text, truncated=not complete, note="; ".join(n for n in (note, cut) if n))


# ---------------------------------------------------------------------------- tables


def _table(reader: _Reader, budget: Budget, delimiter: str) -> Preview:
    raw = reader.peek(0, min(reader.size, budget.table))
    complete = len(raw) >= reader.size
    text = _decode(raw, complete)
    if text is None:
        return reader.nothing(f"no preview: binary data, not a table ({format_size(reader.size)})")
    if not complete:
        end = text.rfind("\n")
        if end < 0:
            return _text(reader, budget, raw, note=f"the first line is longer than {format_size(budget.table)}")
        text = text[: end + 1]  # a line cut by the read is dropped
    try:
        found = list(_rows(text, delimiter, budget.rows + 2))
    except csv.Error as exc:
        return _text(reader, budget, raw, note=f"not shown as a table ({exc})")
    if not found:
        return _text(reader, budget, raw)
    header, body = found[0], found[1 : budget.rows + 1]
    more_rows = len(found) > budget.rows + 1 or not complete
    return _tabulate(reader, budget, header, body, more_rows)


def _rows(text: str, delimiter: str, limit: int) -> Iterator[list[str]]:
    for i, row in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)):
        if i >= limit:
            return
        yield row


def _tabulate(reader: _Reader, budget: Budget, header: list[str], body: list[list[str]], more_rows: bool) -> Preview:
    width = max(len(row) for row in [header, *body])
    shown = min(width, budget.columns)
    cells = [_fit(list(row), shown, budget.cell) for row in [header, *body]]
    clipped = any(len(c) > budget.cell for row in [header, *body] for c in row[:shown])
    notes = [f"the first {len(body)} rows" if more_rows else ""]
    notes.append(f"{shown} of {width} columns" if width > shown else "")
    notes.append(f"cells cut at {budget.cell} characters" if clipped else "")
    note = ", ".join(n for n in notes if n)
    return reader.result(
        "table",
        columns=tuple(cells[0]),
        rows=tuple(tuple(row) for row in cells[1:]),
        truncated=more_rows or width > shown or clipped,
        note=f"showing {note}" if note else "",
    )


def _fit(row: list[str], width: int, cell: int) -> list[str]:
    row = row[:width] + [""] * (width - len(row))
    return [c if len(c) <= cell else c[:cell] + "…" for c in row]


# ---------------------------------------------------------------------------- JSON and images


def _json(reader: _Reader, budget: Budget) -> Preview:
    if reader.size > budget.json:
        return _text(reader, budget, note=f"larger than {format_size(budget.json)}: not pretty-printed")
    data = reader.peek(0, reader.size)
    text = _decode(data, True)
    if text is None:
        return reader.nothing(f"no preview: binary data, not JSON ({format_size(reader.size)})")
    try:
        pretty = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).splitlines()[0][:200]
        return _text(reader, budget, data, note=f"not valid JSON ({reason}): shown as text")
    cut = len(pretty) > budget.json
    return reader.result(
        "json",
        text=pretty[: budget.json],
        truncated=cut,
        note=f"showing the first {budget.json:,} characters" if cut else "",
    )


def _image(reader: _Reader, budget: Budget, media_type: str) -> Preview:
    if reader.size > budget.image:
        return reader.nothing(f"an image of {format_size(reader.size)}: larger than {format_size(budget.image)}")
    found = _media_type(reader.peek(0, 16))
    if found != media_type:
        what = media_type.partition("/")[2].upper()
        return reader.nothing(f"no preview: named as a {what} image, but its first bytes are not one")
    return reader.result("image", media_type=media_type)


# ---------------------------------------------------------------------------- Parquet


class _OverBudget(Exception):
    """A Parquet preview's reads went past its byte budget or its deadline."""


class _RangedFile(io.RawIOBase):
    """A read-only, seekable file whose reads are :meth:`Store.peek` ranges, within a byte budget and a deadline."""

    def __init__(self, reader: _Reader, limit: int, deadline: float) -> None:
        super().__init__()
        self.reader, self.limit, self.deadline, self.pos = reader, limit, deadline, 0
        self.kept: list[tuple[int, bytes]] = []
        """The last ranges read (start, bytes): pyarrow reads the footer, then the pages of a small file,
        from inside the last 64 KiB it already has."""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.reader.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def _holds(self, at: int, block: bytes, want: int) -> bool:
        return at <= self.pos and self.pos + want <= at + len(block)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), max(0, self.reader.size - self.pos))
        if want == 0:
            return 0
        data = next(
            (
                b[self.pos - at : self.pos - at + want]
                for at, b in self.kept
                if at <= self.pos and self.pos + want <= at + len(b)
            ),
            None,
        )
        if data is None:
            if time.monotonic() > self.deadline:
                raise _OverBudget("deadline")
            if self.reader.read + want > self.limit:
                raise _OverBudget("bytes")
            data = self.reader.peek(self.pos, min(want, 16 * 1024 * 1024))
            self.kept = [*self.kept[-3:], (self.pos, data)]
        view[: len(data)] = data
        self.pos += len(data)
        return len(data)


PARQUET_AT_ONCE = 2
"""Parquet previews read at once in a process (each may hold tens of MB of pyarrow buffers); more wait for a
slot until their deadline, then say so."""
_parquet_slots = threading.BoundedSemaphore(PARQUET_AT_ONCE)


def _parquet(reader: _Reader, budget: Budget) -> Preview:
    if reader.size < 12:
        return reader.nothing("no preview: too short to be a Parquet file")
    deadline = time.monotonic() + budget.seconds
    if not _parquet_slots.acquire(timeout=budget.seconds):
        return reader.nothing(
            f"no preview: {PARQUET_AT_ONCE} other Parquet previews were being read for {budget.seconds:g} s; "
            "reload the page in a moment"
        )
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gitfree-preview")
    try:
        future = pool.submit(_slotted, reader, budget, deadline)
    except BaseException:
        _parquet_slots.release()
        raise
    try:
        return future.result(timeout=budget.seconds + 1)
    except FutureTimeout:
        return reader.nothing(f"no preview: reading it took longer than {budget.seconds:g} s")
    finally:
        pool.shutdown(wait=False)  # an abandoned read stops at its next range (past the deadline)


def _slotted(reader: _Reader, budget: Budget, deadline: float) -> Preview:
    """:func:`_read_parquet`, giving its slot back when it ends (an abandoned read keeps it until then)."""
    try:
        return _read_parquet(reader, budget, deadline)
    finally:
        _parquet_slots.release()


def _read_parquet(reader: _Reader, budget: Budget, deadline: float) -> Preview:
    try:
        import pyarrow.parquet as pq  # type: ignore[import-untyped]
    except ImportError:
        return reader.nothing("no preview: showing Parquet files needs pyarrow (pip install 'gitfree[ui]')")
    source = _RangedFile(reader, budget.parquet, deadline)
    try:
        parquet = pq.ParquetFile(source, buffer_size=64 * 1024, pre_buffer=False)
        names = parquet.schema_arrow.names
        groups, total = parquet.metadata.num_row_groups, parquet.metadata.num_rows
    except GitfreeError:
        raise
    except _OverBudget as exc:
        return reader.nothing(f"{_stopped(exc)}: {_over(exc, budget, 'its footer')}")
    except Exception as exc:  # whatever pyarrow says of a damaged file, it is a note
        return reader.nothing(f"no preview: not a readable Parquet file ({_first_line(exc)})")
    shown = names[: budget.columns]
    columns: list[list[str]] = []
    note = ""
    for name in shown:
        try:
            columns.append(_column(parquet, name, budget) if groups else [])
        except GitfreeError:
            raise
        except _OverBudget as exc:
            note = _over(exc, budget, f"the column {name!r}")
            if not columns:
                return reader.nothing(f"{_stopped(exc)}: {note}")
            break
        except Exception as exc:  # likewise
            return reader.nothing(f"no preview: the column {name!r} cannot be read ({_first_line(exc)})")
    left_out = f"{len(names) - len(columns)} of {len(names)} columns left out ({note})" if note else ""
    return _parquet_table(reader, names, shown[: len(columns)], columns, total, left_out)


def _column(parquet: Any, name: str, budget: Budget) -> list[str]:
    batches = parquet.iter_batches(batch_size=budget.rows, row_groups=[0], columns=[name], use_threads=False)
    batch = next(batches, None)
    return [] if batch is None else [_cell(v, budget.cell) for v in batch.column(0).to_pylist()[: budget.rows]]


def _parquet_table(
    reader: _Reader, names: list[str], shown: list[str], columns: list[list[str]], total: int, left_out: str
) -> Preview:
    count = max((len(c) for c in columns), default=0)
    rows = tuple(tuple(c[i] if i < len(c) else "" for c in columns) for i in range(count))
    notes = [f"showing the first {count} of {total:,} rows" if total > count else ""]
    if not left_out and len(shown) < len(names):
        notes.append(f"the first {len(shown)} of {len(names)} columns")
    notes.append(left_out)
    return reader.result(
        "table", columns=tuple(shown), rows=rows, truncated=any(notes), note="; ".join(n for n in notes if n)
    )


def _stopped(exc: _OverBudget) -> str:
    return "no preview" if str(exc) == "deadline" else "too large to preview"


def _over(exc: _OverBudget, budget: Budget, what: str) -> str:
    if str(exc) == "deadline":
        return f"reading {what} took longer than {budget.seconds:g} s"
    return f"reading {what} would pass the {format_size(budget.parquet)} a Parquet preview reads"


def _cell(value: object, limit: int) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        text = "0x" + value[: limit // 2].hex()
    elif isinstance(value, datetime | date):
        text = value.isoformat()
    elif isinstance(value, dict | list):
        text = json.dumps(value, default=str, ensure_ascii=False)
    else:
        text = str(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]
