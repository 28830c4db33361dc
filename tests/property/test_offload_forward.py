"""The router's offload decision (gso.plan_forward) against what must hold for any datagram."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP

from simtcp.errors import DropReason
from simtcp.ip.forward import plan_forward
from simtcp.wire.checksum import internet_checksum
from simtcp.wire.offload import l4_checksum_ok, partial_checksum, set_l4_checksum

SRC, DST = 0x0A000002, 0x0A010102


def datagram(protocol: str, size: int, *, df: bool, options: int, seed: int) -> bytes:
    payload = random.Random(seed).randbytes(size)
    l4 = (
        TCP(sport=1, dport=2, seq=seed, flags="PA", options=[("NOP", None)] * options)
        if protocol == "tcp"
        else UDP(sport=1, dport=2)
    )
    return bytes(
        IP(src="10.0.0.2", dst="10.1.1.2", flags="DF" if df else 0, id=seed & 0xFFFF) / l4 / payload
    )


def checksum_state(piece: bytes) -> str:
    if l4_checksum_ok(piece):
        return "full"
    length = len(piece) - 20
    if int.from_bytes(piece[36 if piece[9] == 6 else 26 :][:2], "big") == partial_checksum(
        SRC, DST, piece[9], length
    ):
        return "partial"
    return "bad"


@settings(max_examples=200, deadline=None)
@given(
    protocol=st.sampled_from(["tcp", "tcp", "udp"]),
    size=st.integers(0, 30000),
    df=st.booleans(),
    options=st.sampled_from([0, 4, 12]),
    seed=st.integers(0, 2**31),
    arrived_mtu=st.sampled_from([576, 1500, 9000]),
    out_mtu=st.sampled_from([576, 1500]),
    tx_checksum=st.booleans(),
    max_segment=st.sampled_from([0, 65415]),
    arrived_partial=st.booleans(),
    gso_size=st.sampled_from([0, 0, 536, 1448]),
)
def test_forwarded_pieces_fit_carry_the_bytes_and_the_right_checksums(
    protocol: str,
    size: int,
    df: bool,
    options: int,
    seed: int,
    arrived_mtu: int,
    out_mtu: int,
    tx_checksum: bool,
    max_segment: int,
    arrived_partial: bool,
    gso_size: int,
) -> None:
    original = datagram(protocol, size, df=df, options=options, seed=seed)
    arrived = bytearray(original)
    if arrived_partial:
        set_l4_checksum(arrived, partial=True)
    plan = plan_forward(
        bytes(arrived),
        arrived_mtu=arrived_mtu,
        out_mtu=out_mtu,
        tx_checksum=tx_checksum,
        max_segment=max_segment,
        verified=arrived_partial,
        gso_size=gso_size if protocol == "tcp" else 0,
    )
    assert plan.drop is None
    if plan.too_big is not None:
        # Only a real datagram too big for the next link, handed back with its whole checksum.
        assert len(original) > out_mtu and not plan.pieces and not plan.segmented
        assert plan.too_big == original
        assert protocol == "udp" or (len(original) <= arrived_mtu and not gso_size)
        return
    header_length = (
        20 + (options * 1 if protocol == "tcp" else 0) + (20 if protocol == "tcp" else 8)
    )
    data = b""
    for piece in plan.pieces:
        assert internet_checksum(piece[:20]) == 0
        tso = tx_checksum and max_segment and protocol == "tcp"
        assert len(piece) <= out_mtu or (tso and len(piece) == len(original))
        state = checksum_state(piece)
        assert state == ("partial" if tx_checksum else "full"), state
        data += piece[header_length:]
    assert data == original[header_length:]
    if plan.segmented:
        cut_at = min(gso_size or arrived_mtu - header_length, out_mtu - header_length)
        assert all(len(piece) - header_length <= cut_at for piece in plan.pieces)


@settings(max_examples=100, deadline=None)
@given(
    size=st.integers(1, 30000),
    position=st.integers(0, 10**6),
    tx_checksum=st.booleans(),
    protocol=st.sampled_from(["tcp", "udp"]),
)
def test_unvouched_corruption_is_never_given_a_good_checksum(
    size: int, position: int, tx_checksum: bool, protocol: str
) -> None:
    corrupt = bytearray(datagram(protocol, size, df=True, options=0, seed=size))
    corrupt[20 + 20 + position % size if protocol == "tcp" else 28 + position % size] ^= 0x40
    plan = plan_forward(
        bytes(corrupt),
        arrived_mtu=9000 if size > 1400 else 1500,
        out_mtu=1500,
        tx_checksum=tx_checksum,
        max_segment=0,
        verified=False,
        gso_size=0,
    )
    for piece in plan.pieces:
        assert checksum_state(piece) == "bad"
    if plan.pieces == [] and plan.too_big is None:
        assert plan.drop is DropReason.BAD_CHECKSUM
