"""The virtio-net header a TAP opened with ``IFF_VNET_HDR`` puts in front of every frame.

Layout (virtio 1.x ``struct virtio_net_hdr_v1``, 12 bytes, little-endian: we
set ``TUNSETVNETLE``; the kernel's ``include/uapi/linux/virtio_net.h``)::

    u8  flags        NEEDS_CSUM (1): the L4 checksum is partial; DATA_VALID (2): verified
    u8  gso_type     NONE (0), TCPV4 (1), UDPV4 (3), TCPV6 (4); ECN (0x80) may be or-ed in
    u16 hdr_len      bytes of Ethernet + IP + TCP headers, a hint
    u16 gso_size     payload bytes per segment when the frame is cut
    u16 csum_start   where checksumming starts (the L4 header)
    u16 csum_offset  where, from csum_start, the checksum goes (16 TCP, 6 UDP)
    u16 num_buffers  mergeable receive buffers; always 0 on a TAP

We set ``TUNSETVNETHDRSZ`` to 12 (not the classic 10-byte ``virtio_net_hdr``):
it is the layout virtio 1.x and vhost use, and the two extra bytes are noise
next to a 64 KiB segment. "Partial" means what the kernel means by
``CHECKSUM_PARTIAL``: the checksum field holds the pseudo-header sum, folded
but not complemented, and whoever finishes the frame sums from
``csum_start`` to the end into it (RFC 1071 §2 makes that incremental).

Frames are self-describing, so on transmit :func:`tx_header` derives the
header from the frame itself; the stack's part of the bargain
(``InterfaceOffload.tx_checksum``) is to leave that pseudo-header sum in every
unfragmented TCP and UDP (non-zero checksum) frame it sends on the interface.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

VNET_HEADER_LENGTH = 12

FLAG_NEEDS_CSUM = 1
FLAG_DATA_VALID = 2

GSO_NONE = 0
GSO_TCPV4 = 1
GSO_UDP = 3
GSO_TCPV6 = 4
GSO_ECN = 0x80

ETHERNET_HEADER_LENGTH = 14
ETHERTYPE_IPV4 = b"\x08\x00"
IPV6_HEADER_LENGTH = 40
IPPROTO_TCP = 6
IPPROTO_UDP = 17
TCP_CHECKSUM_OFFSET = 16
UDP_CHECKSUM_OFFSET = 6

_LAYOUT = struct.Struct("<BBHHHHH")

PLAIN_HEADER = bytes(VNET_HEADER_LENGTH)
"""The header of a frame that asks nothing of the kernel (complete checksums, no GSO)."""

_TX_FIELDS = struct.Struct("!12xHB5xHxB")
"""EtherType, IPv4 version/IHL, flags/fragment offset and protocol of a frame: what
:func:`tx_header` reads first, in one unpack."""
_UDP_HEADERS = {
    words: _LAYOUT.pack(
        FLAG_NEEDS_CSUM,
        GSO_NONE,
        ETHERNET_HEADER_LENGTH + 4 * words + 8,
        0,
        ETHERNET_HEADER_LENGTH + 4 * words,
        UDP_CHECKSUM_OFFSET,
        0,
    )
    for words in range(16)
}
"""The header of a UDP frame, by IHL (its header length in words): it depends on nothing else."""
_TCP_HEADERS: dict[int, bytes] = {}
"""The header of a TCP frame without GSO, by (end of headers << 8 | csum_start): at most
16 x 16 of them, made when first needed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VnetHeader:
    """One parsed virtio-net header."""

    flags: int = 0
    gso_type: int = GSO_NONE
    header_length: int = 0
    gso_size: int = 0
    csum_start: int = 0
    csum_offset: int = 0

    @classmethod
    def parse(cls, data: bytes | memoryview) -> VnetHeader:
        """The header at the start of ``data``; ValueError when there are fewer than 12 bytes."""
        if len(data) < VNET_HEADER_LENGTH:
            raise ValueError(f"virtio-net header of {len(data)} bytes")
        flags, gso_type, header_length, gso_size, start, offset, _ = _LAYOUT.unpack_from(data)
        return cls(
            flags=flags,
            gso_type=gso_type,
            header_length=header_length,
            gso_size=gso_size,
            csum_start=start,
            csum_offset=offset,
        )

    def build(self) -> bytes:
        return _LAYOUT.pack(
            self.flags,
            self.gso_type,
            self.header_length,
            self.gso_size,
            self.csum_start,
            self.csum_offset,
            0,
        )

    @property
    def checksum_trusted(self) -> bool:
        """The kernel vouches for the frame's checksums: partial (ours to trust) or verified."""
        return bool(self.flags & (FLAG_NEEDS_CSUM | FLAG_DATA_VALID))

    @property
    def is_gso(self) -> bool:
        return self.gso_type & ~GSO_ECN != GSO_NONE


def rx_info(data: bytes | memoryview) -> tuple[bool, int]:
    """(checksum trusted, gso_size or 0) of a received header; the loop's fast path.

    ``gso_size`` is reported for TCP over IPv4 and IPv6, the GSO types we
    enable (``TUN_F_TSO4 | TUN_F_TSO6``); the stack takes such a frame as one TCP
    segment.
    """
    flags = data[0]
    gso_size = 0
    gso_type = data[1] & ~GSO_ECN
    if gso_type in (GSO_TCPV4, GSO_TCPV6):
        gso_size = data[4] | data[5] << 8
    return bool(flags & (FLAG_NEEDS_CSUM | FLAG_DATA_VALID)), gso_size


def tx_header(frame: bytes | memoryview, mtu: int) -> bytes:
    """The header for a frame the stack sent on a checksum-offloading interface.

    Unfragmented IPv4 TCP, and UDP with a checksum (0 means "none", RFC 768),
    get NEEDS_CSUM with ``csum_start`` at the L4 header. A TCP frame longer
    than ``mtu + 14`` also gets GSO TCPV4 with ``gso_size`` = MTU minus the IP
    and TCP headers (options included), the MSS the kernel cuts it at.
    An IPv6 TCP frame (no extension headers) longer than ``mtu + 14`` gets
    NEEDS_CSUM and GSO TCPV6 the same way (:func:`_ipv6_header`). Everything
    else goes out as it is.
    """
    if len(frame) < ETHERNET_HEADER_LENGTH + 20:
        return PLAIN_HEADER
    ethertype, version_ihl, flags_offset, protocol = _TX_FIELDS.unpack_from(frame)
    if ethertype == 0x86DD:
        return _ipv6_header(frame, mtu)
    # Not IPv4, or MF set or a fragment offset (not a whole datagram): as it is.
    if ethertype != 0x0800 or version_ihl >> 4 != 4 or flags_offset & 0x3FFF:
        return PLAIN_HEADER
    ip_header_length = (version_ihl & 0x0F) * 4
    start = ETHERNET_HEADER_LENGTH + ip_header_length
    if protocol == IPPROTO_TCP and len(frame) >= start + 20:
        tcp_header_length = (frame[start + 12] >> 4) * 4
        end_of_headers = start + tcp_header_length
        if len(frame) > mtu + ETHERNET_HEADER_LENGTH and len(frame) > end_of_headers:
            gso_size = mtu - ip_header_length - tcp_header_length
            if gso_size > 0:
                return _LAYOUT.pack(
                    FLAG_NEEDS_CSUM,
                    GSO_TCPV4,
                    end_of_headers,
                    gso_size,
                    start,
                    TCP_CHECKSUM_OFFSET,
                    0,
                )
        header = _TCP_HEADERS.get(end_of_headers << 8 | start)
        if header is None:
            header = _TCP_HEADERS[end_of_headers << 8 | start] = _LAYOUT.pack(
                FLAG_NEEDS_CSUM, GSO_NONE, end_of_headers, 0, start, TCP_CHECKSUM_OFFSET, 0
            )
        return header
    if (
        protocol == IPPROTO_UDP
        and len(frame) >= start + 8
        and (frame[start + 6] or frame[start + 7])
    ):
        return _UDP_HEADERS[ip_header_length >> 2]
    return PLAIN_HEADER


def _ipv6_header(frame: bytes | memoryview, mtu: int) -> bytes:
    """The header for an IPv6 frame: NEEDS_CSUM and GSO TCPV6 for a TCP super-segment.

    Only a frame longer than the MTU is marked: the stack leaves an IPv6 TCP checksum
    partial exactly when the segment is one for TSO (``TcpFrames._send_ipv6``), and
    frames that fit (forwarded ones among them) carry full checksums the kernel must
    not touch. With extension headers, or too short to hold TCP: as it is.
    """
    start = ETHERNET_HEADER_LENGTH + IPV6_HEADER_LENGTH
    if (
        len(frame) <= mtu + ETHERNET_HEADER_LENGTH
        or len(frame) < start + 20
        or frame[ETHERNET_HEADER_LENGTH] >> 4 != 6
        or frame[ETHERNET_HEADER_LENGTH + 6] != IPPROTO_TCP
    ):
        return PLAIN_HEADER
    tcp_header_length = (frame[start + 12] >> 4) * 4
    end_of_headers = start + tcp_header_length
    gso_size = mtu - IPV6_HEADER_LENGTH - tcp_header_length
    if tcp_header_length < 20 or gso_size <= 0 or len(frame) <= end_of_headers:
        return PLAIN_HEADER
    return _LAYOUT.pack(
        FLAG_NEEDS_CSUM, GSO_TCPV6, end_of_headers, gso_size, start, TCP_CHECKSUM_OFFSET, 0
    )


__all__ = [
    "FLAG_DATA_VALID",
    "FLAG_NEEDS_CSUM",
    "GSO_ECN",
    "GSO_NONE",
    "GSO_TCPV4",
    "GSO_TCPV6",
    "GSO_UDP",
    "PLAIN_HEADER",
    "VNET_HEADER_LENGTH",
    "VnetHeader",
    "rx_info",
    "tx_header",
]
