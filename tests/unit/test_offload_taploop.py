"""The TAP loop with the virtio-net header, over a datagram socketpair standing in for the TAP fd.

No root needed: the "kernel" end of the pair reads and writes what a TAP
opened with IFF_VNET_HDR would (a 12-byte header, then the frame).
"""

from __future__ import annotations

import errno
import random
import socket
from collections.abc import Iterator

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

import simtcp.backends.tap as tap_module
from simtcp.backends.impair import LinkProfile
from simtcp.backends.tap import TapDevice, TapLoop, stack_offload
from simtcp.backends.vnet import (
    FLAG_DATA_VALID,
    FLAG_NEEDS_CSUM,
    GSO_NONE,
    GSO_TCPV4,
    PLAIN_HEADER,
    VnetHeader,
)
from simtcp.link import InterfaceOffload
from simtcp.wire.offload import l4_checksum_ok, partial_checksum, segment_tcp, set_l4_checksum
from tests.fake_tap import FakeStack, drain, socketpair_device

pytestmark = pytest.mark.timeout(30)

ETHER = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=0x0800)


@pytest.fixture
def pair() -> Iterator[tuple[TapDevice, socket.socket]]:
    with socketpair_device(vnet_header=True, kernel_receive_buffer=1 << 20) as devices:
        yield devices


def tcp_frame(size: int, *, partial: bool = True) -> bytes:
    datagram = bytearray(
        bytes(
            IP(src="10.0.0.1", dst="10.0.0.2", flags="DF")
            / TCP(sport=80, dport=4000, seq=1, ack=1, flags="PA")
            / random.Random(size).randbytes(size)
        )
    )
    if partial:
        set_l4_checksum(datagram, partial=True)
    return bytes(ETHER) + bytes(datagram)


def test_stack_offload_follows_the_device() -> None:
    device = TapDevice("x", -1, interface="veth0", namespace=None, vnet_header=True)
    assert stack_offload(device) == InterfaceOffload(tx_checksum=True, max_segment=65415)
    device.vnet_header = False
    assert stack_offload(device) == InterfaceOffload()


def test_reads_hand_the_headers_verdict_to_the_stack(pair: tuple[TapDevice, socket.socket]) -> None:
    device, kernel = pair
    stack = FakeStack()
    loop = TapLoop(stack, [device], clock=lambda: 1)
    try:
        gso = tcp_frame(30000)
        kernel.send(
            VnetHeader(flags=FLAG_NEEDS_CSUM, gso_type=GSO_TCPV4, gso_size=1448).build() + gso
        )
        kernel.send(VnetHeader(flags=FLAG_DATA_VALID).build() + b"valid")
        kernel.send(PLAIN_HEADER + b"plain")
        kernel.send(b"short")
        loop.run_once()
        assert [(f.frame, f.checksum_verified, f.gso_size) for f in stack.received] == [
            (gso, True, 1448),
            (b"valid", True, 0),
            (b"plain", False, 0),
        ]
        assert loop.counters["gso_in"] == 1
        assert loop.counters["runts"] == 1
    finally:
        loop.close()


def test_writes_carry_the_derived_header(pair: tuple[TapDevice, socket.socket]) -> None:
    device, kernel = pair
    stack = FakeStack()
    loop = TapLoop(stack, [device], clock=lambda: 1)
    try:
        small, big = tcp_frame(100), tcp_frame(20000)
        stack.outbox = [("veth0", small), ("veth0", big), ("veth0", b"\x00" * 60)]
        loop.run_once()
        sent = drain(kernel)
        headers = [VnetHeader.parse(data) for data in sent]
        assert [data[12:] for data in sent] == [small, big, b"\x00" * 60]
        assert [(h.flags, h.gso_type, h.gso_size) for h in headers] == [
            (FLAG_NEEDS_CSUM, GSO_NONE, 0),
            (FLAG_NEEDS_CSUM, GSO_TCPV4, 1460),
            (0, GSO_NONE, 0),
        ]
        assert loop.counters["gso_out"] == 1
    finally:
        loop.close()


def test_the_shim_sees_wire_frames_both_ways(pair: tuple[TapDevice, socket.socket]) -> None:
    device, kernel = pair
    stack = FakeStack()
    loop = TapLoop(
        stack, [device], clock=lambda: 1, impairment=LinkProfile(duplicate=1.0), impairment_seed=1
    )
    try:
        kernel.send(
            VnetHeader(flags=FLAG_NEEDS_CSUM, gso_type=GSO_TCPV4, gso_size=1460).build()
            + tcp_frame(5000)
        )
        loop.run_once()
        sizes = [len(frame) for _, frame, _, _ in stack.received]
        assert sizes == [1514, 1514, 1514, 1514, 1514, 1514, 14 + 40 + 620, 14 + 40 + 620]
        # Checksums were finished so the stack can check what the shim touched.
        assert all(
            l4_checksum_ok(frame[14:]) and not verified and gso == 0
            for _, frame, verified, gso in stack.received
        )
        stack.outbox = [("veth0", tcp_frame(3000))]
        loop.run_once()
        sent = drain(kernel)
        assert [len(data) - 12 for data in sent] == [1514] * 4 + [14 + 40 + 80] * 2
        assert all(VnetHeader.parse(data).gso_type == GSO_NONE for data in sent)
        for data in sent:  # still partial: the kernel finishes them (NEEDS_CSUM)
            datagram = data[12 + 14 :]
            expected = partial_checksum(0x0A000001, 0x0A000002, 6, len(datagram) - 20)
            assert int.from_bytes(datagram[36:38], "big") == expected
            assert VnetHeader.parse(data).flags == FLAG_NEEDS_CSUM
    finally:
        loop.close()


def test_full_sized_segments_go_out_as_one_tso_write(pair: tuple[TapDevice, socket.socket]) -> None:
    device, kernel = pair
    whole = tcp_frame(1460 * 10 + 5)
    pieces = [whole[:14] + piece for piece in segment_tcp(whole[14:], 1460, partial=True)]
    for coalesce, writes in ((True, 1), (False, 11)):
        stack = FakeStack()
        loop = TapLoop(stack, [device], clock=lambda: 1, coalesce=coalesce)
        try:
            stack.outbox = [("veth0", piece) for piece in pieces]
            loop.run_once()
            sent = drain(kernel)
            assert len(sent) == writes
            assert b"".join(data[12 + 54 :] for data in sent) == whole[54:]
            assert loop.counters["coalesced"] == len(pieces) - writes
            if coalesce:
                header = VnetHeader.parse(sent[0])
                assert (header.gso_type, header.gso_size) == (GSO_TCPV4, 1460)
                assert sent[0][12:] == whole  # the partial checksum of the whole, too
        finally:
            loop.close()


def test_read_frames_applies_the_header_for_callers_that_cannot(
    pair: tuple[TapDevice, socket.socket],
) -> None:
    device, kernel = pair
    kernel.send(
        VnetHeader(flags=FLAG_NEEDS_CSUM, gso_type=GSO_TCPV4, gso_size=1460).build()
        + tcp_frame(3000)
    )
    kernel.send(PLAIN_HEADER + b"plain frame")
    frames = device.read_frames(10)
    assert [len(frame) for frame in frames] == [1514, 1514, 14 + 40 + 80, 11]
    assert all(l4_checksum_ok(frame[14:]) for frame in frames[:3])


def test_a_refused_super_segment_goes_out_cut(pair: tuple[TapDevice, socket.socket]) -> None:
    """A kernel that will not take a GSO write (EINVAL) gets the MTU-sized pieces instead."""
    device, kernel = pair

    class Refusing(TapDevice):
        def write(self, frame: bytes) -> bool:
            if len(frame) > self.mtu + 14:
                raise tap_module._DeviceWriteError(errno.EINVAL)
            return super().write(frame)

    refusing = Refusing(
        "fake1", device.fd, interface="veth0", namespace=None, vnet_header=True, mtu=1500
    )
    stack = FakeStack()
    loop = TapLoop(stack, [refusing], clock=lambda: 1, coalesce=False)
    try:
        big = tcp_frame(5000)
        stack.outbox = [("veth0", big), ("veth0", b"\x00" * 60)]
        loop.run_once()
        sent = drain(kernel)
        assert [len(data) - 12 for data in sent] == [1514] * 3 + [14 + 40 + 620, 60]
        assert b"".join(data[12 + 54 :] for data in sent[:4]) == big[54:]
        assert loop.counters["gso_refused"] == 1 and loop.counters["write_errors"] == 0
    finally:
        loop.close()
