"""The simulator's offloading links: GSO cuts at the sender's NIC, GRO merges at the receiver's."""

from __future__ import annotations

import io
import random

from scapy.layers.inet import IP, TCP

from simtcp import ArpConfig, DatagramReceived, Stack, StackConfig
from simtcp.backends.impair import LinkProfile
from simtcp.backends.nic import nic_transmit
from simtcp.backends.sim import Simulator
from simtcp.link import InterfaceOffload
from simtcp.time import Instant
from simtcp.wire.checksum import internet_checksum
from simtcp.wire.offload import l4_checksum_ok, set_l4_checksum
from simtcp.wire.pcap import read_pcap

OFFLOAD = InterfaceOffload(tx_checksum=True, max_segment=60000)


class Recording:
    """A stack that also keeps every frame it was handed."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.frames: list[bytes] = []

    def receive_frame(self, interface: str, frame: bytes | memoryview, *, now: Instant) -> None:
        self.frames.append(bytes(frame))
        self.stack.receive_frame(interface, frame, now=now)

    def frames_to_send(self, *, now: Instant) -> list[tuple[str, bytes]]:
        return self.stack.frames_to_send(now=now)

    def poll_at(self) -> Instant | None:
        return self.stack.poll_at()

    def handle_timer(self, *, now: Instant) -> None:
        self.stack.handle_timer(now=now)


def pair(
    profile: LinkProfile, offload: InterfaceOffload | None = OFFLOAD
) -> tuple[Simulator, Stack, Recording, io.BytesIO, io.BytesIO]:
    sim = Simulator(seed=1)
    stacks = []
    for index in (1, 2):
        stack = Stack(StackConfig(seed=index, arp=ArpConfig(gratuitous_on_add=False)))
        stack.add_interface(
            "eth0", mac=f"02:00:00:00:00:0{index}", offload=offload if index == 1 else None
        )
        stack.add_address("eth0", f"10.0.0.{index}/24")
        stacks.append(stack)
    receiver = Recording(stacks[1])
    sim.add_host("a", stacks[0])
    sim.add_host("b", receiver)
    link = sim.connect(("a", "eth0"), ("b", "eth0"), profile, LinkProfile())
    stacks[0].ping("10.0.0.2", identifier=1, sequence=1, now=0)  # resolve ARP both ways
    sim.run_for(1000)
    receiver.frames.clear()
    wire, host = io.BytesIO(), io.BytesIO()
    sim.add_pcap(link, wire)
    sim.add_pcap(("a", "eth0"), host)
    return sim, stacks[0], receiver, wire, host


def big_tcp(size: int) -> bytes:
    return bytes(
        TCP(
            sport=1234,
            dport=9,
            seq=5,
            ack=1,
            flags="PA",
            options=[("Timestamp", (1, 2)), ("NOP", None), ("NOP", None)],
        )
        / random.Random(size).randbytes(size)
    )


def tcp_frames(frames: list[bytes]) -> list[bytes]:
    """The TCP frames from the sender (the receiver answers each segment with a RST)."""
    return [
        frame
        for frame in frames
        if frame[12:14] == b"\x08\x00"
        and frame[23] == 6
        and frame[6:12] == bytes.fromhex("020000000001")
    ]


def test_gso_link_cuts_a_large_segment_into_wire_frames() -> None:
    sim, sender, receiver, wire, host = pair(LinkProfile(gso=True))
    segment = big_tcp(20000)
    assert sender.send_ipv4(0x0A000002, 6, segment, now=sim.now, dont_fragment=True)
    sim.run_for(1000)
    arrived = tcp_frames(receiver.frames)
    assert [len(frame) for frame in arrived] == [1514] * 13 + [14 + 52 + 20000 - 13 * 1448]
    assert all(internet_checksum(f[14:34]) == 0 and l4_checksum_ok(f[14:]) for f in arrived)
    assert b"".join(frame[66:] for frame in arrived) == segment[32:]
    assert len(tcp_frames([f for _, f in read_pcap(io.BytesIO(wire.getvalue()))])) == 14
    assert [len(f) for f in tcp_frames([f for _, f in read_pcap(io.BytesIO(host.getvalue()))])] == [
        14 + 20 + len(segment)
    ]


def test_gro_link_merges_the_wire_frames_back() -> None:
    sim, sender, receiver, _, _ = pair(LinkProfile(gso=True, gro=True, delay=100))
    segment = big_tcp(20000)
    sender.send_ipv4(0x0A000002, 6, segment, now=sim.now, dont_fragment=True)
    sim.run_for(1000)
    [merged] = tcp_frames(receiver.frames)
    assert merged[14 + 20 :] == _finished(merged)[14 + 20 :]
    assert merged[14 + 20 + 32 :] == segment[32:]
    assert l4_checksum_ok(merged[14:])


def _finished(frame: bytes) -> bytes:
    datagram = bytearray(frame[14:])
    set_l4_checksum(datagram, partial=False)
    return frame[:14] + bytes(datagram)


def test_partial_checksums_need_the_offloading_link() -> None:
    for profile, delivered in ((LinkProfile(gso=True), True), (LinkProfile(), False)):
        sim, sender, receiver, _, _ = pair(profile)
        socket = sender.udp_bind(7)
        receiver.stack.udp_bind(9)
        sender.sendto(socket, b"hello", ("10.0.0.2", 9), now=sim.now)
        sim.run_for(1000)
        events = list(iter(receiver.stack.next_event, None))
        assert any(isinstance(e, DatagramReceived) for e in events) == delivered


def test_nic_transmit_leaves_non_ip_and_fragments_alone() -> None:
    fragment = (
        bytes(12)
        + b"\x08\x00"
        + bytes(IP(src="1.2.3.4", dst="5.6.7.8", flags="MF", proto=6) / (b"x" * 3000))
    )
    arp = bytes(12) + b"\x08\x06" + bytes(28)
    assert nic_transmit(fragment, 1500) == [fragment]
    assert nic_transmit(arp, 1500) == [arp]
    assert nic_transmit(b"\x01", 1500) == [b"\x01"]
