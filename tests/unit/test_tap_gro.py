"""Software GRO on a TAP without offloads: ``gro_receive`` and ``TapLoop(gro=True)``.

The frames the loop hands over must carry exactly the payload bytes that were
read, in order, and be marked verified only when their checksums were checked;
a real Stack fed merged segments must deliver the same bytes as one fed frame
by frame.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from simtcp import Stack, StackConfig
from simtcp.backends.nic import gro_merge, gro_receive
from simtcp.backends.tap import TapDevice, TapLoop
from simtcp.events import ConnectionAccepted, DataReceived
from simtcp.wire.checksum import internet_checksum
from simtcp.wire.offload import segment_tcp
from tests.fake_tap import FakeStack, socketpair_device

pytestmark = pytest.mark.timeout(60)

SRC, DST = "10.0.0.2", "10.0.0.1"
TS = [("NOP", None), ("NOP", None), ("Timestamp", (12345, 678))]


def wire_frames(size: int, mss: int, *, flags: str = "A", seq: int = 1000) -> list[bytes]:
    payload = random.Random(size).randbytes(size)
    datagram = bytes(
        IP(src=SRC, dst=DST, id=7, flags="DF")
        / TCP(sport=40000, dport=80, seq=seq, ack=99, flags=flags, window=501, options=TS)
        / payload
    )
    return [
        bytes(Ether(src="0a:00:00:00:00:02", dst="02:00:00:00:00:01") / IP(piece))
        for piece in segment_tcp(datagram, mss)
    ]


def payload_of(frame: bytes) -> bytes:
    ip = IP(frame[14:])
    return bytes(ip[TCP].payload)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 6000), st.sampled_from(["A", "PA", "FA", "S"]), st.booleans()),
        min_size=1,
        max_size=4,
    ),
    st.integers(500, 1448),
)
def test_gro_receive_is_gro_merge_with_the_verdicts(
    parts: list[tuple[int, str, bool]], mss: int
) -> None:
    frames: list[bytes] = []
    seq = 1000
    for size, flags, corrupt in parts:
        pieces = wire_frames(size, mss, flags=flags, seq=seq)
        if corrupt:
            damaged = bytearray(pieces[0])
            damaged[-1] ^= 0x40
            pieces[0] = bytes(damaged)
        frames += pieces
        seq += size
    received = gro_receive(frames)
    merged = gro_merge(frames)
    assert len(received) == len(merged)
    for (frame, verified, gso_size), reference in zip(received, merged, strict=True):
        # Everything but the TCP checksum (left as the first piece's) is gro_merge's frame.
        assert frame[:50] == reference[:50] and frame[52:] == reference[52:]
        assert internet_checksum(frame[14:34]) == 0
        if gso_size:
            assert verified and frame not in frames and len(payload_of(frame)) > gso_size
            continue
        assert frame == reference and frame in frames
        tcp = IP(frame[14:])[TCP]
        plain_data = str(tcp.flags) in ("A", "PA") and len(tcp.payload) > 0
        assert verified == (plain_data and _checksums_ok(frame))
    assert b"".join(payload_of(f) for f, _, _ in received) == b"".join(
        payload_of(f) for f in frames
    )


def _checksums_ok(frame: bytes) -> bool:
    fresh = IP(frame[14:])
    del fresh.chksum
    del fresh[TCP].chksum
    return IP(bytes(fresh))[TCP].chksum == IP(frame[14:])[TCP].chksum


@pytest.fixture
def pair() -> Iterator[tuple[TapDevice, socket.socket]]:
    with socketpair_device(kernel_receive_buffer=1 << 20) as devices:
        yield devices


def test_the_loop_merges_a_batch_only_when_asked(pair: tuple[TapDevice, socket.socket]) -> None:
    device, kernel = pair
    frames = wire_frames(10 * 1448, 1448) + wire_frames(100, 1448, flags="PA", seq=1000 + 14480)
    for gro, expected in (
        (False, [(len(f), False, 0) for f in frames]),
        (True, [(14 + 52 + 14580, True, 1448)]),
    ):
        stack = FakeStack()
        loop = TapLoop(stack, [device], gro=gro)
        try:
            for frame in frames:
                kernel.send(frame)
            loop.run_once()
        finally:
            loop.close()
        assert [(len(r.frame), r.checksum_verified, r.gso_size) for r in stack.received] == expected
        assert b"".join(payload_of(r.frame) for r in stack.received) == b"".join(
            payload_of(f) for f in frames
        )
        assert loop.counters["gro_merged"] == (1 if gro else 0)


def _stack(mac: str, address: str) -> Stack:
    stack = Stack(StackConfig(seed=5))
    stack.add_interface("e", mac=mac)
    stack.add_address("e", address)
    return stack


@pytest.mark.parametrize("gro", [False, True])
def test_a_stack_fed_merged_segments_receives_every_byte(gro: bool) -> None:
    client, server = (
        _stack("0a:00:00:00:00:02", SRC + "/24"),
        _stack("02:00:00:00:00:01", DST + "/24"),
    )
    server.tcp_listen(80)
    now = 1_000
    handle = client.tcp_connect(DST, 80, now=now)
    data = random.Random(1).randbytes(600_000)
    sent = 0
    received = bytearray()
    accepted = None
    for _ in range(2000):
        now += 100
        if sent < len(data):
            sent += client.send(handle, data[sent : sent + 65536], now=now)
        batch = [frame for _, frame in client.frames_to_send(now=now)]
        for frame, verified, gso_size in (
            gro_receive(batch) if gro else [(f, False, 0) for f in batch]
        ):
            server.receive_frame("e", frame, now=now, checksum_verified=verified, gso_size=gso_size)
        while (event := server.next_event()) is not None:
            if isinstance(event, ConnectionAccepted):
                accepted = event.connection
            if isinstance(event, DataReceived):
                assert accepted is not None
                received += server.receive(accepted, -1, now=now)
        for _, frame in server.frames_to_send(now=now):
            client.receive_frame("e", frame, now=now)
        while client.next_event() is not None:
            pass
        for stack in (client, server):
            deadline = stack.poll_at()
            if deadline is not None and deadline <= now:
                stack.handle_timer(now=now)
        if len(received) == len(data):
            break
    assert bytes(received) == data
    segments_in = server.stats()["tcp.segments_in"]
    if gro:
        assert segments_in < len(data) // 1448 // 4, "GRO should merge most segments"
    else:
        assert segments_in > len(data) // 1448


def _round_robin_by_flow(frames: list[bytes]) -> list[bytes]:
    """The batch with its flows' frames interleaved one by one (each flow's order kept)."""
    flows: dict[bytes, list[bytes]] = {}
    for frame in frames:
        flows.setdefault(frame[26:38], []).append(frame)
    queues = list(flows.values())
    out = []
    while queues:
        out += [queue.pop(0) for queue in queues]
        queues = [queue for queue in queues if queue]
    return out


@pytest.mark.parametrize("flows", [0, 8])
def test_a_stack_fed_interleaved_connections_receives_every_byte_of_each(flows: int) -> None:
    client, server = (
        _stack("0a:00:00:00:00:02", SRC + "/24"),
        _stack("02:00:00:00:00:01", DST + "/24"),
    )
    server.tcp_listen(80)
    now = 1_000
    handles = [client.tcp_connect(DST, 80, now=now) for _ in range(4)]
    data = {handle: random.Random(handle).randbytes(150_000) for handle in handles}
    sent = dict.fromkeys(handles, 0)
    received: dict[int, bytearray] = {}
    for _ in range(3000):
        now += 100
        for handle in handles:
            if sent[handle] < len(data[handle]):
                sent[handle] += client.send(
                    handle, data[handle][sent[handle] : sent[handle] + 65536], now=now
                )
        batch = _round_robin_by_flow([frame for _, frame in client.frames_to_send(now=now)])
        for frame, verified, gso_size in gro_receive(batch, flows=flows):
            server.receive_frame("e", frame, now=now, checksum_verified=verified, gso_size=gso_size)
        while (event := server.next_event()) is not None:
            if isinstance(event, DataReceived):
                received.setdefault(event.connection, bytearray()).extend(
                    server.receive(event.connection, -1, now=now)
                )
        for _, frame in server.frames_to_send(now=now):
            client.receive_frame("e", frame, now=now)
        while client.next_event() is not None:
            pass
        for stack in (client, server):
            deadline = stack.poll_at()
            if deadline is not None and deadline <= now:
                stack.handle_timer(now=now)
        if sum(map(len, received.values())) == 4 * 150_000:
            break
    assert sorted(map(bytes, received.values())) == sorted(data.values())
    segments_in = server.stats()["tcp.segments_in"]
    if flows:
        assert segments_in < 4 * 150_000 // 1448 // 3, "per-flow GRO should merge most"
    else:
        assert segments_in > 4 * 150_000 // 1448, "adjacent-only GRO merges none of these"


def test_the_loop_merges_interleaved_flows_each(pair: tuple[TapDevice, socket.socket]) -> None:
    device, kernel = pair
    first = wire_frames(6 * 1448, 1448)
    second = [
        frame[:34]
        + (40001).to_bytes(2, "big")
        + frame[36:50]
        + ((int.from_bytes(frame[50:52], "big") - 1) % 0xFFFF).to_bytes(2, "big")
        + frame[52:]
        for frame in first
    ]  # source port + 1, checksum adjusted
    stack = FakeStack()
    loop = TapLoop(stack, [device], gro=True)
    try:
        for frame in _round_robin_by_flow(first + second):
            kernel.send(frame)
        loop.run_once()
    finally:
        loop.close()
    assert [(len(r.frame), r.checksum_verified, r.gso_size) for r in stack.received] == [
        (14 + 52 + 6 * 1448, True, 1448)
    ] * 2
    assert [r.frame[34:36] for r in stack.received] == [b"\x9c\x40", b"\x9c\x41"]
    assert loop.counters["gro_merged"] == 2
