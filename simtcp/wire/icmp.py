"""ICMPv4 messages (RFC 792): echo, destination unreachable, time exceeded, parameter problem."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ..errors import DropReason, ParseError
from .checksum import Buffer, internet_checksum

TYPE_ECHO_REPLY = 0
TYPE_DESTINATION_UNREACHABLE = 3
TYPE_REDIRECT = 5
TYPE_ECHO_REQUEST = 8
TYPE_TIME_EXCEEDED = 11
TYPE_PARAMETER_PROBLEM = 12

CODE_NET_UNREACHABLE = 0
CODE_HOST_UNREACHABLE = 1
CODE_PROTOCOL_UNREACHABLE = 2
CODE_PORT_UNREACHABLE = 3
CODE_FRAGMENTATION_NEEDED = 4
CODE_SOURCE_ROUTE_FAILED = 5
CODE_ADMIN_PROHIBITED = 13
CODE_TTL_EXCEEDED = 0
CODE_REASSEMBLY_TIME_EXCEEDED = 1

ERROR_TYPES = frozenset(
    {TYPE_DESTINATION_UNREACHABLE, TYPE_REDIRECT, TYPE_TIME_EXCEEDED, TYPE_PARAMETER_PROBLEM}
)
HEADER_LENGTH = 8

_HEADER = struct.Struct("!BBHI")


@dataclass(slots=True)
class IcmpMessage:
    """One ICMP message. ``rest`` is the 32-bit second word, whose meaning depends on the type.

    For echo it holds identifier and sequence; for "fragmentation needed" the
    next-hop MTU in its low 16 bits; for parameter problem the pointer in its
    top byte. For error messages the payload is the quoted original datagram
    (its IP header and at least 8 bytes of its data).
    """

    icmp_type: int
    code: int
    rest: int = 0
    payload: Buffer = b""
    checksum: int = field(default=0, compare=False)

    @classmethod
    def parse(cls, data: Buffer, *, verify_checksum: bool = True) -> IcmpMessage:
        if len(data) < HEADER_LENGTH:
            raise ParseError(f"ICMP message of {len(data)} bytes", DropReason.TRUNCATED)
        if verify_checksum and internet_checksum(data) != 0:
            raise ParseError("ICMP checksum mismatch", DropReason.BAD_CHECKSUM)
        icmp_type, code, checksum, rest = _HEADER.unpack_from(data)
        return cls(icmp_type, code, rest, memoryview(data)[HEADER_LENGTH:], checksum)

    def build(self) -> bytes:
        payload = bytes(self.payload)
        header = _HEADER.pack(self.icmp_type, self.code, 0, self.rest)
        checksum = internet_checksum(payload, internet_checksum(header) ^ 0xFFFF)
        return header[:2] + checksum.to_bytes(2, "big") + header[4:] + payload

    # --- constructors -------------------------------------------------------

    @classmethod
    def echo_request(cls, identifier: int, sequence: int, payload: Buffer = b"") -> IcmpMessage:
        return cls(TYPE_ECHO_REQUEST, 0, (identifier << 16) | sequence, payload)

    @classmethod
    def echo_reply(cls, identifier: int, sequence: int, payload: Buffer = b"") -> IcmpMessage:
        return cls(TYPE_ECHO_REPLY, 0, (identifier << 16) | sequence, payload)

    @classmethod
    def destination_unreachable(
        cls, code: int, original: Buffer, next_hop_mtu: int = 0
    ) -> IcmpMessage:
        """``original`` is the offending datagram; RFC 792 quotes its header + 8 bytes."""
        return cls(TYPE_DESTINATION_UNREACHABLE, code, next_hop_mtu & 0xFFFF, original)

    @classmethod
    def time_exceeded(cls, code: int, original: Buffer) -> IcmpMessage:
        return cls(TYPE_TIME_EXCEEDED, code, 0, original)

    @classmethod
    def parameter_problem(cls, pointer: int, original: Buffer) -> IcmpMessage:
        return cls(TYPE_PARAMETER_PROBLEM, 0, (pointer & 0xFF) << 24, original)

    # --- views of ``rest`` --------------------------------------------------

    @property
    def identifier(self) -> int:
        return self.rest >> 16

    @property
    def sequence(self) -> int:
        return self.rest & 0xFFFF

    @property
    def next_hop_mtu(self) -> int:
        return self.rest & 0xFFFF

    @property
    def pointer(self) -> int:
        return self.rest >> 24

    @property
    def is_error(self) -> bool:
        return self.icmp_type in ERROR_TYPES
