"""The receive fast path's parser and checksum against the general ones (their oracles).

- ``TcpSegment.parse_predicted`` (one unpack of the common header straight from
  the frame) against ``TcpSegment.parse``: on any bytes, valid or damaged, it
  returns a segment equal to the general parser's or None, and None whenever the
  general parser raises;
- ``Stack.receive_frame`` on an established connection, with and without the
  fast paths (``StackConfig.fast_paths``), for data segments with no options and
  with NOP NOP Timestamps, valid and damaged (checksum, data offset, options,
  length): the same frames out, the same events, the same counters.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp import InterfaceOffload, Stack
from simtcp.errors import ParseError
from simtcp.wire.ethernet import EthernetFrame
from simtcp.wire.ipv4 import Ipv4Packet
from simtcp.wire.tcp import (
    ACK,
    PSH,
    SYN,
    MssOption,
    NopOption,
    SackPermittedOption,
    TcpSegment,
    TimestampsOption,
    WindowScaleOption,
)
from tests.property.test_fast_paths import PEER, STACK, damage, make_stack, segments, tcp_frame

SETTINGS = settings(max_examples=200, deadline=None)


def as_tuple(segment: TcpSegment) -> tuple[object, ...]:
    return (
        segment.source_port,
        segment.destination_port,
        segment.seq,
        segment.ack,
        segment.flags,
        segment.window,
        segment.options,
        bytes(segment.payload),
        segment.urgent_pointer,
        segment.reserved,
        segment.checksum,
    )


@SETTINGS
@given(
    segments,
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 255)), max_size=3),
    st.none() | st.integers(0, 60),
    st.binary(min_size=34, max_size=34),
)
def test_parse_predicted_matches_the_general_parser(
    segment: TcpSegment,
    edits: list[tuple[int, int]],
    cut: int | None,
    prefix: bytes,
) -> None:
    data = damage(segment.build(STACK, PEER), edits, cut)
    predicted = TcpSegment.parse_predicted(prefix + data, 34, 34 + len(data))
    try:
        general = TcpSegment.parse(data)
    except ParseError:
        assert predicted is None
        return
    if predicted is not None:
        assert as_tuple(predicted) == as_tuple(general)


def test_parse_predicted_takes_the_common_headers() -> None:
    """The oracle test compares outcomes; this one makes sure the shortcut is really taken."""
    timestamps = (NopOption(), NopOption(), TimestampsOption(7, 9))
    for options in ((), timestamps):
        data = TcpSegment(1, 2, 3, 4, ACK, 5, options, b"abc").build(STACK, PEER)
        predicted = TcpSegment.parse_predicted(data, 0, len(data))
        assert predicted is not None
        assert as_tuple(predicted) == as_tuple(TcpSegment.parse(data))
    with_mss = TcpSegment(1, 2, 3, 4, SYN, 5, (MssOption(1460),)).build(STACK, PEER)
    assert TcpSegment.parse_predicted(with_mss, 0, len(with_mss)) is None


# --- an established connection, fast paths on and off ------------------------------

CLIENT_PORT = 40000
PEER_ISN = 1_000_000


def _drain(stack: Stack, now: int) -> tuple[object, ...]:
    events = []
    while (event := stack.next_event()) is not None:
        events.append(event)
    return stack.frames_to_send(now=now), tuple(events), stack.stats()


def established(fast_paths: bool) -> tuple[Stack, int]:
    """A stack with a connection from the peer on port 80 (timestamps, window scaling,
    SACK), the peer's handshake done; (stack, the stack's next sequence number)."""
    stack = make_stack(1500, InterfaceOffload(), fast_paths=fast_paths)
    stack.tcp_listen(80)
    options = (
        MssOption(1460),
        SackPermittedOption(),
        TimestampsOption(100, 0),
        NopOption(),
        WindowScaleOption(7),
    )
    syn = TcpSegment(CLIENT_PORT, 80, PEER_ISN, 0, SYN, 64240, options)
    stack.receive_frame("veth0", tcp_frame(syn, PEER, STACK), now=10)
    ((_, frame),) = stack.frames_to_send(now=10)
    syn_ack = TcpSegment.parse(Ipv4Packet.parse(EthernetFrame.parse(frame).payload).payload)
    ours = (syn_ack.seq + 1) & 0xFFFFFFFF
    ack = TcpSegment(
        CLIENT_PORT,
        80,
        PEER_ISN + 1,
        ours,
        ACK,
        502,
        (NopOption(), NopOption(), TimestampsOption(101, syn_ack.options[-1].value))  # type: ignore[union-attr]
        if isinstance(syn_ack.options[-1], TimestampsOption)
        else (),
    )
    stack.receive_frame("veth0", tcp_frame(ack, PEER, STACK), now=11)
    _drain(stack, 11)
    return stack, ours


def data_frame(ours: int, payload: bytes, timestamps: bool, offset: int = 0) -> bytes:
    options = (NopOption(), NopOption(), TimestampsOption(102, 1)) if timestamps else ()
    segment = TcpSegment(
        CLIENT_PORT, 80, PEER_ISN + 1 + offset, ours, ACK | PSH, 502, options, payload
    )
    return tcp_frame(segment, PEER, STACK)


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.binary(min_size=1, max_size=1400),
            st.booleans(),
            st.lists(st.tuples(st.integers(14, 80), st.integers(0, 255)), max_size=2),
            st.none() | st.integers(40, 120),
        ),
        min_size=1,
        max_size=4,
    ),
    st.booleans(),
)
def test_data_on_a_connection_matches_the_general_path(
    inputs: list[tuple[bytes, bool, list[tuple[int, int]], int | None]], verified: bool
) -> None:
    fast, ours = established(True)
    general, ours_too = established(False)
    assert ours == ours_too
    offset = 0
    for index, (payload, timestamps, edits, cut) in enumerate(inputs):
        raw = damage(data_frame(ours, payload, timestamps, offset), edits, cut)
        now = 20 + index
        seen = []
        for stack in (fast, general):
            stack.receive_frame("veth0", raw, now=now, checksum_verified=verified)
            seen.append(_drain(stack, now))
        assert seen[0] == seen[1]
        if not edits and cut is None:
            offset += len(payload)


@pytest.mark.parametrize("timestamps", [False, True])
@pytest.mark.parametrize(
    "case", ["ordinary", "odd length", "bad checksum", "bad options", "bad offset"]
)
def test_data_edges_match_the_general_path(case: str, timestamps: bool) -> None:
    fast, ours = established(True)
    general, _ = established(False)
    payload = b"x" * (63 if case == "odd length" else 64)
    raw = bytearray(data_frame(ours, payload, timestamps))
    if case == "bad checksum":
        raw[14 + 20 + 16] ^= 0x40
    elif case == "bad options":
        raw[14 + 20 + 20] = 0x02  # not NOP: the general option parser decides
    elif case == "bad offset":
        raw[14 + 20 + 12] = 0xF0  # 60 bytes of header in a shorter segment
    seen = []
    for stack in (fast, general):
        stack.receive_frame("veth0", bytes(raw), now=30)
        seen.append(_drain(stack, 30))
    assert seen[0] == seen[1]
    if timestamps and case in ("ordinary", "odd length") and fast.config.tcp.fast_path:
        # The fast paths really ran (the connection has timestamps: a segment without
        # them is the general path's, RFC 7323 §3.2).
        assert fast.stats()["tcp.fast_path_data"] == 1
