"""Hostile IPv6 input per CPU-second, next to valid echo requests, and what each was counted as.

Run from the repository root: ``python bench/bench_ip6_hostile.py [--packets N]``.
One stack (2001:db8::1, DAD done) takes N frames of each kind: valid echo
requests (the baseline, answered), extension chains of 1,000 destination
options headers, overlapping fragment pairs, fragments past 65,535 bytes,
neighbour solicitations with hop limit 64, spoofed router advertisements
(``accept_router_advertisements=False``), routing headers of type 0. For
each it prints microseconds per frame and the drop counters that moved: the
work per hostile frame is bounded (the walk stops after
``Ip6Config.max_extension_headers``), so the chain of 1,000 headers costs
about what a valid packet costs. Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from ipaddress import IPv6Address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simtcp.config import Ip6Config, StackConfig  # noqa: E402
from simtcp.stack import Stack  # noqa: E402
from simtcp.wire.ethernet import ETHERTYPE_IPV6, build_ethernet_header  # noqa: E402
from simtcp.wire.icmpv6 import (  # noqa: E402
    Icmpv6Message,
    NdOptions,
    NeighborSolicitation,
    PrefixInformation,
    RouterAdvertisement,
)
from simtcp.wire.ipv6 import (  # noqa: E402
    NEXT_DESTINATION,
    NEXT_FRAGMENT,
    NEXT_ICMPV6,
    NEXT_ROUTING,
    FragmentHeader,
    Ipv6Packet,
    extension_header,
    multicast_mac,
    solicited_node,
)

SECOND = 1_000_000
OURS = IPv6Address("2001:db8::1")
PEER = IPv6Address("2001:db8::99")
PEER_MAC = bytes.fromhex("020000000099")
ALL_NODES = IPv6Address("ff02::1")


def victim() -> tuple[Stack, bytes]:
    stack = Stack(StackConfig(seed=1, ip6=Ip6Config(accept_router_advertisements=False)))
    stack.add_interface("eth0", mac="02:00:00:00:00:01")
    stack.add_address("eth0", "2001:db8::1/64", now=0)
    now = 0
    while (at := stack.poll_at()) is not None and at <= 3 * SECOND:
        now = at
        stack.handle_timer(now=now)
    stack.frames_to_send(now=now)
    stack.add_neighbour6("eth0", str(PEER), PEER_MAC)
    return stack, stack.interface_mac("eth0")


def _echo(data: bytes = b"x" * 56) -> bytes:
    return Icmpv6Message.echo_request(1, 1, data).build(PEER, OURS)


def _to_us(next_header: int, body: bytes) -> bytes:
    return Ipv6Packet(PEER, OURS, next_header, body).build()


def kinds() -> dict[str, Callable[[int], list[tuple[bytes, bytes | None]]]]:
    chain = b"".join(extension_header(NEXT_DESTINATION, b"") for _ in range(999))
    chain += extension_header(NEXT_ICMPV6, b"") + _echo()
    group = solicited_node(OURS)
    ns = NeighborSolicitation(OURS, NdOptions(source_lladdr=PEER_MAC)).to_message()
    advert = RouterAdvertisement(
        options=NdOptions(prefixes=[PrefixInformation(IPv6Address("2001:db8:66::"))])
    ).to_message()
    router = IPv6Address("fe80::1")
    rh0 = bytes([NEXT_ICMPV6, 2, 0, 1]) + bytes(4) + IPv6Address("2001:db8::7").packed
    big = _echo(bytes(120))

    def overlapping(i: int) -> list[tuple[bytes, bytes | None]]:
        first = FragmentHeader(NEXT_ICMPV6, 0, True, i).build() + big[:64]
        second = FragmentHeader(NEXT_ICMPV6, 32, False, i).build() + big[32:]
        return [(_to_us(NEXT_FRAGMENT, first), None), (_to_us(NEXT_FRAGMENT, second), None)]

    return {
        "valid echo request (baseline)": lambda i: [(_to_us(NEXT_ICMPV6, _echo()), None)],
        "1,000-header chain": lambda i: [(_to_us(NEXT_DESTINATION, chain), None)],
        "overlapping fragment pair": overlapping,
        "fragment past 65,535": lambda i: [
            (
                _to_us(
                    NEXT_FRAGMENT, FragmentHeader(NEXT_ICMPV6, 65528, False, i).build() + bytes(16)
                ),
                None,
            )
        ],
        "NS with hop limit 64": lambda i: [
            (
                Ipv6Packet(PEER, group, NEXT_ICMPV6, ns.build(PEER, group), 64).build(),
                multicast_mac(group),
            )
        ],
        "spoofed RA": lambda i: [
            (
                Ipv6Packet(
                    router, ALL_NODES, NEXT_ICMPV6, advert.build(router, ALL_NODES), 255
                ).build(),
                multicast_mac(ALL_NODES),
            )
        ],
        "routing header type 0": lambda i: [(_to_us(NEXT_ROUTING, rh0 + _echo()), None)],
    }


def run(name: str, make: Callable[[int], list[tuple[bytes, bytes | None]]], packets: int) -> None:
    stack, mac = victim()
    frames = []
    for index in range(packets):
        for packet, destination in make(index):
            frames.append(
                build_ethernet_header(destination or mac, PEER_MAC, ETHERTYPE_IPV6) + packet
            )
    before = stack.stats()
    start = time.process_time()
    now = 4 * SECOND
    for frame in frames:
        now += 1  # one µs apart: the ICMPv6 rate limit lets few errors out
        stack.receive_frame("eth0", frame, now=now)
        stack.frames_to_send(now=now)
    elapsed = time.process_time() - start
    after = stack.stats()
    moved = {
        key[5:]: after[key] - before.get(key, 0)
        for key in after
        if key.startswith("drop.") and key != "drop.total" and after[key] != before.get(key, 0)
    }
    replies = after.get("icmp6.out.type129", 0)
    counted = ", ".join(f"{reason} {count}" for reason, count in sorted(moved.items()))
    print(
        f"{name:32s} {len(frames):6d} frames {elapsed / len(frames) * 1e6:8.1f} µs/frame  "
        f"{counted or f'answered {replies}'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=1000)
    args = parser.parse_args()
    for name, make in kinds().items():
        run(name, make, args.packets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
