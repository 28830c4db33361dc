"""UDP datagrams (RFC 768) with the IPv4 or IPv6 (RFC 8200 §8.1) pseudo-header checksum."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from ipaddress import IPv6Address

from ..errors import DropReason, ParseError
from .checksum import Buffer, internet_checksum, ipv6_pseudo_header_sum, pseudo_header_sum
from .protocols import PROTOCOL_UDP

HEADER_LENGTH = 8

_HEADER = struct.Struct("!HHHH")


@dataclass(slots=True)
class UdpDatagram:
    """A UDP datagram. ``checksum`` is as parsed (0 means the sender sent none)."""

    source_port: int
    destination_port: int
    payload: Buffer = b""
    checksum: int = field(default=0, compare=False)

    @classmethod
    def parse(
        cls, data: Buffer, *, source: int | None = None, destination: int | None = None
    ) -> UdpDatagram:
        """Parse; the checksum is verified when both addresses are given and it is not 0."""
        if len(data) < HEADER_LENGTH:
            raise ParseError(f"UDP datagram of {len(data)} bytes", DropReason.TRUNCATED)
        source_port, destination_port, length, checksum = _HEADER.unpack_from(data)
        if length < HEADER_LENGTH or length > len(data):
            raise ParseError(f"UDP length {length} in {len(data)} bytes")
        view = memoryview(data)[:length]
        if checksum and source is not None and destination is not None:
            initial = pseudo_header_sum(source, destination, PROTOCOL_UDP, length)
            if internet_checksum(view, initial) != 0:
                raise ParseError("UDP checksum mismatch", DropReason.BAD_CHECKSUM)
        return cls(source_port, destination_port, view[HEADER_LENGTH:], checksum)

    @classmethod
    def parse_ipv6(
        cls, data: Buffer, *, source: IPv6Address, destination: IPv6Address
    ) -> UdpDatagram:
        """Parse a datagram that came in IPv6, verifying its checksum.

        RFC 8200 §8.1: the checksum is mandatory over IPv6, so a zero one is an error
        (``DropReason.UDP_ZERO_CHECKSUM``).
        """
        if len(data) < HEADER_LENGTH:
            raise ParseError(f"UDP datagram of {len(data)} bytes", DropReason.TRUNCATED)
        source_port, destination_port, length, checksum = _HEADER.unpack_from(data)
        if length < HEADER_LENGTH or length > len(data):
            raise ParseError(f"UDP length {length} in {len(data)} bytes")
        if not checksum:
            raise ParseError("UDP over IPv6 without a checksum", DropReason.UDP_ZERO_CHECKSUM)
        view = memoryview(data)[:length]
        initial = ipv6_pseudo_header_sum(source, destination, length, PROTOCOL_UDP)
        if internet_checksum(view, initial) != 0:
            raise ParseError("UDP checksum mismatch", DropReason.BAD_CHECKSUM)
        return cls(source_port, destination_port, view[HEADER_LENGTH:], checksum)

    def build_ipv6(self, source: IPv6Address, destination: IPv6Address) -> bytes:
        """Serialise for IPv6: always with a checksum (RFC 8200 §8.1)."""
        payload = bytes(self.payload)
        length = HEADER_LENGTH + len(payload)
        if length > 0xFFFF:
            raise ValueError(f"UDP datagram of {length} bytes")
        header = _HEADER.pack(self.source_port, self.destination_port, length, 0)
        initial = ipv6_pseudo_header_sum(source, destination, length, PROTOCOL_UDP)
        # RFC 768 (and RFC 8200 §8.1): a computed zero is sent as all ones.
        checksum = internet_checksum(header + payload, initial) or 0xFFFF
        return header[:6] + checksum.to_bytes(2, "big") + payload

    def build(self, source: int, destination: int, *, with_checksum: bool = True) -> bytes:
        payload = bytes(self.payload)
        length = HEADER_LENGTH + len(payload)
        if length > 0xFFFF:
            raise ValueError(f"UDP datagram of {length} bytes")
        header = _HEADER.pack(self.source_port, self.destination_port, length, 0)
        if not with_checksum:
            return header + payload
        initial = pseudo_header_sum(source, destination, PROTOCOL_UDP, length)
        # RFC 768: a computed zero is sent as all ones; zero means "no checksum".
        checksum = internet_checksum(header + payload, initial) or 0xFFFF
        return header[:6] + checksum.to_bytes(2, "big") + payload
