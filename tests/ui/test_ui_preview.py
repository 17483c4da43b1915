"""Previews (gitfree/ui/preview.py): each kind of file, bounded in bytes read and time whatever its size, and never
an exception for what a file holds (junk, cut or corrupt data), on real stores."""

from __future__ import annotations

import io
import json
import random
import time
from pathlib import Path

import pytest
from helpers import write_tree

from gitfree import InputError, NotFoundError, Store
from gitfree.testing import CountingProxy, Faults, SeaweedFS
from gitfree.ui.preview import Budget, Preview, preview
from gitfree.versioning.errors import GitfreeError

pa = pytest.importorskip("pyarrow", reason="the Parquet previews need the ui extra: pip install -e '.[ui]'")
pq = pytest.importorskip("pyarrow.parquet")

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)


def _parquet(table: object, **options: object) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, **options)
    return buffer.getvalue()


TABLE = pa.table({"n": list(range(1000)), "html": [f"<b>{i}</b>" for i in range(1000)]})
GOOD = _parquet(TABLE, row_group_size=300)


def _files() -> dict[str, bytes]:
    utf8 = ("é" * 40_000).encode()  # after one "x", byte 65,536 is the first half of an "é"
    return {
        "notes.txt": b"line one\nline two\n",
        "cut.txt": b"x" + utf8,  # the 64 KiB cut splits an "\xc3\xa9"
        "utf16.txt": "grüße, 世界\n".encode("utf-16"),
        "utf16-nobom.txt": "plain ascii in utf-16\n".encode("utf-16-le") * 20,
        "empty.csv": b"",
        "t.csv": b'a,b,c\n1,2,3\n4,5\n6,7,8,9\n"q,uoted","multi\nline",<b>x</b>\n',
        "t.tsv": b"a\tb\n1\t2\n",
        "junk.csv": random.Random(3).randbytes(4000),
        "long-line.csv": b"h" * (3 << 20) + b"\n1\n",  # a single line of 3 MiB
        "big-cell.csv": b"h\n" + b"c" * 200_000 + b"\n",  # longer than the csv module takes
        "many.csv": b"h1,h2\n" + b"".join(b"%d,%d\n" % (i, i) for i in range(100_000)),  # 1.2 MiB
        "d.json": json.dumps({"a": [1, {"b": "<script>"}]}).encode(),
        "deep.json": b"[" * 50_000 + b"]" * 50_000,
        "bad.json": b"{nope",
        "huge-number.json": b"1" * 10_000,
        "img.png": PNG,
        "fake.png": b"GIF89a" + bytes(40),
        "gif-no-ext": b"GIF89a" + bytes(40),
        "drawing.svg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "t.parquet": GOOD,
        "sniffed": GOOD,
        "PAR1.txt": b"PAR1 is how this text starts\n",
        "cut.parquet": GOOD[:-100],
        "corrupt.parquet": GOOD[:300] + random.Random(5).randbytes(2000) + GOOD[2300:],
        "tiny.parquet": b"PAR1PAR1",
        "zeros.bin": bytes(100_000),
        "<img src=x onerror=alert(1)>.csv": b"<script>window.__xss=1</script>,b\n1,2\n",
    }


def test_each_kind_of_file_previews_as_it_should(store: Store, tmp_path: Path) -> None:
    files = _files()
    version = store.commit("ds", write_tree(tmp_path / "src", files))
    reader = Store(store.url, cache_dir=tmp_path / "reader", settings=store.settings)  # reads the store itself
    got = {name: preview(reader, version, name) for name in files}
    for name, p in got.items():
        assert isinstance(p, Preview) and p.path == name and p.size == len(files[name]), name

    def kind(name: str, expected: str, note: str = "") -> Preview:
        p = got[name]
        assert p.kind == expected, (name, p)
        assert note in p.note, (name, p.note)
        return p

    assert kind("notes.txt", "text").text == "line one\nline two\n" and not got["notes.txt"].truncated
    cut = kind("cut.txt", "text", "showing the first 64.0 KiB of 78.1 KiB")
    assert cut.truncated and cut.read == 65536 and "\ufffd" not in cut.text and cut.text.endswith("é")
    assert kind("utf16.txt", "text").text == "grüße, 世界\n"
    assert kind("utf16-nobom.txt", "text").text.startswith("plain ascii in utf-16\n")
    kind("empty.csv", "none", "the file is empty")
    table = kind("t.csv", "table")
    assert table.columns == ("a", "b", "c", "")  # ragged rows: padded to the widest
    assert table.rows == (
        ("1", "2", "3", ""),
        ("4", "5", "", ""),
        ("6", "7", "8", "9"),
        ("q,uoted", "multi\nline", "<b>x</b>", ""),
    )
    assert kind("t.tsv", "table").rows == (("1", "2"),)
    kind("junk.csv", "none", "binary data, not a table")
    long_line = kind("long-line.csv", "text", "the first line is longer than 1.0 MiB")
    assert long_line.read == 1 << 20 and len(long_line.text) == 64 << 10  # the 1 MiB read, shown as text
    kind("big-cell.csv", "text", "not shown as a table (field larger than field limit")
    many = kind("many.csv", "table", "showing the first 100 rows")
    assert many.read == 1 << 20 and many.rows[-1] == ("99", "99") and len(many.rows) == 100
    assert kind("d.json", "json").text == '{\n  "a": [\n    1,\n    {\n      "b": "<script>"\n    }\n  ]\n}'
    kind("deep.json", "text", "not valid JSON (nested too deeply): shown as text")
    kind("bad.json", "text", "not valid JSON (Expecting property name")
    kind("huge-number.json", "text", "not valid JSON (Exceeds the limit")
    assert kind("img.png", "image").media_type == "image/png" and got["img.png"].read == 16
    kind("fake.png", "none", "named as a PNG image, but its first bytes are not one")
    assert kind("gif-no-ext", "image").media_type == "image/gif"
    assert "<script>" in kind("drawing.svg", "text").text  # never an image: shown as (escaped) text
    parquet = kind("t.parquet", "table", "showing the first 100 of 1,000 rows")
    assert parquet.columns == ("n", "html") and parquet.rows[:2] == (("0", "<b>0</b>"), ("1", "<b>1</b>"))
    assert len(parquet.rows) == 100
    assert kind("sniffed", "table").rows == parquet.rows
    kind("PAR1.txt", "text")
    kind("cut.parquet", "none", "no preview: not a readable Parquet file (")
    kind("corrupt.parquet", "none", "no preview:")
    kind("tiny.parquet", "none", "no preview: too short to be a Parquet file")
    kind("zeros.bin", "none", "no preview: binary data (97.7 KiB)")
    hostile = kind("<img src=x onerror=alert(1)>.csv", "table")
    assert hostile.columns == ("<script>window.__xss=1</script>", "b")  # data: the page escapes it

    with pytest.raises(NotFoundError, match=r"ds@1 has no file 'notes\.tx' \(did you mean 'notes\.txt'\?\)"):
        preview(reader, version, "notes.tx")
    with pytest.raises(InputError, match="is a folder"):
        preview(reader, version, "")


def test_budgets_bound_what_a_preview_reads_and_shows(tmp_path: Path) -> None:
    store = Store(tmp_path / "store", cache_dir=tmp_path / "cache")
    wide = pa.table({f"c{i}": list(range(300)) for i in range(80)})
    files = {
        "img.png": PNG,
        "wide.parquet": _parquet(wide),
        "wide.csv": b",".join(b"h%d" % i for i in range(80)) + b"\n" + b",".join([b"x" * 50] * 80) + b"\n",
        "big.json": json.dumps(list(range(2000))).encode(),
    }
    version = store.commit("ds", write_tree(tmp_path / "src", files))
    small = Budget(image=10, columns=5, cell=8, json=100, parquet=200_000, rows=3)
    assert preview(store, version, "img.png", budget=small).note == "an image of 80 B: larger than 10 B"
    csv_table = preview(store, version, "wide.csv", budget=small)
    assert len(csv_table.columns) == 5 and csv_table.rows == (("x" * 8 + "…",) * 5,)
    assert csv_table.note == "showing 5 of 80 columns, cells cut at 8 characters" and csv_table.truncated
    parquet = preview(store, version, "wide.parquet", budget=small)
    assert parquet.kind == "table" and parquet.columns == ("c0", "c1", "c2", "c3", "c4")
    assert parquet.rows == (("0",) * 5, ("1",) * 5, ("2",) * 5)
    assert parquet.note == "showing the first 3 of 300 rows; the first 5 of 80 columns", parquet.note
    limit = (64 << 10) + 30_000  # the footer's read of the last 64 KiB, and a few columns' pages
    tight = preview(store, version, "wide.parquet", budget=Budget(parquet=limit))
    assert tight.kind == "table" and 0 < len(tight.columns) < 50 and tight.read <= limit, tight
    assert (
        f"{80 - len(tight.columns)} of 80 columns left out (reading the column 'c{len(tight.columns)}' would pass the"
        in tight.note
    )
    footer_only = preview(store, version, "wide.parquet", budget=Budget(parquet=100))
    assert footer_only.kind == "none" and footer_only.note.startswith("too large to preview: reading its footer")
    assert footer_only.read == 0
    big = preview(store, version, "big.json", budget=small)
    assert big.kind == "text" and big.note.startswith("larger than 100 B: not pretty-printed")


def test_what_a_file_holds_never_raises(tmp_path: Path) -> None:
    """Junk under every suffix, and a real Parquet file cut or damaged at many places: a Preview each time."""
    rng = random.Random(11)
    files: dict[str, bytes] = {}
    for suffix in (".csv", ".tsv", ".json", ".parquet", ".png", ".txt", ""):
        for i in range(4):
            files[f"junk{i}{suffix}"] = rng.randbytes(rng.choice([1, 7, 13, 500, 70_000]))
    for i in range(24):
        at = rng.randrange(1, len(GOOD))
        files[f"cut{i}.parquet"] = GOOD[:at]
        flipped = bytearray(GOOD)
        for _ in range(8):
            flipped[rng.randrange(len(GOOD))] ^= 0xFF
        files[f"flipped{i}.parquet"] = bytes(flipped)
    store = Store(tmp_path / "store", cache_dir=tmp_path / "cache")
    version = store.commit("ds", write_tree(tmp_path / "src", files))
    kinds: dict[str, int] = {}
    for name in files:
        p = preview(store, version, name)
        kinds[p.kind] = kinds.get(p.kind, 0) + 1
        assert p.kind != "none" or p.note, name
    assert kinds.get("none", 0) >= 24, kinds  # the cut ones at least


@pytest.mark.parametrize("size", [64 << 20, pytest.param(5 << 30, marks=pytest.mark.slow)], ids=["64MiB", "5GiB"])
def test_a_large_file_previews_its_first_bytes_only(tmp_path: Path, size: int) -> None:
    """A sparse file (``truncate``) committed to a file:// store: its preview reads 64 KiB, in well under a
    second, however big it is (5 GiB under ``make slow``: its commit takes a minute or more, and 10 GiB of disk,
    for the worker cache and the store hold real copies)."""
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "huge.log", "wb") as f:
        f.write(b"the first line of a huge log\n" * 3000)
        f.truncate(size)
    store = Store(tmp_path / "store", cache_dir=tmp_path / "cache")
    version = store.commit("ds", src)
    reader = Store(tmp_path / "store", cache_dir=tmp_path / "reader")
    for who in (store, reader):  # from the worker cache, then from the store
        preview(who, version, "huge.log")  # once to warm up (the hash state's first import takes a second)
        before, started = _bytes_read(), time.monotonic()
        p = preview(who, version, "huge.log")
        took, read = time.monotonic() - started, _bytes_read() - before
        assert p.kind == "text" and p.truncated and p.read == 64 << 10, p.note
        assert p.note == f"showing the first 64.0 KiB of {'5.0 GiB' if size == 5 << 30 else '64.0 MiB'}"
        assert took < 0.5, took
        assert read < 1 << 20, read  # what the process read: 64 KiB and some small files (the hash state)


def _bytes_read() -> int:
    """What this process has read with read(2) and friends (Linux ``/proc/self/io``)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@pytest.mark.parametrize("rows", [500_000, pytest.param(5_000_000, marks=pytest.mark.slow)], ids=["20MB", "200MB"])
def test_a_parquet_preview_reads_its_footer_and_the_first_pages_of_its_first_row_group(
    seaweedfs: SeaweedFS, s3_url: str, tmp_path: Path, rows: int
) -> None:
    """On S3, counted on the wire: the footer (one read of the last 64 KiB) and, per column, the first pages of
    the first row group, never the rest of the file (200 MB under ``make slow``, 20 MB here)."""
    import numpy as np

    columns = {f"c{i}": np.random.default_rng(i).random(rows) for i in range(5)}
    src = tmp_path / "src"
    src.mkdir()
    pq.write_table(pa.table(columns), src / "big.parquet", row_group_size=rows // 5, compression="none")
    size = (src / "big.parquet").stat().st_size
    metadata = pq.ParquetFile(src / "big.parquet").metadata
    first_group = sum(metadata.row_group(0).column(i).total_compressed_size for i in range(5))
    options = seaweedfs.store_options()
    Store(s3_url, cache_dir=tmp_path / "writer", **options).commit("ds", src)
    with CountingProxy(seaweedfs.s3_port) as proxy:
        reader = Store(s3_url, cache_dir=tmp_path / "reader", **{**options, "endpoint_url": proxy.endpoint})
        version = reader.show("ds")
        reader.files(version)
        proxy.take()
        started = time.monotonic()
        p = preview(reader, version, "big.parquet")
        took = time.monotonic() - started
        counts = proxy.take()
    assert p.kind == "table" and p.columns == tuple(columns) and len(p.rows) == 100, p.note
    assert p.rows[7] == tuple(repr(float(columns[c][7])) for c in columns)
    assert p.note == f"showing the first 100 of {rows:,} rows"
    assert p.read <= 8 << 20 and p.read < first_group + (64 << 10), (p.read, first_group)
    assert counts.bytes_down < p.read + 100_000 and counts.bytes_down < size // 5, counts  # the wire agrees
    assert counts.requests["HEAD"] == 1 and counts.requests["GET"] <= 30, counts  # the size; the ranges
    assert took < 2.0, took


def test_store_failures_are_errors_and_a_slow_store_is_a_note(tmp_path: Path) -> None:
    """What the store does wrong is an error (the page shows it as one), never taken for a damaged file; a
    store too slow for the Parquet deadline gives a note within it."""
    store = Store(tmp_path / "store", cache_dir=tmp_path / "writer")
    bigger = _parquet(
        pa.table({"n": list(range(50_000))}), row_group_size=10_000
    )  # its pages are not in the footer's read
    assert len(bigger) > 3 * (64 << 10)
    version = store.commit("ds", write_tree(tmp_path / "src", {"t.parquet": bigger, "a.txt": b"a"}))
    reader = Store(tmp_path / "store", cache_dir=tmp_path / "reader")
    with Faults(reader) as faults:
        faults.fail("get_range", times=None)
        with pytest.raises(GitfreeError, match="injected fault: get_range"):
            preview(reader, version, "t.parquet")
        with pytest.raises(GitfreeError, match="injected fault: get_range"):
            preview(reader, version, "a.txt")
        faults.clear()
        faults.delay("get_range", seconds=1.0)  # the footer's read ends past the deadline
        started = time.monotonic()
        slow = preview(reader, version, "t.parquet", budget=Budget(seconds=0.5))
        took = time.monotonic() - started
        assert slow.kind == "none" and slow.note == "no preview: reading the column 'n' took longer than 0.5 s"
        assert 0.9 < took < 1.4, took  # the read under way ends, and no other starts
        faults.clear()
        faults.delay("get_range", seconds=3.0, times=1)  # a read that does not come back in time
        started = time.monotonic()
        stuck = preview(reader, version, "t.parquet", budget=Budget(seconds=0.5))
        took = time.monotonic() - started
        assert stuck.kind == "none" and stuck.note == "no preview: reading it took longer than 0.5 s", stuck
        assert 1.4 < took < 2.0, took  # the deadline and a second's grace: the read is abandoned


def test_parquet_previews_read_at_once_are_bounded(tmp_path: Path) -> None:
    """Each Parquet preview may hold tens of MB of pyarrow buffers: at most PARQUET_AT_ONCE are read at once in
    a process; one more waits for a slot until its deadline, then is a note, and a slot given back is taken."""
    from gitfree.ui import preview as module

    store = Store(tmp_path / "store", cache_dir=tmp_path / "cache")
    table = _parquet(pa.table({"n": [1, 2, 3]}))
    version = store.commit("ds", write_tree(tmp_path / "src", {"t.parquet": table}))
    held = [module._parquet_slots.acquire(timeout=10) for _ in range(module.PARQUET_AT_ONCE)]  # (abandoned reads end)
    assert all(held)
    try:
        started = time.monotonic()
        busy = preview(store, version, "t.parquet", budget=Budget(seconds=0.3))
        assert busy.kind == "none" and busy.note.startswith("no preview: 2 other Parquet previews were being read")
        assert 0.25 < time.monotonic() - started < 1.0
    finally:
        for _ in held:
            module._parquet_slots.release()
    assert preview(store, version, "t.parquet").kind == "table"  # the slots are back
