"""``gitfree ui --token ""`` (a script's ``--token "$TOKEN"`` with the variable unset) served the view with no
token at all, saying "no token" only in its startup line; ``--token "   "`` ended as "unexpected ValueError",
exit 1. Both are now one line, exit 2, and nothing is served."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

GITFREE = str(Path(sys.executable).with_name("gitfree"))


@pytest.mark.parametrize("token", ["", "   "])
def test_an_empty_token_is_refused_in_one_line(tmp_path: Path, token: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITFREE_", "AWS_"))}
    env["GITFREE_CACHE_DIR"] = str(tmp_path / "cache")
    args = [GITFREE, "--store", str(tmp_path / "store"), "ui", "--port", "0", "--token", token]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr.strip() == (
        "error: --token is empty: pass the token every visitor must show (or leave --token out)"
    )
