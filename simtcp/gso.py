"""Segmentation offload in software: cut TCP super-segments (GSO), merge segments (GRO), checksums.

A link with TSO takes one TCP segment of up to 64 KiB and puts MSS-sized
frames on the wire; a receiver with GRO glues consecutive in-order segments
of a flow back into one. Linux does both in software when the hardware does
not (``tcp_gso_segment``, ``tcp_gro_receive``), and so do we: the router cuts
a super-segment it must forward to an interface without TSO
(:func:`segment_tcp`), and the simulator's offload-capable links cut and merge
(:func:`segment_tcp`, :func:`gro_merge`).

Cutting follows ``tcp_gso_segment``: every piece carries the original header
(options included) with the sequence number advanced by its offset; FIN and
PSH stay on the last piece only and CWR on the first only (RFC 3168 §6.1.2:
CWR marks one segment); IP identifications count up from the original's, as
Linux's GSO does (RFC 6864 §4.1: for atomic datagrams they carry no meaning).
URG and its pointer are copied unchanged, as Linux does.

"Partial" checksums are what a checksum-offloading link expects: the
pseudo-header sum, folded but not complemented, in the checksum field
(``CHECKSUM_PARTIAL``; :mod:`simtcp.backends.vnet`). All functions here take and give
raw bytes: they run once per frame on the forwarding path.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass, field

from .errors import ConfigError, DropReason
from .wire.checksum import (
    Buffer,
    internet_checksum,
    ones_complement_sum,
    pseudo_header_sum,
)

PROTOCOL_TCP = 6
PROTOCOL_UDP = 17
ETHERNET_HEADER_LENGTH = 14
MAX_DATAGRAM = 65535

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10
TCP_URG = 0x20
TCP_ECE = 0x40
TCP_CWR = 0x80

_CHECKSUM_OFFSET = {PROTOCOL_TCP: 16, PROTOCOL_UDP: 6}


@dataclass(frozen=True, slots=True, kw_only=True)
class InterfaceOffload:
    """What an interface's link does for the stack (DESIGN.md "Offload-ready").

    Per frame, :meth:`Stack.receive_frame` may say more (``checksum_verified``,
    ``gso_size``); these are what holds for every frame of the interface.
    """

    rx_checksum_verified: bool = False
    """Every received frame's IPv4/TCP/UDP checksums were already verified by the link."""
    tx_checksum: bool = False
    """The link finishes TCP/UDP checksums of frames we send. Every unfragmented TCP
    datagram, and UDP one with a checksum, we send on the interface then carries the
    partial checksum (the pseudo-header sum, folded, not complemented: Linux's
    CHECKSUM_PARTIAL), forwarded ones included; see :mod:`simtcp.gso`."""
    max_segment: int = 0
    """Largest TCP segment (payload) the link cuts into MTU-sized frames (TSO/GSO); 0 means
    none. Such segments leave whole even though the datagram exceeds the MTU."""
    software_segmentation: bool = False
    """The link cuts nothing: the stack cuts TCP segments of up to ``max_segment`` into
    MTU-sized frames itself, just before they leave (GSO in software, as Linux does for a
    NIC without TSO). TCP then pays its per-segment costs once per ``max_segment`` bytes,
    and the link sees the frames it would have seen without. Needs ``max_segment``, and
    excludes ``tx_checksum`` (the frames leave finished)."""

    def __post_init__(self) -> None:
        if not 0 <= self.max_segment <= MAX_DATAGRAM:
            raise ConfigError(f"max_segment {self.max_segment} outside 0..{MAX_DATAGRAM}")
        if self.software_segmentation and (not self.max_segment or self.tx_checksum):
            raise ConfigError("software_segmentation needs max_segment and no tx_checksum")


_ADDRESSES = struct.Struct("!II")


def l4_checksum_offset(protocol: int) -> int | None:
    """Where in the TCP or UDP header the checksum field is; None for other protocols."""
    return _CHECKSUM_OFFSET.get(protocol)


def partial_checksum(source: int, destination: int, protocol: int, length: int) -> int:
    """The pseudo-header sum a checksum-offloading link finishes (folded, not complemented)."""
    return ones_complement_sum(b"", pseudo_header_sum(source, destination, protocol, length))


def _l4_fields(datagram: Buffer) -> tuple[int, int, int, int, int]:
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
    header_length, protocol, source, destination, length = _l4_fields(datagram)
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
    header_length, protocol, source, destination, length = _l4_fields(datagram)
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


def tcp_mss_for(datagram: Buffer, mtu: int) -> int:
    """The payload per segment that fits ``datagram``'s IP and TCP headers into ``mtu``."""
    header_length = (datagram[0] & 0x0F) * 4
    return mtu - header_length - (datagram[header_length + 12] >> 4) * 4


def segment_tcp(datagram: Buffer, mss: int, *, partial: bool = False) -> list[bytes]:
    """Cut an unfragmented IPv4 TCP datagram into datagrams of at most ``mss`` payload bytes.

    Each piece gets a fresh IP header checksum and a full (or, with
    ``partial``, a partial) TCP checksum. A datagram whose payload already
    fits comes back as one piece with fresh checksums. ValueError when ``mss``
    is not positive or the headers do not add up.

    The pieces' headers differ from the original only in a few words (IP total
    length, identification; TCP sequence number, flags), so each header's sum is
    taken once with those words removed and each piece adds its own (RFC 1624's
    idea, RFC 1071 §2(B)'s arithmetic, modulo 0xffff); only the payload chunks are
    summed byte by byte. The bytes equal those of summing every piece from scratch
    (``tests/property/test_gso_incremental.py`` keeps that version as the oracle).
    """
    if mss <= 0:
        raise ValueError(f"MSS {mss} cannot carry data")
    view = memoryview(datagram)
    ip_length, _, source, destination, tcp_length = _l4_fields(view)
    tcp_header_length = (view[ip_length + 12] >> 4) * 4
    if tcp_header_length < 20 or tcp_header_length > tcp_length:
        raise ValueError("TCP header does not fit the datagram")
    ip_header = bytes(view[:ip_length])
    tcp_header = bytes(view[ip_length : ip_length + tcp_header_length])
    payload = view[ip_length + tcp_header_length : ip_length + tcp_length]
    _, total_length, identification, _, ip_checksum = _IP_WORDS.unpack_from(ip_header)
    _, seq, _, offset_byte, flags, _, tcp_checksum = _TCP_WORDS.unpack_from(tcp_header)
    pseudo = (
        (source >> 16)
        + (source & 0xFFFF)
        + (destination >> 16)
        + (destination & 0xFFFF)
        + PROTOCOL_TCP
    )
    # The headers' sums without the words each piece sets (both header lengths are even).
    ip_base = int.from_bytes(ip_header, "big") - total_length - identification - ip_checksum
    tcp_base = (
        int.from_bytes(tcp_header, "big")
        - (seq >> 16)
        - (seq & 0xFFFF)
        - flags
        - tcp_checksum
        + pseudo
    )
    pack = _piece_header(ip_length, tcp_header_length).pack
    ip_head, ip_middle, ip_options = ip_header[:2], ip_header[6:10], ip_header[12:]
    ports, ack, window = tcp_header[:4], tcp_header[8:12], tcp_header[14:16]
    tcp_options = tcp_header[18:]
    payload_length = len(payload)
    last = max(payload_length - 1, 0) // mss
    pieces: list[bytes] = []
    for index, offset in enumerate(range(0, max(payload_length, 1), mss)):
        chunk = payload[offset : offset + mss]
        chunk_length = len(chunk)
        piece_flags = flags if index == last else flags & ~(TCP_FIN | TCP_PSH)
        if index:
            piece_flags &= ~TCP_CWR
        segment_length = tcp_header_length + chunk_length
        piece_seq = (seq + offset) & 0xFFFFFFFF
        if partial:
            # The pseudo-header sum, folded (never 0: the protocol is in it), not complemented.
            checksum = (pseudo + segment_length) % 0xFFFF or 0xFFFF
        else:
            if chunk_length > _SMALL_SUM:
                value = ones_complement_sum(chunk)
            else:
                value = int.from_bytes(chunk, "big")
                if chunk_length & 1:
                    value <<= 8
            total = (
                value % 0xFFFF
                + tcp_base
                + (piece_seq >> 16)
                + (piece_seq & 0xFFFF)
                + piece_flags
                + segment_length
            ) % 0xFFFF
            checksum = 0xFFFF - total if total else 0
        piece_length = ip_length + segment_length
        piece_id = (identification + index) & 0xFFFF
        header_sum = (ip_base + piece_length + piece_id) % 0xFFFF
        pieces.append(
            pack(
                ip_head,
                piece_length,
                piece_id,
                ip_middle,
                0xFFFF - header_sum if header_sum else 0,
                ip_options,
                ports,
                piece_seq,
                ack,
                offset_byte,
                piece_flags,
                window,
                checksum,
                tcp_options,
            )
            + chunk
        )
    return pieces


_SMALL_SUM = 4096
"""Up to this many bytes one ``int.from_bytes`` sums fastest; beyond, ``ones_complement_sum``."""
_IP_WORDS = struct.Struct("!HHHIH")
"""Version/TOS, total length, identification, flags to protocol, header checksum."""
_TCP_WORDS = struct.Struct("!IIIBBHH")
"""Ports, sequence number, acknowledgment, data offset, flags, window, checksum."""


@functools.lru_cache(maxsize=64)
def _piece_header(ip_length: int, tcp_header_length: int) -> struct.Struct:
    """The IP and TCP headers of one piece, options included, packed in one call."""
    return struct.Struct(f"!2sHH4sH{ip_length - 12}s4sI4sBB2sH{tcp_header_length - 18}s")


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


def with_partial_checksum(l4: bytes, source: int, destination: int, protocol: int) -> bytes:
    """A TCP or UDP packet built with a zero checksum field, given the partial checksum."""
    offset = _CHECKSUM_OFFSET[protocol]
    value = partial_checksum(source, destination, protocol, len(l4))
    return b"".join((l4[:offset], value.to_bytes(2, "big"), l4[offset + 2 :]))


def tcp_payload_length(segment: Buffer) -> int:
    """Payload bytes of a TCP segment (header and all), 0 when it is too short to say."""
    return len(segment) - (segment[12] >> 4) * 4 if len(segment) >= 20 else 0


# --- forwarding ---------------------------------------------------------------


@dataclass(slots=True)
class ForwardPlan:
    """What to do with a datagram to forward when offloads or the MTU get in the way."""

    pieces: list[bytes] = field(default_factory=list)
    """Datagrams ready to go out (none when dropped or too big)."""
    drop: DropReason | None = None
    too_big: bytes | None = None
    """A real datagram too big for the next link, checksums complete: refuse (DF) or
    fragment it."""
    segmented: bool = False
    """A super-segment was cut here (software GSO)."""


def plan_forward(
    datagram: bytes,
    *,
    arrived_mtu: int,
    out_mtu: int,
    tx_checksum: bool,
    max_segment: int,
    verified: bool,
    gso_size: int,
) -> ForwardPlan:
    """Decide how a datagram (TTL already lowered) leaves by the next link.

    A TCP super-segment (it came as GSO, or larger than its link's MTU could
    carry) that the next link cannot take whole is cut into MSS-sized segments
    here, as Linux's software GSO does: at ``gso_size``, or the MSS of the link
    it came by, and never above what the next link carries. It goes whole to a
    TSO link that would cut it at that same size. Checksums leave in the form
    the next link wants: partial for a checksum-offloading link (checked first
    when nobody vouched for them: new checksums would make corrupt data look
    good), full otherwise.
    """
    whole_l4 = (
        len(datagram) >= 20
        and datagram[9] in _CHECKSUM_OFFSET
        and not (datagram[6] & 0x3F or datagram[7])
    )
    oversized = len(datagram) > out_mtu
    super_segment = (
        oversized and is_whole_tcp(datagram) and (gso_size > 0 or len(datagram) > arrived_mtu)
    )
    if whole_l4 and not verified and (tx_checksum or super_segment):
        if not l4_checksum_ok(datagram):
            return ForwardPlan(drop=DropReason.BAD_CHECKSUM)
        verified = True
    if super_segment:
        out_mss = tcp_mss_for(datagram, out_mtu)
        mss = min(gso_size or tcp_mss_for(datagram, arrived_mtu), out_mss)
        payload_length = tcp_mss_for(datagram, len(datagram))
        if tx_checksum and mss == out_mss and 0 < payload_length <= max_segment:
            oversized = False  # the next link cuts it at out_mss (TSO)
        elif mss > 0:
            return ForwardPlan(
                pieces=segment_tcp(datagram, mss, partial=tx_checksum), segmented=True
            )
    if not (whole_l4 and verified):
        return ForwardPlan(too_big=datagram) if oversized else ForwardPlan(pieces=[datagram])
    finished = bytearray(datagram)
    # It may have arrived partial; fragments must carry the whole checksum.
    set_l4_checksum(finished, partial=tx_checksum and not oversized)
    if oversized:
        return ForwardPlan(too_big=bytes(finished))
    return ForwardPlan(pieces=[bytes(finished)])


def nic_transmit(frame: bytes, mtu: int) -> list[bytes]:
    """What an offloading NIC puts on the wire for one Ethernet frame from its host.

    TCP and UDP checksums of whole IPv4 datagrams are finished (computed from
    scratch: the host may have left them partial), and a TCP segment longer
    than ``mtu`` is cut into segments that fit it. Anything else, malformed
    frames included, goes out untouched.
    """
    if len(frame) < ETHERNET_HEADER_LENGTH + 20 or frame[12:14] != b"\x08\x00":
        return [frame]
    ip = ETHERNET_HEADER_LENGTH
    header_length = (frame[ip] & 0x0F) * 4
    total_length = (frame[ip + 2] << 8) | frame[ip + 3]
    protocol = frame[ip + 9]
    if (
        frame[ip] >> 4 != 4
        or header_length < 20
        or total_length < header_length + 8
        or total_length > len(frame) - ip
        or protocol not in _CHECKSUM_OFFSET
        or frame[ip + 6] & 0x3F
        or frame[ip + 7]
    ):
        return [frame]
    if protocol == PROTOCOL_TCP and total_length > mtu and total_length >= header_length + 20:
        datagram = frame[ip : ip + total_length]
        tcp_header_length = (datagram[header_length + 12] >> 4) * 4
        mss = mtu - header_length - tcp_header_length
        fits = 20 <= tcp_header_length <= total_length - header_length
        if fits and mss > 0:
            head = frame[:ip]
            return [head + piece for piece in segment_tcp(datagram, mss)]
    return [_finish_l4_checksum(frame, ip + header_length, ip + total_length, protocol)]


def _finish_l4_checksum(frame: bytes, start: int, end: int, protocol: int) -> bytes:
    """Ethernet ``frame`` with the full TCP/UDP checksum of its L4 bytes ``start:end``
    computed from scratch, whatever the field held; the very same object when the field
    was right already.

    One pass over the bytes as they are: the field's own word is taken out of the sum
    arithmetically instead of zeroing a copy (RFC 1624's idea). A UDP checksum of 0
    ("none", RFC 768) stays; a computed zero goes out as all ones.
    """
    offset = _CHECKSUM_OFFSET[protocol]
    at = start + offset
    length = end - start
    if length < offset + 2:
        return frame
    field_value = (frame[at] << 8) | frame[at + 1]
    if protocol == PROTOCOL_UDP and not field_value:
        return frame
    source, destination = _ADDRESSES.unpack_from(frame, ETHERNET_HEADER_LENGTH + 12)
    if length > _SMALL_SUM:
        value = ones_complement_sum(memoryview(frame)[start:end])
    else:
        value = int.from_bytes(memoryview(frame)[start:end], "big")
        if length & 1:
            value <<= 8
    total = (
        value % 0xFFFF
        - field_value
        + (source >> 16)
        + (source & 0xFFFF)
        + (destination >> 16)
        + (destination & 0xFFFF)
        + protocol
        + length
    ) % 0xFFFF
    checksum = 0xFFFF - total if total else 0
    if protocol == PROTOCOL_UDP and checksum == 0:
        checksum = 0xFFFF
    if checksum == field_value:
        return frame
    return b"".join((frame[:at], checksum.to_bytes(2, "big"), frame[at + 2 :]))


# --- GRO ------------------------------------------------------------------------

_GRO_FLAGS = TCP_ACK | TCP_PSH
"""Only pure data segments merge; SYN, FIN, RST, URG, ECE and CWR end a run (Linux too)."""


GRO_FLOWS = 8
"""Flows software GRO holds open runs for at once (Linux's ``MAX_GRO_SKBS``)."""

_GRO_HEADERS = struct.Struct("!12sHBBHHHBBHIIHHIIBBHHH")
"""MACs, EtherType, an option-less IPv4 header and a TCP header, as GRO reads them."""

GroKey = tuple[bytes, int, int, int, int, int, int, int, int, int, int, bytes]


def _gro_candidate(
    frame: bytes, verify: bool, verify_l4: bool
) -> tuple[GroKey, int, int, int, int] | None:
    """(flow key, seq, payload length, flags, TCP header length) of a frame GRO may merge.

    None when it may not. The key holds everything that must be equal for two
    segments to merge: Ethernet header, IP TOS/flags/TTL/addresses, ports, ACK,
    window and the options (timestamps included, as Linux's ``tcp_gro_receive``
    demands). With ``verify`` the IPv4 header checksum must be good, with
    ``verify_l4`` the TCP checksum too.
    """
    if len(frame) < ETHERNET_HEADER_LENGTH + 40:
        return None
    (
        macs,
        ethertype,
        version_ihl,
        tos,
        total_length,
        _identification,
        flags_offset,
        ttl,
        protocol,
        _checksum,
        source,
        destination,
        source_port,
        destination_port,
        seq,
        ack,
        offset_byte,
        flags,
        window,
        _tcp_checksum,
        _urgent,
    ) = _GRO_HEADERS.unpack_from(frame)
    if (
        ethertype != 0x0800
        or version_ihl != 0x45
        or protocol != PROTOCOL_TCP
        or flags_offset & 0x3FFF
        or total_length > len(frame) - ETHERNET_HEADER_LENGTH
    ):
        return None
    tcp_header_length = (offset_byte >> 4) * 4
    payload_length = total_length - 20 - tcp_header_length
    if tcp_header_length < 20 or payload_length <= 0 or flags & ~_GRO_FLAGS or not flags & TCP_ACK:
        return None
    tcp = ETHERNET_HEADER_LENGTH + 20
    # An option-less header's sum is never 0: it verifies when 0xffff divides it.
    if verify and int.from_bytes(frame[ETHERNET_HEADER_LENGTH:tcp], "big") % 0xFFFF:
        return None
    if verify_l4:
        # checksum_verifies, inlined: the words and the pseudo-header (never 0) must sum to a
        # multiple of 0xffff; the big sum is reduced before the small words join it.
        value = int.from_bytes(frame[tcp : ETHERNET_HEADER_LENGTH + total_length], "big")
        if total_length & 1:
            value <<= 8
        pseudo = (
            (source >> 16)
            + (source & 0xFFFF)
            + (destination >> 16)
            + (destination & 0xFFFF)
            + PROTOCOL_TCP
            + total_length
            - 20
        )
        if (value % 0xFFFF + pseudo) % 0xFFFF:
            return None
    key = (
        macs,
        tos,
        flags_offset >> 8,
        ttl,
        source,
        destination,
        source_port,
        destination_port,
        ack,
        offset_byte,
        window,
        frame[tcp + 20 : tcp + tcp_header_length],
    )
    return key, seq, payload_length, flags, tcp_header_length


def _merged(run: list[bytes], partial: bool | None) -> bytes:
    """One frame carrying the payloads of ``run`` (candidates of one flow, in order).

    The TCP checksum is full (``partial`` False: derived from the pieces' own, which
    must be good), or partial (True); with None it is left as the first frame's, for a
    receiver told the pieces were verified.
    """
    if len(run) == 1:
        return run[0]
    first = run[0]
    ip = ETHERNET_HEADER_LENGTH
    tcp_header_length = (first[ip + 32] >> 4) * 4
    start = ip + 20 + tcp_header_length
    payloads = [
        memoryview(frame)[start : ip + ((frame[ip + 2] << 8) | frame[ip + 3])] for frame in run
    ]
    datagram = bytearray(first[ip:start])
    datagram[2:4] = (len(datagram) + sum(len(p) for p in payloads)).to_bytes(2, "big")
    datagram[10:12] = b"\0\0"
    datagram[10:12] = internet_checksum(datagram[:20]).to_bytes(2, "big")
    datagram[33] |= run[-1][ip + 33] & TCP_PSH
    if partial is False:
        datagram[36:38] = _merged_checksum(run, payloads, datagram).to_bytes(2, "big")
    datagram += b"".join(payloads)
    if partial:
        set_l4_checksum(datagram, partial=True)
    return first[:ip] + bytes(datagram)


def _merged_checksum(run: list[bytes], payloads: list[memoryview], headers: bytearray) -> int:
    """The full TCP checksum of the merged segment, from the pieces' verified checksums.

    A good piece's words sum to 0 (mod 0xffff) with its pseudo-header, so its payload
    sums to minus the rest, no byte of it read again; a payload that lands at an odd
    offset of the merged segment has its bytes' weights swapped, which multiplies its
    sum by 256 (RFC 1071 §2(B): 256 * 256 = 1 mod 0xffff). ``headers`` are the merged
    IP and TCP headers (checksum field as the first piece had it).
    """
    ip = ETHERNET_HEADER_LENGTH
    tcp = ip + 20
    source, destination = _ADDRESSES.unpack_from(headers, 12)
    addresses = (source >> 16) + (source & 0xFFFF) + (destination >> 16) + (destination & 0xFFFF)
    tcp_header_length = len(headers) - 20
    position = tcp_header_length
    total = 0
    for frame, payload in zip(run, payloads, strict=True):
        segment_length = tcp_header_length + len(payload)
        piece = -(
            int.from_bytes(frame[tcp : tcp + tcp_header_length], "big")
            + addresses
            + PROTOCOL_TCP
            + segment_length
        )
        total += piece * 256 if position & 1 else piece
        position += len(payload)
    header = int.from_bytes(headers[20:], "big") - ((headers[36] << 8) | headers[37])
    total = (total + header + addresses + PROTOCOL_TCP + position) % 0xFFFF
    return 0xFFFF - total if total else 0


def gro_merge(
    frames: list[bytes], *, limit: int = MAX_DATAGRAM, verified: bool = False, flows: int = 0
) -> list[bytes]:
    """Merge runs of consecutive, in-order, same-flow TCP data frames into fewer frames.

    Frames that are not plain data segments with good checksums pass
    through untouched and in place. A run ends, as in Linux, after a segment
    with PSH or one shorter than the run's first, and before a merge would
    exceed ``limit`` bytes of IP datagram. Merged frames get fresh full checksums,
    derived from the pieces' (:func:`_merged_checksum`). ``verified``: the caller
    knows every frame's TCP checksum is good (an offloading NIC finished it, and
    nothing on the way could damage it), so it is not checked again; the IPv4
    header's, which costs nothing, still is. ``flows`` > 0: runs are those of
    :func:`_flow_runs` (per flow across interleaved frames) instead of adjacent frames.
    """
    if flows > 0:
        return [
            _merged(run, False) if len(run) > 1 else run[0]
            for run, _size in _flow_runs(frames, limit=limit, flows=flows, verify_l4=not verified)
        ]
    return _merge_runs(
        frames, limit=limit, verify=True, mtu=None, partial=False, verify_l4=not verified
    )


def coalesce_for_tso(frames: list[bytes], mtu: int, *, limit: int = MAX_DATAGRAM) -> list[bytes]:
    """Merge the stack's own full-sized TCP segments into super-segments a TSO link cuts back.

    For frames leaving a checksum-offloading, segmenting link (their
    checksums partial): a run starts only at a segment whose payload is
    exactly the MSS ``mtu`` leaves (options counted), so the link, which cuts
    at that MSS, puts the very same segments on the wire; one write then
    carries up to 64 KiB instead of one MSS. Merged frames keep partial
    checksums; anything else passes through untouched and in place.
    """
    return _merge_runs(frames, limit=limit, verify=False, mtu=mtu, partial=True)


def gro_receive(
    frames: list[bytes], *, limit: int = MAX_DATAGRAM, flows: int = GRO_FLOWS
) -> list[tuple[bytes, bool, int]]:
    """Software GRO for a link without offloads: what :func:`gro_merge` makes, per flow
    (:func:`_flow_runs`, at most ``flows`` open at once), as ``(frame, checksum_verified,
    gso_size)`` for :meth:`simtcp.Stack.receive_frame`.

    Every frame GRO looked at had its checksums verified here, merged or not,
    so the stack need not check them again; a merged frame keeps its first
    piece's TCP checksum (the receiver is told they were verified) and its
    ``gso_size`` is that piece's payload length (Linux's ``gso_size``). Frames
    GRO passes over come back unverified, with ``gso_size`` 0. ``flows`` 0: only
    adjacent frames merge (:func:`_runs`).
    """
    out: list[tuple[bytes, bool, int]] = []
    runs = (
        _flow_runs(frames, limit=limit, flows=flows)
        if flows > 0
        else _runs(frames, limit=limit, verify=True, mtu=None)
    )
    for run, size in runs:
        if len(run) > 1:
            out.append((_merged(run, None), True, size))
        else:
            out.append((run[0], size > 0, 0))
    return out


def _merge_runs(
    frames: list[bytes],
    *,
    limit: int,
    verify: bool,
    mtu: int | None,
    partial: bool,
    verify_l4: bool | None = None,
) -> list[bytes]:
    return [
        _merged(run, partial) if len(run) > 1 else run[0]
        for run, _size in _runs(frames, limit=limit, verify=verify, mtu=mtu, verify_l4=verify_l4)
    ]


def _runs(
    frames: list[bytes], *, limit: int, verify: bool, mtu: int | None, verify_l4: bool | None = None
) -> list[tuple[list[bytes], int]]:
    """The frames in order, grouped into runs that may merge: (run, first payload size);
    a frame that is no candidate comes alone with size 0. ``verify`` checks the
    checksums, ``verify_l4`` (default: as ``verify``) the TCP one among them."""
    if verify_l4 is None:
        verify_l4 = verify
    out: list[tuple[list[bytes], int]] = []
    run: list[bytes] = []
    run_key: GroKey | None = None
    next_seq = size = length = 0
    for frame in frames:
        candidate = _gro_candidate(frame, verify, verify_l4)
        if candidate is not None and run:
            key, seq, payload_length, flags, _ = candidate
            if (
                key == run_key
                and seq == next_seq
                and payload_length <= size
                and length + payload_length <= limit
            ):
                run.append(frame)
                length += payload_length
                next_seq = (seq + payload_length) & 0xFFFFFFFF
                if flags & TCP_PSH or payload_length < size:
                    out.append((run, size))
                    run = []
                continue
        if run:
            out.append((run, size))
            run = []
        if candidate is None:
            out.append(([frame], 0))
            continue
        run_key, seq, size, flags, tcp_header_length = candidate
        if flags & TCP_PSH or (mtu is not None and size != mtu - 20 - tcp_header_length):
            out.append(([frame], size))
            continue
        run = [frame]
        length = frame[16] << 8 | frame[17]
        next_seq = (seq + size) & 0xFFFFFFFF
    if run:
        out.append((run, size))
    return out


@dataclass(slots=True)
class _OpenRun:
    """A flow's run being merged: its frames, the key they share, where the next must start."""

    frames: list[bytes]
    key: GroKey
    size: int
    """The first piece's payload length: no later piece may be longer."""
    next_seq: int
    length: int
    """The merged IP datagram's length so far."""


def _flow_of(frame: bytes) -> bytes | None:
    """The 4-tuple (addresses, ports; raw bytes) of an IPv4 TCP frame GRO may not merge.

    None for a frame of no TCP flow (ARP, ICMP, UDP, not IPv4); ``b""`` for TCP whose
    flow cannot be told (a fragment, a header cut short): it may belong to any flow.
    """
    if (
        len(frame) < ETHERNET_HEADER_LENGTH + 20
        or frame[12:14] != b"\x08\x00"
        or (frame[14] >> 4 != 4 or frame[23] != PROTOCOL_TCP)
    ):
        return None
    tcp = ETHERNET_HEADER_LENGTH + (frame[14] & 0x0F) * 4
    if frame[20] & 0x3F or frame[21] or tcp < 34 or len(frame) < tcp + 4:
        return b""
    return frame[26:34] + frame[tcp : tcp + 4]


def _flow_runs(
    frames: list[bytes], *, limit: int, flows: int, verify_l4: bool = True
) -> list[tuple[list[bytes], int]]:
    """:func:`_runs` per flow, as Linux's GRO does (``dev_gro_receive``): a run stays open
    while other flows' frames pass, in a table of at most ``flows`` flows keyed by the
    4-tuple (the oldest is flushed to make room).

    A run is flushed (put out, where the frame that ends it stands) before a frame of
    its flow that cannot join it, so each flow's frames keep their order; frames of no
    TCP flow pass at once, and a TCP frame whose flow cannot be told flushes every run.
    What is still open at the end is put out last, oldest first. Checksums are verified
    (the TCP one only with ``verify_l4``).
    """
    out: list[tuple[list[bytes], int]] = []
    table: dict[bytes, _OpenRun] = {}
    for frame in frames:
        candidate = _gro_candidate(frame, True, verify_l4)
        if candidate is None:
            flow = _flow_of(frame)
            if flow:
                run = table.pop(flow, None)
                if run is not None:
                    out.append((run.frames, run.size))
            elif flow is not None:
                out += [(run.frames, run.size) for run in table.values()]
                table.clear()
            out.append(([frame], 0))
            continue
        key, seq, payload_length, flags, _ = candidate
        flow = frame[26:38]
        run = table.get(flow)
        if run is not None:
            if (
                key == run.key
                and seq == run.next_seq
                and payload_length <= run.size
                and run.length + payload_length <= limit
            ):
                run.frames.append(frame)
                run.length += payload_length
                run.next_seq = (seq + payload_length) & 0xFFFFFFFF
                if flags & TCP_PSH or payload_length < run.size:
                    del table[flow]
                    out.append((run.frames, run.size))
                continue
            del table[flow]
            out.append((run.frames, run.size))
        if flags & TCP_PSH:
            out.append(([frame], payload_length))
            continue
        if len(table) >= flows:
            oldest = next(iter(table))
            out.append((table[oldest].frames, table.pop(oldest).size))
        table[flow] = _OpenRun(
            [frame],
            key,
            payload_length,
            (seq + payload_length) & 0xFFFFFFFF,
            (frame[16] << 8) | frame[17],
        )
    out += [(run.frames, run.size) for run in table.values()]
    return out


__all__ = [
    "GRO_FLOWS",
    "ForwardPlan",
    "InterfaceOffload",
    "coalesce_for_tso",
    "gro_merge",
    "gro_receive",
    "is_whole_tcp",
    "l4_checksum_offset",
    "l4_checksum_ok",
    "nic_transmit",
    "partial_checksum",
    "plan_forward",
    "segment_tcp",
    "set_l4_checksum",
    "tcp_mss_for",
    "tcp_payload_length",
    "with_partial_checksum",
]
