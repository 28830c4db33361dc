"""gso's incremental checksums against the from-scratch code they replaced (the oracles).

``segment_tcp`` sums each piece's headers once and adds the words that change
(RFC 1624's idea), ``nic_transmit`` takes the checksum field out of the sum
arithmetically instead of zeroing a copy, and ``gro_merge`` derives a merged
segment's checksum from its pieces' verified checksums (or, told the frames are
verified, does not check them at all). The bytes must be the ones the
straightforward versions below produce: every checksum recomputed over every
byte, every frame verified.
"""

from __future__ import annotations

import functools
import hashlib
import io
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import simtcp.backends.sim
from simtcp.backends.impair import LinkProfile
from simtcp.backends.nic import ETHERNET_HEADER_LENGTH, _runs, gro_merge, nic_transmit
from simtcp.link import InterfaceOffload
from simtcp.programs.transfer import TransferSpec, run_transfer
from simtcp.time import MILLISECOND
from simtcp.wire.checksum import Buffer, internet_checksum, ones_complement_sum, pseudo_header_sum
from simtcp.wire.ethernet import ETHERTYPE_IPV4, build_ethernet_header
from simtcp.wire.ipv4 import PROTOCOL_UDP, Ipv4Packet
from simtcp.wire.offload import _CHECKSUM_OFFSET, segment_tcp, set_l4_checksum
from simtcp.wire.offload import l4_fields as _l4_fields
from simtcp.wire.protocols import PROTOCOL_TCP
from simtcp.wire.tcp import ACK, CWR, FIN, PSH, SYN, TcpSegment, TimestampsOption
from simtcp.wire.tcp import CWR as TCP_CWR
from simtcp.wire.tcp import FIN as TCP_FIN
from simtcp.wire.tcp import PSH as TCP_PSH
from simtcp.wire.udp import UdpDatagram

SETTINGS = settings(max_examples=150, deadline=None)
SRC, DST = 0x0A000002, 0x0A010102
MACS = build_ethernet_header(
    bytes.fromhex("020000000002"), bytes.fromhex("020000000001"), ETHERTYPE_IPV4
)


# --- the oracles: the code before the incremental checksums, verbatim in substance ---


def segment_tcp_oracle(datagram: Buffer, mss: int, *, partial: bool = False) -> list[bytes]:
    view = memoryview(datagram)
    ip_length, _, source, destination, tcp_length = _l4_fields(view)
    tcp_header_length = (view[ip_length + 12] >> 4) * 4
    ip_header = bytearray(view[:ip_length])
    tcp_header = bytearray(view[ip_length : ip_length + tcp_header_length])
    payload = view[ip_length + tcp_header_length : ip_length + tcp_length]
    seq = int.from_bytes(tcp_header[4:8], "big")
    flags = tcp_header[13]
    identification = (ip_header[4] << 8) | ip_header[5]
    offsets = range(0, max(len(payload), 1), mss)
    last = len(offsets) - 1
    pieces: list[bytes] = []
    for index, offset in enumerate(offsets):
        chunk = payload[offset : offset + mss]
        piece_flags = flags if index == last else flags & ~(TCP_FIN | TCP_PSH)
        if index:
            piece_flags &= ~TCP_CWR
        segment_length = tcp_header_length + len(chunk)
        tcp_header[4:8] = ((seq + offset) & 0xFFFFFFFF).to_bytes(4, "big")
        tcp_header[13] = piece_flags
        tcp_header[16:18] = b"\0\0"
        pseudo = pseudo_header_sum(source, destination, PROTOCOL_TCP, segment_length)
        if partial:
            checksum = ones_complement_sum(b"", pseudo)
        else:
            checksum = internet_checksum(chunk, ones_complement_sum(tcp_header, pseudo))
        tcp_header[16:18] = checksum.to_bytes(2, "big")
        ip_header[2:4] = (ip_length + segment_length).to_bytes(2, "big")
        ip_header[4:6] = ((identification + index) & 0xFFFF).to_bytes(2, "big")
        ip_header[10:12] = b"\0\0"
        ip_header[10:12] = internet_checksum(ip_header).to_bytes(2, "big")
        pieces.append(b"".join((ip_header, tcp_header, chunk)))
    return pieces


def nic_transmit_oracle(frame: bytes, mtu: int) -> list[bytes]:
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
    datagram = frame[ip : ip + total_length]
    if protocol == PROTOCOL_TCP and total_length > mtu and total_length >= header_length + 20:
        tcp_header_length = (datagram[header_length + 12] >> 4) * 4
        mss = mtu - header_length - tcp_header_length
        if 20 <= tcp_header_length <= total_length - header_length and mss > 0:
            return [frame[:ip] + piece for piece in segment_tcp_oracle(datagram, mss)]
    finished = bytearray(datagram)
    set_l4_checksum(finished, partial=False)
    return [frame[:ip] + bytes(finished) + frame[ip + total_length :]]


def merged_oracle(run: list[bytes]) -> bytes:
    if len(run) == 1:
        return run[0]
    first = run[0]
    ip = ETHERNET_HEADER_LENGTH
    start = ip + 20 + (first[ip + 32] >> 4) * 4
    payloads = [
        memoryview(frame)[start : ip + ((frame[ip + 2] << 8) | frame[ip + 3])] for frame in run
    ]
    datagram = bytearray(first[ip:start])
    datagram[2:4] = (len(datagram) + sum(len(p) for p in payloads)).to_bytes(2, "big")
    datagram[10:12] = b"\0\0"
    datagram[10:12] = internet_checksum(datagram[:20]).to_bytes(2, "big")
    datagram[33] |= run[-1][ip + 33] & TCP_PSH
    datagram += b"".join(payloads)
    set_l4_checksum(datagram, partial=False)
    return first[:ip] + bytes(datagram)


def gro_merge_oracle(frames: list[bytes]) -> list[bytes]:
    return [
        merged_oracle(run) if len(run) > 1 else run[0]
        for run, _ in _runs(frames, limit=65535, verify=True, mtu=None)
    ]


# --- inputs ---------------------------------------------------------------------


def tcp_datagram(
    payload: bytes,
    *,
    seq: int,
    flags: int,
    timestamps: bool,
    ip_options: int,
    identification: int,
    checksum: str,
    ts_value: int | None = None,
) -> bytes:
    """A TCP datagram with a full, partial, or damaged checksum, maybe with IP options."""
    ts_value = seq ^ 0x5A5A if ts_value is None else ts_value
    options = (TimestampsOption(ts_value, 7),) if timestamps else ()
    segment = TcpSegment(40000, 80, seq, 12345, flags, 65535, options, payload)
    l4 = bytearray(segment.build(SRC, DST))
    if checksum == "partial":
        l4[16:18] = ones_complement_sum(
            b"", pseudo_header_sum(SRC, DST, PROTOCOL_TCP, len(l4))
        ).to_bytes(2, "big")
    elif checksum == "bad":
        l4[16] ^= 0x40
    header = bytearray(
        Ipv4Packet(
            SRC, DST, PROTOCOL_TCP, b"", identification=identification, dont_fragment=True
        ).build()
    )
    if ip_options:
        header += b"\x01" * (4 * ip_options)  # NOP options
        header[0] = 0x45 + ip_options
        header[2:4] = (len(header) + len(l4)).to_bytes(2, "big")
        header[10:12] = b"\0\0"
        header[10:12] = internet_checksum(header).to_bytes(2, "big")
    else:
        header[2:4] = (len(header) + len(l4)).to_bytes(2, "big")
        header[10:12] = b"\0\0"
        header[10:12] = internet_checksum(header).to_bytes(2, "big")
    return bytes(header + l4)


flag_sets = st.sampled_from([ACK, ACK | PSH, ACK | FIN, ACK | CWR | PSH, SYN, ACK | FIN | PSH])
checksums = st.sampled_from(["full", "full", "partial", "bad"])


@SETTINGS
@given(
    size=st.integers(0, 12000),
    seq=st.integers(0, 0xFFFFFFFF),
    flags=flag_sets,
    timestamps=st.booleans(),
    ip_options=st.sampled_from([0, 0, 1, 3]),
    identification=st.integers(0, 0xFFFF),
    checksum=checksums,
    mss=st.sampled_from([1, 7, 536, 1447, 1448, 1460, 5000, 9000]),
    partial=st.booleans(),
    seed=st.integers(0, 2**32),
)
def test_segment_tcp_matches_the_from_scratch_oracle(
    size: int,
    seq: int,
    flags: int,
    timestamps: bool,
    ip_options: int,
    identification: int,
    checksum: str,
    mss: int,
    partial: bool,
    seed: int,
) -> None:
    if mss == 1:
        size = min(size, 40)  # one piece per byte
    payload = random.Random(seed).randbytes(size)
    datagram = tcp_datagram(
        payload,
        seq=seq,
        flags=flags,
        timestamps=timestamps,
        ip_options=ip_options,
        identification=identification,
        checksum=checksum,
    )
    assert segment_tcp(datagram, mss, partial=partial) == segment_tcp_oracle(
        datagram, mss, partial=partial
    )


@SETTINGS
@given(
    size=st.integers(0, 9000),
    protocol=st.sampled_from(["tcp", "tcp", "udp"]),
    checksum=checksums,
    udp_zero=st.booleans(),
    ip_options=st.sampled_from([0, 0, 2]),
    padding=st.sampled_from([0, 0, 6]),
    mtu=st.sampled_from([576, 1500, 9000]),
    edits=st.lists(st.tuples(st.integers(0, 100), st.integers(0, 255)), max_size=2),
    seed=st.integers(0, 2**32),
)
def test_nic_transmit_matches_the_from_scratch_oracle(
    size: int,
    protocol: str,
    checksum: str,
    udp_zero: bool,
    ip_options: int,
    padding: int,
    mtu: int,
    edits: list[tuple[int, int]],
    seed: int,
) -> None:
    payload = random.Random(seed).randbytes(size)
    if protocol == "tcp":
        datagram = tcp_datagram(
            payload,
            seq=seed & 0xFFFFFFFF,
            flags=ACK | PSH,
            timestamps=bool(seed & 1),
            ip_options=ip_options,
            identification=seed & 0xFFFF,
            checksum=checksum,
        )
    else:
        udp = bytearray(UdpDatagram(5353, 53, payload).build(SRC, DST))
        if udp_zero:
            udp[6:8] = b"\0\0"
        elif checksum == "bad":
            udp[6] ^= 1
        datagram = Ipv4Packet(SRC, DST, PROTOCOL_UDP, bytes(udp)).build()
    frame = bytearray(MACS + datagram + b"\0" * padding)
    for at, value in edits:  # damage anywhere: headers included
        frame[at % len(frame)] = value
    assert nic_transmit(bytes(frame), mtu) == nic_transmit_oracle(bytes(frame), mtu)


def flow_frames(
    sizes: list[int], flags: list[int], seed: int, checksums: list[str], timestamps: bool
) -> list[bytes]:
    frames = []
    seq = seed & 0xFFFFFFFF
    rng = random.Random(seed)
    for index, size in enumerate(sizes):
        payload = rng.randbytes(size)
        frames.append(
            MACS
            + tcp_datagram(
                payload,
                seq=seq,
                flags=flags[index % len(flags)],
                timestamps=timestamps,
                ip_options=0,
                identification=index,
                checksum=checksums[index % len(checksums)],
                ts_value=seed & 0xFFFF,
            )
        )
        seq = (seq + size) & 0xFFFFFFFF
    return frames


@SETTINGS
@given(
    sizes=st.lists(st.sampled_from([1, 99, 1447, 1448, 1448, 1448, 1448]), min_size=1, max_size=50),
    flags=st.lists(st.sampled_from([ACK, ACK, ACK, ACK | PSH, ACK | FIN]), min_size=1, max_size=5),
    frame_checksums=st.lists(
        st.sampled_from(["full", "full", "full", "partial", "bad"]), min_size=1, max_size=5
    ),
    timestamps=st.booleans(),
    seed=st.integers(0, 2**32),
    damaged_ip_header=st.none() | st.tuples(st.integers(0, 49), st.integers(14, 33)),
)
def test_gro_merge_matches_the_from_scratch_oracle(
    sizes: list[int],
    flags: list[int],
    frame_checksums: list[str],
    timestamps: bool,
    seed: int,
    damaged_ip_header: tuple[int, int] | None,
) -> None:
    frames = flow_frames(sizes, flags, seed, frame_checksums, timestamps)
    expected = gro_merge_oracle(frames)
    assert gro_merge(frames) == expected
    good = flow_frames(sizes, flags, seed, ["full"], timestamps)
    if damaged_ip_header is not None:  # told the TCP checksums are good, GRO still checks IP's
        index, at = damaged_ip_header
        frame = bytearray(good[index % len(good)])
        frame[at] ^= 0x10
        good[index % len(good)] = bytes(frame)
    assert gro_merge(good, verified=True) == gro_merge_oracle(good)


def test_the_merge_tests_do_merge() -> None:
    """The oracle comparisons are only worth something if runs really merge."""
    frames = flow_frames([1448] * 4 + [1447] * 3 + [100], [ACK], 11, ["full"], True)
    assert len(gro_merge(frames)) == 2  # a shorter segment ends the first run


def test_odd_payloads_shift_the_later_pieces_to_odd_offsets() -> None:
    """Pieces of odd length put the next payload at an odd offset: its sum is byte-swapped."""
    frames = flow_frames([1447, 1447, 1447, 1447], [ACK], 3, ["full"], True)
    merged = gro_merge(frames, verified=True)
    assert len(merged) == 1
    assert merged == gro_merge_oracle(frames) == gro_merge(frames)


def test_the_zero_corners_of_ones_complement_arithmetic() -> None:
    """A UDP checksum that computes to 0 goes out as 0xffff (RFC 768), and a partial
    checksum whose pseudo-header sum is a multiple of 0xffff is 0xffff, not 0."""
    payload = bytearray(100)
    udp = bytearray(UdpDatagram(5353, 53, bytes(payload)).build(SRC, DST, with_checksum=False))
    total = ones_complement_sum(udp, pseudo_header_sum(SRC, DST, PROTOCOL_UDP, len(udp)))
    udp[-2:] = ((-total) % 0xFFFF or 0xFFFF).to_bytes(2, "big")  # the sum is now 0 mod 0xffff
    udp[6:8] = b"\x12\x34"
    frame = MACS + Ipv4Packet(SRC, DST, PROTOCOL_UDP, bytes(udp)).build()
    (sent,) = nic_transmit(frame, 1500)
    assert sent[14 + 20 + 6 : 14 + 20 + 8] == b"\xff\xff"
    assert [sent] == nic_transmit_oracle(frame, 1500)
    # 0x0a00 + 0x0002 + 0x0a01 + 0x0102 + 6 + length = 0xffff at a 60,148-byte segment.
    datagram = tcp_datagram(
        bytes(60148 - 20),
        seq=1,
        flags=ACK,
        timestamps=False,
        ip_options=0,
        identification=1,
        checksum="full",
    )
    (piece,) = segment_tcp(datagram, 65000, partial=True)
    assert piece[36:38] == b"\xff\xff"
    assert [piece] == segment_tcp_oracle(datagram, 65000, partial=True)


@pytest.mark.parametrize("tx_checksum", [False, True])
def test_a_simulated_gso_link_may_tell_gro_its_frames_are_verified(
    monkeypatch: pytest.MonkeyPatch, tx_checksum: bool
) -> None:
    """What the simulator could pass (``verified=`` for a direction whose sending NIC
    finished every checksum, ``LinkProfile.gso``, and that corrupts nothing): the same
    frames at the server, the same times and counts, with and without the shortcut."""
    ms = MILLISECOND
    link = LinkProfile(
        delay=1 * ms,
        loss=0.01,
        reorder=0.02,
        duplicate=0.01,
        reorder_delay=2 * ms,
        mtu=1500,
        gso=True,
        gro=True,
    )
    offload = InterfaceOffload(max_segment=65535 - 120, tx_checksum=True) if tx_checksum else None
    spec = TransferSpec(
        bytes=600_000, reverse_bytes=50_000, seed=12, forward=link, backward=link, offload=offload
    )
    results = []
    for verified in (False, True):
        if verified:
            monkeypatch.setattr(
                simtcp.backends.sim, "gro_merge", functools.partial(gro_merge, verified=True)
            )
        pcap = io.BytesIO()
        result = run_transfer(spec, pcap=pcap, pcap_point="server")
        assert result.ok
        results.append(
            (
                hashlib.sha256(pcap.getvalue()).hexdigest(),
                result.virtual_seconds,
                result.retransmits,
                result.link_stats,
                result.server_stats,
            )
        )
    assert results[0] == results[1]
