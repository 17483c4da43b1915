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
    import yaml  # type: ignore[import-untyped]

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
    store = Store(s3_url, cache_dir=tmp_path / "reader", **seaweedfs.store_options())
    assert read_tree(store.pull("demo/sensors", tmp_path / "out")) == read_tree(source)
    assert json.loads(store.show("demo/sensors").model_dump_json())["author"]["orchestrator"] == "prefect"


def test_prefect_yaml_deploys_the_schedule_and_the_trigger() -> None:
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    async def setup_and_read() -> list[object]:
        async with get_client() as client:
            try:
                await client.create_work_pool(WorkPoolCreate(name="gitfree", type="process"))
            except Exception as exc:  # already there from an earlier run of this session
                if "already exists" not in str(exc):
                    raise
        env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "GITFREE_PROJECT_DIR": str(ROOT)}
        result = subprocess.run(
            [str(Path(sys.executable).with_name("prefect")), "--no-prompt", "deploy", "--all"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
        async with get_client() as client:
            ingest = await client.read_deployment_by_name("gitfree-ingest/ingest-sensors")
            train = await client.read_deployment_by_name("gitfree-train-example/train-on-sensors")
            automations = [a for a in await client.read_automations() if str(train.id) in a.model_dump_json()]
            return [ingest, train, automations]

    ingest, train, automations = asyncio.run(setup_and_read())
    assert [s.schedule.cron for s in ingest.schedules] == ["0 2 * * *"]  # type: ignore[attr-defined]
    assert ingest.parameters == {"source": "examples/sensors", "dataset": "demo/sensors"}  # type: ignore[attr-defined]
    assert train.work_pool_name == "gitfree"  # type: ignore[attr-defined]
    assert len(automations) == 1  # type: ignore[arg-type]
    assert "gitfree.dataset.committed" in automations[0].model_dump_json()  # type: ignore[index]


def test_sales_service_serves_the_pipeline_of_versioned_steps(compose: dict) -> None:  # type: ignore[type-arg]
    from click.testing import CliRunner

    from gitfree.flows.__main__ import main

    sales = compose["services"]["sales"]
    assert sales["command"][:3] == ["gitfree-flows", "sales-pipeline", "/srv/sales"]
    assert sales["environment"] == compose["services"]["worker"]["environment"]
    # docker-compose 1.x prints volumes as "source:target:mode", 2.x as mappings
    mounts = [
        tuple(v.split(":")) if isinstance(v, str) else (v["source"], v["target"], "ro" if v.get("read_only") else "rw")
        for v in sales["volumes"]
    ]
    assert (str(ROOT / "examples" / "sales"), "/srv/sales", "ro") in mounts
    assert sorted(p.name for p in (ROOT / "examples" / "sales").glob("*.csv")) == ["store-a.csv", "store-b.csv"]
    help_text = CliRunner().invoke(main, ["sales-pipeline", "--help"]).output
    assert "--cron" in help_text and "--alpha" in help_text


def test_ui_service_serves_the_store_with_a_token_on_this_machine_only(compose: dict) -> None:  # type: ignore[type-arg]
    """The web view listens on the container's addresses, so it must ask for its token; the port is published on
    the host's loopback only, and the workers' artifacts link to it."""
    ui = compose["services"]["ui"]
    assert ui["command"][:2] == ["gitfree", "ui"] and "--no-auth" not in ui["command"]
    assert ui["command"][ui["command"].index("--host") + 1] == "0.0.0.0"  # noqa: S104 - what the token is for
    assert ui["environment"]["GITFREE_UI_TOKEN"]
    assert ui["environment"]["GITFREE_STORE"] == compose["services"]["worker"]["environment"]["GITFREE_STORE"]
    published = [p["host_ip"] if isinstance(p, dict) else str(p).split(":")[0] for p in ui["ports"]]
    assert published == ["127.0.0.1"]
    assert compose["services"]["worker"]["environment"]["GITFREE_UI_URL"] == "http://localhost:8765"
    gitfree = str(Path(sys.executable).with_name("gitfree"))
    help_text = subprocess.run([gitfree, "ui", "--help"], capture_output=True, text=True, timeout=60, check=True).stdout
    assert "GITFREE_UI_TOKEN" in help_text and "--host" in help_text
