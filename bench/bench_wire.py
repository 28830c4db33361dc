"""Wire-format speed: the Internet checksum against the plain word loop, and frame round trips.

Run from the repository root: ``python bench/bench_wire.py [--seconds S]``. It
prints a table; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

from _profile import add_profile_option, start_profiling  # noqa: E402

from simtcp.wire.checksum import internet_checksum, reference_checksum  # noqa: E402
from simtcp.wire.ethernet import ETHERTYPE_IPV4, EthernetFrame  # noqa: E402
from simtcp.wire.ipv4 import PROTOCOL_TCP, Ipv4Packet  # noqa: E402
from simtcp.wire.tcp import ACK, PSH, NopOption, TcpSegment, TimestampsOption  # noqa: E402

CHECKSUM_BYTES = 64 * 1024
SOURCE = 0x0A000001
DESTINATION = 0x0A000002
MAC_A = bytes.fromhex("525400123456")
MAC_B = bytes.fromhex("525400abcdef")


def rate(operation: Callable[[], object], seconds: float, rounds: int = 5) -> float:
    """Calls per second of ``operation``: the best of ``rounds`` rounds sharing ``seconds``.

    The best round, not the mean, because other processes only ever slow a round down.
    """
    operation()
    batch = 1
    while True:  # size a batch to about one round's share of the time
        started = time.perf_counter()
        for _ in range(batch):
            operation()
        elapsed = time.perf_counter() - started
        if elapsed >= seconds / rounds / 4:
            break
        batch *= 2
    batch = max(1, int(batch * (seconds / rounds) / elapsed))
    best = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(batch):
            operation()
        best = max(best, batch / (time.perf_counter() - started))
    return best


def mtu_frame() -> bytes:
    """A 1514-byte frame: Ethernet + 20-byte IPv4 + TCP with timestamps + 1448 bytes of data."""
    payload = random.Random(1500).randbytes(1448)
    segment = TcpSegment(
        source_port=80,
        destination_port=40000,
        seq=0x12345678,
        ack=0x9ABCDEF0,
        flags=PSH | ACK,
        window=501,
        options=(NopOption(), NopOption(), TimestampsOption(123456789, 987654321)),
        payload=payload,
    )
    ip = Ipv4Packet(
        SOURCE,
        DESTINATION,
        PROTOCOL_TCP,
        segment.build(SOURCE, DESTINATION),
        identification=4242,
        dont_fragment=True,
    )
    return EthernetFrame(MAC_B, MAC_A, ETHERTYPE_IPV4, ip.build()).build()


def parse_frame(frame: bytes) -> tuple[EthernetFrame, Ipv4Packet, TcpSegment]:
    ethernet = EthernetFrame.parse(frame)
    ip = Ipv4Packet.parse(ethernet.payload)
    segment = TcpSegment.parse(ip.payload, source=ip.source, destination=ip.destination)
    return ethernet, ip, segment


def build_frame(ethernet: EthernetFrame, ip: Ipv4Packet, segment: TcpSegment) -> bytes:
    ip.payload = segment.build(ip.source, ip.destination)
    ethernet.payload = ip.build()
    return ethernet.build()


def round_trip(frame: bytes) -> bytes:
    return build_frame(*parse_frame(frame))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    add_profile_option(parser)
    args = parser.parse_args(argv)
    start_profiling(args.profile, "bench_wire")
    seconds = args.seconds

    data = random.Random(1071).randbytes(CHECKSUM_BYTES)
    if internet_checksum(data) != reference_checksum(data):
        raise SystemExit("internet_checksum disagrees with reference_checksum")
    frame = mtu_frame()
    if round_trip(frame) != frame:
        raise SystemExit("the round trip changed the frame")
    parsed = parse_frame(frame)

    fast = rate(lambda: internet_checksum(data), seconds) * CHECKSUM_BYTES / 1e6
    slow = rate(lambda: reference_checksum(data), seconds) * CHECKSUM_BYTES / 1e6
    # The small-buffer route applied to the whole buffer: one big int, one modulo.
    one_int = rate(lambda: int.from_bytes(data, "big") % 0xFFFF, seconds) * CHECKSUM_BYTES / 1e6
    trips = rate(lambda: round_trip(frame), seconds)
    parses = rate(lambda: parse_frame(frame), seconds)
    builds = rate(lambda: build_frame(*parsed), seconds)
    rows = [
        ("checksum, 64 KiB: internet_checksum", f"{fast:,.0f} MB/s"),
        ("checksum, 64 KiB: one big int modulo 0xffff", f"{one_int:,.0f} MB/s"),
        ("checksum, 64 KiB: reference word loop", f"{slow:,.1f} MB/s"),
        ("  speed-up", f"{fast / slow:,.0f}x"),
        (f"parse+build round trip, {len(frame)}-byte frame", f"{trips:,.0f} /s"),
        ("  parse only (Ethernet, IPv4, TCP + checksums)", f"{parses:,.0f} /s"),
        ("  build only (TCP, IPv4, Ethernet + checksums)", f"{builds:,.0f} /s"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"Python {sys.version.split()[0]}, {seconds:g} s per measurement")
    for name, value in rows:
        print(f"{name:<{width}}  {value:>16}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
