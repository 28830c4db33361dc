"""The seed's session with the kernel's own tools: arping, ping, a route, ping, nc."""

from __future__ import annotations

import re

import pytest

from .conftest import ServerProcess, configure_link, nsexec

pytestmark = pytest.mark.timeout(60)


def test_arping_gets_replies_with_the_stacks_mac(server: ServerProcess) -> None:
    result = nsexec(server.netns, "arping", "-c", "3", "-w", "3", "-i", server.tap0, "10.0.0.1")
    replies = re.findall(r"bytes from ([0-9a-f:]{17}) \(10\.0\.0\.1\)", result.stdout)
    assert len(replies) >= 3, result.stdout + result.stderr
    assert set(replies) == {server.mac("veth0")}


def test_ping_the_stack_without_loss(server: ServerProcess) -> None:
    result = nsexec(server.netns, "ping", "-c", "10", "-i", "0.05", "-W", "2", "10.0.0.1")
    assert " 0% packet loss" in result.stdout, result.stdout + result.stderr
    assert len(re.findall(r"bytes from 10\.0\.0\.1: icmp_seq=\d+ ttl=64", result.stdout)) == 10


def test_kernel_learns_the_stacks_mac(server: ServerProcess) -> None:
    nsexec(server.netns, "ping", "-c", "1", "-W", "2", "10.0.0.1", check=True)
    neighbours = nsexec(server.netns, "ip", "neigh", "show", "10.0.0.1", check=True).stdout
    assert server.mac("veth0") in neighbours


def test_ping_other_address_is_answered_from_it(server: ServerProcess) -> None:
    """The seed answered 10.1.1.1 from 10.0.0.1; a reply must come from the address asked."""
    configure_link(server.netns, server.tap0, routes=(("10.1.1.0/24", "10.0.0.1"),))
    result = nsexec(server.netns, "ping", "-c", "5", "-i", "0.05", "-W", "2", "10.1.1.1")
    assert " 0% packet loss" in result.stdout, result.stdout + result.stderr
    sources = set(re.findall(r"bytes from (\S+): icmp_seq", result.stdout))
    assert sources == {"10.1.1.1"}


def test_without_the_route_the_other_address_is_unreachable(server: ServerProcess) -> None:
    result = nsexec(server.netns, "ping", "-c", "1", "-W", "1", "10.1.1.1")
    assert result.returncode != 0


def test_nc_line_comes_back(server: ServerProcess) -> None:
    result = nsexec(
        server.netns,
        "nc",
        "-N",
        "-w",
        "5",
        "10.0.0.1",
        "80",
        input="hello from the seed session\n",
        timeout=20,
    )
    assert result.stdout == "hello from the seed session\n", result.stderr


def test_closed_port_is_refused(server: ServerProcess) -> None:
    result = nsexec(server.netns, "nc", "-z", "-w", "3", "10.0.0.1", "81", timeout=20)
    assert result.returncode != 0
