"""simtcp as a router: a kernel host in a second namespace behind tap1, reached through it."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from .conftest import TCP_TOOL, ServerProcess, configure_link, ns_python, nsexec

pytestmark = pytest.mark.timeout(90)

BEHIND = "10.1.1.2"


@pytest.fixture
def routed(
    make_netns: Callable[[], str], start_server: Callable[..., ServerProcess]
) -> ServerProcess:
    """Host A (10.0.0.2) in one namespace, host B (10.1.1.2) in another, simtcp between."""
    server = start_server(netns=make_netns(), netns1=make_netns())
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
