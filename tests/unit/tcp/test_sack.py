"""SACK: RangeSet against a set-of-bytes oracle, receiver blocks (RFC 2018 §4, RFC 2883),
the RFC 6675 scoreboard (IsLost, SetPipe, NextSeg), D-SACK and many holes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp.tcp.buffers import ReceiveBuffer
from simtcp.tcp.sack import (
    NextSegment,
    RangeSet,
    SackReceiver,
    SackScoreboard,
    SegmentKind,
    duplicate_range,
    to_wire_blocks,
    unwrap_blocks,
)

MSS = 1000
BASE = (1 << 32) - 3500  # absolute numbers near a wrap of the 32-bit wire value

# --- RangeSet ------------------------------------------------------------------------

operations = st.lists(
    st.tuples(st.booleans(), st.integers(0, 200), st.integers(0, 40)), max_size=40
)


@given(operations, st.integers(0, 240), st.integers(0, 240))
@settings(max_examples=300, deadline=None)
def test_range_set_matches_a_set_of_bytes(
    ops: list[tuple[bool, int, int]], low: int, high: int
) -> None:
    ranges = RangeSet(limit=1000)
    oracle: set[int] = set()
    for adding, start, size in ops:
        piece = set(range(start, start + size))
        if adding:
            assert ranges.add(start, start + size) == len(piece - oracle)
            oracle |= piece
        else:
            assert ranges.remove(start, start + size) == len(piece & oracle)
            oracle -= piece
        # sorted, disjoint, non-adjacent
        pairs = ranges.ranges()
        assert all(s < e for s, e in pairs)
        assert all(e1 < s2 for (_, e1), (s2, _) in zip(pairs, pairs[1:], strict=False))
    assert ranges.total == len(oracle)
    assert {b for s, e in ranges.ranges() for b in range(s, e)} == oracle
    assert ranges.covered(low, high) == len([b for b in oracle if low <= b < high])
    assert ranges.contains(low) == (low in oracle)


def test_range_set_refuses_beyond_its_limit() -> None:
    ranges = RangeSet(limit=2)
    assert ranges.add(0, 10) == 10
    assert ranges.add(20, 30) == 10
    assert ranges.add(40, 50) == -1  # a third separate range
    assert ranges.add(10, 20) == 10  # merging is always allowed
    assert ranges.ranges() == [(0, 30)]


def test_unwrap_blocks_across_the_wrap() -> None:
    una = (1 << 32) - 100
    assert unwrap_blocks([(0xFFFF_FFF0, 0x10)], una) == [((1 << 32) - 16, (1 << 32) + 16)]


# --- receiver ----------------------------------------------------------------------------


def test_receiver_reports_latest_block_first_then_recent_ones() -> None:
    receiver = SackReceiver()
    rcv_nxt = 1000
    held = [(2000, 3000)]
    receiver.record_arrival(2000, 3000, rcv_nxt=rcv_nxt)
    assert receiver.option_blocks(rcv_nxt=rcv_nxt, held=held, limit=4) == [(2000, 3000)]
    held = [(2000, 3000), (4000, 5000)]
    receiver.record_arrival(4000, 5000, rcv_nxt=rcv_nxt)
    assert receiver.option_blocks(rcv_nxt=rcv_nxt, held=held, limit=4) == [
        (4000, 5000),
        (2000, 3000),
    ]
    held = [(2000, 3000), (4000, 5000), (6000, 7000)]
    receiver.record_arrival(6000, 7000, rcv_nxt=rcv_nxt)
    # A segment extending the oldest block makes that block the first one again.
    held = [(2000, 3500), (4000, 5000), (6000, 7000)]
    receiver.record_arrival(3000, 3500, rcv_nxt=rcv_nxt)
    assert receiver.option_blocks(rcv_nxt=rcv_nxt, held=held, limit=4) == [
        (2000, 3500),
        (6000, 7000),
        (4000, 5000),
    ]
    assert receiver.option_blocks(rcv_nxt=rcv_nxt, held=held, limit=2) == [
        (2000, 3500),
        (6000, 7000),
    ]


def test_receiver_fills_with_older_blocks_and_drops_acked_ones() -> None:
    receiver = SackReceiver()
    held = [(100 * i, 100 * i + 50) for i in range(2, 8)]
    receiver.record_arrival(300, 350, rcv_nxt=0)
    blocks = receiver.option_blocks(rcv_nxt=0, held=held, limit=3)
    assert blocks == [(300, 350), (700, 750), (600, 650)]
    # RCV.NXT moved past the first two blocks: they are no longer reported.
    remaining = held[2:]
    blocks = receiver.option_blocks(rcv_nxt=400, held=remaining, limit=4)
    assert blocks == [(700, 750), (600, 650), (500, 550), (400, 450)]


def test_dsack_below_rcv_nxt_is_reported_once() -> None:
    receiver = SackReceiver()
    held = [(5000, 6000)]
    duplicate = duplicate_range(1000, 2000, 3000, held)
    assert duplicate == (1000, 2000)
    receiver.record_arrival(1000, 2000, rcv_nxt=3000, duplicate=duplicate)
    assert receiver.option_blocks(rcv_nxt=3000, held=held, limit=4) == [(1000, 2000), (5000, 6000)]
    assert receiver.option_blocks(rcv_nxt=3000, held=held, limit=4) == [(5000, 6000)]


def test_dsack_inside_a_held_block_is_followed_by_that_block() -> None:
    receiver = SackReceiver()
    held = [(5000, 8000)]
    duplicate = duplicate_range(6000, 7000, 3000, held)
    assert duplicate == (6000, 7000)
    receiver.record_arrival(6000, 7000, rcv_nxt=3000, duplicate=duplicate)
    assert receiver.option_blocks(rcv_nxt=3000, held=held, limit=3) == [(6000, 7000), (5000, 8000)]
    assert duplicate_range(8000, 9000, 3000, held) is None
    assert duplicate_range(7500, 9000, 3000, held) == (7500, 8000)
    assert duplicate_range(2500, 3500, 3000, held) == (2500, 3000)


def test_dsack_can_be_disabled() -> None:
    receiver = SackReceiver(dsack=False)
    receiver.record_arrival(0, 10, rcv_nxt=100, duplicate=(0, 10))
    assert receiver.option_blocks(rcv_nxt=100, held=[], limit=4) == []


# --- scoreboard ------------------------------------------------------------------------


def _board(segments: int = 10) -> tuple[SackScoreboard, int]:
    board = SackScoreboard(snd_una=BASE, mss=MSS)
    return board, BASE + segments * MSS


def _seg(index: int) -> tuple[int, int]:
    return BASE + index * MSS, BASE + (index + 1) * MSS


def _sack(board: SackScoreboard, high: int, *indices: int, ack: int = BASE) -> None:
    blocks = [_seg(i) for i in indices]
    board.update(ack=ack, blocks=blocks, high_data=high)


def test_single_loss_detected_after_three_sacked_segments() -> None:
    board, high = _board()
    _sack(board, high, 1)
    _sack(board, high, 1, 2)  # SACK blocks merge on the scoreboard
    assert not board.is_lost(BASE)
    assert board.pipe(high) == 8 * MSS
    _sack(board, high, 1, 2, 3)
    assert board.is_lost(BASE)  # 3000 bytes > (DupThresh - 1) * SMSS above it
    assert not board.is_lost(BASE + 4 * MSS)
    assert board.should_enter_recovery()
    assert board.pipe(high) == 6 * MSS  # 10 - 3 SACKed - 1 lost
    board.enter_recovery(high)
    segment = board.next_segment(high_data=high, new_data=True)
    assert segment == NextSegment(kind=SegmentKind.RETRANSMIT, start=BASE, end=BASE + MSS)
    board.note_sent(segment)
    assert board.pipe(high) == 7 * MSS
    assert board.next_segment(high_data=high, new_data=True) == NextSegment(
        kind=SegmentKind.NEW_DATA, start=high, end=high + MSS
    )
    result = board.update(ack=BASE + 4 * MSS, blocks=[], high_data=high)
    assert result.acked == 4 * MSS
    assert board.pipe(high) == 6 * MSS
    assert board.sacked_bytes == 0


def test_several_losses_in_one_window_resent_in_order_once() -> None:
    board, high = _board(12)
    received = [i for i in range(12) if i not in (0, 3, 7)]
    board.update(ack=BASE, blocks=[(_seg(i)[0], _seg(i)[1]) for i in received], high_data=high)
    assert [board.is_lost(_seg(i)[0]) for i in (0, 3, 7)] == [True, True, True]
    board.enter_recovery(high)
    sent = []
    while True:
        segment = board.next_segment(high_data=high, new_data=False)
        if segment is None or segment.kind is not SegmentKind.RETRANSMIT:
            break
        sent.append((segment.start, segment.end))
        board.note_sent(segment)
    assert sent == [_seg(0), _seg(3), _seg(7)]
    assert board.pipe(high) == 3 * MSS
    # Rule (4): the rescue retransmission is not needed: the last hole was resent
    # and nothing is unSACKed above the highest SACK (SND.MAX is SACKed).
    assert segment is None


def test_rule_three_and_rescue_for_a_tail_hole() -> None:
    board, high = _board(6)
    _sack(board, high, 1)  # one SACKed segment: nothing is lost by IsLost
    board.enter_recovery(high)
    segment = board.next_segment(high_data=high, new_data=False)
    assert segment == NextSegment(kind=SegmentKind.RETRANSMIT, start=BASE, end=BASE + MSS)
    board.note_sent(segment)
    rescue = board.next_segment(high_data=high, new_data=False)
    assert rescue == NextSegment(kind=SegmentKind.RESCUE, start=high - MSS, end=high)
    board.note_sent(rescue)
    assert board.high_rxt == BASE + MSS  # rule (4) leaves HighRxt alone
    assert board.next_segment(high_data=high, new_data=False) is None  # one rescue only


def test_lost_retransmission_is_resent_once_rack_marks_it() -> None:
    board, high = _board(10)
    _sack(board, high, 1, 2, 3)
    board.enter_recovery(high)
    first = board.next_segment(high_data=high, new_data=False)
    assert first is not None and first.start == BASE
    board.note_sent(first)
    # More SACKs arrive, but not for the retransmission: it was lost too.
    _sack(board, high, 1, 2, 3, 4, 5, 6, 7, 8, 9)
    assert board.pipe(high) == MSS  # the retransmission is still believed in flight
    assert board.next_segment(high_data=high, new_data=False) is None
    board.mark_lost(BASE, BASE + MSS)  # RACK: sent long enough ago, so lost again
    assert board.pipe(high) == 0
    again = board.next_segment(high_data=high, new_data=False)
    assert again == NextSegment(kind=SegmentKind.RETRANSMIT, start=BASE, end=BASE + MSS)
    board.note_sent(again)
    assert board.pipe(high) == MSS
    assert board.next_segment(high_data=high, new_data=False) is None


def test_mark_lost_keeps_sacked_bytes() -> None:
    board, high = _board(10)
    _sack(board, high, 2)
    board.mark_lost(BASE, BASE + 4 * MSS)
    assert board.lost_marks.ranges() == [(BASE, BASE + 2 * MSS), (BASE + 3 * MSS, BASE + 4 * MSS)]
    assert board.lost_bytes(high) == 3 * MSS
    assert board.is_lost(BASE + 3 * MSS)
    assert not board.is_lost(BASE + 2 * MSS)


def test_sender_recognises_dsack() -> None:
    board, high = _board(10)
    below = board.update(ack=BASE + 2 * MSS, blocks=[_seg(0)], high_data=high)
    assert below.dsack == _seg(0)
    assert below.newly_sacked == 0
    _sack(board, high, 5, 6, ack=BASE + 2 * MSS)
    inside = board.update(
        ack=BASE + 2 * MSS, blocks=[_seg(5), (_seg(5)[0], _seg(6)[1])], high_data=high
    )
    assert inside.dsack == _seg(5)
    assert inside.newly_sacked == 0
    normal = board.update(
        ack=BASE + 2 * MSS, blocks=[_seg(8), (_seg(5)[0], _seg(6)[1])], high_data=high
    )
    assert normal.dsack is None
    assert normal.newly_sacked == MSS


def test_blocks_outside_the_outstanding_data_are_ignored() -> None:
    board, high = _board(4)
    result = board.update(
        ack=BASE,
        blocks=[(high, high + MSS), (BASE - 10, BASE + 10), (BASE + 20, BASE + 10)],
        high_data=high,
    )
    assert result.newly_sacked == 0
    assert board.sacked_bytes == 0


def test_rto_discards_sack_information() -> None:
    board, high = _board(10)
    _sack(board, high, 1, 2, 3)
    board.enter_recovery(high)
    segment = board.next_segment(high_data=high, new_data=False)
    assert segment is not None
    board.note_sent(segment)
    board.on_rto()
    assert board.sacked_bytes == 0
    assert board.pipe(high) == 10 * MSS
    assert not board.is_lost(BASE)
    assert board.recovery_point is None


def test_many_tiny_holes_each_resent_exactly_once() -> None:
    board = SackScoreboard(snd_una=BASE, mss=MSS, max_ranges=256)
    high = BASE + 256 * 10
    blocks = [(BASE + 10 * i + 5, BASE + 10 * i + 10) for i in range(256)]
    for index in range(0, 256, 4):  # four blocks per ACK, like a real peer
        board.update(ack=BASE, blocks=blocks[index : index + 4], high_data=high)
    assert len(board.sacked) == 256
    board.update(ack=BASE, blocks=[(high - 1, high)], high_data=high)  # refused: cap
    assert board.sacked_bytes == 256 * 5
    board.enter_recovery(high)
    starts = []
    for _ in range(1000):
        segment = board.next_segment(high_data=high, new_data=False)
        if segment is None or segment.kind is not SegmentKind.RETRANSMIT:
            break
        starts.append(segment.start)
        board.note_sent(segment)
    # Rule (1) resends the 254 lost holes, rule (3) the top two (not yet "lost").
    assert starts == [BASE + 10 * i for i in range(256)]
    assert board.lost_bytes(high) == 254 * 5
    assert board.pipe(high) == 256 * 5 + 2 * 5  # the two rule-(3) holes count twice


def _oracle_is_lost(seq: int, sacked: set[int], dup_thresh: int, mss: int) -> bool:
    if seq in sacked:
        return False
    above = sorted(b for b in sacked if b > seq)
    runs = sum(1 for i, b in enumerate(above) if i == 0 or above[i - 1] != b - 1)
    return runs >= dup_thresh or len(above) > (dup_thresh - 1) * mss


@given(st.lists(st.tuples(st.integers(0, 119), st.integers(1, 12)), max_size=12), st.integers(1, 8))
@settings(max_examples=200, deadline=None)
def test_is_lost_and_pipe_match_the_rfc_per_byte(blocks: list[tuple[int, int]], mss: int) -> None:
    high = 128
    board = SackScoreboard(snd_una=0, mss=mss)
    sacked: set[int] = set()
    for start, size in blocks:
        end = min(start + size, high)
        board.update(ack=0, blocks=[(start, end)], high_data=high)
        sacked |= set(range(start, end))
    lost = [seq for seq in range(high) if _oracle_is_lost(seq, sacked, 3, mss)]
    assert [seq for seq in range(high) if board.is_lost(seq)] == lost
    # SetPipe() (RFC 6675 §4) with nothing retransmitted: unSACKed and not lost.
    assert board.pipe(high) == high - len(sacked) - len(lost)


def test_to_wire_blocks() -> None:
    assert to_wire_blocks([((1 << 32) - 16, (1 << 32) + 16)]) == ((0xFFFF_FFF0, 0x10),)


arrivals = st.lists(st.tuples(st.integers(0, 60), st.integers(1, 12)), min_size=1, max_size=40)


@given(arrivals, st.integers(1, 4))
@settings(max_examples=200, deadline=None)
def test_receiver_blocks_follow_rfc_2018_and_2883(
    segments: list[tuple[int, int]], limit: int
) -> None:
    buffer = ReceiveBuffer(capacity=1 << 20, max_blocks=64)
    receiver = SackReceiver()
    rcv_nxt = 10
    for start, size in segments:
        end = start + size
        held_before = buffer.out_of_order_blocks()
        duplicate = duplicate_range(start, end, rcv_nxt, held_before)
        held_bytes = {b for s, e in held_before for b in range(s, e)}
        expected_dup = sorted(b for b in range(start, end) if b < rcv_nxt or b in held_bytes)
        if duplicate is not None:
            assert set(range(*duplicate)) <= set(expected_dup)
        else:
            assert not expected_dup
        clipped = max(start, rcv_nxt)
        if end > clipped:
            rcv_nxt = buffer.add(clipped, bytes(end - clipped), rcv_nxt)
        receiver.record_arrival(start, end, rcv_nxt=rcv_nxt, duplicate=duplicate)
        held = buffer.out_of_order_blocks()
        blocks = receiver.option_blocks(rcv_nxt=rcv_nxt, held=held, limit=limit)
        assert len(blocks) <= limit
        rest = blocks
        if duplicate is not None:
            assert blocks[0] == duplicate  # RFC 2883 §4: D-SACK first
            rest = blocks[1:]
        assert all(block in held for block in rest)
        assert len(set(rest)) == len(rest)
        containing = [block for block in held if block[0] <= end - 1 < block[1]]
        if containing and rest and duplicate is None:
            assert rest[0] == containing[0]  # RFC 2018 §4: the latest segment's block first
        assert len(rest) >= min(limit - (duplicate is not None), len(held))


@given(
    st.lists(st.tuples(st.integers(0, 99), st.integers(1, 10)), min_size=1, max_size=15),
    st.integers(1, 6),
)
@settings(max_examples=200, deadline=None)
def test_nextseg_resends_every_hole_below_the_highest_sack_once(
    blocks: list[tuple[int, int]], mss: int
) -> None:
    high = 110
    board = SackScoreboard(snd_una=0, mss=mss)
    sacked: set[int] = set()
    for start, size in blocks:
        board.update(ack=0, blocks=[(start, start + size)], high_data=high)
        sacked |= set(range(start, start + size))
    board.enter_recovery(high)
    resent: list[int] = []
    rescue = 0
    for _ in range(200):
        segment = board.next_segment(high_data=high, new_data=False)
        if segment is None:
            break
        assert 0 < segment.end - segment.start <= mss
        piece = list(range(segment.start, segment.end))
        assert not set(piece) & sacked  # never resend SACKed bytes
        assert not set(piece) & set(resent)  # never resend twice
        resent.extend(piece)
        rescue += segment.kind is SegmentKind.RESCUE
        board.note_sent(segment)
    assert rescue <= 1
    top = max(sacked)
    holes = {b for b in range(0, top) if b not in sacked}
    assert holes <= set(resent)  # rules (1) and (3) cover every hole under the top SACK
    assert board.pipe(high) == high - len(sacked) - board.lost_bytes(high) + len(resent)
