"""IPv4 datagrams (RFC 791): header with options, flags, fragment offset, checksum."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ..errors import DropReason, ParseError
from .checksum import Buffer, internet_checksum
from .protocols import PROTOCOL_ICMP as PROTOCOL_ICMP  # re-exported: the numbers' home is protocols
from .protocols import PROTOCOL_TCP as PROTOCOL_TCP
from .protocols import PROTOCOL_UDP as PROTOCOL_UDP

MIN_HEADER_LENGTH = 20
MAX_OPTIONS_LENGTH = 40
MAX_TOTAL_LENGTH = 65535

FLAG_RESERVED = 0x8000
FLAG_DONT_FRAGMENT = 0x4000
FLAG_MORE_FRAGMENTS = 0x2000
OFFSET_MASK = 0x1FFF

_HEADER = struct.Struct("!BBHHHBBHII")


def ip_to_str(address: int) -> str:
    """32-bit integer -> dotted quad."""
    return f"{address >> 24}.{(address >> 16) & 255}.{(address >> 8) & 255}.{address & 255}"


def ip_from_str(text: str) -> int:
    """Dotted quad -> 32-bit integer; ValueError when it is not one."""
    parts = text.strip().split(".")
    if len(parts) != 4 or not all(part.isdigit() and len(part) <= 3 for part in parts):
        raise ValueError(f"not an IPv4 address: {text!r}")
    octets = [int(part) for part in parts]
    if any(octet > 255 for octet in octets):
        raise ValueError(f"not an IPv4 address: {text!r}")
    return (octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]


def prefix_from_str(text: str) -> tuple[int, int]:
    """``"10.0.0.1/24"`` -> (address, prefix length); a bare address is a /32."""
    address_text, _, length_text = text.partition("/")
    address = ip_from_str(address_text)
    if not length_text:
        return address, 32
    if not length_text.isdigit() or int(length_text) > 32:
        raise ValueError(f"not a prefix length: {text!r}")
    return address, int(length_text)


def prefix_mask(length: int) -> int:
    """The netmask of a prefix length as a 32-bit integer (/24 -> 0xffffff00)."""
    return (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF


@dataclass(slots=True)
class Ipv4Packet:
    """An IPv4 datagram. Addresses are 32-bit integers; ``fragment_offset`` is in bytes.

    ``checksum`` is the value parsed off the wire (informational, not compared);
    ``build`` always computes a fresh one.
    """

    source: int
    destination: int
    protocol: int
    payload: Buffer = b""
    ttl: int = 64
    identification: int = 0
    dont_fragment: bool = False
    more_fragments: bool = False
    fragment_offset: int = 0
    tos: int = 0
    options: bytes = b""
    reserved_flag: bool = False
    checksum: int = field(default=0, compare=False)

    @classmethod
    def parse(cls, data: Buffer, *, verify_checksum: bool = True) -> Ipv4Packet:
        """Validate and parse one datagram; bytes past the total length (padding) are ignored."""
        length = len(data)
        if length < MIN_HEADER_LENGTH:
            raise ParseError(f"IPv4 header of {length} bytes", DropReason.TRUNCATED)
        (
            version_ihl,
            tos,
            total_length,
            identification,
            flags_offset,
            ttl,
            protocol,
            checksum,
            source,
            destination,
        ) = _HEADER.unpack_from(data)
        if version_ihl >> 4 != 4:
            raise ParseError(f"IP version {version_ihl >> 4}", DropReason.BAD_VERSION)
        header_length = (version_ihl & 0x0F) * 4
        if header_length < MIN_HEADER_LENGTH or header_length > length:
            raise ParseError(f"IHL of {header_length} bytes", DropReason.BAD_HEADER_LENGTH)
        if total_length < header_length or total_length > length:
            raise ParseError(
                f"total length {total_length} with a {header_length}-byte header in {length} bytes",
                DropReason.BAD_TOTAL_LENGTH,
            )
        view = memoryview(data)
        if verify_checksum and internet_checksum(view[:header_length]) != 0:
            raise ParseError("IPv4 header checksum mismatch", DropReason.BAD_CHECKSUM)
        return cls(
            source,
            destination,
            protocol,
            view[header_length:total_length],
            ttl,
            identification,
            bool(flags_offset & FLAG_DONT_FRAGMENT),
            bool(flags_offset & FLAG_MORE_FRAGMENTS),
            (flags_offset & OFFSET_MASK) * 8,
            tos,
            bytes(view[MIN_HEADER_LENGTH:header_length]),
            bool(flags_offset & FLAG_RESERVED),
            checksum,
        )

    @property
    def header_length(self) -> int:
        return MIN_HEADER_LENGTH + len(self.options)

    @property
    def is_fragment(self) -> bool:
        return self.more_fragments or self.fragment_offset != 0

    def build_header(self, payload_length: int) -> bytes:
        """The header alone, checksum filled in, for a payload of that length."""
        options = self.options
        if len(options) % 4 or len(options) > MAX_OPTIONS_LENGTH:
            raise ValueError(f"IPv4 options must be padded to 4 bytes, at most 40: {len(options)}")
        if self.fragment_offset % 8 or self.fragment_offset > OFFSET_MASK * 8:
            raise ValueError(f"fragment offset {self.fragment_offset} is not a multiple of 8")
        header_length = MIN_HEADER_LENGTH + len(options)
        total_length = header_length + payload_length
        if total_length > MAX_TOTAL_LENGTH:
            raise ValueError(f"IPv4 datagram of {total_length} bytes")
        flags_offset = (
            (FLAG_RESERVED if self.reserved_flag else 0)
            | (FLAG_DONT_FRAGMENT if self.dont_fragment else 0)
            | (FLAG_MORE_FRAGMENTS if self.more_fragments else 0)
            | (self.fragment_offset // 8)
        )
        header = (
            _HEADER.pack(
                0x40 | (header_length // 4),
                self.tos,
                total_length,
                self.identification,
                flags_offset,
                self.ttl,
                self.protocol,
                0,
                self.source,
                self.destination,
            )
            + options
        )
        checksum = internet_checksum(header)
        return header[:10] + checksum.to_bytes(2, "big") + header[12:]

    def build(self) -> bytes:
        return self.build_header(len(self.payload)) + bytes(self.payload)
