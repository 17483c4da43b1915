"""The core stays free of orchestrators: importing it (or the CLI) loads neither prefect nor airflow."""

from __future__ import annotations

import subprocess
import sys


def test_core_and_cli_import_no_orchestrator() -> None:
    code = (
        "import sys, gitfree, gitfree.versioning, gitfree.cli, gitfree.testing\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('prefect', 'airflow'))\n"
        "print(loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"


def test_core_does_not_import_dvc_until_it_is_needed() -> None:
    """`gitfree --help`, refs and records stay fast: DVC is imported by the staging module only, when hashing."""
    code = "import sys, gitfree, gitfree.cli\nprint(sorted(m for m in sys.modules if m.split('.')[0] == 'dvc'))\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"


# ---------------------------------------------------------------------------- the module map, enforced

import ast  # noqa: E402
import functools  # noqa: E402
from pathlib import Path  # noqa: E402

import gitfree.versioning  # noqa: E402

PACKAGE = Path(gitfree.__file__).parent
RANKS = {
    # docs/design.md, "Module map": a module imports only modules of a lower rank, or of its own
    # rank without a cycle; the integrations import only gitfree.versioning's __all__.
    "errors": 0,
    "layout": 0,
    "localfs": 0,
    "models": 1,
    "refs": 1,
    "config": 1,
    "tree": 2,
    "kit": 2,
    "backends": 3,
    "sources": 3,
    "transfer": 3,
    "staging": 3,
    "checkout": 3,
    "catalog": 4,
    "objects": 4,
    "leases": 4,
    "protocol": 5,
    "gc": 5,
    "fsck": 5,
    "lineage": 5,
    "metrics": 5,
    "promotion": 5,
    "store": 6,
    "fs": 7,
    "steps": 7,
    "__init__": 8,
}
INTEGRATIONS = ("gitfree.cli", "gitfree.tasks", "gitfree.flows", "gitfree.airflow", "gitfree.ui")


@functools.cache
def _modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return found


def _imports(name: str, tree: ast.Module) -> list[tuple[str, list[str], int]]:
    """``(module, names, line)`` of every import in ``tree`` (also inside functions), made absolute."""
    package = name if _is_package(name) else name.rpartition(".")[0]
    out: list[tuple[str, list[str], int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            module = (f"{base}.{node.module}" if node.module else base) if node.level else (node.module or "")
            out.append((module, [alias.name for alias in node.names], node.lineno))
    return out


def _is_package(name: str) -> bool:
    return (PACKAGE.parent / name.replace(".", "/") / "__init__.py").is_file()


def _resolve(module: str, names: list[str], known: set[str]) -> list[str]:
    """The gitfree modules an import reaches (``from . import gc`` reaches ``gitfree.versioning.gc``)."""
    if not module.startswith("gitfree"):
        return []
    reached = [f"{module}.{n}" for n in names if f"{module}.{n}" in known]
    return reached or ([module] if module in known else [])


def test_core_modules_import_downwards_only() -> None:
    modules = _modules()
    wrong = []
    for name, tree in modules.items():
        if not name.startswith("gitfree.versioning"):
            continue
        mine = RANKS[name.removeprefix("gitfree.versioning").lstrip(".") or "__init__"]
        for module, names, line in _imports(name, tree):
            for target in _resolve(module, names, set(modules)):
                if target == name:
                    continue
                if not target.startswith("gitfree.versioning"):
                    wrong.append(f"{name}:{line} imports {target}, outside the core")
                    continue
                theirs = RANKS[target.removeprefix("gitfree.versioning").lstrip(".") or "__init__"]
                if theirs > mine:
                    wrong.append(f"{name}:{line} imports {target} (rank {theirs} above its {mine})")
    assert not wrong, "\n".join(wrong)


def test_every_core_module_has_a_rank() -> None:
    core = {
        n.removeprefix("gitfree.versioning").lstrip(".") or "__init__"
        for n in _modules()
        if n.startswith("gitfree.versioning")
    }
    assert core == set(RANKS), f"add to RANKS (and docs/design.md's module map): {sorted(core ^ set(RANKS))}"


def test_no_import_cycle_in_gitfree() -> None:
    modules = _modules()
    graph = {
        name: {t for m, ns, _ in _imports(name, tree) for t in _resolve(m, ns, set(modules)) if t != name}
        for name, tree in modules.items()
    }
    # A package's __init__ re-exporting its modules is not a cycle of the modules themselves.
    graph = {n: {t for t in ts if not (n.startswith(f"{t}.") and _is_package(t))} for n, ts in graph.items()}
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "\n".join(cycles)


def test_integrations_import_only_the_public_core() -> None:
    public = set(gitfree.versioning.__all__)
    wrong = []
    for name, tree in _modules().items():
        if not name.startswith(INTEGRATIONS):
            continue
        for module, names, line in _imports(name, tree):
            if module.startswith("gitfree.versioning."):
                wrong.append(f"{name}:{line} imports {module} (import from gitfree.versioning instead)")
            elif module == "gitfree.versioning":
                wrong += [
                    f"{name}:{line} imports {n}, not in gitfree.versioning.__all__" for n in names if n not in public
                ]
    assert not wrong, "\n".join(wrong)


_NAMEDTUPLE_API = {"_replace", "_asdict", "_fields", "_make"}


def _own_package_module(importer: str, target: str) -> bool:
    """A module private to its package (``gitfree.tasks._runtime``), imported from inside that package."""
    return target in _modules() and importer.startswith(f"{target.rpartition('.')[0]}.")


def _defined_privates(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if n.startswith("_")}


def test_no_module_uses_another_modules_private_names() -> None:
    wrong = []
    modules = _modules()
    for name, tree in modules.items():
        for module, names, line in _imports(name, tree):
            if module.startswith("gitfree") and module != name:
                wrong += [
                    f"{name}:{line} imports {n} from {module}"
                    for n in names
                    if n.startswith("_") and not n.startswith("__") and not _own_package_module(name, f"{module}.{n}")
                ]
        own = _defined_privates(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and node.attr not in own
                and node.attr not in _NAMEDTUPLE_API
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            ):
                wrong.append(f"{name}:{node.lineno} uses .{node.attr}, defined elsewhere")
    assert not wrong, "\n".join(wrong)


def test_functions_stay_short() -> None:
    """docs/design.md, "Module map": no function over 60 lines (a longer one hides phases that deserve names)."""
    long = []
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                body = node.body[1:] if ast.get_docstring(node) else node.body
                size = (node.end_lineno or node.lineno) - (body[0].lineno if body else node.lineno) + 1
                if size > 60:
                    long.append(f"{name}.{node.name}: {size} lines")
    assert not long, "\n".join(long)


# ---------------------------------------------------------------------------- one home per concept

_KEY_TEXT = (
    "files/md5",
    "datasets/",
    "/versions/",
    "/tags/",
    "/used-by/",
    "/tag-history/",
    "leases/",
    "uploads/",
    "gc/lock",
    "probes/",
    "runs/",
    "steps/",
    "stages.json",
    "claim.json",
    "latest.json/",
    ".dir",
)
"""Text of a store key (or of an object's name, ``md5.dir``): spelled in layout.py only."""
_KEY_PREFIXES = {"DATASETS", "LEASES", "UPLOADS", "GC", "GC_LOCK", "PROBES", "OBJECTS", "RUNS", "STEPS", "MARKER"}
_KEY_SEGMENTS = {"files", "md5", "datasets", "leases", "uploads", "probes", "runs", "steps", "versions", "tags"}


def _docstrings(tree: ast.Module) -> set[int]:
    """The string statements of ``tree``: docstrings, of modules, classes, functions and attributes."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
    }


def _names_a_prefix(node: ast.expr) -> bool:
    name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
    return name in _KEY_PREFIXES


def test_keys_are_spelled_only_in_layout() -> None:
    """docs/design.md, "Layout of a store": every key is spelled in one place. Outside layout.py no string holds
    a key's text, no f-string starts with one of its prefixes, and no path is joined from a key's segments."""
    wrong = []
    for name, tree in _modules().items():
        if name == "gitfree.versioning.layout":
            continue
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                wrong += [f"{name}:{node.lineno} spells {part!r}" for part in _KEY_TEXT if part in node.value]
            elif isinstance(node, ast.JoinedStr) and node.values:
                first = node.values[0]
                if isinstance(first, ast.FormattedValue) and _names_a_prefix(first.value):
                    wrong.append(f"{name}:{node.lineno} builds a key from {ast.unparse(first.value)}")
            elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
                right = node.right
                if isinstance(right, ast.Constant) and right.value in _KEY_SEGMENTS:
                    wrong.append(f"{name}:{node.lineno} joins the key segment {right.value!r} into a path")
    assert not wrong, "\n".join(wrong)


_RECORDS = {
    "Version",
    "Dropped",
    "Tag",
    "TagEvent",
    "Stages",
    "Latest",
    "Lease",
    "Uploads",
    "StoreMarker",
    "UsedBy",
    "RunNote",
    "StepRun",
}
_NOT_READS = {("gitfree.versioning.protocol", "check_fields")}
"""Parses that read no store: a commit's round trip of the record it is about to write (Commit step 1)."""


def test_records_are_parsed_only_in_the_catalog() -> None:
    """docs/design.md, "Module map": catalog is the only module that parses records (a lease's too)."""
    wrong = []
    for name, tree in _modules().items():
        if name == "gitfree.versioning.catalog":
            continue
        allowed = {
            id(node)
            for function in ast.walk(tree)
            if isinstance(function, ast.FunctionDef) and (name, function.name) in _NOT_READS
            for node in ast.walk(function)
        }
        for node in ast.walk(tree):
            if (
                id(node) not in allowed
                and isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "model_validate_json"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in _RECORDS
            ):
                wrong.append(f"{name}:{node.lineno} parses a {node.func.value.id} record")
    assert not wrong, "\n".join(wrong)


def test_the_module_map_of_the_design_is_the_one_enforced_here() -> None:
    """docs/design.md's "Module map" table lists every core module with the rank RANKS gives it, and the
    integrations as ``top``: the map cannot drift from what these tests enforce."""
    text = (PACKAGE.parent / "docs" / "design.md").read_text(encoding="utf-8")
    section = text.split("\n## Module map\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:3] for line in section.splitlines() if line.startswith("| ") and "`" in line]
    table = {cell.strip().strip("`"): rank.strip() for rank, cell in rows}
    expected = {name: str(rank) for name, rank in RANKS.items() if name != "__init__"}
    expected |= {integration.rpartition(".")[2]: "top" for integration in INTEGRATIONS}
    assert table == expected


# ---------------------------------------------------------------------------- the web view, at the rank of the CLI

UI_RANKS = {
    "urls": 0,
    "auth": 0,
    "listing": 0,
    "server": 1,
    "preview": 0,
    "svg": 0,
    "pages": 1,
    "app": 2,
    "__init__": 3,
}
"""docs/design.md, "Module map": gitfree.ui sits with the CLI, above the whole core; inside it, a module imports
only lower ranks (the pages read the store through the listing's index and the URLs; the app serves them)."""


def test_the_web_view_sits_above_the_core_and_imports_downwards() -> None:
    modules = _modules()
    ui = {
        n.removeprefix("gitfree.ui").lstrip(".") or "__init__": t
        for n, t in modules.items()
        if n.startswith("gitfree.ui")
    }
    assert set(ui) == set(UI_RANKS), (
        f"add to UI_RANKS (and docs/design.md's module map): {sorted(set(ui) ^ set(UI_RANKS))}"
    )
    wrong = []
    for name, tree in modules.items():
        for module, names, line in _imports(name, tree):
            for target in _resolve(module, names, set(modules)):
                if target.startswith("gitfree.ui") and not name.startswith(("gitfree.ui", "gitfree.cli")):
                    wrong.append(f"{name}:{line} imports {target}: only the CLI may use the web view")
    for short, tree in ui.items():
        name = "gitfree.ui" if short == "__init__" else f"gitfree.ui.{short}"
        for module, names, line in _imports(name, tree):
            for target in _resolve(module, names, set(modules)):
                theirs = UI_RANKS.get(target.removeprefix("gitfree.ui").lstrip(".") or "__init__")
                if (
                    target.startswith("gitfree.ui")
                    and target != name
                    and theirs is not None
                    and theirs >= UI_RANKS[short]
                ):
                    wrong.append(f"{name}:{line} imports {target} (rank {theirs}, not below its {UI_RANKS[short]})")
    assert not wrong, "\n".join(wrong)


def test_the_cli_loads_the_web_view_only_for_gitfree_ui() -> None:
    """`gitfree --help` and every other command stay fast and work without the ui extra."""
    code = (
        "import sys, gitfree, gitfree.cli\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'starlette', 'jinja2', 'uvicorn', 'pyarrow'}),"
        " 'gitfree.ui' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[] False"
