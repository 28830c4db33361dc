"""Software GSO and GRO (simtcp/wire/offload.py, backends/nic.py), checked against scapy."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from simtcp.backends.nic import coalesce_for_tso, gro_merge
from simtcp.wire.checksum import internet_checksum
from simtcp.wire.offload import (
    l4_checksum_ok,
    partial_checksum,
    segment_tcp,
    set_l4_checksum,
    tcp_mss_for,
)

SRC, DST = "10.0.0.2", "10.1.1.2"
TS = [("Timestamp", (12345, 678)), ("NOP", None), ("NOP", None)]


def super_segment(
    size: int,
    *,
    flags: str = "PA",
    seq: int = 1000,
    ip_id: int = 7,
    options: list[object] | None = None,
    ttl: int = 63,
) -> bytes:
    payload = random.Random(size).randbytes(size)
    return bytes(
        IP(src=SRC, dst=DST, id=ip_id, flags="DF", ttl=ttl)
        / TCP(
            sport=40000,
            dport=7,
            seq=seq,
            ack=99,
            flags=flags,
            window=501,
            options=options if options is not None else TS,
        )
        / payload
    )


def scapy_verifies(datagram: bytes) -> IP:
    """Parse with scapy, and check its recomputed checksums equal the ones we wrote."""
    packet = IP(datagram)
    fresh = IP(datagram)
    del fresh.chksum
    del fresh[TCP].chksum
    rebuilt = IP(bytes(fresh))
    assert packet.chksum == rebuilt.chksum, "IP header checksum"
    assert packet[TCP].chksum == rebuilt[TCP].chksum, "TCP checksum"
    return packet


def test_cuts_at_the_mss_with_sequence_numbers_flags_ids_and_checksums() -> None:
    original = super_segment(10000, flags="FPA", seq=0xFFFFF000)
    pieces = segment_tcp(original, 1448)
    assert [len(piece) for piece in pieces] == [1500] * 6 + [52 + 10000 - 6 * 1448]
    parsed = [scapy_verifies(piece) for piece in pieces]
    assert [p[TCP].seq for p in parsed] == [(0xFFFFF000 + i * 1448) & 0xFFFFFFFF for i in range(7)]
    assert [str(p[TCP].flags) for p in parsed] == ["A"] * 6 + ["FPA"]
    assert [p.id for p in parsed] == list(range(7, 14))
    assert all(p.flags == "DF" and p.ttl == 63 for p in parsed)
    assert all(p[TCP].options == parsed[0][TCP].options for p in parsed)
    assert b"".join(bytes(p[TCP].payload) for p in parsed) == bytes(IP(original)[TCP].payload)


def test_cwr_only_on_the_first_piece() -> None:
    pieces = segment_tcp(super_segment(3000, flags="CA"), 1000)
    assert [IP(piece)[TCP].flags.value for piece in pieces] == [0x90, 0x10, 0x10]


def test_segment_that_fits_comes_back_whole_with_fresh_checksums() -> None:
    original = super_segment(500)
    broken = bytearray(original)
    broken[36:38] = b"\x12\x34"  # whatever was in the TCP checksum field
    assert segment_tcp(bytes(broken), 1448) == [original]


def test_bare_ack_is_one_piece() -> None:
    original = super_segment(0, flags="A")
    assert segment_tcp(original, 1448) == [original]


def test_partial_pieces_hold_the_pseudo_header_sum() -> None:
    pieces = segment_tcp(super_segment(4000), 1448, partial=True)
    for piece in pieces:
        tcp_length = len(piece) - 20
        expected = partial_checksum(0x0A000002, 0x0A010102, 6, tcp_length)
        assert int.from_bytes(piece[36:38], "big") == expected
        finished = bytearray(piece)
        set_l4_checksum(finished, partial=False)
        scapy_verifies(bytes(finished))


def test_zero_mss_is_refused() -> None:
    with pytest.raises(ValueError):
        segment_tcp(super_segment(100), 0)


def test_mss_for_mtu_counts_ip_and_tcp_options() -> None:
    with_options = bytes(IP(src=SRC, dst=DST, options=[b"\x01" * 4]) / TCP(options=TS))
    assert tcp_mss_for(with_options, 1500) == 1500 - 24 - 32


def test_partial_then_finished_equals_the_full_checksum_udp_and_tcp() -> None:
    for layers in (UDP(sport=5, dport=6) / b"abc", TCP(sport=5, dport=6) / b"abcd"):
        full = bytes(IP(src=SRC, dst=DST) / layers)
        partial = bytearray(full)
        set_l4_checksum(partial, partial=True)
        assert partial != bytearray(full)
        assert not l4_checksum_ok(partial)
        set_l4_checksum(partial, partial=False)
        assert bytes(partial) == full
        assert l4_checksum_ok(full)


def test_udp_without_checksum_is_left_alone() -> None:
    datagram = bytearray(bytes(IP(src=SRC, dst=DST) / UDP(sport=5, dport=6, chksum=0) / b"abc"))
    before = bytes(datagram)
    set_l4_checksum(datagram, partial=True)
    assert bytes(datagram) == before
    assert l4_checksum_ok(datagram)


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 20000), mss=st.integers(1, 3000), seq=st.integers(0, 2**32 - 1))
def test_pieces_reassemble_to_the_original_stream(size: int, mss: int, seq: int) -> None:
    original = super_segment(size, seq=seq, flags="FPA")
    pieces = segment_tcp(original, mss)
    assert all(len(piece) - 52 <= mss for piece in pieces)
    data = b""
    for piece in pieces:
        assert internet_checksum(piece[:20]) == 0
        assert l4_checksum_ok(piece)
        assert int.from_bytes(piece[24:28], "big") == (seq + len(data)) & 0xFFFFFFFF
        data += piece[52:]
    assert data == original[52:]
    assert sum(piece[33] & 0x01 for piece in pieces) == 1  # one FIN, on the last
    assert pieces[-1][33] & 0x09 == 0x09


# --- GRO ---------------------------------------------------------------------------


def wire(datagrams: list[bytes]) -> list[bytes]:
    return [
        bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(d)) for d in datagrams
    ]


def test_gro_undoes_gso() -> None:
    original = super_segment(20000, flags="PA")
    frames = wire(segment_tcp(original, 1448))
    merged = gro_merge(frames)
    assert len(merged) == 1
    assert merged[0][14:] == original


def test_gro_respects_the_size_limit() -> None:
    frames = wire(
        segment_tcp(super_segment(100_000 // 2, flags="A"), 1448)
        + segment_tcp(super_segment(50_000, flags="A", seq=1000 + 50_000), 1448)
    )
    merged = gro_merge(frames)
    assert all(len(frame) - 14 <= 65535 for frame in merged)
    assert len(merged) == 2
    payload = b"".join(frame[66:] for frame in merged)
    assert payload == b"".join(frame[66:] for frame in frames)


def test_gro_leaves_gaps_other_flows_and_bad_checksums_alone() -> None:
    pieces = wire(segment_tcp(super_segment(6000, flags="A"), 1000))
    gap = [pieces[0], pieces[1], pieces[3], pieces[4]]
    assert [len(f) for f in gro_merge(gap)] == [14 + 52 + 2000, 14 + 52 + 2000]
    corrupt = bytearray(pieces[1])
    corrupt[-1] ^= 1
    out = gro_merge([pieces[0], bytes(corrupt), pieces[2]])
    assert out == [pieces[0], bytes(corrupt), pieces[2]]
    other = wire(segment_tcp(super_segment(2000, flags="A", ip_id=9, ttl=5), 1000))
    assert gro_merge([pieces[0], other[0], pieces[1]]) == [pieces[0], other[0], pieces[1]]


def test_gro_ends_a_run_at_psh_and_at_a_short_segment() -> None:
    pieces = wire(segment_tcp(super_segment(2500, flags="PA"), 1000))  # 1000, 1000, 500+PSH
    more = wire(segment_tcp(super_segment(2000, flags="A", seq=1000 + 2500), 1000))
    merged = gro_merge(pieces + more)
    assert [len(frame) - 66 for frame in merged] == [2500, 2000]
    assert IP(merged[0][14:])[TCP].flags == "PA"
    short_first = wire(segment_tcp(super_segment(1500, flags="A"), 500))
    assert len(gro_merge(short_first)) == 1


def test_gro_passes_syn_fin_and_non_tcp_through() -> None:
    syn = wire([super_segment(0, flags="S")])
    fin = wire([super_segment(100, flags="FA")])
    udp = wire([bytes(IP(src=SRC, dst=DST) / UDP() / b"x")])
    frames = syn + fin + udp + [b"\x00" * 10]
    assert gro_merge(frames) == frames


# --- coalescing the stack's own segments for a TSO link ------------------------------


def partial_wire(datagrams: list[bytes]) -> list[bytes]:
    out = []
    for frame in wire(datagrams):
        data = bytearray(frame[14:])
        set_l4_checksum(data, partial=True)
        out.append(frame[:14] + bytes(data))
    return out


def test_coalesced_segments_are_cut_back_into_the_same_segments() -> None:
    original = super_segment(20000, flags="PA")
    segments = segment_tcp(original, 1448, partial=True)
    frames = partial_wire(segments)
    [merged] = coalesce_for_tso(frames, 1500)
    assert merged[14:52] == partial_wire([original])[0][14:52]  # headers, partial checksum
    assert merged[66:] == original[52:]
    assert segment_tcp(merged[14:], tcp_mss_for(merged[14:], 1500), partial=True) == segments


def test_coalescing_starts_only_at_a_full_sized_segment() -> None:
    short = partial_wire(segment_tcp(super_segment(3000, flags="A"), 1000, partial=True))
    assert coalesce_for_tso(short, 1500) == short  # 1000 < 1448: the link would cut elsewhere
    full = partial_wire(segment_tcp(super_segment(1448 * 3 + 100, flags="A"), 1448))
    assert len(coalesce_for_tso(full, 1500)) == 1
    assert len(coalesce_for_tso(full, 1400)) == 4  # smaller MSS on that link: leave them


def test_coalescing_keeps_acks_and_other_flows_in_place() -> None:
    data = partial_wire(segment_tcp(super_segment(1448 * 4, flags="A"), 1448))
    ack = partial_wire([super_segment(0, flags="A", seq=99)])
    frames = data[:2] + ack + data[2:]
    merged = coalesce_for_tso(frames, 1500)
    assert [len(f) - 66 for f in merged] == [2896, 0, 2896]
