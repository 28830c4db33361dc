"""What checksum and segmentation offload do to IPv4 and IPv6 datagrams, on raw bytes.

"Partial" checksums are what a checksum-offloading link expects: the
pseudo-header sum, folded but not complemented, in the checksum field
(Linux's ``CHECKSUM_PARTIAL``; :mod:`simtcp.backends.vnet`). A link with TSO
takes one TCP segment of up to 64 KiB and puts MSS-sized frames on the wire;
when it cannot, the stack cuts it itself (:func:`segment_tcp`, Linux's software
GSO, ``tcp_gso_segment``): the router for a super-segment it must forward to
an interface without TSO, the stack for its own segments on a link with
``InterfaceOffload.software_segmentation``, and the NIC model of the backends
(:mod:`simtcp.backends.nic`).

Cutting follows ``tcp_gso_segment``: every piece carries the original header
(options included) with the sequence number advanced by its offset; FIN, PSH
and CWR as :func:`simtcp.wire.tcp.segment_pieces` says; IP identifications count
up from the original's, as Linux's GSO does (RFC 6864 §4.1: for atomic
datagrams they carry no meaning). URG and its pointer are copied unchanged, as
Linux does. Every function here takes and gives raw bytes: they run once per
frame on the forwarding path.

IPv6 (:func:`segment_tcp6`, Linux's ``tcp6_gso_segment``): the same cut, each
piece's IPv6 payload length its own; IPv6 has no header checksum and no
identification (RFC 8200 §3), so nothing else in the IP header changes, and
the TCP checksum covers RFC 8200 §8.1's pseudo-header. Only a datagram whose
next header is TCP is cut (we never send extension headers on TCP).
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass

from .checksum import (
    Buffer,
    address_sum,
    field_of,
    fold,
    internet_checksum,
    ones_complement_sum,
    pseudo_header_sum,
    word_sum,
)
from .protocols import PROTOCOL_TCP, PROTOCOL_UDP
from .tcp import segment_pieces

_CHECKSUM_OFFSET = {PROTOCOL_TCP: 16, PROTOCOL_UDP: 6}
_ADDRESSES = struct.Struct("!II")

SMALL_SUM = 4096
"""Up to this many bytes one ``int.from_bytes`` sums fastest; beyond, ``ones_complement_sum``."""


def l4_checksum_offset(protocol: int) -> int | None:
    """Where in the TCP or UDP header the checksum field is; None for other protocols."""
    return _CHECKSUM_OFFSET.get(protocol)


def partial_checksum(source: int, destination: int, protocol: int, length: int) -> int:
    """The pseudo-header sum a checksum-offloading link finishes (folded, not complemented)."""
    return ones_complement_sum(b"", pseudo_header_sum(source, destination, protocol, length))


def l4_fields(datagram: Buffer) -> tuple[int, int, int, int, int]:
    """(IP header length, protocol, source, destination, L4 length) of a checked datagram."""
    header_length = (datagram[0] & 0x0F) * 4
    total_length = (datagram[2] << 8) | datagram[3]
    source, destination = _ADDRESSES.unpack_from(datagram, 12)
    return header_length, datagram[9], source, destination, total_length - header_length


def set_l4_checksum(datagram: bytearray, *, partial: bool) -> None:
    """Fill the TCP/UDP checksum of an unfragmented datagram, in place: the full checksum
    computed from scratch (whatever the field held), or the partial one.

    A UDP checksum of 0 ("none", RFC 768) is left alone.
    """
    header_length, protocol, source, destination, length = l4_fields(datagram)
    offset = _CHECKSUM_OFFSET.get(protocol)
    if offset is None or length < offset + 2:
        return
    at = header_length + offset
    if protocol == PROTOCOL_UDP and datagram[at] == 0 and datagram[at + 1] == 0:
        return
    if partial:
        value = partial_checksum(source, destination, protocol, length)
    else:
        datagram[at : at + 2] = b"\0\0"
        initial = pseudo_header_sum(source, destination, protocol, length)
        value = internet_checksum(
            memoryview(datagram)[header_length : header_length + length], initial
        )
        if protocol == PROTOCOL_UDP and value == 0:
            value = 0xFFFF  # RFC 768: a computed zero is sent as all ones
    datagram[at : at + 2] = value.to_bytes(2, "big")


def l4_checksum_ok(datagram: Buffer) -> bool:
    """Whether an unfragmented TCP/UDP datagram's full checksum verifies (UDP 0: no checksum)."""
    header_length, protocol, source, destination, length = l4_fields(datagram)
    offset = _CHECKSUM_OFFSET.get(protocol)
    if offset is None:
        return True
    if length < offset + 2:
        return False
    at = header_length + offset
    if protocol == PROTOCOL_UDP and datagram[at] == 0 and datagram[at + 1] == 0:
        return True
    initial = pseudo_header_sum(source, destination, protocol, length)
    view = memoryview(datagram)[header_length : header_length + length]
    return internet_checksum(view, initial) == 0


def with_partial_checksum(l4: bytes, source: int, destination: int, protocol: int) -> bytes:
    """A TCP or UDP packet built with a zero checksum field, given the partial checksum."""
    offset = _CHECKSUM_OFFSET[protocol]
    value = partial_checksum(source, destination, protocol, len(l4))
    return b"".join((l4[:offset], value.to_bytes(2, "big"), l4[offset + 2 :]))


def is_whole_l4(datagram: Buffer) -> bool:
    """An IPv4 datagram of at least a header, not a fragment, carrying TCP or UDP."""
    return (
        len(datagram) >= 20
        and datagram[9] in _CHECKSUM_OFFSET
        and not (datagram[6] & 0x3F or datagram[7])
    )


def is_whole_tcp(datagram: Buffer) -> bool:
    """An IPv4 datagram, not a fragment, carrying TCP whose headers add up (safe to cut)."""
    if (
        len(datagram) < 40
        or datagram[0] >> 4 != 4
        or datagram[9] != PROTOCOL_TCP
        or datagram[6] & 0x3F
        or datagram[7]
    ):
        return False
    header_length = (datagram[0] & 0x0F) * 4
    total_length = (datagram[2] << 8) | datagram[3]
    if header_length < 20 or total_length > len(datagram) or header_length + 20 > total_length:
        return False
    return 20 <= (datagram[header_length + 12] >> 4) * 4 <= total_length - header_length


def tcp_mss_for(datagram: Buffer, mtu: int) -> int:
    """The payload per segment that fits ``datagram``'s IP and TCP headers into ``mtu``."""
    header_length = (datagram[0] & 0x0F) * 4
    return mtu - header_length - (datagram[header_length + 12] >> 4) * 4


def tcp_payload_length(segment: Buffer) -> int:
    """Payload bytes of a TCP segment (header and all), 0 when it is too short to say."""
    return len(segment) - (segment[12] >> 4) * 4 if len(segment) >= 20 else 0


# --- software segmentation ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Template:
    """What every piece of one cut datagram shares, with the sums of its fixed words.

    The pieces' headers differ from the original only in a few words (IP total
    length, identification; TCP sequence number, flags), so each header's sum is
    taken once with those words removed and each piece adds its own (RFC 1624's
    idea, RFC 1071 §2(B)'s arithmetic, modulo 0xffff).
    """

    pack: struct.Struct
    ip_length: int
    tcp_header_length: int
    ip_head: bytes
    ip_middle: bytes
    ip_options: bytes
    ports: bytes
    ack: bytes
    window: bytes
    tcp_options: bytes
    identification: int
    seq: int
    flags: int
    offset_byte: int
    pseudo: int
    """The pseudo-header's sum without its length."""
    ip_base: int
    tcp_base: int


def _template(view: memoryview) -> tuple[_Template, memoryview]:
    """The template of an IPv4 TCP datagram and its payload; ValueError if the headers
    do not add up."""
    ip_length, _, source, destination, tcp_length = l4_fields(view)
    tcp_header_length = (view[ip_length + 12] >> 4) * 4
    if tcp_header_length < 20 or tcp_header_length > tcp_length:
        raise ValueError("TCP header does not fit the datagram")
    ip_header = bytes(view[:ip_length])
    tcp_header = bytes(view[ip_length : ip_length + tcp_header_length])
    _, total_length, identification, _, ip_checksum = _IP_WORDS.unpack_from(ip_header)
    _, seq, _, offset_byte, flags, _, tcp_checksum = _TCP_WORDS.unpack_from(tcp_header)
    pseudo = address_sum(source, destination) + PROTOCOL_TCP
    template = _Template(
        pack=_piece_header(ip_length, tcp_header_length),
        ip_length=ip_length,
        tcp_header_length=tcp_header_length,
        ip_head=ip_header[:2],
        ip_middle=ip_header[6:10],
        ip_options=ip_header[12:],
        ports=tcp_header[:4],
        ack=tcp_header[8:12],
        window=tcp_header[14:16],
        tcp_options=tcp_header[18:],
        identification=identification,
        seq=seq,
        flags=flags,
        offset_byte=offset_byte,
        pseudo=pseudo,
        # The headers' sums without the words each piece sets (both lengths are even).
        ip_base=int.from_bytes(ip_header, "big") - total_length - identification - ip_checksum,
        tcp_base=int.from_bytes(tcp_header, "big")
        - (seq >> 16)
        - (seq & 0xFFFF)
        - flags
        - tcp_checksum
        + pseudo,
    )
    return template, view[ip_length + tcp_header_length : ip_length + tcp_length]


def _piece(
    t: _Template, index: int, offset: int, flags: int, chunk: memoryview, partial: bool
) -> bytes:
    """One piece: the template's headers with this piece's words, and its payload chunk."""
    chunk_length = len(chunk)
    segment_length = t.tcp_header_length + chunk_length
    seq = (t.seq + offset) & 0xFFFFFFFF
    if partial:
        # The pseudo-header sum, folded (never 0: the protocol is in it), not complemented.
        checksum = fold(t.pseudo + segment_length)
    else:
        value = ones_complement_sum(chunk) if chunk_length > SMALL_SUM else word_sum(chunk)
        checksum = field_of(
            value % 0xFFFF + t.tcp_base + (seq >> 16) + (seq & 0xFFFF) + flags + segment_length
        )
    piece_length = t.ip_length + segment_length
    piece_id = (t.identification + index) & 0xFFFF
    header_checksum = field_of(t.ip_base + piece_length + piece_id)
    return (
        t.pack.pack(
            t.ip_head,
            piece_length,
            piece_id,
            t.ip_middle,
            header_checksum,
            t.ip_options,
            t.ports,
            seq,
            t.ack,
            t.offset_byte,
            flags,
            t.window,
            checksum,
            t.tcp_options,
        )
        + chunk
    )


def segment_tcp(datagram: Buffer, mss: int, *, partial: bool = False) -> list[bytes]:
    """Cut an unfragmented IPv4 TCP datagram into datagrams of at most ``mss`` payload bytes.

    Each piece gets a fresh IP header checksum and a full (or, with
    ``partial``, a partial) TCP checksum. A datagram whose payload already
    fits comes back as one piece with fresh checksums. ValueError when ``mss``
    is not positive or the headers do not add up. Only the payload chunks are
    summed byte by byte (:class:`_Template`); the bytes equal those of summing
    every piece from scratch (``tests/property/test_gso_incremental.py`` keeps
    that version as the oracle).
    """
    if mss <= 0:
        raise ValueError(f"MSS {mss} cannot carry data")
    template, payload = _template(memoryview(datagram))
    return [
        _piece(template, index, offset, flags, payload[offset : offset + mss], partial)
        for index, (offset, flags) in enumerate(segment_pieces(len(payload), mss, template.flags))
    ]


IPV6_HEADER_LENGTH = 40


def is_whole_tcp6(datagram: Buffer) -> bool:
    """An IPv6 datagram carrying TCP right after its fixed header (no extension headers)
    whose lengths add up: safe to cut with :func:`segment_tcp6`."""
    if len(datagram) < IPV6_HEADER_LENGTH + 20 or datagram[0] >> 4 != 6:
        return False
    if datagram[6] != PROTOCOL_TCP:
        return False
    payload_length = (datagram[4] << 8) | datagram[5]
    if payload_length < 20 or IPV6_HEADER_LENGTH + payload_length > len(datagram):
        return False
    return 20 <= (datagram[IPV6_HEADER_LENGTH + 12] >> 4) * 4 <= payload_length


def tcp6_mss_for(datagram: Buffer, mtu: int) -> int:
    """The payload per segment that fits an IPv6 TCP datagram's headers into ``mtu``."""
    return mtu - IPV6_HEADER_LENGTH - (datagram[IPV6_HEADER_LENGTH + 12] >> 4) * 4


def segment_tcp6(datagram: Buffer, mss: int, *, partial: bool = False) -> list[bytes]:
    """Cut an IPv6 TCP datagram (:func:`is_whole_tcp6`) into datagrams of at most ``mss``
    payload bytes, as :func:`segment_tcp` does for IPv4.

    Each piece's IPv6 payload length is its own; its TCP checksum is full (over RFC
    8200 §8.1's pseudo-header) or, with ``partial``, the pseudo-header sum alone. A
    datagram whose payload fits comes back as one piece with a fresh checksum.
    ValueError when ``mss`` is not positive or the headers do not add up.
    """
    if mss <= 0:
        raise ValueError(f"MSS {mss} cannot carry data")
    view = memoryview(datagram)
    if not is_whole_tcp6(view):
        raise ValueError("not an IPv6 TCP datagram whose headers add up")
    payload_length = (view[4] << 8) | view[5]
    tcp_header_length = (view[IPV6_HEADER_LENGTH + 12] >> 4) * 4
    start = IPV6_HEADER_LENGTH + tcp_header_length
    ip_head = bytes(view[:4])
    ip_tail = bytes(view[6:IPV6_HEADER_LENGTH])
    tcp_header = bytes(view[IPV6_HEADER_LENGTH:start])
    seq = int.from_bytes(tcp_header[4:8], "big")
    flags = tcp_header[13]
    # RFC 8200 §8.1: addresses, upper-layer length (added per piece), next header 6.
    pseudo = int.from_bytes(view[8:IPV6_HEADER_LENGTH], "big") + PROTOCOL_TCP
    payload = view[start : IPV6_HEADER_LENGTH + payload_length]
    pieces = []
    for offset, piece_flags in segment_pieces(len(payload), mss, flags):
        chunk = payload[offset : offset + mss]
        segment_length = tcp_header_length + len(chunk)
        header = bytearray(tcp_header)
        header[4:8] = ((seq + offset) & 0xFFFFFFFF).to_bytes(4, "big")
        header[13] = piece_flags
        header[16:18] = b"\0\0"
        if partial:
            checksum = fold(pseudo + segment_length)
        else:
            value = ones_complement_sum(chunk) if len(chunk) > SMALL_SUM else word_sum(chunk)
            checksum = field_of(
                value % 0xFFFF + int.from_bytes(header, "big") + pseudo + segment_length
            )
        header[16:18] = checksum.to_bytes(2, "big")
        pieces.append(
            b"".join((ip_head, segment_length.to_bytes(2, "big"), ip_tail, header, chunk))
        )
    return pieces


_IP_WORDS = struct.Struct("!HHHIH")
"""Version/TOS, total length, identification, flags to protocol, header checksum."""
_TCP_WORDS = struct.Struct("!IIIBBHH")
"""Ports, sequence number, acknowledgment, data offset, flags, window, checksum."""


@functools.lru_cache(maxsize=64)
def _piece_header(ip_length: int, tcp_header_length: int) -> struct.Struct:
    """The IP and TCP headers of one piece, options included, packed in one call."""
    return struct.Struct(f"!2sHH4sH{ip_length - 12}s4sI4sBB2sH{tcp_header_length - 18}s")


__all__ = [
    "SMALL_SUM",
    "is_whole_l4",
    "is_whole_tcp",
    "is_whole_tcp6",
    "l4_checksum_offset",
    "l4_checksum_ok",
    "l4_fields",
    "partial_checksum",
    "segment_tcp",
    "segment_tcp6",
    "set_l4_checksum",
    "tcp6_mss_for",
    "tcp_mss_for",
    "tcp_payload_length",
    "with_partial_checksum",
]
