"""The virtio-net header: parse and build, and the header derived for each frame we send."""

from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether

from simtcp.backends.vnet import (
    FLAG_DATA_VALID,
    FLAG_NEEDS_CSUM,
    GSO_ECN,
    GSO_NONE,
    GSO_TCPV4,
    PLAIN_HEADER,
    VNET_HEADER_LENGTH,
    VnetHeader,
    rx_info,
    tx_header,
)

MAC = "02:00:00:00:00:01"


def frame(layers: object) -> bytes:
    return bytes(Ether(src=MAC, dst="02:00:00:00:00:02") / layers)  # type: ignore[operator]


def test_header_round_trips_and_is_little_endian() -> None:
    header = VnetHeader(
        flags=FLAG_NEEDS_CSUM,
        gso_type=GSO_TCPV4,
        header_length=66,
        gso_size=1448,
        csum_start=34,
        csum_offset=16,
    )
    raw = header.build()
    assert len(raw) == VNET_HEADER_LENGTH == 12
    assert raw == bytes([1, 1, 66, 0, 0xA8, 0x05, 34, 0, 16, 0, 0, 0])
    assert VnetHeader.parse(raw + b"frame") == header
    assert header.checksum_trusted and header.is_gso


def test_short_header_is_refused() -> None:
    with pytest.raises(ValueError):
        VnetHeader.parse(bytes(11))


@pytest.mark.parametrize(
    ("flags", "trusted"),
    [
        (0, False),
        (FLAG_NEEDS_CSUM, True),
        (FLAG_DATA_VALID, True),
        (FLAG_NEEDS_CSUM | FLAG_DATA_VALID, True),
        (4, False),
    ],
)
def test_rx_info_trusts_partial_and_verified_checksums(flags: int, trusted: bool) -> None:
    assert rx_info(VnetHeader(flags=flags).build()) == (trusted, 0)


@pytest.mark.parametrize(
    ("gso_type", "reported"),
    [
        (GSO_NONE, 0),
        (GSO_TCPV4, 1448),
        (GSO_TCPV4 | GSO_ECN, 1448),
        (3, 0),
        (4, 1448),
        (4 | GSO_ECN, 1448),
        (5, 0),
    ],
)
def test_rx_info_reports_gso_size_of_tcp_only(gso_type: int, reported: int) -> None:
    raw = VnetHeader(flags=FLAG_NEEDS_CSUM, gso_type=gso_type, gso_size=1448).build()
    assert rx_info(raw) == (True, reported)


def test_small_tcp_frame_asks_for_the_checksum_only() -> None:
    data = frame(
        IP(src="10.0.0.1", dst="10.0.0.2") / TCP(options=[("NOP", None)] * 4) / (b"x" * 100)
    )
    header = VnetHeader.parse(tx_header(data, 1500))
    assert header == VnetHeader(
        flags=FLAG_NEEDS_CSUM,
        gso_type=GSO_NONE,
        header_length=14 + 20 + 24,
        csum_start=34,
        csum_offset=16,
    )


def test_large_tcp_frame_is_gso_at_the_mss_the_mtu_leaves() -> None:
    tcp = TCP(options=[("Timestamp", (1, 2)), ("NOP", None), ("NOP", None)])  # 32-byte header
    data = frame(IP(src="10.0.0.1", dst="10.0.0.2", options=[b"\x01" * 4]) / tcp / (b"x" * 30000))
    header = VnetHeader.parse(tx_header(data, 1500))
    assert header.gso_type == GSO_TCPV4
    assert header.gso_size == 1500 - 24 - 32
    assert header.csum_start == 14 + 24
    assert header.csum_offset == 16
    assert header.header_length == 14 + 24 + 32
    assert header.flags == FLAG_NEEDS_CSUM


def test_frame_of_exactly_the_mtu_is_not_gso() -> None:
    data = frame(IP(src="10.0.0.1", dst="10.0.0.2") / TCP() / (b"x" * 1460))
    assert len(data) == 1514
    assert VnetHeader.parse(tx_header(data, 1500)).gso_type == GSO_NONE


def test_udp_with_checksum_asks_for_it_and_udp_without_does_not() -> None:
    with_sum = bytearray(
        frame(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / b"hello")
    )
    header = VnetHeader.parse(tx_header(bytes(with_sum), 1500))
    assert (header.flags, header.csum_start, header.csum_offset) == (FLAG_NEEDS_CSUM, 34, 6)
    with_sum[40:42] = b"\0\0"  # RFC 768: zero means no checksum; the kernel must not add one
    assert tx_header(bytes(with_sum), 1500) == PLAIN_HEADER


@pytest.mark.parametrize(
    "layers",
    [
        ARP(pdst="10.0.0.2"),
        IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(),
        IP(src="10.0.0.1", dst="10.0.0.2", flags="MF") / TCP() / (b"x" * 100),
        IP(src="10.0.0.1", dst="10.0.0.2", frag=100) / (b"y" * 100),
    ],
)
def test_frames_needing_nothing_get_the_plain_header(layers: object) -> None:
    assert tx_header(frame(layers), 1500) == PLAIN_HEADER


@pytest.mark.parametrize("length", range(0, 60, 7))
def test_truncated_frames_never_raise(length: int) -> None:
    data = frame(IP(src="10.0.0.1", dst="10.0.0.2") / TCP() / (b"x" * 3000))[:length]
    assert len(tx_header(data, 1500)) == VNET_HEADER_LENGTH
