"""``simtcp demo``: the seed's whole session played inside the simulator, no root needed.

teeceepee2's README walks through arping, ping, adding a route, pinging the
second interface and talking to the echo server with nc, over real TAP
devices. Here the same session runs in virtual time: the simtcp stack
(10.0.0.1 on veth0, 10.1.1.1 on veth1, forwarding on, TCP echo on port 80)
and a simulated Linux host at 10.0.0.2 (another simtcp Stack standing in for
the kernel) joined by a simulated cable, printed the way the real tools print.

``--ipv6`` plays the session again over IPv6 after it: each interface also
has an IPv6 prefix (2001:db8::1/64 on veth0, 2001:db8:1::1/64 on veth1, the
host 2001:db8::2/64), both sides complete DAD, then ``ping -6``, ``ip -6 route
add``, a ping through the router to veth1's address, and ``nc -6`` to the echo
server.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
from collections.abc import Callable, Sequence
from functools import partial
from typing import BinaryIO

from simtcp.backends.impair import LinkProfile
from simtcp.backends.sim import Simulator

from ..apps import EchoServer
from ..config import Ip6Config, IpConfig, StackConfig
from ..errors import SimtcpError
from ..events import (
    ConnectionEstablished,
    ConnectionReset,
    ConnectionTimedOut,
    DataReceived,
    EchoReplyReceived,
    Event,
    PeerClosed,
)
from ..stack import Stack
from ..time import MILLISECOND, SECOND, Instant
from ..wire.arp import OPERATION_REPLY, OPERATION_REQUEST, ArpPacket
from ..wire.ethernet import BROADCAST_MAC, ETHERTYPE_ARP, ZERO_MAC, EthernetFrame, mac_to_str
from ..wire.ipv4 import ip_from_str
from .cliargs import OneLineParser, duration, error_line, output_file, probability

STACK_MACS = ("02:00:00:00:00:01", "02:00:00:00:01:01")
HOST_MAC = "4e:47:62:9f:88:28"
ECHO_LINE = b"hello from the simulated host\n"


class _LinuxHost:
    """The simulated kernel at 10.0.0.2: a Stack, plus raw frames and ARP replies for arping."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.raw_out: list[tuple[str, bytes]] = []
        self.arp_replies: list[tuple[Instant, ArpPacket]] = []

    def receive_frame(self, interface: str, frame: bytes | memoryview, *, now: Instant) -> None:
        if len(frame) >= 42 and frame[12:14] == ETHERTYPE_ARP.to_bytes(2, "big"):
            packet = ArpPacket.parse(memoryview(frame)[14:])
            if packet.operation == OPERATION_REPLY:
                self.arp_replies.append((now, packet))
        self.stack.receive_frame(interface, frame, now=now)

    def frames_to_send(self, *, now: Instant) -> list[tuple[str, bytes]]:
        frames = self.raw_out + self.stack.frames_to_send(now=now)
        self.raw_out = []
        return frames

    def poll_at(self) -> Instant | None:
        return self.stack.poll_at()

    def handle_timer(self, *, now: Instant) -> None:
        self.stack.handle_timer(now=now)


class Demo:
    """Builds the topology and plays each step of the session, printing as it goes."""

    def __init__(
        self,
        *,
        seed: int,
        profile: LinkProfile,
        out: Callable[[str], None],
        pcap: BinaryIO | None = None,
    ) -> None:
        self.out = out
        self.sim = Simulator(seed)
        self.server = Stack(
            StackConfig(seed=seed, ip=IpConfig(forwarding=True), ip6=Ip6Config(forwarding=True))
        )
        self.server.add_interface("veth0", mac=STACK_MACS[0])
        self.server.add_interface("veth1", mac=STACK_MACS[1])
        self.server.add_address("veth0", "10.0.0.1/24")
        self.server.add_address("veth1", "10.1.1.1/24")
        self.echo = EchoServer(self.server, 80)
        self.host = _LinuxHost(Stack(StackConfig(seed=seed + 1)))
        self.host.stack.add_interface("tap-veth0", mac=HOST_MAC)
        self.host.stack.add_address("tap-veth0", "10.0.0.2/24")
        self.sim.add_host("simtcp", self.server)
        self.sim.add_host("linux", self.host)
        link = self.sim.connect(("linux", "tap-veth0"), ("simtcp", "veth0"), profile)
        if pcap is not None:
            self.sim.add_pcap(link, pcap)
        self.sim.add_process(self._serve)
        self.host_events: list[Event] = []
        self.sim.run_for(10 * MILLISECOND)  # gratuitous ARPs settle

    def _serve(self, now: Instant) -> None:
        while (event := self.server.next_event()) is not None:
            self.echo.handle_event(event, now)
        while (event := self.host.stack.next_event()) is not None:
            self.host_events.append(event)

    # --- the session ------------------------------------------------------------

    def arping(self, target: str, count: int = 3) -> bool:
        self.out(f"$ sudo arping -c {count} -I tap-veth0 {target}")
        self.out(f"ARPING {target}")
        host_mac = self.host.stack.interface_mac("tap-veth0")
        received = 0
        for index in range(count):
            sent_at = self.sim.now
            self.host.arp_replies.clear()
            request = ArpPacket(
                OPERATION_REQUEST, host_mac, ip_from_str("10.0.0.2"), ZERO_MAC, ip_from_str(target)
            )
            frame = EthernetFrame(BROADCAST_MAC, host_mac, ETHERTYPE_ARP, request.build())
            self.host.raw_out.append(("tap-veth0", frame.build()))
            if self.sim.run_until(lambda: bool(self.host.arp_replies), timeout=SECOND):
                at, reply = self.host.arp_replies[0]
                received += 1
                self.out(
                    f"42 bytes from {mac_to_str(reply.sender_mac)} ({target}): "
                    f"index={index} time={at - sent_at:.3f} usec"
                )
            else:
                self.out("Timeout")
            self.sim.run_until(lambda: False, timeout=sent_at + SECOND - self.sim.now)
        self.out(f"\n--- {target} statistics ---")
        unanswered = 100 * (count - received) // count
        self.out(
            f"{count} packets transmitted, {received} packets received, "
            f"{unanswered:3d}% unanswered (0 extra)\n"
        )
        return received > 0

    def ping(self, target: str, count: int = 4) -> bool:
        six = ":" in target
        self.out(f"$ ping {'-6 ' if six else ''}-c {count} {target}")
        if six:
            self.out(f"PING {target} ({target}) 56 data bytes")
        else:
            self.out(f"PING {target} ({target}) 56(84) bytes of data.")
        rtts: list[float] = []
        started = self.sim.now
        for sequence in range(1, count + 1):
            sent_at = self.sim.now
            self.host.stack.ping(
                target, identifier=0x5EED, sequence=sequence, payload=bytes(range(56)), now=sent_at
            )
            reply = self._wait_for(partial(_is_reply_to, sequence), SECOND)
            if isinstance(reply, EchoReplyReceived):
                rtt = (self.sim.now - sent_at) / MILLISECOND
                rtts.append(rtt)
                self.out(
                    f"64 bytes from {reply.source}: icmp_seq={sequence} ttl={reply.ttl} "
                    f"time={rtt:.3f} ms"
                )
            if sequence < count:
                self.sim.run_until(lambda: False, timeout=sent_at + SECOND - self.sim.now)
        elapsed = (self.sim.now - started) // MILLISECOND
        loss = 100 * (count - len(rtts)) // count
        self.out(f"\n--- {target} ping statistics ---")
        self.out(
            f"{count} packets transmitted, {len(rtts)} received, {loss}% packet loss, "
            f"time {elapsed}ms"
        )
        if rtts:
            deviation = statistics.pstdev(rtts)
            self.out(
                f"rtt min/avg/max/mdev = {min(rtts):.3f}/{statistics.mean(rtts):.3f}/"
                f"{max(rtts):.3f}/{deviation:.3f} ms"
            )
        self.out("")
        return bool(rtts)

    def add_route(self) -> None:
        self.out("$ sudo ip route add 10.1.1.0/24 via 10.0.0.1 dev tap-veth0")
        self.host.stack.add_route("10.1.1.0/24", via="10.0.0.1")
        self.out("")

    def add_ipv6(self) -> None:
        """The IPv6 prefixes next to the IPv4 ones, and the wait for DAD (RFC 4862 §5.4)."""
        self.out("$ sudo ip -6 addr add 2001:db8::2/64 dev tap-veth0")
        for stack, interface, address in (
            (self.server, "veth0", "2001:db8::1/64"),
            (self.server, "veth1", "2001:db8:1::1/64"),
            (self.host.stack, "tap-veth0", "2001:db8::2/64"),
        ):
            stack.add_address(interface, address, now=self.sim.now)

        def ready() -> bool:
            return all(
                state == "preferred"
                for stack, interface in (
                    (self.server, "veth0"),
                    (self.server, "veth1"),
                    (self.host.stack, "tap-veth0"),
                )
                for _, _, state in stack.addresses6(interface)
            )

        started = self.sim.now
        done = self.sim.run_until(ready, timeout=10 * SECOND)
        waited = (self.sim.now - started) / SECOND
        self.out(
            f"(duplicate address detection: {'done' if done else 'not done'} in {waited:.3f}s)"
        )
        self.out("")

    def add_route6(self) -> None:
        self.out("$ sudo ip -6 route add 2001:db8:1::/64 via 2001:db8::1 dev tap-veth0")
        self.host.stack.add_route("2001:db8:1::/64", via="2001:db8::1")
        self.out("")

    def netcat(self, target: str, port: int, line: bytes = ECHO_LINE) -> bool:
        text = line.decode().rstrip("\n")
        six = "-6 " if ":" in target else ""
        self.out(f"$ echo '{text}' | nc {six}-q 1 {target} {port}")
        stack = self.host.stack
        connection = stack.tcp_connect(target, port, now=self.sim.now)

        def mine(event: Event, kinds: tuple[type[Event], ...]) -> bool:
            return getattr(event, "connection", None) == connection and isinstance(event, kinds)

        opened = self._wait_for(
            lambda e: mine(e, (ConnectionEstablished, ConnectionReset, ConnectionTimedOut)),
            30 * SECOND,
        )
        if not isinstance(opened, ConnectionEstablished):
            self.out(f"nc: connect to {target} port {port} (tcp) failed")
            return False
        stack.send(connection, line, now=self.sim.now)
        stack.shutdown(connection, now=self.sim.now)
        echoed = b""
        while True:
            event = self._wait_for(
                lambda e: mine(e, (DataReceived, PeerClosed, ConnectionReset, ConnectionTimedOut)),
                30 * SECOND,
            )
            if isinstance(event, DataReceived):
                echoed += stack.receive(connection, now=self.sim.now)
                continue
            break
        if isinstance(event, PeerClosed):
            stack.close(connection, now=self.sim.now)
        self.out(echoed.decode(errors="replace").rstrip("\n"))
        self.out("")
        return echoed == line

    def _wait_for(self, wanted: Callable[[Event], bool], timeout: int) -> Event | None:
        found: list[Event] = []

        def check() -> bool:
            for index, event in enumerate(self.host_events):
                if wanted(event):
                    found.append(self.host_events.pop(index))
                    return True
            return False

        self.sim.run_until(check, timeout=timeout)
        return found[0] if found else None


def _is_reply_to(sequence: int, event: Event) -> bool:
    return isinstance(event, EchoReplyReceived) and event.sequence == sequence


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="simtcp demo",
        description="Play teeceepee2's session (arping, ping, route, ping, nc) in the simulator.",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the run (default 1)")
    parser.add_argument(
        "--loss",
        type=probability,
        default=0.0,
        help="frame loss each way, as a fraction (0.1 = 10%%)",
    )
    parser.add_argument(
        "--delay",
        type=duration,
        default=60,
        help="one-way delay of the cable, e.g. 60us or 5ms (default 60us)",
    )
    parser.add_argument(
        "--pcap", metavar="FILE", type=output_file, help="record every frame on the cable"
    )
    parser.add_argument(
        "--ipv6",
        action="store_true",
        help="then play the session over IPv6 too (2001:db8::/64 and 2001:db8:1::/64)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    profile = LinkProfile(loss=args.loss, delay=args.delay)
    try:  # opening, writing or closing the pcap (/proc/version takes the open, fails the write)
        with contextlib.ExitStack() as files:
            pcap: BinaryIO | None = None
            if args.pcap is not None:
                pcap = files.enter_context(open(args.pcap, "wb"))
            demo = Demo(seed=args.seed, profile=profile, out=print, pcap=pcap)
            results = [
                demo.arping("10.0.0.1"),
                demo.ping("10.0.0.1"),
            ]
            demo.add_route()
            results.append(demo.ping("10.1.1.1"))
            results.append(demo.netcat("10.0.0.1", 80))
            if args.ipv6:
                demo.add_ipv6()
                results.append(demo.ping("2001:db8::1"))
                demo.add_route6()
                results.append(demo.ping("2001:db8:1::1"))
                results.append(demo.netcat("2001:db8::1", 80))
    except OSError as error:
        message = f"cannot write {args.pcap}: {error.strerror or error}"
        print(error_line("simtcp demo", message), file=sys.stderr)
        return 2
    except SimtcpError as error:
        print(f"simtcp demo: {error}", file=sys.stderr)
        return 1
    print(f"virtual time {demo.sim.now / SECOND:.3f}s; every step answered: {all(results)}")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
