"""RackTlp._update_rack takes every delivered segment in one loop; the per-segment
steps of RFC 8985 §6.2 (written out here as the reference) must give the same state."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp.tcp.rack import RackTlp, _Segment


def reference(rack: RackTlp, segment: _Segment, now: int) -> None:
    rtt = now - segment.xmit_ts
    if segment.retransmitted:
        if rack.min_rtt is not None and rtt < rack.min_rtt:
            return
    elif rack.min_rtt is None or rtt < rack.min_rtt:
        rack.min_rtt = rtt
    rack_ts = rack.rack_xmit_ts
    if (
        rack_ts is None
        or segment.xmit_ts > rack_ts
        or (segment.xmit_ts == rack_ts and segment.end > rack.rack_end_seq)
    ):
        rack.rack_rtt = rtt
        rack.rack_xmit_ts = segment.xmit_ts
        rack.rack_end_seq = segment.end
    if segment.end < rack.fack and not segment.retransmitted:
        rack.reordering_seen = True
    elif segment.end > rack.fack:
        rack.fack = segment.end


SEGMENTS = st.lists(
    st.tuples(st.integers(0, 50), st.integers(1, 40), st.integers(0, 30), st.booleans()),
    max_size=12,
)
STATE = ("min_rtt", "rack_xmit_ts", "rack_end_seq", "rack_rtt", "fack", "reordering_seen")


@settings(max_examples=300, deadline=None)
@given(batches=st.lists(SEGMENTS, max_size=4), start_fack=st.integers(0, 60))
def test_batch_update_matches_per_segment_steps(
    batches: list[list[tuple[int, int, int, bool]]], start_fack: int
) -> None:
    batch, single = RackTlp(), RackTlp()
    batch.fack = single.fack = start_fack
    now = 100
    for records in batches:
        now += 7
        segments = [_Segment(s, s + n, now - 1 - age, retx) for s, n, age, retx in records]
        batch._update_rack(segments, now)
        for segment in segments:
            reference(single, segment, now)
        assert [getattr(batch, name) for name in STATE] == [getattr(single, name) for name in STATE]


def test_a_fast_retransmission_ack_is_left_to_the_original() -> None:
    rack = RackTlp()
    rack._update_rack([_Segment(0, 100, 0)], 50)  # min_rtt 50
    rack._update_rack([_Segment(100, 200, 40, retransmitted=True)], 60)  # rtt 20 < 50
    assert (rack.rack_xmit_ts, rack.rack_end_seq, rack.fack) == (0, 100, 100)
