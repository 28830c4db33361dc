"""Software GRO per flow (``gro_receive``, ``gro_merge(flows=...)``) over interleaved flows.

Several flows' segments (dropped, duplicated, reordered, with PSH, short ones, SYN/FIN,
pure ACKs, changing timestamps, bad checksums) are interleaved at random with frames of
no flow (ARP, ICMP) and TCP fragments. Per flow, the output must carry exactly the input
frames' bytes in the same order: each output frame is either an input frame unchanged or
the merge of the next few input frames of its flow, all of them plain in-order data with
good checksums. Nothing is lost or duplicated; frames of no flow keep their order; a
fragment (flow unknown) comes after everything read before it.
"""

from __future__ import annotations

import random
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp.backends.nic import ETHERNET_HEADER_LENGTH, gro_merge, gro_receive
from simtcp.wire.checksum import internet_checksum, pseudo_header_sum
from simtcp.wire.ethernet import ETHERTYPE_IPV4, build_ethernet_header
from simtcp.wire.ipv4 import Ipv4Packet
from simtcp.wire.protocols import PROTOCOL_TCP
from simtcp.wire.tcp import ACK, FIN, PSH, SYN, TcpSegment, TimestampsOption

MACS = build_ethernet_header(
    bytes.fromhex("020000000001"), bytes.fromhex("0a0000000002"), ETHERTYPE_IPV4
)
SERVER = 0x0A000001
IP = ETHERNET_HEADER_LENGTH
ARP = bytes.fromhex("0200000000010a00000000020806") + bytes(range(28))
ICMP = MACS + Ipv4Packet(0x0A000002, SERVER, 1, b"\x08\x00\xf7\xff" + b"\0" * 4).build()


def tcp_frame(
    client: int,
    port: int,
    seq: int,
    flags: int,
    payload: bytes,
    *,
    ts: int,
    bad: bool = False,
    fragment: bool = False,
) -> bytes:
    segment = TcpSegment(port, 80, seq, 777, flags, 501, (TimestampsOption(ts, 9),), payload)
    l4 = bytearray(segment.build(client, SERVER))
    if bad:
        l4[-1 if payload else 16] ^= 0x20
    return (
        MACS
        + Ipv4Packet(
            client,
            SERVER,
            PROTOCOL_TCP,
            bytes(l4),
            identification=seq & 0xFFFF,
            dont_fragment=not fragment,
            more_fragments=fragment,
        ).build()
    )


# One segment of a flow: (size, flags, timestamp step, bad checksum).
segments = st.tuples(
    st.sampled_from([1448, 1448, 1448, 1448, 1448, 700, 1, 0]),
    st.sampled_from([ACK, ACK, ACK, ACK, ACK | PSH, ACK | FIN, SYN]),
    st.sampled_from([0, 0, 0, 0, 1]),
    st.sampled_from([False] * 9 + [True]),
)
edits = st.lists(
    st.tuples(st.sampled_from(["drop", "dup", "swap"]), st.integers(0, 200)), max_size=4
)
flows_of_segments = st.lists(
    st.tuples(st.lists(segments, min_size=1, max_size=30), edits), min_size=1, max_size=5
)


def flow_frames(
    index: int, parts: list[tuple[int, int, int, bool]], changes: list[tuple[str, int]], seed: int
) -> list[bytes]:
    rng = random.Random(seed + index)
    client = 0x0A000002 + (index & 1)  # two flows per address, ports apart
    seq, ts = rng.getrandbits(32), 1000
    frames = []
    for size, flags, step, bad in parts:
        ts += step
        frames.append(
            tcp_frame(client, 40000 + index, seq, flags, rng.randbytes(size), ts=ts, bad=bad)
        )
        seq = (seq + size) & 0xFFFFFFFF
    for change, at in changes:
        at %= len(frames)
        if change == "drop" and len(frames) > 1:
            del frames[at]
        elif change == "dup":
            frames.insert(at, frames[at])
        elif change == "swap" and at + 1 < len(frames):
            frames[at], frames[at + 1] = frames[at + 1], frames[at]
    return frames


def interleave(streams: list[list[bytes]], others: list[bytes], seed: int) -> list[bytes]:
    rng = random.Random(seed)
    queues = [list(s) for s in streams] + [[frame] for frame in others]
    out = []
    while queues:
        queue = rng.choice(queues)
        out.append(queue.pop(0))
        if not queue:
            queues.remove(queue)
    return out


def flow_of(frame: bytes) -> bytes | None:
    """A complete TCP frame's 4-tuple; None for anything else (fragments included)."""
    if frame[12:14] != b"\x08\x00" or frame[IP + 9] != PROTOCOL_TCP or frame[IP + 6] & 0x3F:
        return None
    return frame[26:38]


def fields(frame: bytes) -> tuple[int, int, bytes]:
    """(sequence number, flags, payload) of an option-less-IP TCP frame."""
    total = struct.unpack_from("!H", frame, IP + 2)[0]
    header = (frame[IP + 32] >> 4) * 4
    return (
        struct.unpack_from("!I", frame, IP + 24)[0],
        frame[IP + 33],
        frame[IP + 20 + header : IP + total],
    )


def tcp_checksum_ok(frame: bytes) -> bool:
    total = struct.unpack_from("!H", frame, IP + 2)[0]
    source, destination = struct.unpack_from("!II", frame, IP + 12)
    initial = pseudo_header_sum(source, destination, PROTOCOL_TCP, total - 20)
    return internet_checksum(frame[IP + 20 : IP + total], initial) == 0


def merge_key(frame: bytes) -> bytes:
    """What must be equal for two segments to merge: every header byte but the IP length,
    identification and checksum, and the TCP sequence number, flags and checksum."""
    header = IP + 20 + (frame[IP + 32] >> 4) * 4
    return b"".join(
        (
            frame[: IP + 2],
            frame[IP + 6 : IP + 10],
            frame[IP + 12 : IP + 24],
            frame[IP + 28 : IP + 33],
            frame[IP + 34 : IP + 36],
            frame[IP + 38 : header],
        )
    )


def mergeable(frame: bytes) -> bool:
    _, flags, payload = fields(frame)
    return flags in (ACK, ACK | PSH) and bool(payload) and tcp_checksum_ok(frame)


def check_flow(
    inputs: list[tuple[int, bytes]],
    outputs: list[tuple[int, tuple[bytes, bool, int]]],
    full_checksums: bool,
    placed: dict[int, int],
    limit: int,
) -> None:
    """Walk one flow's output against its input; ``placed``: input index -> output index."""
    pending = list(inputs)
    for position, (frame, verified, gso_size) in outputs:
        assert pending, "an output frame beyond the flow's input"
        index, first = pending[0]
        if frame == first:
            pending.pop(0)
            placed[index] = position
            assert gso_size == 0 and verified == mergeable(first)
            continue
        seq, flags, payload = fields(frame)
        first_seq, _, first_payload = fields(first)
        assert seq == first_seq and len(payload) > len(first_payload)
        assert (
            frame[: IP + 2] == first[: IP + 2]
            and frame[IP + 4 : IP + 10] == first[IP + 4 : IP + 10]
        )
        assert frame[IP + 12 : IP + 33] == first[IP + 12 : IP + 33]
        assert internet_checksum(frame[IP : IP + 20]) == 0
        assert verified and gso_size == len(first_payload)
        pieces, taken = [], 0
        while taken < len(payload):
            index, piece = pending.pop(0)
            placed[index] = position
            piece_seq, piece_flags, piece_payload = fields(piece)
            assert mergeable(piece) and piece_seq == (seq + taken) & 0xFFFFFFFF
            assert merge_key(piece) == merge_key(first) == merge_key(frame)
            assert len(piece_payload) <= len(first_payload)
            pieces.append(piece)
            taken += len(piece_payload)
        assert b"".join(fields(p)[2] for p in pieces) == payload and len(pieces) > 1
        assert all(not fields(p)[1] & PSH for p in pieces[:-1])
        assert all(len(fields(p)[2]) == len(first_payload) for p in pieces[:-1])
        assert flags == ACK | (fields(pieces[-1])[1] & PSH)
        assert len(frame) - IP <= limit
        if full_checksums:
            assert tcp_checksum_ok(frame)
        else:
            assert frame[IP + 36 : IP + 38] == first[IP + 36 : IP + 38]
    assert not pending, "input frames of the flow missing from the output"


def check(
    frames: list[bytes], out: list[tuple[bytes, bool, int]], *, full: bool, limit: int = 65535
) -> None:
    inputs: dict[bytes, list[tuple[int, bytes]]] = {}
    outputs: dict[bytes, list[tuple[int, tuple[bytes, bool, int]]]] = {}
    placed: dict[int, int] = {}
    for index, frame in enumerate(frames):
        inputs.setdefault(flow_of(frame) or b"", []).append((index, frame))
    for position, item in enumerate(out):
        outputs.setdefault(flow_of(item[0]) or b"", []).append((position, item))
    assert inputs.keys() == outputs.keys()
    others = inputs.pop(b"", [])
    assert [frame for _, frame in others] == [item[0] for _, item in outputs.pop(b"", [])]
    for (index, _), (position, (_, verified, gso_size)) in zip(
        others, [(p, i) for p, i in enumerate(out) if flow_of(i[0]) is None], strict=True
    ):
        placed[index] = position
        assert not verified and gso_size == 0
    for flow, flow_inputs in inputs.items():
        check_flow(flow_inputs, outputs[flow], full, placed, limit)
    assert sorted(placed) == list(range(len(frames)))
    for index, frame in enumerate(frames):
        if frame[12:14] == b"\x08\x00" and flow_of(frame) is None and frame[IP + 9] == 6:
            # A fragment may belong to any flow: everything read before it goes first.
            assert all(placed[earlier] < placed[index] for earlier in range(index))


@settings(max_examples=200, deadline=None)
@given(
    flows=flows_of_segments,
    others=st.lists(st.sampled_from(["arp", "icmp", "fragment"]), max_size=3),
    table=st.sampled_from([1, 2, 3, 8]),
    limit=st.sampled_from([65535, 65535, 6000]),
    seed=st.integers(0, 2**32),
)
def test_per_flow_gro_delivers_every_flow_exactly(
    flows: list[tuple[list[tuple[int, int, int, bool]], list[tuple[str, int]]]],
    others: list[str],
    table: int,
    limit: int,
    seed: int,
) -> None:
    streams = [flow_frames(i, parts, changes, seed) for i, (parts, changes) in enumerate(flows)]
    extra = [
        ARP
        if kind == "arp"
        else ICMP
        if kind == "icmp"
        else tcp_frame(0x0A000009, 1234, seed & 0xFFFF, ACK, b"frag" * 8, ts=1, fragment=True)
        for kind in others
    ]
    frames = interleave(streams, extra, seed)
    received = gro_receive(frames, limit=limit, flows=table)
    check(frames, received, full=False, limit=limit)
    merged = gro_merge(frames, limit=limit, flows=table)
    check(
        frames,
        [(f, r[1], r[2]) for f, r in zip(merged, received, strict=True)],
        full=True,
        limit=limit,
    )
    for frame, (reference, _, _) in zip(merged, received, strict=True):
        assert frame[: IP + 36] == reference[: IP + 36] and frame[IP + 38 :] == reference[IP + 38 :]


@settings(max_examples=60, deadline=None)
@given(parts=st.lists(segments, min_size=1, max_size=40), changes=edits, seed=st.integers(0, 2**32))
def test_one_flow_alone_merges_as_adjacent_runs_do(
    parts: list[tuple[int, int, int, bool]], changes: list[tuple[str, int]], seed: int
) -> None:
    frames = flow_frames(0, parts, changes, seed)
    assert gro_receive(frames) == gro_receive(frames, flows=0)
    assert gro_merge(frames, flows=8) == gro_merge(frames)


def round_robin(count: int, per_flow: int) -> list[list[bytes]]:
    return [
        [
            tcp_frame(0x0A000002, 40000 + flow, 5000 + 1448 * n, ACK, bytes([flow]) * 1448, ts=1)
            for n in range(per_flow)
        ]
        for flow in range(count)
    ]


def test_interleaved_flows_merge_each_while_adjacency_merges_none() -> None:
    streams = round_robin(16, 8)
    frames = [stream[n] for n in range(8) for stream in streams]
    assert len(gro_receive(frames, flows=0)) == 128
    merged = gro_receive(frames, flows=16)
    assert [(len(f), v, g) for f, v, g in merged] == [(14 + 52 + 8 * 1448, True, 1448)] * 16
    assert [fields(f)[2] for f, _, _ in merged] == [bytes([flow]) * 1448 * 8 for flow in range(16)]
    # With 8 open flows, round-robin over 16 evicts each run before its next frame comes.
    assert [f for f, _, _ in gro_receive(frames, flows=8)] == frames
    check(frames, gro_receive(frames), full=False)


def test_frames_of_no_flow_do_not_wait_and_do_not_end_runs() -> None:
    first, second = round_robin(2, 3)
    frames = [first[0], ARP, second[0], first[1], ICMP, second[1], first[2], second[2]]
    out = [f for f, _, _ in gro_receive(frames)]
    assert out[:2] == [ARP, ICMP] and len(out) == 4
    assert [fields(f)[2] for f in out[2:]] == [b"\0" * 1448 * 3, b"\1" * 1448 * 3]


def test_a_frame_of_the_flow_that_cannot_join_flushes_its_run_first() -> None:
    first, second = round_robin(2, 4)
    fin = tcp_frame(0x0A000002, 40000, 5000 + 1448 * 2, ACK | FIN, b"", ts=1)
    frames = [first[0], second[0], first[1], fin, second[1], second[2]]
    out = [f for f, _, _ in gro_receive(frames)]
    assert [fields(f)[2] for f in out] == [b"\0" * 2896, b"", b"\1" * 1448 * 3]
    assert out[1] == fin


def test_a_run_stops_before_the_datagram_would_exceed_the_limit() -> None:
    first, second = round_robin(2, 10)
    frames = [frame for pair in zip(first, second, strict=True) for frame in pair]
    out = gro_receive(frames, limit=6000)
    assert sorted(len(fields(f)[2]) // 1448 for f, _, _ in out) == [2, 2, 4, 4, 4, 4]
    check(frames, out, full=False, limit=6000)
