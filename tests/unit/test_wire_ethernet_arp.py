"""Ethernet II and ARP against frames captured from Linux (arping over a veth pair)."""

from __future__ import annotations

import pytest

from simtcp.errors import DropReason, ParseError
from simtcp.wire.arp import OPERATION_REPLY, OPERATION_REQUEST, ArpPacket
from simtcp.wire.ethernet import (
    BROADCAST_MAC,
    ETHERTYPE_ARP,
    ETHERTYPE_IPV4,
    ETHERTYPE_QINQ,
    ETHERTYPE_VLAN,
    EthernetFrame,
    build_ethernet_header,
    mac_from_str,
    mac_to_str,
)
from simtcp.wire.ipv4 import ip_from_str

# `arping -c1 -I wfveth0 10.0.0.1` from 10.0.0.2 (52:54:00:12:34:56): Linux sends
# the 42-byte frame; the copy that arping sends first carries 16 bytes of padding.
ARP_REQUEST = bytes.fromhex(
    "ffffffffffff 525400123456 08060001 0800 06 04 0001 525400123456 0a000002 000000000000 0a000001"
)
ARP_REQUEST_PADDED = ARP_REQUEST + bytes(16)
ARP_REPLY = bytes.fromhex(
    "525400123456 525400abcdef 08060001 0800 06 04 0002 525400abcdef 0a000001 525400123456 0a000002"
)
MAC_A = bytes.fromhex("525400123456")
MAC_B = bytes.fromhex("525400abcdef")

# The IPv4 header of the echo request in test_wire_ipv4_icmp, behind an 802.1Q tag
# (VLAN 100, PCP 0).
VLAN_FRAME = bytes.fromhex(
    "525400abcdef 525400123456 8100 0064 080045000054fa3f400040012c670a0000020a000001"
)


def test_arp_request_frame_parses_into_fields() -> None:
    frame = EthernetFrame.parse(ARP_REQUEST)
    assert frame.destination == BROADCAST_MAC
    assert frame.source == MAC_A
    assert frame.ethertype == ETHERTYPE_ARP
    assert not frame.is_vlan_tagged
    arp = ArpPacket.parse(frame.payload)
    assert arp == ArpPacket(
        operation=OPERATION_REQUEST,
        sender_mac=MAC_A,
        sender_ip=ip_from_str("10.0.0.2"),
        target_mac=bytes(6),
        target_ip=ip_from_str("10.0.0.1"),
    )


def test_arp_request_rebuilds_byte_for_byte() -> None:
    frame = EthernetFrame.parse(ARP_REQUEST)
    arp = ArpPacket.parse(frame.payload)
    rebuilt = EthernetFrame(frame.destination, frame.source, frame.ethertype, arp.build())
    assert rebuilt.build() == ARP_REQUEST
    assert EthernetFrame.parse(ARP_REQUEST).build() == ARP_REQUEST


def test_padded_arp_request_ignores_padding_but_frame_keeps_it() -> None:
    frame = EthernetFrame.parse(ARP_REQUEST_PADDED)
    assert len(frame.payload) == 28 + 16
    assert frame.build() == ARP_REQUEST_PADDED
    assert ArpPacket.parse(frame.payload) == ArpPacket.parse(ARP_REQUEST[14:])
    assert ArpPacket.parse(frame.payload).build() == ARP_REQUEST[14:]


def test_arp_reply() -> None:
    frame = EthernetFrame.parse(ARP_REPLY)
    arp = ArpPacket.parse(frame.payload)
    assert (frame.destination, frame.source) == (MAC_A, MAC_B)
    assert arp.operation == OPERATION_REPLY
    assert (arp.sender_mac, arp.sender_ip) == (MAC_B, 0x0A000001)
    assert (arp.target_mac, arp.target_ip) == (MAC_A, 0x0A000002)
    assert build_ethernet_header(MAC_A, MAC_B, ETHERTYPE_ARP) + arp.build() == ARP_REPLY


def test_parse_accepts_memoryview_and_bytearray() -> None:
    for data in (memoryview(ARP_REQUEST), bytearray(ARP_REQUEST)):
        frame = EthernetFrame.parse(data)
        assert frame.build() == ARP_REQUEST
        assert ArpPacket.parse(frame.payload).sender_ip == 0x0A000002


def test_vlan_tagged_frame_is_recognised() -> None:
    frame = EthernetFrame.parse(VLAN_FRAME)
    assert frame.ethertype == ETHERTYPE_VLAN
    assert frame.is_vlan_tagged
    assert bytes(frame.payload[:4]) == bytes.fromhex("00640800")
    assert frame.build() == VLAN_FRAME
    qinq = EthernetFrame(MAC_B, MAC_A, ETHERTYPE_QINQ, b"\x00\x64\x81\x00")
    assert EthernetFrame.parse(qinq.build()).is_vlan_tagged
    assert not EthernetFrame(MAC_B, MAC_A, ETHERTYPE_IPV4, b"").is_vlan_tagged


@pytest.mark.parametrize("length", [0, 1, 13])
def test_truncated_ethernet_header(length: int) -> None:
    with pytest.raises(ParseError) as info:
        EthernetFrame.parse(ARP_REQUEST[:length])
    assert info.value.reason is DropReason.TRUNCATED


def test_header_only_frame_has_empty_payload() -> None:
    frame = EthernetFrame.parse(ARP_REQUEST[:14])
    assert bytes(frame.payload) == b""
    assert frame.build() == ARP_REQUEST[:14]


@pytest.mark.parametrize("length", [0, 8, 27])
def test_truncated_arp(length: int) -> None:
    with pytest.raises(ParseError) as info:
        ArpPacket.parse(ARP_REQUEST[14 : 14 + length])
    assert info.value.reason is DropReason.TRUNCATED


@pytest.mark.parametrize(
    "offset, value",
    [(0, b"\x00\x06"), (2, b"\x86\xdd"), (4, b"\x08"), (5, b"\x10")],
    ids=["hardware-type", "protocol-type", "hardware-length", "protocol-length"],
)
def test_arp_for_other_hardware_or_protocol_is_rejected(offset: int, value: bytes) -> None:
    packet = bytearray(ARP_REQUEST[14:])
    packet[offset : offset + len(value)] = value
    with pytest.raises(ParseError) as info:
        ArpPacket.parse(packet)
    assert info.value.reason is DropReason.MALFORMED


def test_mac_helpers() -> None:
    assert mac_to_str(MAC_B) == "52:54:00:ab:cd:ef"
    assert mac_from_str("52:54:00:ab:cd:ef") == MAC_B
    assert mac_from_str("52-54-00-AB-CD-EF") == MAC_B
    for bad in ("52:54:00:ab:cd", "52:54:00:ab:cd:eg", "525:4:00:ab:cd:ef", ""):
        with pytest.raises(ValueError):
            mac_from_str(bad)
