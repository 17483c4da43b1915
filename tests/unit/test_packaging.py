"""pyproject.toml declares what gitfree imports at run time, where it imports it: the core
dependencies cover ``gitfree`` itself, the ``prefect`` extra ``gitfree.tasks`` and ``gitfree.flows``,
the ``airflow`` extra ``gitfree.airflow``, the ``dev`` extra ``gitfree.testing``; and every core
dependency is imported by the core. Imports only for type checkers (``if TYPE_CHECKING:``) and
optional ones (inside ``try: ... except ImportError:``) do not count."""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "gitfree"
EXTRA_OF = {"tasks": "prefect", "flows": "prefect", "airflow": "airflow", "testing.py": "dev", "_proxy.py": "dev"}
EXTRA_OF["ui"] = "ui"  # gitfree.ui: the web view
KNOWN = {"airflow": "apache-airflow"}  # not installed beside Prefect (make airflow has its own venv)


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(requirements: list[str]) -> set[str]:
    return {normalise(re.match(r"[A-Za-z0-9._-]+", r)[0]) for r in requirements}  # type: ignore[index]


def pyproject() -> dict[str, set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {"core": requirement_names(project["dependencies"])}
    for extra, requirements in project["optional-dependencies"].items():
        declared[extra] = requirement_names(requirements)
    return declared


def _optional(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while (node := parents.get(node)) is not None:  # type: ignore[assignment]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
        if isinstance(node, ast.Try) and any(
            h.type is not None and "ImportError" in ast.unparse(h.type) for h in node.handlers
        ):
            return True
    return False


def imports(path: Path) -> Iterator[str]:
    """Top-level names of the third-party modules ``path`` imports at run time."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            continue
        if _optional(node, parents):
            continue
        for module in modules:
            top = module.partition(".")[0]
            if top not in sys.stdlib_module_names and top not in ("gitfree", "__future__"):
                yield top


@functools.cache
def _installed() -> dict[str, list[str]]:
    return dict(importlib.metadata.packages_distributions())


@functools.cache
def distribution(module: str) -> str:
    found = _installed().get(module) or [KNOWN.get(module, module)]
    return normalise(found[0])


def where(path: Path) -> str:
    return EXTRA_OF.get(path.relative_to(PACKAGE).parts[0], "core")


def test_every_import_is_declared_where_it_is_needed() -> None:
    declared = pyproject()
    missing = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        allowed = declared["core"] | (declared[where(path)] if where(path) != "core" else set())
        for module in imports(path):
            if distribution(module) not in allowed:
                missing.add(f"{path.relative_to(ROOT)} imports {module} ({distribution(module)}): not in {where(path)}")
    assert not missing, "\n".join(sorted(missing))


def test_every_core_dependency_is_imported_by_the_core() -> None:
    used = {distribution(m) for p in PACKAGE.rglob("*.py") if where(p) == "core" for m in imports(p)}
    assert pyproject()["core"] - used == set()


def test_the_extras_name_what_their_subpackages_import() -> None:
    declared = pyproject()
    for extra in ("prefect", "airflow"):
        used = {distribution(m) for p in PACKAGE.rglob("*.py") if where(p) == extra for m in imports(p)}
        assert declared[extra] <= used, f"{extra} declares {sorted(declared[extra] - used)}, which it never imports"


def test_the_scanner_skips_type_checking_and_optional_imports(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "import os\nimport boto3.session\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from mypy_boto3_s3 import S3Client\ntry:\n    import prefect_aws\nexcept ImportError:\n    pass\n"
        "def f():\n    import s3fs\n    from . import sibling\n"
    )
    assert sorted(imports(source)) == ["boto3", "s3fs"]


def test_test_files_have_unique_basenames() -> None:
    """pytest imports test modules by basename (no packages under tests/): two files of one name, in two
    folders, stop the whole run at collection (it happened: tests/test_promotion.py and on_prefect's)."""
    from collections import Counter
    from pathlib import Path

    names = Counter(p.name for p in Path(__file__).parents[1].rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
