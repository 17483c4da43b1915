"""docker-compose.yml is valid and runs what the tests run outside Docker."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import read_tree
from prefect.settings import PREFECT_API_URL

from gitfree import Store
from gitfree.testing import SeaweedFS

ROOT = Path(__file__).resolve().parents[2]
GITFREE_FLOWS = str(Path(sys.executable).with_name("gitfree-flows"))


@pytest.fixture(scope="module")
def compose() -> dict:  # type: ignore[type-arg]
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip(
            "docker-compose is not installed (Debian: apt-get install docker-compose); `make test` installs it as root"
        )
    result = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    import yaml

    return yaml.safe_load(result.stdout)  # type: ignore[no-any-return]


def _flag_names(args: list[str]) -> set[str]:
    return {a.split("=", 1)[0] for a in args if a.startswith("-")}


def test_seaweedfs_service_uses_the_test_fixture_flags(compose: dict) -> None:  # type: ignore[type-arg]
    service = compose["services"]["seaweedfs"]
    assert service["command"][0] == "mini"
    assert _flag_names(service["command"]) == _flag_names(SeaweedFS().command(Path("/data")))
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(service["environment"])


def test_worker_runs_the_pipeline_command_against_seaweedfs(compose: dict) -> None:  # type: ignore[type-arg]
    worker = compose["services"]["worker"]
    assert worker["command"][:2] == ["gitfree-flows", "pipeline"]
    env = worker["environment"]
    assert env["GITFREE_STORE"].startswith("s3://gitfree/")
    assert env["GITFREE_ENDPOINT_URL"] == "http://seaweedfs:8333"
    assert env["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    help_text = subprocess.run(
        [GITFREE_FLOWS, "pipeline", "--help"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "--cron" in help_text


def test_one_line_ingest_of_the_example_data(seaweedfs: SeaweedFS, s3_url: str, tmp_path: Path) -> None:
    """`docker compose run --rm worker gitfree-flows ingest /srv/sensors demo/sensors`, outside Docker."""
    env = {
        **os.environ,
        **seaweedfs.env(),
        "GITFREE_STORE": s3_url,
        "GITFREE_CACHE_DIR": str(tmp_path / "cache"),
        "PREFECT_API_URL": PREFECT_API_URL.value(),
    }
    source = ROOT / "examples" / "sensors"
    for expected in ("demo/sensors@1", "demo/sensors@1"):  # the second run finds the source unchanged
        result = subprocess.run(
            [GITFREE_FLOWS, "ingest", str(source), "demo/sensors"], env=env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert expected in result.stdout
    store = Store(s3_url, cache_dir=tmp_path / "reader", **seaweedfs.store_options())  # type: ignore[arg-type]
    assert read_tree(store.pull("demo/sensors", tmp_path / "out")) == read_tree(source)
    assert json.loads(store.show("demo/sensors").model_dump_json())["author"]["orchestrator"] == "prefect"
