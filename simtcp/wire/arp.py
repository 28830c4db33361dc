"""ARP for Ethernet and IPv4 (RFC 826)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import DropReason, ParseError
from .checksum import Buffer

OPERATION_REQUEST = 1
OPERATION_REPLY = 2
HARDWARE_ETHERNET = 1
PROTOCOL_IPV4 = 0x0800
PACKET_LENGTH = 28

_PACKET = struct.Struct("!HHBBH6sI6sI")


@dataclass(slots=True)
class ArpPacket:
    """An Ethernet/IPv4 ARP packet; IPv4 addresses are 32-bit integers."""

    operation: int
    sender_mac: bytes
    sender_ip: int
    target_mac: bytes
    target_ip: int

    @classmethod
    def parse(cls, data: Buffer) -> ArpPacket:
        """Parse the first 28 bytes; link padding after them is ignored."""
        if len(data) < PACKET_LENGTH:
            raise ParseError(f"ARP packet of {len(data)} bytes", DropReason.TRUNCATED)
        (
            hardware,
            protocol,
            hardware_length,
            protocol_length,
            operation,
            sender_mac,
            sender_ip,
            target_mac,
            target_ip,
        ) = _PACKET.unpack_from(data)
        if (hardware, protocol, hardware_length, protocol_length) != (
            HARDWARE_ETHERNET,
            PROTOCOL_IPV4,
            6,
            4,
        ):
            raise ParseError(
                f"ARP for hardware {hardware}/{hardware_length}, protocol "
                f"{protocol:#06x}/{protocol_length}: only Ethernet/IPv4 is supported"
            )
        return cls(operation, sender_mac, sender_ip, target_mac, target_ip)

    def build(self) -> bytes:
        return _PACKET.pack(
            HARDWARE_ETHERNET,
            PROTOCOL_IPV4,
            6,
            4,
            self.operation,
            self.sender_mac,
            self.sender_ip,
            self.target_mac,
            self.target_ip,
        )
