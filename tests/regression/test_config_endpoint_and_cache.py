"""A malformed endpoint URL, a worker cache that cannot be written, and the timeout settings.

Regressions: ``GITFREE_ENDPOINT_URL=127.0.0.1:9000`` or ``htp://...`` surfaced as an unexpected
``ValueError`` / ``EndpointResolutionError`` (exit 1) at the first request; ``GITFREE_CACHE_DIR=/proc/nope``
as an unexpected ``OSError`` half way through a commit; timeouts and retries were hard-coded
(10 s connect, 120 s read, 6 attempts).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import write_tree

from gitfree import ConfigError, Store, StoreSettings

GITFREE = str(Path(sys.executable).with_name("gitfree"))


@pytest.mark.parametrize(
    ("endpoint", "says"),
    [
        ("127.0.0.1:9000", "write it as http://127.0.0.1:9000"),
        ("localhost:8333", "write it as http://localhost:8333"),
        ("htp://127.0.0.1:9000", "http://127.0.0.1:9000"),
        ("s3://bucket", "http://"),
        ("http://", "names no host"),
        ("http://[::1", "not a valid URL"),
        ("http://host:99999", "not a valid URL"),
    ],
)
def test_a_malformed_endpoint_is_a_config_error_naming_the_setting(endpoint: str, says: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="GITFREE_ENDPOINT_URL") as raised:
        Store("s3://bucket/prefix", endpoint_url=endpoint, cache_dir=tmp_path / "c")
    assert says in str(raised.value)


def test_a_malformed_aws_endpoint_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "minio:9000")
    with pytest.raises(ConfigError, match=r"AWS_ENDPOINT_URL_S3.*http://minio:9000"):
        Store("s3://bucket/prefix", cache_dir=tmp_path / "c")


@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:9000", "https://s3.eu-west-1.amazonaws.com", "http://[::1]:8333/"]
)
def test_a_well_formed_endpoint_is_kept(endpoint: str, tmp_path: Path) -> None:
    store = Store("s3://bucket/prefix", endpoint_url=endpoint, cache_dir=tmp_path / "c")
    assert store.settings.resolved_endpoint() == endpoint


@pytest.mark.parametrize("where", ["/proc/nope", "file/below"])
def test_a_cache_dir_that_cannot_be_made_is_a_config_error(where: str, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("a file, not a directory")
    cache = tmp_path / where if not where.startswith("/") else Path(where)
    with pytest.raises(ConfigError, match="GITFREE_CACHE_DIR") as raised:
        Store(tmp_path / "store", cache_dir=cache)
    assert str(cache) in str(raised.value)


def test_the_cli_says_so_in_one_line(tmp_path: Path) -> None:
    write_tree(tmp_path / "src", {"a": b"1"})
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "GITFREE_STORE": str(tmp_path / "store"),
        "GITFREE_CACHE_DIR": "/proc/nope",
    }
    result = subprocess.run(
        [GITFREE, "commit", "ds", str(tmp_path / "src")], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.stderr.startswith("error: the worker cache /proc/nope cannot be created"), result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert result.returncode == 6


def test_timeouts_and_retries_are_settings_used_by_both_clients(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    defaults = StoreSettings()
    assert (defaults.connect_timeout, defaults.read_timeout, defaults.retries) == (3.0, 2.5, 2)
    monkeypatch.setenv("GITFREE_CONNECT_TIMEOUT", "1.5")
    monkeypatch.setenv("GITFREE_READ_TIMEOUT", "7")
    monkeypatch.setenv("GITFREE_TRANSFER_TIMEOUT", "300")
    monkeypatch.setenv("GITFREE_RETRIES", "4")
    store = Store(
        "s3://bucket/prefix",
        endpoint_url="http://127.0.0.1:9",
        access_key_id="k",
        secret_access_key="s",
        cache_dir=tmp_path / "c",
    )
    backend: Any = store.backend
    config = backend._client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (1.5, 7.0)
    assert config.retries["total_max_attempts"] == 5
    objects: Any = backend.object_store()
    assert objects.client_options["connect_timeout"] == "1s 500ms"  # obstore's spelling of timedelta(seconds=1.5)
    assert objects.client_options["timeout"] == "5m"
    assert objects.retry_config["max_retries"] == 4
