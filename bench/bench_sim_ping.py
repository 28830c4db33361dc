"""Pings per CPU-second through the simulator: two hosts, across a router, with a big ARP cache.

Run from the repository root: ``python bench/bench_sim_ping.py [--pings N]``.
Each ping is sent only after the previous reply arrived (like ``ping`` does,
without the one-second wait), so the figure is the cost of one full round
trip: four frames through links, two stacks (three with the router: eight
frames, four stack traversals) and the simulator's event loop. The last
rows fill the router's neighbour cache with 10 and then 10,000 entries (each
with its own expiry timer) to show that the cost per ping does not grow with
the size of the cache or of the timer heap. It prints a table; nothing here
asserts on time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

from _profile import add_profile_option, start_profiling  # noqa: E402

from simtcp.backends.sim import LinkProfile, Simulator  # noqa: E402
from simtcp.config import ArpConfig, IpConfig, StackConfig  # noqa: E402
from simtcp.events import EchoReplyReceived  # noqa: E402
from simtcp.stack import Stack  # noqa: E402
from simtcp.wire.arp import OPERATION_REQUEST, ArpPacket  # noqa: E402
from simtcp.wire.ethernet import BROADCAST_MAC, ETHERTYPE_ARP, build_ethernet_header  # noqa: E402

LINK = LinkProfile(delay=100)
BIG_ARP = ArpConfig(cache_limit=20_000, entry_lifetime=3_600_000_000)


def new_stack(seed: int, *, forwarding: bool = False) -> Stack:
    return Stack(StackConfig(seed=seed, arp=BIG_ARP, ip=IpConfig(forwarding=forwarding)))


def two_hosts() -> tuple[Simulator, Stack, str, Stack]:
    sim = Simulator(1)
    a, b = new_stack(1), new_stack(2)
    a.add_interface("eth0", mac="02:00:00:00:00:01")
    a.add_address("eth0", "10.0.0.1/16")
    b.add_interface("eth0", mac="02:00:00:00:00:02")
    b.add_address("eth0", "10.0.0.2/16")
    sim.add_host("a", a)
    sim.add_host("b", b)
    sim.connect(("a", "eth0"), ("b", "eth0"), LINK)
    return sim, a, "10.0.0.2", b


def across_router() -> tuple[Simulator, Stack, str, Stack]:
    sim = Simulator(1)
    h1, router, h2 = new_stack(1), new_stack(2, forwarding=True), new_stack(3)
    h1.add_interface("eth0", mac="02:00:00:00:00:01")
    h1.add_address("eth0", "10.0.0.2/16")
    h1.add_route("0.0.0.0/0", via="10.0.0.1")
    router.add_interface("eth0", mac="02:00:00:00:01:00")
    router.add_address("eth0", "10.0.0.1/16")
    router.add_interface("eth1", mac="02:00:00:00:01:01")
    router.add_address("eth1", "10.1.1.1/24")
    h2.add_interface("eth0", mac="02:00:00:00:00:02")
    h2.add_address("eth0", "10.1.1.2/24")
    h2.add_route("0.0.0.0/0", via="10.1.1.1")
    for name, stack in (("h1", h1), ("r", router), ("h2", h2)):
        sim.add_host(name, stack)
    sim.connect(("h1", "eth0"), ("r", "eth0"), LINK)
    sim.connect(("r", "eth1"), ("h2", "eth0"), LINK)
    return sim, h1, "10.1.1.2", router


def fill_neighbour_cache(sim: Simulator, host: str, stack: Stack, entries: int) -> None:
    """Teach ``stack`` (10.0.0.1/16 on eth0) ``entries`` neighbours by ARP requests to it."""
    for index in range(entries):
        address = 0x0A000000 + 0x100 + index  # 10.0.1.0 onwards
        mac = bytes([2, 0xEE]) + index.to_bytes(4, "big")
        request = ArpPacket(OPERATION_REQUEST, mac, address, bytes(6), 0x0A000001)
        frame = build_ethernet_header(BROADCAST_MAC, mac, ETHERTYPE_ARP) + request.build()
        sim.inject((host, "eth0"), frame)
    sim.run_for(1_000)


def ping_rate(sim: Simulator, source: Stack, destination: str, pings: int) -> tuple[float, int]:
    """(pings per CPU-second, virtual microseconds per ping), warm ARP caches first."""
    replies = 0

    def count_replies(now: int) -> None:
        nonlocal replies
        while (event := source.next_event()) is not None:
            replies += isinstance(event, EchoReplyReceived)

    sim.add_process(count_replies)
    sent = 1

    def all_answered() -> bool:
        return replies == sent

    source.ping(destination, identifier=1, sequence=0, now=sim.now)
    if not sim.run_until(all_answered, timeout=10_000_000):
        raise SystemExit(f"no reply from {destination} during warm-up")
    payload = bytes(56)
    started_cpu, started_virtual = time.process_time(), sim.now
    for sequence in range(1, pings + 1):
        source.ping(destination, identifier=1, sequence=sequence, payload=payload, now=sim.now)
        sent += 1
        if not sim.run_until(all_answered, timeout=10_000_000):
            raise SystemExit(f"ping {sequence} to {destination} got no reply")
    cpu = time.process_time() - started_cpu
    return pings / cpu, (sim.now - started_virtual) // pings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pings", type=int, default=20_000, help="pings per row")
    add_profile_option(parser)
    args = parser.parse_args()
    start_profiling(args.profile, "bench_sim_ping")
    print(f"{'scenario':<52} {'pings/CPU-s':>12} {'virtual us/ping':>16}")
    rows: list[tuple[str, tuple[Simulator, Stack, str, Stack], int]] = [
        ("two hosts", two_hosts(), 0),
        ("across the router", across_router(), 0),
        ("across the router, 10 ARP entries", across_router(), 10),
        ("across the router, 10,000 ARP entries", across_router(), 10_000),
    ]
    for label, (sim, source, destination, router), entries in rows:
        if entries:
            fill_neighbour_cache(sim, "r", router, entries)
            cached = router.stats()["arp.cache_entries"]
            label = f"{label} ({cached} cached)"
        rate, virtual = ping_rate(sim, source, destination, args.pings)
        print(f"{label:<52} {rate:>12,.0f} {virtual:>16}")


if __name__ == "__main__":
    main()
