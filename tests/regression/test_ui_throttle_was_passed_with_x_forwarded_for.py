"""``gitfree ui`` ran uvicorn with its default ``proxy_headers``, which trusts ``X-Forwarded-For`` from
127.0.0.1: a local client (or a web page reaching the view through DNS rebinding, where the header is
same-origin) named a new address in every guess, and the wrong-token throttle never held it back. The
client is now whoever connected."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

GITFREE = str(Path(sys.executable).with_name("gitfree"))


def test_a_forwarded_for_header_does_not_make_a_new_client(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITFREE_", "AWS_", "FORWARDED"))}
    env["GITFREE_CACHE_DIR"] = str(tmp_path / "cache")
    args = [GITFREE, "--store", str(tmp_path / "store"), "ui", "--port", "0", "--token", "tok-right-123456"]
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split(" at ")[1].split(" ")[0]
        codes = [
            httpx.post(f"{url}login", data={"token": f"guess-{i}"}, headers={"x-forwarded-for": f"10.0.0.{i}"})
            for i in range(7)
        ]
        assert [r.status_code for r in codes] == [401] * 5 + [429] * 2
        assert codes[-1].text == "too many wrong tokens from 127.0.0.1: wait 1 s, then try again"
    finally:
        process.terminate()
        process.wait(timeout=30)
