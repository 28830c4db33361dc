"""Segment boundaries must not matter: any split, merge, order and duplication of a stream
reassembles to the same bytes, in the buffer alone and through a whole connection."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp.tcp.buffers import ReceiveBuffer
from simtcp.wire.tcp import ACK, FIN
from tests.unit.tcp.scenario import Scenario


@st.composite
def pieces(draw: st.DrawFn, max_size: int = 3000) -> tuple[bytes, list[tuple[int, int]]]:
    """A stream and a shuffled, duplicated list of (start, end) pieces covering it."""
    data = draw(st.binary(min_size=1, max_size=max_size))
    cuts = sorted(set(draw(st.lists(st.integers(1, len(data)), max_size=30))) | {0, len(data)})
    ranges = list(zip(cuts, cuts[1:], strict=False))
    extra = draw(
        st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(1, 500)), max_size=10)
    )
    ranges += [(start, min(start + size, len(data))) for start, size in extra]
    return data, draw(st.permutations(ranges))


@settings(max_examples=300, deadline=None)
@given(case=pieces())
def test_receive_buffer_matches_the_stream(case: tuple[bytes, list[tuple[int, int]]]) -> None:
    data, ranges = case
    base = 2**32 - 100  # absolute numbers are plain integers; no wrap to trip on
    buffer = ReceiveBuffer(capacity=len(data), max_blocks=1000)
    rcv_nxt = base
    for start, end in ranges:
        seq, chunk = base + start, data[start:end]
        if seq < rcv_nxt:  # the engine trims what is already in order
            chunk = chunk[rcv_nxt - seq :]
            seq = rcv_nxt
        if chunk:
            rcv_nxt = buffer.add(seq, chunk, rcv_nxt)
        assert buffer.out_of_order_bytes == sum(e - s for s, e in buffer.out_of_order_blocks())
    assert rcv_nxt == base + len(data)
    assert buffer.read(-1) == data
    assert not buffer.has_out_of_order


@settings(max_examples=60, deadline=None)
@given(case=pieces(max_size=20_000), peer_iss=st.sampled_from([1000, 2**32 - 7000]))
def test_connection_reassembles_any_segmentation(
    case: tuple[bytes, list[tuple[int, int]]], peer_iss: int
) -> None:
    data, ranges = case
    scenario = Scenario(peer_iss=peer_iss)
    scenario.enter("ESTABLISHED")
    handle = scenario.handle or 0
    start_seq = scenario.peer_nxt
    for start, end in ranges:
        scenario.send(ACK, seq=start_seq + start, payload=data[start:end])
    scenario.send(FIN | ACK, seq=start_seq + len(data))
    assert scenario.layer.receive(handle, now=scenario.now) == data
    assert scenario.state() == "CLOSE-WAIT"
