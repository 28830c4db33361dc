"""simtcp as a router: a kernel host in a second namespace behind tap1, reached through it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .conftest import (
    LAYERED_SERVER,
    SERVER,
    TCP_TOOL,
    ServerProcess,
    configure_link,
    ns_python,
    nsexec,
)

pytestmark = pytest.mark.timeout(90)

BEHIND = "10.1.1.2"


ROUTERS = {
    "fast paths": ((str(SERVER),), ()),
    "layered paths": ((str(LAYERED_SERVER),), ()),  # StackConfig.fast_paths off: the oracle
    "fast, second TAP without offloads": ((str(SERVER),), ("--no-offload1",)),
    "fast, no offloads": ((str(SERVER),), ("--no-offload",)),
}
"""The router each test runs through: the one-step forwarding path on and off, with 64 KiB
segments forwarded whole (offloads on both TAPs), cut for the second TAP, or never made."""


@pytest.fixture(params=list(ROUTERS))
def routed(
    request: pytest.FixtureRequest,
    make_netns: Callable[[], str],
    start_server: Callable[..., ServerProcess],
) -> ServerProcess:
    """Host A (10.0.0.2) in one namespace, host B (10.1.1.2) in another, simtcp between."""
    command, extra = ROUTERS[request.param]
    server = start_server(netns=make_netns(), netns1=make_netns(), command=command, extra=extra)
    configure_link(server.netns1, server.tap1, address=f"{BEHIND}/24", gateway="10.1.1.1")
    configure_link(server.netns, server.tap0, routes=(("10.1.1.0/24", "10.0.0.1"),))
    return server


@pytest.fixture
def kernel_echo_behind(routed: ServerProcess) -> Iterator[int]:
    """A kernel echo server on host B, port 7; stopped by PID at the end."""
    process = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            routed.netns1,
            sys.executable,
            str(TCP_TOOL),
            "serve",
            "--host",
            BEHIND,
            "--port",
            "7",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "listening"
        yield 7
    finally:
        process.terminate()
        process.wait(10)


def test_host_behind_the_router_answers_ping(routed: ServerProcess) -> None:
    result = nsexec(routed.netns, "ping", "-c", "5", "-i", "0.05", "-W", "2", BEHIND)
    assert " 0% packet loss" in result.stdout, result.stdout + result.stderr
    # Forwarding decrements the TTL once (RFC 791, RFC 1812 §5.3.1).
    assert set(re.findall(r"ttl=(\d+)", result.stdout)) == {"63"}


def test_ping_from_behind_reaches_the_first_host(routed: ServerProcess) -> None:
    result = nsexec(routed.netns1, "ping", "-c", "3", "-i", "0.05", "-W", "2", "10.0.0.2")
    assert " 0% packet loss" in result.stdout, result.stdout + result.stderr


def test_tcp_through_the_router_to_a_kernel_echo_server(
    routed: ServerProcess, kernel_echo_behind: int
) -> None:
    result = ns_python(
        routed.netns,
        str(TCP_TOOL),
        "clients",
        "--host",
        BEHIND,
        "--port",
        str(kernel_echo_behind),
        "--count",
        "4",
        "--bytes",
        str(256 * 1024),
        "--timeout",
        "30",
        check=False,
    )
    assert '"ok": 4' in result.stdout, result.stdout + result.stderr


def test_ttl_1_ping_gets_time_exceeded_from_the_router(routed: ServerProcess) -> None:
    result = nsexec(routed.netns, "ping", "-c", "1", "-t", "1", "-W", "2", BEHIND)
    assert re.search(r"From 10\.0\.0\.1 icmp_seq=1 Time to live exceeded", result.stdout), (
        result.stdout + result.stderr
    )


@pytest.mark.skipif(shutil.which("iperf3") is None, reason="needs iperf3 (apt-get install iperf3)")
def test_udp_datagrams_cross_the_router(routed: ServerProcess) -> None:
    """iperf3's 1,400-byte datagrams from A reach B, at a rate far below any ceiling."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", routed.netns1, "iperf3", "-s", "-1", "-B", BEHIND],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        report: dict[str, Any] = {}
        for _ in range(50):  # until the server listens (iperf3 -J may exit 0 on a refusal)
            result = nsexec(
                routed.netns,
                *("iperf3", "-c", BEHIND, "-u", "-b", "20M", "-l", "1400", "-t", "1", "-J"),
            )
            report = json.loads(result.stdout or "{}")
            if result.returncode == 0 and "error" not in report:
                break
            time.sleep(0.1)
        assert "sum" in report.get("end", {}), report.get("error", report)
        summary = report["end"]["sum"]
        assert summary["packets"] > 1000
        # Loss here would be the router's (or the machine's) failing, not the rate's.
        assert summary["lost_packets"] <= summary["packets"] // 10, summary
    finally:
        server.terminate()
        server.wait(10)
