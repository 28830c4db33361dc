"""Kernel TCP clients echo through simtcp over IPv6 on the seed topology (port 80).

The seed server has 2001:db8::1/64 and an EUI-64 link-local address on veth0;
the kernel side of tap0 has 2001:db8::2/64. The kernel's own clients (Python
sockets inside the namespace, and OpenBSD ``nc -6``) connect to the global
address and to the link-local one scoped to the TAP (``fe80::...%tap0``).
simtcp's addresses pass DAD after the server is ready, so a first SYN may go
unanswered; the kernel retransmits it (no test sleeps on a fixed delay).
"""

from __future__ import annotations

import json

import pytest

from .conftest import TCP_TOOL, ServerProcess, ns_python, nsexec
from .test_ipv6_tap import STACK0, link_local, ping6, received

pytestmark = pytest.mark.timeout(240)


def echo_clients(server: ServerProcess, host: str, *, count: int, size: int) -> dict[str, object]:
    result = ns_python(
        server.netns,
        str(TCP_TOOL),
        "clients",
        "--host",
        host,
        "--port",
        "80",
        "--count",
        str(count),
        "--bytes",
        str(size),
        "--timeout",
        "90",
        timeout=200,
        check=False,
    )
    assert result.stdout.strip(), f"no summary; stderr: {result.stderr}\n{server.output()}"
    summary: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


def wait_reachable(server: ServerProcess, target: str) -> None:
    """Until simtcp answers at ``target`` (its DAD done): ping -6 retries for up to 20 s."""
    output = ping6(server.netns, target, count=1)
    assert received(output) >= 1, output


@pytest.mark.parametrize("scope", ["global", "link-local"])
def test_kernel_socket_clients_echo_over_ipv6(server: ServerProcess, scope: str) -> None:
    host = STACK0 if scope == "global" else f"{link_local(server.mac('veth0'))}%{server.tap0}"
    wait_reachable(server, host)
    summary = echo_clients(server, host, count=4, size=1_000_000)
    assert summary["ok"] == 4, summary


def test_nc_6_echoes_through_simtcp(server: ServerProcess) -> None:
    wait_reachable(server, STACK0)
    line = "hello over IPv6\n"
    for target in (STACK0, f"{link_local(server.mac('veth0'))}%{server.tap0}"):
        result = nsexec(server.netns, "nc", "-6", "-N", "-w", "10", target, "80", input=line)
        assert result.stdout == line, (target, result.stdout, result.stderr, server.output())
