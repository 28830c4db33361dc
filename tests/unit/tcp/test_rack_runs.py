"""RACK's batch paths for TSO segments give what the record-by-record steps give.

- ``RackTlp._update_rack`` over records delivered in sequence order with none
  retransmitted (the MSS pieces of TSO segments, cumulatively acknowledged, the
  common case) against the per-segment steps of RFC 8985 §6.2;
- ``RackTlp.on_transmit_run`` (one run record per TSO segment, standing for its
  pieces) against sending the pieces one by one with ``on_transmit``.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp.tcp.rack import RackTlp, _Segment

from .test_rack_batch import STATE, reference
from .test_rack_run_records import _pieces

MSS = 1448


@st.composite
def in_order_batches(draw: st.DrawFn) -> list[list[tuple[int, int, int]]]:
    """Batches of (start, end, xmit_ts) with non-decreasing ends, like ACKed TSO pieces."""
    batches = []
    seq = draw(st.integers(0, 5000))
    for _ in range(draw(st.integers(1, 4))):
        records = []
        for _ in range(draw(st.integers(0, 50))):
            size = draw(st.sampled_from([0, 1, MSS, MSS]))
            seq += draw(st.sampled_from([0, 0, 0, -MSS, MSS]))  # mostly contiguous
            records.append((seq, seq + size, draw(st.integers(0, 60))))
            seq += size
        batches.append(records)
    return batches


@settings(max_examples=300, deadline=None)
@given(
    batches=in_order_batches(),
    start_fack=st.integers(0, 8000),
    start_rack=st.one_of(st.none(), st.tuples(st.integers(0, 80), st.integers(0, 9000))),
    min_rtt=st.one_of(st.none(), st.integers(1, 100)),
)
def test_in_order_deliveries_match_per_segment_steps(
    batches: list[list[tuple[int, int, int]]],
    start_fack: int,
    start_rack: tuple[int, int] | None,
    min_rtt: int | None,
) -> None:
    fast, single = RackTlp(), RackTlp()
    for rack in (fast, single):
        rack.fack = start_fack
        rack.min_rtt = min_rtt
        if start_rack is not None:
            rack.rack_xmit_ts, rack.rack_end_seq = start_rack
            rack.rack_rtt = 5
    now = 100
    for records in batches:
        now += 7
        ordered = sorted(records, key=lambda record: record[1])  # ends non-decreasing
        segments = [_Segment(start, end, now - 1 - age) for start, end, age in ordered]
        fast._update_rack(segments, now)
        for segment in segments:
            reference(single, segment, now)
        assert [getattr(fast, name) for name in STATE] == [getattr(single, name) for name in STATE]


def _records(rack: RackTlp) -> list[tuple[int, int, int, bool, bool]]:
    """The records as the pieces they stand for (a run record is one per TSO segment)."""
    return _pieces(rack)


@settings(max_examples=200, deadline=None)
@given(
    runs=st.lists(st.tuples(st.integers(1, 45 * MSS), st.booleans()), min_size=1, max_size=5),
    piece=st.sampled_from([1, 100, MSS]),
)
def test_a_run_of_pieces_is_recorded_as_if_sent_one_by_one(
    runs: list[tuple[int, bool]], piece: int
) -> None:
    whole, pieces = RackTlp(), RackTlp()
    seq, now = 1000, 50
    for sent, (size, fin) in enumerate(runs, 1):
        stamp = whole.on_transmit_run(seq, seq + size, piece, fin=int(fin), now=now)
        cuts = list(range(seq, seq + size, piece))
        for index, cut in enumerate(cuts):
            end = cut + piece if index < len(cuts) - 1 else seq + size + int(fin)
            pieces.on_transmit(cut, end, now=now + index)
        assert stamp == now + len(cuts) - 1
        assert _records(whole) == _records(pieces)
        assert whole.outstanding_segments == pieces.outstanding_segments
        if whole.outstanding_segments <= whole.max_segments // 2:
            assert len(whole._segments) == sent  # one record per run (under the cap)
        seq += size + int(fin)
        now = stamp + 3
