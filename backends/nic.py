"""The NIC model: what an offloading network card does to frames, for the backends.

A link with TSO and checksum offload takes one TCP segment of up to 64 KiB
with a partial checksum and puts finished MSS-sized frames on the wire
(:func:`nic_transmit`); a receiver with GRO glues consecutive in-order
segments of a flow back into one (:func:`gro_merge`, :func:`gro_receive`,
Linux's ``tcp_gro_receive``), and a host writing to a TSO-capable TAP may
glue its own full-sized segments into super-segments the kernel cuts back
(:func:`coalesce_for_tso`). The simulator's offload-capable links
(:mod:`simtcp.backends.sim`) and the TAP backends (:mod:`simtcp.backends.tap`,
:mod:`simtcp.backends.tapdevice`) use these; the core never does. The cutting
itself and the checksum helpers are the core's (:mod:`simtcp.wire.offload`).
All functions here take and give raw bytes: they run once per frame.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from simtcp.wire.checksum import (
    address_sum,
    checksum_verifies,
    field_of,
    internet_checksum,
    ones_complement_sum,
    pseudo_header_sum,
    word_sum,
)
from simtcp.wire.ethernet import ETHERTYPE_IPV4
from simtcp.wire.ipv4 import MAX_TOTAL_LENGTH
from simtcp.wire.offload import (
    IPV6_HEADER_LENGTH,
    SMALL_SUM,
    is_whole_tcp6,
    l4_checksum_offset,
    segment_tcp,
    segment_tcp6,
    set_l4_checksum,
    tcp6_mss_for,
)
from simtcp.wire.protocols import PROTOCOL_TCP, PROTOCOL_UDP
from simtcp.wire.tcp import ACK as TCP_ACK
from simtcp.wire.tcp import PSH as TCP_PSH

ETHERNET_HEADER_LENGTH = 14
MAX_DATAGRAM = MAX_TOTAL_LENGTH
_ADDRESSES = struct.Struct("!II")


def nic_transmit(frame: bytes, mtu: int) -> list[bytes]:
    """What an offloading NIC puts on the wire for one Ethernet frame from its host.

    TCP and UDP checksums of whole IPv4 datagrams are finished (computed from
    scratch: the host may have left them partial), and a TCP segment longer
    than ``mtu`` is cut into segments that fit it; IPv6 ones the same
    (:func:`_nic_transmit6`). Anything else, malformed frames included, goes out
    untouched.
    """
    if frame[12:14] == b"\x86\xdd":
        return _nic_transmit6(frame, mtu)
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
        or l4_checksum_offset(protocol) is None
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


def _nic_transmit6(frame: bytes, mtu: int) -> list[bytes]:
    """:func:`nic_transmit` for an IPv6 frame: TCP or UDP right after the fixed header
    (no extension headers) has its checksum finished over RFC 8200 §8.1's
    pseudo-header, and a TCP datagram longer than ``mtu`` is cut
    (:func:`simtcp.wire.offload.segment_tcp6`, full checksums)."""
    ip = ETHERNET_HEADER_LENGTH
    if len(frame) < ip + IPV6_HEADER_LENGTH + 8 or frame[ip] >> 4 != 6:
        return [frame]
    protocol = frame[ip + 6]
    end = ip + IPV6_HEADER_LENGTH + ((frame[ip + 4] << 8) | frame[ip + 5])
    offset = l4_checksum_offset(protocol)
    if offset is None or end > len(frame):
        return [frame]
    datagram = frame[ip:end]
    if protocol == PROTOCOL_TCP and is_whole_tcp6(datagram):
        mss = tcp6_mss_for(datagram, mtu)
        if len(datagram) > mtu and mss > 0:
            return [frame[:ip] + piece for piece in segment_tcp6(datagram, mss)]
    start = ip + IPV6_HEADER_LENGTH
    if end - start < offset + 2:
        return [frame]
    at = start + offset
    field_value = (frame[at] << 8) | frame[at + 1]
    if protocol == PROTOCOL_UDP and not field_value:
        return [frame]  # RFC 8200 §8.1 forbids it; the receiver drops it, not the NIC
    view = memoryview(frame)[start:end]
    value = ones_complement_sum(view) if end - start > SMALL_SUM else word_sum(view)
    pseudo = int.from_bytes(frame[ip + 8 : start], "big") + protocol + (end - start)
    checksum = field_of(value % 0xFFFF - field_value + pseudo)
    if protocol == PROTOCOL_UDP and checksum == 0:
        checksum = 0xFFFF
    if checksum == field_value:
        return [frame]
    return [b"".join((frame[:at], checksum.to_bytes(2, "big"), frame[at + 2 :]))]


def _finish_l4_checksum(frame: bytes, start: int, end: int, protocol: int) -> bytes:
    """Ethernet ``frame`` with the full TCP/UDP checksum of its L4 bytes ``start:end``
    computed from scratch, whatever the field held; the very same object when the field
    was right already.

    One pass over the bytes as they are: the field's own word is taken out of the sum
    arithmetically instead of zeroing a copy (RFC 1624's idea). A UDP checksum of 0
    ("none", RFC 768) stays; a computed zero goes out as all ones.
    """
    offset = l4_checksum_offset(protocol)
    assert offset is not None  # nic_transmit checked the protocol
    at = start + offset
    length = end - start
    if length < offset + 2:
        return frame
    field_value = (frame[at] << 8) | frame[at + 1]
    if protocol == PROTOCOL_UDP and not field_value:
        return frame
    source, destination = _ADDRESSES.unpack_from(frame, ETHERNET_HEADER_LENGTH + 12)
    view = memoryview(frame)[start:end]
    value = ones_complement_sum(view) if length > SMALL_SUM else word_sum(view)
    checksum = field_of(
        value % 0xFFFF - field_value + pseudo_header_sum(source, destination, protocol, length)
    )
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
        ethertype != ETHERTYPE_IPV4
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
    if not _gro_checksums_ok(frame, total_length, source, destination, verify, verify_l4):
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


def _gro_checksums_ok(
    frame: bytes, total_length: int, source: int, destination: int, verify: bool, verify_l4: bool
) -> bool:
    """The option-less IPv4 header's checksum (with ``verify``) and the TCP one (with
    ``verify_l4``) of a frame :func:`_gro_candidate` looks at."""
    tcp = ETHERNET_HEADER_LENGTH + 20
    if verify and not checksum_verifies(frame[ETHERNET_HEADER_LENGTH:tcp]):
        return False
    if verify_l4:
        # The words and the pseudo-header (never 0) must sum to a multiple of 0xffff; the
        # big sum is reduced before the small words join it.
        value = word_sum(frame[tcp : ETHERNET_HEADER_LENGTH + total_length])
        pseudo = pseudo_header_sum(source, destination, PROTOCOL_TCP, total_length - 20)
        if (value % 0xFFFF + pseudo) % 0xFFFF:
            return False
    return True


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
    addresses = address_sum(source, destination)
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
    return field_of(total + header + addresses + PROTOCOL_TCP + position)


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

    Such a segment fills the MTU exactly, and the stack's frames end where
    their datagram ends (forwarding drops link padding), so a batch without a
    frame of exactly ``mtu + 14`` bytes (a router's super-segments, ACKs and
    datagrams) comes back as it is, without a look at any header.
    """
    if mtu + ETHERNET_HEADER_LENGTH not in map(len, frames):
        return frames
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
    "ETHERNET_HEADER_LENGTH",
    "GRO_FLOWS",
    "coalesce_for_tso",
    "gro_merge",
    "gro_receive",
    "nic_transmit",
]
