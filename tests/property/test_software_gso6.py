"""GSO and TSO for TCP over IPv6 (RFC 8200): the IPv6 twin of ``test_software_gso``.

- ``segment_tcp6`` of a whole IPv6 TCP datagram gives the datagrams the segment's
  pieces make when built one by one (``TcpSegment.build_ipv6`` behind a fresh IPv6
  header whose payload length is the piece's), full or partial checksums; scapy
  decodes every piece with a valid TCP checksum over RFC 8200 §8.1's pseudo-header;
- a transfer over IPv6 on links that cut nothing puts the very same frames on the
  wire, byte for byte and microsecond for microsecond, with
  ``TcpConfig.segmentation_offload`` on (64 KiB segments, cut by the stack) and off;
- the control: with it on the stack really cuts IPv6 super-segments.
"""

from __future__ import annotations

import io
import struct
from ipaddress import IPv6Address

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import TCP
from scapy.layers.inet6 import IPv6

from simtcp.backends.impair import LinkProfile
from simtcp.config import ArpConfig, TcpConfig
from simtcp.link import InterfaceOffload
from simtcp.programs.transfer import TransferSpec, run_transfer
from simtcp.time import MILLISECOND, SECOND
from simtcp.wire.checksum import ipv6_pseudo_header_sum, ones_complement_sum
from simtcp.wire.offload import is_whole_tcp6, segment_tcp6
from simtcp.wire.protocols import PROTOCOL_TCP
from simtcp.wire.tcp import (
    ACK,
    CHECKSUM_FULL,
    CHECKSUM_PARTIAL,
    CWR,
    FIN,
    PSH,
    SYN,
    NopOption,
    TcpSegment,
    TimestampsOption,
    segment_pieces,
)

SOFTWARE_GSO = InterfaceOffload(max_segment=65535 - 120, software_segmentation=True)
SOURCE = IPv6Address("2001:db8::1")
DESTINATION = IPv6Address("2001:db8:1::2")
ARP_FOREVER = ArpConfig(entry_lifetime=10**12)
u32 = st.integers(0, 0xFFFFFFFF)
probabilities = st.one_of(st.just(0.0), st.floats(0.005, 0.08))
profiles = st.builds(
    LinkProfile,
    loss=probabilities,
    reorder=probabilities,
    duplicate=probabilities,
    delay=st.integers(0, 20 * MILLISECOND),
    rate=st.one_of(st.just(0), st.integers(10_000_000, 1_000_000_000)),
    mtu=st.just(1500),
)


def wire_frames(pcap: bytes) -> list[tuple[int, int, bytes]]:
    """(seconds, microseconds, frame) of each record of a pcap file."""
    frames = []
    offset = 24
    while offset < len(pcap):
        seconds, micros, length = struct.unpack_from("<III", pcap, offset)
        frames.append((seconds, micros, pcap[offset + 16 : offset + 16 + length]))
        offset += 16 + length
    return frames


def ipv6_header(payload_length: int, flow_label: int, hop_limit: int) -> bytes:
    return (
        (0x6 << 28 | flow_label).to_bytes(4, "big")
        + payload_length.to_bytes(2, "big")
        + bytes((PROTOCOL_TCP, hop_limit))
        + SOURCE.packed
        + DESTINATION.packed
    )


@settings(max_examples=150, deadline=None)
@given(
    u32,
    u32,
    st.sampled_from([ACK, ACK | PSH, ACK | FIN | PSH, ACK | CWR | PSH, SYN, 0]),
    st.booleans(),
    st.integers(0, 20_000),
    st.integers(1, 3000),
    st.integers(0, 0xFFFFF),
    st.booleans(),
)
def test_segment_tcp6_is_the_pieces_built_one_by_one(
    seq: int,
    ack: int,
    flags: int,
    timestamps: bool,
    size: int,
    mss: int,
    flow_label: int,
    partial: bool,
) -> None:
    options = (NopOption(), NopOption(), TimestampsOption(seq, ack)) if timestamps else ()
    payload = bytes(index * 13 & 0xFF for index in range(size))
    segment = TcpSegment(80, 40000, seq, ack, flags, 501, options, payload)
    whole = ipv6_header(segment.header_length + size, flow_label, 64) + segment.build_ipv6(
        SOURCE, DESTINATION, checksum=CHECKSUM_PARTIAL
    )
    assert is_whole_tcp6(whole)
    checksum = CHECKSUM_PARTIAL if partial else CHECKSUM_FULL
    expected = []
    for offset, piece_flags in segment_pieces(size, mss, flags):
        piece = TcpSegment(
            80,
            40000,
            (seq + offset) & 0xFFFFFFFF,
            ack,
            piece_flags,
            501,
            options,
            payload[offset : offset + mss],
        ).build_ipv6(SOURCE, DESTINATION, checksum=checksum)
        expected.append(ipv6_header(len(piece), flow_label, 64) + piece)
    pieces = segment_tcp6(whole, mss, partial=partial)
    assert pieces == expected
    if partial:
        return
    for piece in pieces:
        decoded = IPv6(piece)
        assert decoded.plen == len(piece) - 40
        assert decoded.nh == PROTOCOL_TCP
        tcp = decoded[TCP]
        wire_checksum = tcp.chksum
        del tcp.chksum
        assert IPv6(bytes(decoded))[TCP].chksum == wire_checksum  # scapy agrees
        upper = piece[40:]
        initial = ipv6_pseudo_header_sum(SOURCE, DESTINATION, len(upper), PROTOCOL_TCP)
        assert ones_complement_sum(upper, initial) == 0xFFFF


def test_segment_tcp6_refuses_what_it_cannot_cut() -> None:
    segment = TcpSegment(80, 40000, 1, 2, ACK, 501, (), b"x" * 100)
    whole = ipv6_header(120, 0, 64) + segment.build_ipv6(SOURCE, DESTINATION)
    with pytest.raises(ValueError):
        segment_tcp6(whole, 0)
    with pytest.raises(ValueError):
        segment_tcp6(whole[:50], 10)  # payload length beyond the bytes
    hop_by_hop = bytearray(whole)
    hop_by_hop[6] = 0  # an extension header first: not ours to cut
    with pytest.raises(ValueError):
        segment_tcp6(bytes(hop_by_hop), 10)


def transfer6(
    *,
    seed: int,
    size: int,
    reverse: int,
    forward: LinkProfile,
    backward: LinkProfile,
    tcp: TcpConfig,
    offload: InterfaceOffload | None,
    point: str = "link",
) -> list[tuple[int, int, bytes]]:
    capture = io.BytesIO()
    result = run_transfer(
        TransferSpec(
            bytes=size,
            reverse_bytes=reverse,
            seed=seed,
            forward=forward,
            backward=backward,
            tcp=tcp,
            arp=ARP_FOREVER,
            offload=offload,
            ip_version=6,
        ),
        pcap=capture,
        pcap_point=point,
    )
    assert result.ok, result.reason + "\n" + result.detail
    return wire_frames(capture.getvalue())


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    forward=profiles,
    backward=profiles,
    size=st.one_of(st.integers(0, 5000), st.integers(50_000, 500_000)),
    reverse=st.integers(0, 100_000),
    sack=st.booleans(),
)
def test_ipv6_software_segmentation_on_and_off_put_the_same_frames_on_the_wire(
    seed: int, forward: LinkProfile, backward: LinkProfile, size: int, reverse: int, sack: bool
) -> None:
    captures = [
        transfer6(
            seed=seed,
            size=size,
            reverse=reverse,
            forward=forward,
            backward=backward,
            offload=SOFTWARE_GSO,
            tcp=TcpConfig(
                syn_retries=30,
                data_retries=60,
                max_rto=5 * SECOND,
                sack=sack,
                segmentation_offload=offload,
            ),
        )
        for offload in (True, False)
    ]
    assert captures[0] == captures[1]
    assert max(len(frame) for _, _, frame in captures[0]) <= 1514


def test_the_stack_really_cuts_ipv6_super_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: TCP hands IPv6 64 KiB segments, the link gets MTU-sized frames that
    scapy decodes with valid checksums."""
    import simtcp.ip6.output as output6

    cuts: list[int] = []
    original = output6.segment_tcp6

    def counting(datagram: bytes, mss: int, *, partial: bool = False) -> list[bytes]:
        pieces = original(datagram, mss, partial=partial)
        cuts.append(len(pieces))
        return pieces

    monkeypatch.setattr(output6, "segment_tcp6", counting)
    link = LinkProfile(delay=5 * MILLISECOND, mtu=1500)
    frames = transfer6(
        seed=3,
        size=2_000_000,
        reverse=0,
        forward=link,
        backward=link,
        offload=SOFTWARE_GSO,
        tcp=TcpConfig(receive_buffer_max=0),
        point="client",
    )
    # 64 KiB less headroom, in 1,428-byte pieces (1,500 - 40 - 32 with timestamps)
    assert max(cuts) >= 40
    assert max(len(frame) for _, _, frame in frames) == 1514
    for _, _, frame in frames[:400]:
        if frame[12:14] != b"\x86\xdd" or frame[20] != PROTOCOL_TCP:
            continue
        decoded = IPv6(frame[14:])
        wire_checksum = decoded[TCP].chksum
        del decoded[TCP].chksum
        assert IPv6(bytes(decoded))[TCP].chksum == wire_checksum
