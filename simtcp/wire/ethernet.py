"""Ethernet II frames (IEEE 802.3 with an EtherType), and MAC address helpers."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import DropReason, ParseError
from .checksum import Buffer

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_VLAN = 0x8100
ETHERTYPE_QINQ = 0x88A8
ETHERTYPE_IPV6 = 0x86DD

HEADER_LENGTH = 14
BROADCAST_MAC = b"\xff" * 6
ZERO_MAC = b"\x00" * 6

_HEADER = struct.Struct("!6s6sH")


def mac_to_str(mac: bytes) -> str:
    """``b"\\x02\\x00..."`` -> ``"02:00:..."``."""
    return ":".join(f"{octet:02x}" for octet in mac)


def mac_from_str(text: str) -> bytes:
    """``"02:00:00:00:00:01"`` -> 6 bytes; ValueError when it is not a MAC address."""
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6 or not all(1 <= len(part) <= 2 for part in parts):
        raise ValueError(f"not a MAC address: {text!r}")
    try:
        return bytes(int(part, 16) for part in parts)
    except ValueError:
        raise ValueError(f"not a MAC address: {text!r}") from None


@dataclass(slots=True)
class EthernetFrame:
    """An Ethernet II frame; ``payload`` keeps any link padding (upper layers trim it)."""

    destination: bytes
    source: bytes
    ethertype: int
    payload: Buffer = b""

    @classmethod
    def parse(cls, data: Buffer) -> EthernetFrame:
        if len(data) < HEADER_LENGTH:
            raise ParseError(f"Ethernet frame of {len(data)} bytes", DropReason.TRUNCATED)
        destination, source, ethertype = _HEADER.unpack_from(data)
        return cls(destination, source, ethertype, memoryview(data)[HEADER_LENGTH:])

    def build(self) -> bytes:
        return _HEADER.pack(self.destination, self.source, self.ethertype) + bytes(self.payload)

    @property
    def is_vlan_tagged(self) -> bool:
        """802.1Q or 802.1ad tagged: we recognise these only to drop them cleanly."""
        return self.ethertype in (ETHERTYPE_VLAN, ETHERTYPE_QINQ)


def build_ethernet_header(destination: bytes, source: bytes, ethertype: int) -> bytes:
    """The 14 header bytes alone, for callers that join the payload themselves."""
    return _HEADER.pack(destination, source, ethertype)
