"""ICMPv6 (RFC 4443), Neighbor Discovery (RFC 4861) and MLDv2 (RFC 3810) messages.

:class:`Icmpv6Message` is any message: type, code, the 32-bit word after the
checksum (``rest``) and the body. The checksum covers the IPv6 pseudo-header
(RFC 4443 §2.3, RFC 8200 §8.1), so parse and build take both addresses. The
Neighbor Discovery messages and MLD's query and report are views over it with
``from_message`` / ``to_message``; their options (:class:`NdOptions`) follow
RFC 4861 §4.6, where an option of length zero makes the whole message invalid.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from ipaddress import IPv6Address

from ..errors import DropReason, ParseError
from .checksum import Buffer, internet_checksum, ipv6_pseudo_header_sum
from .ipv6 import MIN_MTU, NEXT_ICMPV6

TYPE_DESTINATION_UNREACHABLE = 1
TYPE_PACKET_TOO_BIG = 2
TYPE_TIME_EXCEEDED = 3
TYPE_PARAMETER_PROBLEM = 4
TYPE_ECHO_REQUEST = 128
TYPE_ECHO_REPLY = 129
TYPE_MLD_QUERY = 130
TYPE_MLD_V1_REPORT = 131
TYPE_MLD_V1_DONE = 132
TYPE_ROUTER_SOLICITATION = 133
TYPE_ROUTER_ADVERTISEMENT = 134
TYPE_NEIGHBOR_SOLICITATION = 135
TYPE_NEIGHBOR_ADVERTISEMENT = 136
TYPE_REDIRECT = 137
TYPE_MLD_V2_REPORT = 143

CODE_NO_ROUTE = 0
CODE_ADMIN_PROHIBITED = 1
CODE_ADDRESS_UNREACHABLE = 3
CODE_PORT_UNREACHABLE = 4
CODE_HOP_LIMIT_EXCEEDED = 0
CODE_REASSEMBLY_TIME_EXCEEDED = 1

HEADER_LENGTH = 8
MAX_ERROR_LENGTH = MIN_MTU - 40
"""RFC 4443 §2.4(c): an error quotes as much as fits in the minimum MTU."""

OPTION_SOURCE_LLADDR = 1
OPTION_TARGET_LLADDR = 2
OPTION_PREFIX_INFORMATION = 3
OPTION_REDIRECTED_HEADER = 4
OPTION_MTU = 5

NA_ROUTER = 0x80000000
NA_SOLICITED = 0x40000000
NA_OVERRIDE = 0x20000000

MLD_CHANGE_TO_EXCLUDE = 4
"""MLDv2 record type for "join, any source" (RFC 3810 §5.2.12)."""
MLD_CHANGE_TO_INCLUDE = 3
MLD_MODE_IS_EXCLUDE = 2

_HEADER = struct.Struct("!BBHI")
_PREFIX = struct.Struct("!BBBBIII16s")

ERROR_TYPES = frozenset(
    {
        TYPE_DESTINATION_UNREACHABLE,
        TYPE_PACKET_TOO_BIG,
        TYPE_TIME_EXCEEDED,
        TYPE_PARAMETER_PROBLEM,
    }
)


def icmpv6_checksum(message: Buffer, source: IPv6Address, destination: IPv6Address) -> int:
    """The checksum field for ``message`` (checksum field zero) between the two addresses."""
    return internet_checksum(
        message, ipv6_pseudo_header_sum(source, destination, len(message), NEXT_ICMPV6)
    )


@dataclass(slots=True)
class Icmpv6Message:
    """One ICMPv6 message; ``rest`` is the 32-bit word after the checksum.

    For echo it holds identifier and sequence; for packet too big the MTU; for
    parameter problem the pointer. Error messages carry the invoking packet.
    """

    icmp_type: int
    code: int
    rest: int = 0
    payload: Buffer = b""
    checksum: int = field(default=0, compare=False)

    @classmethod
    def parse(
        cls,
        data: Buffer,
        source: IPv6Address,
        destination: IPv6Address,
        *,
        verify_checksum: bool = True,
    ) -> Icmpv6Message:
        if len(data) < HEADER_LENGTH:
            raise ParseError(f"ICMPv6 message of {len(data)} bytes", DropReason.TRUNCATED)
        if verify_checksum and icmpv6_checksum(data, source, destination) != 0:
            raise ParseError("ICMPv6 checksum mismatch", DropReason.BAD_CHECKSUM)
        icmp_type, code, checksum, rest = _HEADER.unpack_from(data)
        return cls(icmp_type, code, rest, memoryview(data)[HEADER_LENGTH:], checksum)

    def build(self, source: IPv6Address, destination: IPv6Address) -> bytes:
        body = _HEADER.pack(self.icmp_type, self.code, 0, self.rest) + bytes(self.payload)
        checksum = icmpv6_checksum(body, source, destination)
        return body[:2] + checksum.to_bytes(2, "big") + body[4:]

    @property
    def is_error(self) -> bool:
        """RFC 4443 §2.1: types 0..127 are errors."""
        return self.icmp_type < 128

    @property
    def identifier(self) -> int:
        return self.rest >> 16

    @property
    def sequence(self) -> int:
        return self.rest & 0xFFFF

    @property
    def mtu(self) -> int:
        return self.rest

    @property
    def pointer(self) -> int:
        return self.rest

    # --- constructors -------------------------------------------------------

    @classmethod
    def echo_request(cls, identifier: int, sequence: int, payload: Buffer = b"") -> Icmpv6Message:
        return cls(TYPE_ECHO_REQUEST, 0, (identifier << 16) | sequence, payload)

    @classmethod
    def echo_reply(cls, identifier: int, sequence: int, payload: Buffer = b"") -> Icmpv6Message:
        return cls(TYPE_ECHO_REPLY, 0, (identifier << 16) | sequence, payload)

    @classmethod
    def error(cls, icmp_type: int, code: int, invoking: Buffer, rest: int = 0) -> Icmpv6Message:
        """An error quoting as much of the invoking packet as fits in 1,280 bytes."""
        return cls(icmp_type, code, rest, bytes(invoking[: MAX_ERROR_LENGTH - HEADER_LENGTH]))

    @classmethod
    def packet_too_big(cls, mtu: int, invoking: Buffer) -> Icmpv6Message:
        return cls.error(TYPE_PACKET_TOO_BIG, 0, invoking, mtu)

    @classmethod
    def parameter_problem(cls, code: int, pointer: int, invoking: Buffer) -> Icmpv6Message:
        return cls.error(TYPE_PARAMETER_PROBLEM, code, invoking, pointer)


# --- Neighbor Discovery options (RFC 4861 §4.6) -----------------------------


@dataclass(slots=True)
class PrefixInformation:
    """RFC 4861 §4.6.2; lifetimes in seconds (0xffffffff: infinity)."""

    prefix: IPv6Address
    prefix_length: int = 64
    on_link: bool = True
    autonomous: bool = True
    valid_lifetime: int = 2592000
    preferred_lifetime: int = 604800

    def build(self) -> bytes:
        flags = (0x80 if self.on_link else 0) | (0x40 if self.autonomous else 0)
        return _PREFIX.pack(
            OPTION_PREFIX_INFORMATION,
            4,
            self.prefix_length,
            flags,
            self.valid_lifetime,
            self.preferred_lifetime,
            0,
            self.prefix.packed,
        )


@dataclass(slots=True)
class NdOptions:
    """The options of an ND message that we read; the others are kept raw and skipped."""

    source_lladdr: bytes | None = None
    target_lladdr: bytes | None = None
    prefixes: list[PrefixInformation] = field(default_factory=list)
    mtu: int | None = None
    others: list[tuple[int, bytes]] = field(default_factory=list)

    @classmethod
    def parse(cls, data: Buffer) -> NdOptions:
        """RFC 4861 §4.6: a zero length, or one past the end, invalidates the message."""
        options = cls()
        at, end = 0, len(data)
        while at < end:
            if end - at < 2 or data[at + 1] == 0 or at + data[at + 1] * 8 > end:
                raise ParseError("ND option of length zero or past the end", DropReason.ND_INVALID)
            kind, length = data[at], data[at + 1] * 8
            body = bytes(data[at + 2 : at + length])
            options._take(kind, body)
            at += length
        return options

    def _take(self, kind: int, body: bytes) -> None:
        if kind == OPTION_SOURCE_LLADDR and len(body) >= 6:
            self.source_lladdr = body[:6]
        elif kind == OPTION_TARGET_LLADDR and len(body) >= 6:
            self.target_lladdr = body[:6]
        elif kind == OPTION_PREFIX_INFORMATION and len(body) == 30:
            length, flags, valid, preferred, _reserved, prefix = _PREFIX.unpack(b"\0\0" + body)[2:]
            self.prefixes.append(
                PrefixInformation(
                    IPv6Address(prefix),
                    length,
                    bool(flags & 0x80),
                    bool(flags & 0x40),
                    valid,
                    preferred,
                )
            )
        elif kind == OPTION_MTU and len(body) == 6:
            self.mtu = int.from_bytes(body[2:6], "big")
        else:
            self.others.append((kind, body))

    def build(self) -> bytes:
        out = bytearray()
        if self.source_lladdr is not None:
            out += bytes([OPTION_SOURCE_LLADDR, 1]) + self.source_lladdr
        if self.target_lladdr is not None:
            out += bytes([OPTION_TARGET_LLADDR, 1]) + self.target_lladdr
        if self.mtu is not None:
            out += bytes([OPTION_MTU, 1, 0, 0]) + self.mtu.to_bytes(4, "big")
        for prefix in self.prefixes:
            out += prefix.build()
        for kind, body in self.others:
            padded = body + bytes((-(len(body) + 2)) % 8)
            out += bytes([kind, (len(padded) + 2) // 8]) + padded
        return bytes(out)


def _address_at(data: Buffer, at: int) -> IPv6Address:
    if len(data) < at + 16:
        raise ParseError("ND message truncated", DropReason.ND_INVALID)
    return IPv6Address(bytes(data[at : at + 16]))


def _expect(message: Icmpv6Message, icmp_type: int, minimum: int) -> None:
    if message.icmp_type != icmp_type:
        raise ValueError(f"ICMPv6 type {message.icmp_type}, not {icmp_type}")
    if message.code != 0 or len(message.payload) < minimum:
        # RFC 4861 §6.1.1, §6.1.2, §7.1.1, §7.1.2, §8.1: code 0, length at least so much.
        raise ParseError("ND message with a bad code or length", DropReason.ND_INVALID)


@dataclass(slots=True)
class RouterSolicitation:
    options: NdOptions = field(default_factory=NdOptions)

    @classmethod
    def from_message(cls, message: Icmpv6Message) -> RouterSolicitation:
        _expect(message, TYPE_ROUTER_SOLICITATION, 0)
        return cls(NdOptions.parse(message.payload))

    def to_message(self) -> Icmpv6Message:
        return Icmpv6Message(TYPE_ROUTER_SOLICITATION, 0, 0, self.options.build())


@dataclass(slots=True)
class RouterAdvertisement:
    """RFC 4861 §4.2; ``router_lifetime`` in seconds, the two times in milliseconds."""

    cur_hop_limit: int = 64
    managed: bool = False
    other: bool = False
    router_lifetime: int = 1800
    reachable_time: int = 0
    retrans_timer: int = 0
    options: NdOptions = field(default_factory=NdOptions)

    @classmethod
    def from_message(cls, message: Icmpv6Message) -> RouterAdvertisement:
        _expect(message, TYPE_ROUTER_ADVERTISEMENT, 8)
        rest, payload = message.rest, message.payload
        return cls(
            rest >> 24,
            bool(rest & 0x800000),
            bool(rest & 0x400000),
            rest & 0xFFFF,
            int.from_bytes(payload[0:4], "big"),
            int.from_bytes(payload[4:8], "big"),
            NdOptions.parse(payload[8:]),
        )

    def to_message(self) -> Icmpv6Message:
        rest = (
            (self.cur_hop_limit << 24)
            | (0x800000 if self.managed else 0)
            | (0x400000 if self.other else 0)
            | (self.router_lifetime & 0xFFFF)
        )
        body = (
            self.reachable_time.to_bytes(4, "big")
            + self.retrans_timer.to_bytes(4, "big")
            + self.options.build()
        )
        return Icmpv6Message(TYPE_ROUTER_ADVERTISEMENT, 0, rest, body)


@dataclass(slots=True)
class NeighborSolicitation:
    target: IPv6Address
    options: NdOptions = field(default_factory=NdOptions)

    @classmethod
    def from_message(cls, message: Icmpv6Message) -> NeighborSolicitation:
        _expect(message, TYPE_NEIGHBOR_SOLICITATION, 16)
        return cls(_address_at(message.payload, 0), NdOptions.parse(message.payload[16:]))

    def to_message(self) -> Icmpv6Message:
        return Icmpv6Message(
            TYPE_NEIGHBOR_SOLICITATION, 0, 0, self.target.packed + self.options.build()
        )


@dataclass(slots=True)
class NeighborAdvertisement:
    target: IPv6Address
    router: bool = False
    solicited: bool = False
    override: bool = False
    options: NdOptions = field(default_factory=NdOptions)

    @classmethod
    def from_message(cls, message: Icmpv6Message) -> NeighborAdvertisement:
        _expect(message, TYPE_NEIGHBOR_ADVERTISEMENT, 16)
        rest = message.rest
        return cls(
            _address_at(message.payload, 0),
            bool(rest & NA_ROUTER),
            bool(rest & NA_SOLICITED),
            bool(rest & NA_OVERRIDE),
            NdOptions.parse(message.payload[16:]),
        )

    def to_message(self) -> Icmpv6Message:
        rest = (
            (NA_ROUTER if self.router else 0)
            | (NA_SOLICITED if self.solicited else 0)
            | (NA_OVERRIDE if self.override else 0)
        )
        return Icmpv6Message(
            TYPE_NEIGHBOR_ADVERTISEMENT, 0, rest, self.target.packed + self.options.build()
        )


@dataclass(slots=True)
class Redirect:
    target: IPv6Address
    destination: IPv6Address
    options: NdOptions = field(default_factory=NdOptions)

    @classmethod
    def from_message(cls, message: Icmpv6Message) -> Redirect:
        _expect(message, TYPE_REDIRECT, 32)
        payload = message.payload
        return cls(_address_at(payload, 0), _address_at(payload, 16), NdOptions.parse(payload[32:]))

    def to_message(self) -> Icmpv6Message:
        body = self.target.packed + self.destination.packed + self.options.build()
        return Icmpv6Message(TYPE_REDIRECT, 0, 0, body)


# --- MLDv2 (RFC 3810) -------------------------------------------------------


@dataclass(slots=True)
class MulticastRecord:
    """One multicast address record of a report (RFC 3810 §5.2.4)."""

    record_type: int
    address: IPv6Address
    sources: list[IPv6Address] = field(default_factory=list)

    def build(self) -> bytes:
        head = struct.pack("!BBH", self.record_type, 0, len(self.sources)) + self.address.packed
        return head + b"".join(source.packed for source in self.sources)


@dataclass(slots=True)
class Mldv2Report:
    """RFC 3810 §5.2: sent to ff02::16 with hop limit 1 and a router alert."""

    records: list[MulticastRecord] = field(default_factory=list)

    @classmethod
    def from_message(cls, message: Icmpv6Message) -> Mldv2Report:
        if message.icmp_type != TYPE_MLD_V2_REPORT:
            raise ValueError(f"ICMPv6 type {message.icmp_type}, not an MLDv2 report")
        count = message.rest & 0xFFFF
        data, at, records = message.payload, 0, []
        for _ in range(count):
            if len(data) < at + 20:
                raise ParseError("MLDv2 report truncated", DropReason.MLD_INVALID)
            record_type, aux_words, sources = struct.unpack_from("!BBH", data, at)
            end = at + 20 + sources * 16 + aux_words * 4
            if len(data) < end:
                raise ParseError("MLDv2 record truncated", DropReason.MLD_INVALID)
            records.append(
                MulticastRecord(
                    record_type,
                    _address_at(data, at + 4),
                    [_address_at(data, at + 20 + 16 * i) for i in range(sources)],
                )
            )
            at = end
        return cls(records)

    def to_message(self) -> Icmpv6Message:
        body = b"".join(record.build() for record in self.records)
        return Icmpv6Message(TYPE_MLD_V2_REPORT, 0, len(self.records), body)


@dataclass(slots=True)
class MldQuery:
    """A multicast listener query (RFC 3810 §5.1; a 24-byte one is MLDv1's, RFC 2710)."""

    multicast: IPv6Address
    max_response: int = 10000
    sources: list[IPv6Address] = field(default_factory=list)

    @classmethod
    def from_message(cls, message: Icmpv6Message) -> MldQuery:
        if message.icmp_type != TYPE_MLD_QUERY:
            raise ValueError(f"ICMPv6 type {message.icmp_type}, not an MLD query")
        payload = message.payload
        address = _address_at(payload, 0)
        sources: list[IPv6Address] = []
        if len(payload) >= 20:
            count = int.from_bytes(payload[18:20], "big")
            if len(payload) < 20 + 16 * count:
                raise ParseError("MLDv2 query truncated", DropReason.MLD_INVALID)
            sources = [_address_at(payload, 20 + 16 * i) for i in range(count)]
        return cls(address, message.rest >> 16, sources)

    def to_message(self) -> Icmpv6Message:
        body = self.multicast.packed + bytes([0, 0]) + len(self.sources).to_bytes(2, "big")
        body += b"".join(source.packed for source in self.sources)
        return Icmpv6Message(TYPE_MLD_QUERY, 0, (self.max_response & 0xFFFF) << 16, body)


__all__ = [
    "Icmpv6Message",
    "MldQuery",
    "Mldv2Report",
    "MulticastRecord",
    "NdOptions",
    "NeighborAdvertisement",
    "NeighborSolicitation",
    "PrefixInformation",
    "Redirect",
    "RouterAdvertisement",
    "RouterSolicitation",
    "icmpv6_checksum",
]
