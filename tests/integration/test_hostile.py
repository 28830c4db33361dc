"""Hostile input from the namespace: the server stays up, echoes, answers ping, stays small."""

from __future__ import annotations

import json
import re

import pytest

from .conftest import TOOLS, ServerProcess, ns_python, nsexec

pytestmark = pytest.mark.timeout(120)

HOSTILE = TOOLS / "hostile.py"


def test_garbage_floods_and_blind_resets(server: ServerProcess) -> None:
    nsexec(server.netns, "ping", "-c", "1", "-W", "2", "10.0.0.1", check=True)
    rss_before = server.rss_kib()
    result = ns_python(
        server.netns,
        str(HOSTILE),
        "--iface",
        server.tap0,
        "--mac",
        server.mac("veth0"),
        check=False,
        timeout=90,
    )
    assert server.alive(), server.output()
    report = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {}
    assert report.get("before") == "before\n", result.stdout + result.stderr
    assert report.get("after") == "after\n", (report, result.stderr)
    ping = nsexec(server.netns, "ping", "-c", "5", "-i", "0.05", "-W", "2", "10.0.0.1")
    assert " 0% packet loss" in ping.stdout, ping.stdout
    growth_kib = server.rss_kib() - rss_before
    assert growth_kib < 32 * 1024, f"RSS grew by {growth_kib} KiB under a {report} attack"
    assert server.stop() == 0
    stopped = next(line for line in server.stdout if "stopped:" in line)
    dropped = int(re.search(r"(\d+) dropped by the stack", stopped).group(1))  # type: ignore[union-attr]
    assert dropped >= 300, stopped  # the garbage reached the stack and was counted, not lost
