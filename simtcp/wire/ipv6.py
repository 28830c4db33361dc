"""IPv6 datagrams (RFC 8200): the fixed header, the fragment header, and the extension-header walk.

:class:`Ipv6Packet` is the fixed 40-byte header and its payload (parse / build,
like :class:`~simtcp.wire.ipv4.Ipv4Packet`). :func:`walk_extension_headers`
follows the next-header chain from the fixed header to the upper layer (or to
a fragment header, whose followers are only seen after reassembly, RFC 8200
§4.5) and never raises: a bad chain comes back as a :class:`Walk` with a
:class:`~simtcp.errors.DropReason` and, where RFC 8200 §4 asks for one, the
ICMPv6 parameter-problem code and pointer to answer with. Each step consumes
at least 8 bytes and the number of headers is capped, so the work per packet
is bounded by both the packet's length and ``max_headers``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from ipaddress import IPv6Address

from ..errors import DropReason, ParseError
from .checksum import Buffer

HEADER_LENGTH = 40
MIN_MTU = 1280
"""RFC 8200 §5: every link carries 1,280-byte packets."""
MAX_PAYLOAD_LENGTH = 65535
"""The payload length field's reach; no jumbograms (RFC 2675) here."""

NEXT_HOP_BY_HOP = 0
NEXT_TCP = 6
NEXT_UDP = 17
NEXT_ROUTING = 43
NEXT_FRAGMENT = 44
NEXT_ESP = 50
NEXT_AH = 51
NEXT_ICMPV6 = 58
NEXT_NONE = 59
NEXT_DESTINATION = 60

EXTENSION_HEADERS = frozenset({NEXT_HOP_BY_HOP, NEXT_ROUTING, NEXT_FRAGMENT, NEXT_DESTINATION})
"""The extension headers the walker understands; anything else is an upper layer."""

# ICMPv6 parameter problem codes (RFC 4443 §3.4).
PARAM_ERRONEOUS_FIELD = 0
PARAM_UNRECOGNIZED_NEXT_HEADER = 1
PARAM_UNRECOGNIZED_OPTION = 2

OPTION_PAD1 = 0
OPTION_PADN = 1
OPTION_ROUTER_ALERT = 5

DEFAULT_MAX_HEADERS = 16
"""Extension headers walked before the chain is refused (RFC 8504 §5.3 lets a node
limit them; Linux stops well below 1,000 too)."""

UNSPECIFIED = IPv6Address(0)

_HEADER = struct.Struct("!IHBB16s16s")
_FRAGMENT = struct.Struct("!BBHI")


@dataclass(slots=True)
class Ipv6Packet:
    """An IPv6 datagram: the fixed header and everything after it as ``payload``.

    ``next_header`` is the fixed header's field (the first extension header's
    type, or the upper layer's); extension headers are part of ``payload``.
    """

    source: IPv6Address
    destination: IPv6Address
    next_header: int
    payload: Buffer = b""
    hop_limit: int = 64
    traffic_class: int = 0
    flow_label: int = 0

    @classmethod
    def parse(cls, data: Buffer) -> Ipv6Packet:
        """Validate the fixed header; bytes past the payload length (padding) are ignored."""
        length = len(data)
        if length < HEADER_LENGTH:
            raise ParseError(f"IPv6 header of {length} bytes", DropReason.TRUNCATED)
        word, payload_length, next_header, hop_limit, source, destination = _HEADER.unpack_from(
            data
        )
        if word >> 28 != 6:
            raise ParseError(f"IP version {word >> 28}", DropReason.BAD_VERSION)
        if payload_length > length - HEADER_LENGTH:
            raise ParseError(
                f"payload length {payload_length} in {length} bytes", DropReason.BAD_TOTAL_LENGTH
            )
        return cls(
            IPv6Address(source),
            IPv6Address(destination),
            next_header,
            memoryview(data)[HEADER_LENGTH : HEADER_LENGTH + payload_length],
            hop_limit,
            (word >> 20) & 0xFF,
            word & 0xFFFFF,
        )

    @classmethod
    def parse_quoted(cls, data: Buffer) -> Ipv6Packet:
        """The invoking packet an ICMPv6 error quotes: cut short, so its payload is what
        is there (at most the payload length)."""
        if len(data) < HEADER_LENGTH:
            raise ParseError(f"quoted IPv6 header of {len(data)} bytes", DropReason.TRUNCATED)
        word, payload_length, next_header, hop_limit, source, destination = _HEADER.unpack_from(
            data
        )
        if word >> 28 != 6:
            raise ParseError(f"quoted IP version {word >> 28}", DropReason.BAD_VERSION)
        return cls(
            IPv6Address(source),
            IPv6Address(destination),
            next_header,
            memoryview(data)[HEADER_LENGTH : HEADER_LENGTH + payload_length],
            hop_limit,
            (word >> 20) & 0xFF,
            word & 0xFFFFF,
        )

    def build_header(self, payload_length: int) -> bytes:
        if payload_length > MAX_PAYLOAD_LENGTH:
            raise ValueError(f"IPv6 payload of {payload_length} bytes")
        return _HEADER.pack(
            (6 << 28) | ((self.traffic_class & 0xFF) << 20) | (self.flow_label & 0xFFFFF),
            payload_length,
            self.next_header,
            self.hop_limit,
            self.source.packed,
            self.destination.packed,
        )

    def build(self) -> bytes:
        return self.build_header(len(self.payload)) + bytes(self.payload)


@dataclass(slots=True)
class FragmentHeader:
    """The fragment header (RFC 8200 §4.5); ``offset`` in bytes."""

    next_header: int
    offset: int
    more_fragments: bool
    identification: int

    @classmethod
    def parse(cls, data: Buffer, at: int = 0) -> FragmentHeader:
        if len(data) - at < 8:
            raise ParseError("fragment header truncated", DropReason.TRUNCATED)
        next_header, _reserved, offset_flags, identification = _FRAGMENT.unpack_from(data, at)
        return cls(next_header, offset_flags & 0xFFF8, bool(offset_flags & 1), identification)

    def build(self) -> bytes:
        if self.offset % 8 or self.offset > 0xFFF8:
            raise ValueError(f"fragment offset {self.offset}")
        return _FRAGMENT.pack(
            self.next_header, 0, self.offset | int(self.more_fragments), self.identification
        )


@dataclass(slots=True)
class Walk:
    """Where the extension-header chain led (see :func:`walk_extension_headers`).

    Offsets count from the start of the IPv6 header, as ICMPv6 pointers do.
    On success ``drop`` is None and ``upper`` / ``upper_offset`` say what the
    upper layer is and where it starts, or ``fragment`` / ``fragment_offset``
    where a fragment header is (the walk stops there: what follows it is only
    read after reassembly). On failure ``drop`` says why, and ``icmp_code`` /
    ``icmp_pointer`` what parameter problem to answer (None: drop silently).
    """

    upper: int = NEXT_NONE
    upper_offset: int = HEADER_LENGTH
    upper_field: int = 6
    """Where the field naming ``upper`` is (the pointer for an unrecognized next header)."""
    fragment: FragmentHeader | None = None
    fragment_offset: int = 0
    fragment_field: int = 6
    """Where the next-header field naming the fragment header is."""
    router_alert: bool = False
    headers: int = 0
    drop: DropReason | None = None
    icmp_code: int | None = None
    icmp_pointer: int = 0
    icmp_even_multicast: bool = False
    """The option's action bits ask for the error even to a multicast destination
    (RFC 8200 §4.2, action 10)."""
    seen: list[int] = field(default_factory=list)


def walk_extension_headers(
    data: Buffer,
    *,
    next_header: int | None = None,
    start: int = HEADER_LENGTH,
    end: int | None = None,
    max_headers: int = DEFAULT_MAX_HEADERS,
) -> Walk:
    """Follow the chain in ``data`` (a whole datagram, fixed header first) from ``start``.

    ``next_header`` is the type of the header at ``start`` (the fixed header's
    field by default); ``end`` is where the datagram stops (40 + payload length
    by default). Never raises; each header consumes at least 8 bytes.
    """
    walk = Walk()
    try:
        total = len(data)
        if next_header is None:
            if total < HEADER_LENGTH:
                walk.drop = DropReason.TRUNCATED
                return walk
            next_header = data[6]
        if end is None:
            end = HEADER_LENGTH + int.from_bytes(data[4:6], "big") if total >= 6 else total
        end = min(end, total)
        _walk(data, next_header, start, end, max_headers, walk)
    except (IndexError, ValueError, struct.error):  # pragma: no cover - defence in depth
        walk.drop = DropReason.MALFORMED
    return walk


def _walk(data: Buffer, next_header: int, at: int, end: int, max_headers: int, walk: Walk) -> None:
    field_at = 6 if at == HEADER_LENGTH else at  # where the current type was named
    while True:
        if next_header not in EXTENSION_HEADERS:
            walk.upper, walk.upper_offset, walk.upper_field = next_header, at, field_at
            return
        if walk.headers >= max_headers:
            walk.drop = DropReason.IPV6_TOO_MANY_EXTENSION_HEADERS
            return
        if next_header == NEXT_HOP_BY_HOP and at != HEADER_LENGTH:
            # RFC 8200 §4.1: hop-by-hop only immediately after the IPv6 header.
            _param_problem(
                walk, DropReason.IPV6_BAD_EXTENSION_HEADER, PARAM_UNRECOGNIZED_NEXT_HEADER, field_at
            )
            return
        walk.headers += 1
        walk.seen.append(next_header)
        if next_header == NEXT_FRAGMENT:
            if end - at < 8:
                walk.drop = DropReason.TRUNCATED
                return
            walk.fragment = FragmentHeader.parse(data, at)
            walk.fragment_offset = at
            walk.fragment_field = field_at
            return
        if end - at < 8:
            walk.drop = DropReason.TRUNCATED
            return
        length = (data[at + 1] + 1) * 8
        if at + length > end:
            walk.drop = DropReason.TRUNCATED
            return
        if next_header == NEXT_ROUTING:
            if not _routing_ok(data, at, walk):
                return
        elif not _options_ok(data, at + 2, at + length, walk):
            return
        field_at = at
        next_header = data[at]
        at += length


def _routing_ok(data: Buffer, at: int, walk: Walk) -> bool:
    """RFC 8200 §4.4 for a routing type we do not implement (every type, here).

    Type 0 in particular (RFC 5095 §3) is treated exactly so: ignored when no
    segments are left, else refused with a parameter problem at the type field.
    """
    segments_left = data[at + 3]
    if segments_left == 0:
        return True
    reason = (
        DropReason.IPV6_ROUTING_TYPE0 if data[at + 2] == 0 else DropReason.IPV6_BAD_EXTENSION_HEADER
    )
    _param_problem(walk, reason, PARAM_ERRONEOUS_FIELD, at + 2)
    return False


def _options_ok(data: Buffer, at: int, end: int, walk: Walk) -> bool:
    """The TLV options of a hop-by-hop or destination options header (RFC 8200 §4.2)."""
    while at < end:
        option = data[at]
        if option == OPTION_PAD1:
            at += 1
            continue
        if at + 2 > end or at + 2 + data[at + 1] > end:
            walk.drop = DropReason.MALFORMED
            return False
        if option == OPTION_ROUTER_ALERT:
            walk.router_alert = True
        elif option != OPTION_PADN:
            action = option >> 6
            if action == 1:
                walk.drop = DropReason.IPV6_UNKNOWN_OPTION
                return False
            if action >= 2:
                _param_problem(walk, DropReason.IPV6_UNKNOWN_OPTION, PARAM_UNRECOGNIZED_OPTION, at)
                walk.icmp_even_multicast = action == 2
                return False
        at += 2 + data[at + 1]
    return True


def _param_problem(walk: Walk, reason: DropReason, code: int, pointer: int) -> None:
    walk.drop = reason
    walk.icmp_code = code
    walk.icmp_pointer = max(pointer, 0)


def extension_header(next_header: int, body: bytes) -> bytes:
    """A generic extension header (hop-by-hop, destination options, routing): the two
    leading bytes, then ``body`` padded to a multiple of 8 (options padded with PadN)."""
    size = 2 + len(body)
    padding = (-size) % 8
    if padding == 1:
        pad = bytes([OPTION_PAD1])
    elif padding:
        pad = bytes([OPTION_PADN, padding - 2]) + bytes(padding - 2)
    else:
        pad = b""
    whole = bytes([next_header, (size + padding) // 8 - 1]) + body + pad
    return whole


def solicited_node(address: IPv6Address) -> IPv6Address:
    """ff02::1:ffXX:XXXX for ``address`` (RFC 4291 §2.7.1)."""
    return IPv6Address((0xFF02 << 112) | (0x1FF << 24) | (int(address) & 0xFFFFFF))


def multicast_mac(address: IPv6Address) -> bytes:
    """33:33 and the low 32 bits of a multicast address (RFC 2464 §7)."""
    return b"\x33\x33" + address.packed[12:]


__all__ = [
    "FragmentHeader",
    "Ipv6Packet",
    "Walk",
    "extension_header",
    "multicast_mac",
    "solicited_node",
    "walk_extension_headers",
]
