"""docs/design.md describes what the code does: its Layout table lists every key layout.py builds (and no
other), and the numbered steps of Commit, Tag moves, Garbage collection and fsck are the steps the code
performs, in the same order, under the same names. Read from the files, in milliseconds."""

from __future__ import annotations

import ast
import inspect
import re
import uuid
from pathlib import Path

from gitfree.versioning import fsck, gc, layout, protocol

DESIGN = (Path(__file__).parents[2] / "docs" / "design.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    """The text of the section ``## title`` (up to the next section of that level)."""
    return DESIGN.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def _numbered(section: str) -> list[tuple[int, str]]:
    """The top-level numbered steps of a section: ``(number, first word of its bold title, or "")``."""
    return [
        (int(m[1]), re.sub(r"\W.*", "", (m[2] or "").lower()))
        for m in re.finditer(r"^(\d+)\. (?:\*\*([^*]+)\*\*)?", section, flags=re.MULTILINE)
    ]


# ---------------------------------------------------------------------------- the layout table

_MD5 = "abcdef" + "0" * 26
_STEP = "f" * 64
_LEASE = str(uuid.UUID(int=7))
BUILT = {
    "MARKER": layout.MARKER,
    "GC_LOCK": layout.GC_LOCK,
    "object_key": layout.object_key(_MD5),
    "version_key": layout.version_key("raw/sales", 3),
    "tag_key": layout.tag_key("raw/sales", "prod"),
    "tag_event_key": layout.tag_event_key("raw/sales", "prod", 2),
    "stages_key": layout.stages_key("raw/sales"),
    "latest_key": layout.latest_key("raw/sales"),
    "lease_key": layout.lease_key(_LEASE),
    "upload_key": layout.upload_key(_LEASE),
    "used_by_key": layout.used_by_key("raw/sales", 3, "features", 1),
    "probe_key": layout.probe_key(uuid.uuid4().hex),
    "run_use_key": layout.run_use_key("airflow:etl:manual__2026", "raw/sales", 3),
    "step_result_key": layout.step_result_key(_STEP, "features", 1),
    "step_claim_key": layout.step_claim_key(_STEP),
    "reference_key": layout.reference_key(_MD5),
}
"""One key of each kind layout.py builds."""


def _table_keys() -> list[str]:
    """The first cell of each row of the Layout table (the rows right below its header, none skipped)."""
    lines = _section("Layout of a store").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| key |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line.split("|")[1].strip().strip("`"))
    return rows


def _pattern(documented: str) -> re.Pattern[str]:
    """A key as the table writes it (``datasets/<name>/versions/<n:012d>.json``, ``files/md5/ab/cdef…``)."""
    parts = re.split(r"(<[^>]+>|…)", documented)
    return re.compile("".join(".+" if part.startswith("<") or part == "…" else re.escape(part) for part in parts))


def test_every_key_builder_of_layout_is_sampled_here() -> None:
    builders = {
        name
        for name, value in vars(layout).items()
        if name.endswith("_key") and not name.startswith(("parse_", "is_")) and inspect.isfunction(value)
    }
    assert builders == set(BUILT) - {"MARKER", "GC_LOCK"}, (
        "a new key builder in layout.py: add a sample to BUILT and a row to docs/design.md's Layout table"
    )


def test_the_layout_table_lists_every_key_layout_builds_and_no_other() -> None:
    documented = {row: _pattern(row) for row in _table_keys()}
    unlisted = {kind: key for kind, key in BUILT.items() if not any(p.fullmatch(key) for p in documented.values())}
    assert not unlisted, f"keys layout.py builds that docs/design.md's Layout table does not list: {unlisted}"
    stale = [row for row, p in documented.items() if not any(p.fullmatch(key) for key in BUILT.values())]
    assert not stale, f"rows of docs/design.md's Layout table that no key of layout.py matches: {stale}"


# ---------------------------------------------------------------------------- the protocols


def _step_comments(function: object) -> list[int]:
    """The ``# N.`` step comments in a function's source, in order."""
    return [int(n) for n in re.findall(r"#\s*(\d+)\.", inspect.getsource(function))]  # type: ignore[arg-type]


def test_the_commit_in_protocol_performs_the_designs_steps_in_order() -> None:
    steps = [n for n, _ in _numbered(_section("Commit"))]
    assert steps == list(range(1, 11))
    assert _step_comments(protocol.commit) == steps


def test_a_tag_move_in_protocol_performs_the_designs_steps_in_order() -> None:
    section = _section("Tag moves")
    steps = [n for n, _ in _numbered(section.split("`Store.tag(", 1)[1].split("**Untag.**", 1)[0])]
    assert steps == [1, 2, 3, 4]
    assert _step_comments(protocol.move_tag) == steps
    cited = {
        int(n)
        for function in (protocol.move_tag, protocol.write_tag, protocol.delete_tag, protocol._withdraw)
        for n in re.findall(r"\bSteps? (\d+)", inspect.getsource(function))
    }
    assert cited <= set(steps), f"protocol.py cites tag-move steps the design does not have: {sorted(cited)}"


def test_gc_runs_the_designs_phases_under_their_names() -> None:
    phases = _numbered(_section("Garbage collection"))
    assert [n for n, _ in phases] == list(range(1, len(phases) + 1))
    documented = [m.lower() for m in re.findall(r"^\d+\. \*\*(\w+)\*\*", gc.__doc__ or "", flags=re.MULTILINE)]
    assert documented == [title for _, title in phases]
    headers = re.findall(r"^# -+ (\d+)\. (\w+)$", inspect.getsource(gc), flags=re.MULTILINE)
    assert headers and all(documented[int(n) - 1] == name for n, name in headers), headers


_FSCK_CALLS = {
    "_versions": "versions",
    "_objects": "objects",
    "_tags": "tags",
    "_latest": "latest",
    "scan": "leases",
    "_edges": "edges",
    "_steps": "steps",
    "_repair": "repair",
}


def test_fsck_runs_the_designs_phases_in_their_order() -> None:
    phases = _numbered(_section("fsck"))
    assert [n for n, _ in phases] == list(range(1, len(phases) + 1))
    titles = [title for _, title in phases]
    calls = [node for node in ast.walk(ast.parse(inspect.getsource(fsck.check))) if isinstance(node, ast.Call)]
    first = {name: min(c.lineno for c in calls if _calls(c, name)) for name in _FSCK_CALLS}
    assert [_FSCK_CALLS[name] for name in sorted(first, key=first.__getitem__)] == titles
    documented = [m.lower() for m in re.findall(r"\*\*(\w+)\*\*", fsck.__doc__ or "")]
    assert documented == titles


def _calls(node: ast.Call, name: str) -> bool:
    return (isinstance(node.func, ast.Name) and node.func.id == name) or (
        isinstance(node.func, ast.Attribute) and node.func.attr == name
    )
