"""Offloads for TCP over IPv6: the virtio-net header, the NIC model, the route's report.

- ``tx_header`` marks an IPv6 TCP super-segment NEEDS_CSUM with GSO TCPV6 (csum_start at
  the TCP header, gso_size the MSS the MTU leaves), and leaves every IPv6 frame that
  fits alone (its checksum is full: ours, or a forwarded one's);
- ``nic_transmit`` cuts an IPv6 super-segment with a partial checksum into wire
  frames scapy decodes with valid checksums, and finishes a partial one that fits;
- an IPv6 route reports its link's offloads, and none once a packet too big lowered
  the path MTU below the link's (TSO would cut at the link's MTU);
- a simulated transfer over IPv6 on TSO links delivers intact, with frames that fit.
"""

from __future__ import annotations

import io
from ipaddress import IPv6Address

from scapy.layers.inet import TCP, UDP
from scapy.layers.l2 import Ether

from simtcp import Stack, StackConfig
from simtcp.backends.impair import LinkProfile
from simtcp.backends.nic import nic_transmit
from simtcp.backends.vnet import (
    FLAG_NEEDS_CSUM,
    GSO_TCPV6,
    PLAIN_HEADER,
    VnetHeader,
    tx_header,
)
from simtcp.link import InterfaceOffload
from simtcp.programs.transfer import TransferSpec, run_transfer
from simtcp.time import MILLISECOND
from simtcp.wire.offload import segment_tcp6
from simtcp.wire.tcp import ACK, CHECKSUM_PARTIAL, PSH, TcpSegment, TimestampsOption

SOURCE = IPv6Address("2001:db8::1")
DESTINATION = IPv6Address("2001:db8::2")
TSO = InterfaceOffload(tx_checksum=True, max_segment=65535 - 120)


def ipv6_frame(upper: bytes, next_header: int = 6) -> bytes:
    header = (
        bytes.fromhex("020000000002020000000001") + b"\x86\xdd"
        b"\x60\x00\x00\x00"
        + len(upper).to_bytes(2, "big")
        + bytes((next_header, 64))
        + SOURCE.packed
        + DESTINATION.packed
    )
    return header + upper


def tcp_frame(size: int, *, timestamps: bool = True) -> bytes:
    options = (TimestampsOption(7, 9),) if timestamps else ()
    segment = TcpSegment(
        80,
        40000,
        1000,
        2000,
        ACK | PSH,
        501,
        options,
        bytes(range(256)) * (size // 256) + bytes(size % 256),
    )
    return ipv6_frame(segment.build_ipv6(SOURCE, DESTINATION, checksum=CHECKSUM_PARTIAL))


def valid(frame: bytes) -> bool:
    decoded = Ether(frame)
    layer = decoded[TCP] if TCP in decoded else decoded[UDP]
    checksum = layer.chksum
    del layer.chksum
    return bool(Ether(bytes(decoded)).getlayer(type(layer)).chksum == checksum)


def test_tx_header_marks_an_ipv6_super_segment_tcpv6() -> None:
    frame = tcp_frame(60_000)
    header = VnetHeader.parse(tx_header(frame, 1500))
    tcp_header_length = 32  # 20 + timestamps (NOP NOP TS, 12)
    assert header == VnetHeader(
        flags=FLAG_NEEDS_CSUM,
        gso_type=GSO_TCPV6,
        header_length=14 + 40 + tcp_header_length,
        gso_size=1500 - 40 - tcp_header_length,
        csum_start=54,
        csum_offset=16,
    )


def test_tx_header_leaves_ipv6_frames_that_fit_alone() -> None:
    assert tx_header(tcp_frame(1000), 1500) == PLAIN_HEADER
    assert tx_header(tcp_frame(1500 - 40 - 32), 1500) == PLAIN_HEADER
    hop_by_hop = bytearray(tcp_frame(60_000))
    hop_by_hop[20] = 0  # an extension header first: not a frame we send, not marked
    assert tx_header(bytes(hop_by_hop), 1500) == PLAIN_HEADER


def test_nic_cuts_an_ipv6_super_segment_into_valid_wire_frames() -> None:
    frame = tcp_frame(10_000)
    pieces = nic_transmit(frame, 1500)
    assert len(pieces) == 8  # 10,000 bytes at 1,428 per piece
    assert pieces == [frame[:14] + piece for piece in segment_tcp6(frame[14:], 1428)]
    assert all(len(piece) <= 1514 and valid(piece) for piece in pieces)
    assert b"".join(Ether(piece)[TCP].load for piece in pieces) == frame[14 + 40 + 32 :]
    assert [Ether(piece)[TCP].seq for piece in pieces] == [1000 + 1428 * i for i in range(8)]
    assert [str(Ether(piece)[TCP].flags) for piece in pieces] == ["A"] * 7 + ["PA"]


def test_nic_finishes_partial_ipv6_checksums_of_frames_that_fit() -> None:
    frame = tcp_frame(999, timestamps=False)
    assert not valid(frame)
    (finished,) = nic_transmit(frame, 1500)
    assert valid(finished) and finished != frame
    assert nic_transmit(finished, 1500) == [finished]  # already right: the same object
    udp = ipv6_frame(b"\x13\x88\x13\x89\x00\x0c\x12\x34abcd", next_header=17)
    (finished_udp,) = nic_transmit(udp, 1500)
    assert valid(finished_udp)


def test_an_ipv6_route_reports_its_links_offloads_until_the_path_mtu_drops() -> None:
    stack = Stack(StackConfig())
    stack.add_interface("eth0", mac="02:00:00:00:00:01", mtu=1500, offload=TSO)
    stack.add_address("eth0", "2001:db8::1/64")
    assert stack.route6_link(DESTINATION) == (TSO, 1500)
    assert stack.route6_link(IPv6Address("2001:db9::1"))[1] == 0  # no route
    stack._ip6.output.lower_path_mtu(DESTINATION, 1400, 0)
    assert stack.route6_link(DESTINATION) == (InterfaceOffload(), 1400)


def test_a_simulated_ipv6_transfer_over_tso_links_is_intact() -> None:
    link = LinkProfile(delay=2 * MILLISECOND, mtu=1500, gso=True)  # the NIC model cuts
    capture = io.BytesIO()
    result = run_transfer(
        TransferSpec(
            bytes=1_500_000, seed=5, forward=link, backward=link, offload=TSO, ip_version=6
        ),
        pcap=capture,
        pcap_point="link",
    )
    assert result.ok, result.reason + "\n" + result.detail
    data = capture.getvalue()
    offset, longest, checked = 24, 0, 0
    while offset < len(data):
        length = int.from_bytes(data[offset + 8 : offset + 12], "little")
        frame = data[offset + 16 : offset + 16 + length]
        longest = max(longest, length)
        if frame[12:14] == b"\x86\xdd" and frame[20] == 6 and checked < 300:
            assert valid(frame)
            checked += 1
        offset += 16 + length
    assert longest == 1514 and checked == 300
    client = io.BytesIO()
    spec = TransferSpec(
        bytes=1_500_000, seed=5, forward=link, backward=link, offload=TSO, ip_version=6
    )
    assert run_transfer(spec, pcap=client, pcap_point="client").ok
    assert len(client.getvalue()) < len(data) - 16 * 500, "the host sent super-segments"
