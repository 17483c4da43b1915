"""A worker killed while it ran a step, not yet reaped by its parent (a zombie), was judged alive: the others
waited out its lease (15 minutes by default) instead of taking its claim over at once. A zombie is gone."""

from __future__ import annotations

import subprocess
import time

from gitfree.versioning.leases import _process_gone


def test_a_killed_process_not_yet_reaped_is_gone() -> None:
    child = subprocess.Popen(["sleep", "60"])
    try:
        assert not _process_gone(child.pid)
        child.kill()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with open(f"/proc/{child.pid}/stat", "rb") as f:
                if b") Z " in f.read():
                    break
            time.sleep(0.02)
        assert _process_gone(child.pid)  # a zombie: killed, waiting for its parent
    finally:
        child.wait()
    assert _process_gone(child.pid)
