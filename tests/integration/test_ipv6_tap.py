"""IPv6 against the kernel over TAP: ping -6, ndisc6/rdisc6, forwarding, packet too big.

The seed server (``echo_reply_server.py``) has 2001:db8::1/64 on veth0 and
2001:db8:1::1/64 on veth1, link-local addresses from EUI-64, and routes IPv6
between them. The kernel side of tap0 has 2001:db8::2/64 (no DAD). Its own
addresses go through DAD first, so the first pings retry until they are
answered (``ping -w``); no test sleeps on a fixed delay.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable

import pytest

from .conftest import TOOLS, ServerProcess, ns_python, nsexec

pytestmark = pytest.mark.timeout(120)

STACK0 = "2001:db8::1"
STACK1 = "2001:db8:1::1"
KERNEL0 = "2001:db8::2"
BEHIND = "2001:db8:1::2"
PROXIED = "2001:db8:1::99"
IPV6_TOOL = TOOLS / "ipv6_tool.py"


def link_local(mac: str) -> str:
    """fe80:: and the modified EUI-64 of ``mac`` (RFC 4291 appendix A)."""
    raw = bytes.fromhex(mac.replace(":", ""))
    eui = bytes([raw[0] ^ 2]) + raw[1:3] + b"\xff\xfe" + raw[3:]
    return "fe80::" + ":".join(eui[i : i + 2].hex().lstrip("0") or "0" for i in range(0, 8, 2))


def ping6(namespace: str, target: str, *extra: str, count: int = 3) -> str:
    """``ping -6`` until ``count`` replies came back (or 20 s passed); its output."""
    result = nsexec(
        namespace,
        "ping",
        "-6",
        "-c",
        str(count),
        "-i",
        "0.2",
        "-w",
        "20",
        *extra,
        target,
        timeout=40,
    )
    return result.stdout + result.stderr


def received(output: str) -> int:
    match = re.search(r"(\d+) received", output)
    return int(match.group(1)) if match else 0


def ip6(namespace: str, *argv: str) -> None:
    nsexec(namespace, "ip", "-6", *argv, check=True)


def test_the_kernel_pings_every_simtcp_ipv6_address(server: ServerProcess) -> None:
    ip6(server.netns, "route", "add", "2001:db8:1::/64", "via", STACK0)
    ll0 = link_local(server.mac("veth0"))
    ll1 = link_local(server.mac("veth1"))
    for target in (STACK0, STACK1, f"{ll0}%{server.tap0}", f"{ll1}%{server.tap1}"):
        output = ping6(server.netns, target)
        assert received(output) >= 3, output
        assert set(re.findall(r"ttl=(\d+)", output)) == {"64"}, output
    # The all-nodes group too (RFC 4443 §4.2: answered from a unicast address of the link).
    everyone = ping6(server.netns, f"ff02::1%{server.tap0}", count=3)
    assert f"from {ll0}%{server.tap0}" in everyone, everyone
    # The kernel's neighbour cache holds us, with the router flag of our NAs (RFC 4861 §4.4).
    neighbours = nsexec(server.netns, "ip", "-6", "neigh", "show", "dev", server.tap0).stdout
    assert re.search(
        rf"{STACK0} lladdr {server.mac('veth0')} router (REACHABLE|STALE|DELAY)", neighbours
    ), neighbours


def test_ndisc6_gets_the_neighbour_advertisement_the_kernel_expects(server: ServerProcess) -> None:
    assert received(ping6(server.netns, STACK0)) >= 3  # DAD done
    mac = server.mac("veth0").upper()
    for target in (STACK0, link_local(server.mac("veth0"))):
        result = nsexec(server.netns, "ndisc6", "-1", "-r", "3", "-w", "1000", target, server.tap0)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"Target link-layer address: {mac}" in result.stdout, result.stdout


def test_rdisc6_gets_a_router_advertisement_and_the_kernel_autoconfigures(
    server: ServerProcess,
) -> None:
    assert received(ping6(server.netns, STACK0)) >= 3
    result = nsexec(server.netns, "rdisc6", "-1", "-r", "3", "-w", "1000", server.tap0)
    assert result.returncode == 0, result.stdout + result.stderr
    text = result.stdout
    assert re.search(r"Prefix\s*:\s*2001:db8::/64", text), text
    assert re.search(rf"Source link-layer address:\s*{server.mac('veth0').upper()}", text), text
    assert re.search(r"Router lifetime\s*:\s*0 ", text), text  # never anyone's default router
    assert re.search(r"MTU\s*:\s*1500 bytes", text), text
    assert f"from {link_local(server.mac('veth0'))}" in text, text
    # The kernel (accept_ra=1) forms its own address on our prefix: SLAAC from our RA.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        addresses = nsexec(server.netns, "ip", "-6", "addr", "show", "dev", server.tap0).stdout
        if re.search(r"inet6 2001:db8::\S+/64 scope global (tentative )?dynamic", addresses):
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"the kernel formed no address from our RA:\n{addresses}")


@pytest.fixture
def routed6(
    make_netns: Callable[[], str], start_server: Callable[..., ServerProcess]
) -> ServerProcess:
    """Host A (2001:db8::2) in one namespace, host B (2001:db8:1::2) in another, simtcp between."""
    server = start_server(netns=make_netns(), netns1=make_netns())
    ip6(server.netns1, "addr", "add", f"{BEHIND}/64", "dev", server.tap1, "nodad")
    ip6(server.netns1, "route", "add", "2001:db8::/64", "via", STACK1)
    ip6(server.netns, "route", "add", "2001:db8:1::/64", "via", STACK0)
    return server


def test_the_kernel_routes_through_simtcps_ipv6_forwarding(routed6: ServerProcess) -> None:
    output = ping6(routed6.netns, BEHIND)
    assert received(output) >= 3, output
    assert set(re.findall(r"ttl=(\d+)", output)) == {"63"}, output  # one hop: RFC 8200 §3
    back = ping6(routed6.netns1, KERNEL0)
    assert received(back) >= 3, back
    expired = ping6(routed6.netns, BEHIND, "-t", "1", count=1)
    assert re.search(rf"From {STACK0}.*Time exceeded: Hop limit", expired), expired


def test_a_packet_too_big_from_the_kernel_lowers_simtcps_path_mtu(routed6: ServerProcess) -> None:
    """The kernel in the second namespace proxies 2001:db8:1::99 (proxy NDP) and routes it
    onto a 1,280-byte link: simtcp's 1,448-byte echo reply to it draws a packet too big,
    and simtcp's reply to the next request leaves in fragments of at most 1,280 bytes."""
    ns, tap = routed6.netns1, routed6.tap1
    assert received(ping6(ns, STACK1)) >= 3  # simtcp's address passed DAD
    for setting in (
        "net.ipv6.conf.all.forwarding=1",
        f"net.ipv6.conf.{tap}.proxy_ndp=1",
        f"net.ipv6.neigh.{tap}.proxy_delay=0",
    ):
        nsexec(ns, "sysctl", "-w", setting, check=True)
    nsexec(
        ns,
        "ip",
        "link",
        "add",
        "v6narrow",
        "mtu",
        "1280",
        "type",
        "veth",
        "peer",
        "name",
        "v6peer",
        check=True,
    )
    nsexec(ns, "ip", "link", "set", "v6peer", "up", check=True)
    nsexec(ns, "ip", "link", "set", "v6narrow", "up", check=True)
    ip6(ns, "route", "add", f"{PROXIED}/128", "dev", "v6narrow")
    ip6(ns, "neigh", "add", "proxy", PROXIED, "dev", tap)
    result = ns_python(ns, str(IPV6_TOOL), tap, routed6.mac("veth1"), PROXIED, STACK1, "1400")
    frames = [
        tuple(frame) for frame in json.loads(result.stdout.strip().splitlines()[-1])["frames"]
    ]
    replies = [(length, nh) for length, nh in frames if length > 200]
    # First reply whole (14 + 40 + 8 + 1400), then, after the packet too big, fragments.
    assert replies[0] == (1462, 58), frames
    fragments = [length for length, nh in replies[1:] if nh == 44]
    assert len(fragments) >= 1 and all(length <= 14 + 1280 for length in fragments), frames
