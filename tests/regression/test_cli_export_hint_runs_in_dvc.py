"""The commands ``gitfree export`` prints, run as printed in a DVC project, pull the version.

Regressions: for a local store the hint said ``dvc remote add -d store file:///...``: DVC 3.67 takes
the URL as a remote but ``dvc pull`` then finds nothing ("Checkout failed"); a plain path works.
For a non-AWS S3 server the hint did not say the endpoint, so ``dvc pull`` went to AWS: it now
includes ``dvc remote modify store endpointurl URL``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from helpers import read_tree, write_tree

from gitfree import Store
from gitfree.cli import cli
from gitfree.testing import SeaweedFS

BIN = str(Path(sys.executable).parent)


def _hint(output: str) -> str:
    before, sep, commands = output.strip().partition("; in its project: ")
    assert sep and before.startswith("wrote "), output
    return commands


def _export_and_pull(tmp_path: Path, env: dict[str, str]) -> str:
    files = {"a.txt": b"alpha", "nested/b.bin": os.urandom(3000)}
    runner = CliRunner(env=env)
    committed = runner.invoke(cli, ["commit", "images", str(write_tree(tmp_path / "src", files))])
    assert committed.exit_code == 0, committed.output
    project = tmp_path / "project"
    project.mkdir()
    subprocess.run([f"{BIN}/dvc", "init", "--no-scm", "-q"], cwd=project, check=True, capture_output=True, timeout=120)
    exported = runner.invoke(cli, ["export", "images@1", str(project / "images.dvc")])
    assert exported.exit_code == 0, exported.output
    commands = _hint(exported.output)
    shell_env = {**os.environ, **env, "PATH": f"{BIN}:/usr/bin:/bin"}
    ran = subprocess.run(
        ["bash", "-c", commands], cwd=project, capture_output=True, text=True, env=shell_env, timeout=300
    )
    assert ran.returncode == 0, (commands, ran.stdout, ran.stderr)
    assert read_tree(project / "images") == files, (commands, ran.stdout, ran.stderr)
    return commands


def test_a_local_store_is_named_by_its_path(tmp_path: Path) -> None:
    store = tmp_path / "my store"  # a space: the path is quoted for the shell
    commands = _export_and_pull(tmp_path, {"GITFREE_STORE": str(store), "GITFREE_CACHE_DIR": str(tmp_path / "cache")})
    assert "file://" not in commands and "endpointurl" not in commands
    assert commands.startswith(f"dvc remote add -d store '{store}' && ")


def test_a_non_aws_s3_store_names_its_endpoint(tmp_path: Path, seaweedfs: SeaweedFS, s3_url: str) -> None:
    env = {
        **seaweedfs.env(),
        "GITFREE_STORE": s3_url,
        "GITFREE_CACHE_DIR": str(tmp_path / "cache"),
        # what DVC reads for credentials (the hint never prints a secret)
        "AWS_ACCESS_KEY_ID": seaweedfs.access_key,
        "AWS_SECRET_ACCESS_KEY": seaweedfs.secret_key,
        # Without the hint's endpointurl DVC would go to AWS: send it to a closed local port instead.
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    }
    commands = _export_and_pull(tmp_path, env)
    assert f"dvc remote modify store endpointurl {seaweedfs.endpoint}" in commands
    assert seaweedfs.secret_key not in commands


def test_a_profile_is_passed_on(tmp_path: Path) -> None:
    """A store reached with an AWS profile names the same profile for DVC."""
    from gitfree.cli import _dvc_setup

    config = Path(os.environ["AWS_CONFIG_FILE"])
    config.write_text("[profile ci-robot]\naws_access_key_id = x\naws_secret_access_key = y\n")
    store = Store(
        "s3://bucket/prefix", cache_dir=tmp_path / "cache", endpoint_url="http://127.0.0.1:9", profile="ci-robot"
    )
    assert _dvc_setup(store, "images.dvc") == [
        "dvc remote add -d store s3://bucket/prefix",
        "dvc remote modify store endpointurl http://127.0.0.1:9",
        "dvc remote modify store profile ci-robot",
        "dvc pull images.dvc",
    ]
