"""SACK state: RFC 2018 §4 and RFC 2883 receiver blocks; RFC 6675 §2-§4's sender scoreboard.

Theory of operation
-------------------

Sequence numbers are the engine's absolute integers (:mod:`.seq`);
:func:`unwrap_blocks` turns the 32-bit edges of a received option into them
(against SND.UNA) and the engine applies :func:`.seq.to_wire` to the blocks it
sends. Every structure is a :class:`RangeSet`: sorted, disjoint, non-adjacent
``[start, end)`` ranges in two parallel lists searched with :mod:`bisect`, so
many holes cost ``O(log n)`` per lookup plus C-speed list moves, never a
per-byte or quadratic Python loop, and the number of ranges is capped.

Receiver (:class:`SackReceiver`): before storing a segment the engine asks
:func:`duplicate_range` whether it repeats bytes already held (the D-SACK
block of RFC 2883); after storing it calls :meth:`SackReceiver.record_arrival`;
when building an ACK it calls :meth:`SackReceiver.option_blocks` with the
out-of-order blocks held and the room left (:func:`.options.sack_block_capacity`).

Sender (:class:`SackScoreboard`): every ACK goes through
:meth:`SackScoreboard.update` (cumulative ACK pruning, SACK blocks, D-SACK
detection). :meth:`is_lost` and :meth:`pipe` are RFC 6675 §4's IsLost() and
SetPipe(); :meth:`next_segment` is NextSeg(); :meth:`note_sent` records what
was sent; :meth:`mark_lost` lets RACK (RFC 8985) declare ranges lost, which is
how a lost retransmission gets sent again without an RTO; :meth:`on_rto`
forgets all SACK information (RFC 2018 §8, reneging tolerance).
Pipe follows Linux's accounting, which matches SetPipe() while also counting
retransmissions precisely: ``outstanding - sacked - lost + retransmitted``.
"""

from __future__ import annotations

import enum
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from operator import sub

from .prr import Prr
from .seq import to_wire, unwrap

DEFAULT_MAX_RANGES = 8192
"""Ranges a scoreboard set holds. A window that a drop-tail queue thinned to every other
segment has one SACKed range per two segments: 8192 covers a 16 MiB send buffer of
1448-byte segments. A block refused for want of room is data the sender then believes
lost and resends (at 1 Gbit/s, 40 ms with 256: 5,600 spurious retransmissions)."""
DUP_THRESH = 3
"""RFC 6675 §2 DupThresh."""
_HISTORY = 8


class RangeSet:
    """Sorted, disjoint, non-adjacent ``[start, end)`` ranges, at most ``limit`` of them.

    :meth:`add` refuses a range that would need a new entry beyond the limit
    (it returns -1): for SACK that only means some bytes may be resent, which
    is safe. :meth:`remove` may split one range and go one over the limit.
    """

    __slots__ = ("starts", "ends", "limit", "total", "_prefix")

    def __init__(self, *, limit: int = DEFAULT_MAX_RANGES) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.limit = limit
        self.total = 0
        """Bytes covered."""
        self._prefix: list[int] | None = None

    def __len__(self) -> int:
        return len(self.starts)

    def __bool__(self) -> bool:
        return bool(self.starts)

    def ranges(self) -> list[tuple[int, int]]:
        return list(zip(self.starts, self.ends, strict=True))

    def clear(self) -> None:
        self.starts.clear()
        self.ends.clear()
        self.total = 0
        self._prefix = None

    def add(self, start: int, end: int) -> int:
        """Cover ``[start, end)``; return the bytes newly covered, or -1 if refused."""
        if end <= start:
            return 0
        starts, ends = self.starts, self.ends
        first = bisect_left(ends, start)  # first range ending at or after start
        last = bisect_right(starts, end)  # ranges starting at or before end touch it
        if first == last:
            if len(starts) >= self.limit:
                return -1
            starts.insert(first, start)
            ends.insert(first, end)
            added = end - start
        else:
            new_start = min(start, starts[first])
            new_end = max(end, ends[last - 1])
            before = sum(ends[first:last]) - sum(starts[first:last])
            starts[first:last] = [new_start]
            ends[first:last] = [new_end]
            added = new_end - new_start - before
        self.total += added
        self._prefix = None
        return added

    def remove(self, start: int, end: int) -> int:
        """Uncover ``[start, end)``; return the bytes that were covered."""
        if end <= start:
            return 0
        starts, ends = self.starts, self.ends
        first = bisect_right(ends, start)  # ranges ending after start
        last = bisect_left(starts, end)  # ranges starting before end
        if first >= last:
            return 0
        covered = sum(ends[first:last]) - sum(starts[first:last])
        new_starts: list[int] = []
        new_ends: list[int] = []
        if starts[first] < start:
            new_starts.append(starts[first])
            new_ends.append(start)
            covered -= start - starts[first]
        if ends[last - 1] > end:
            new_starts.append(end)
            new_ends.append(ends[last - 1])
            covered -= ends[last - 1] - end
        starts[first:last] = new_starts
        ends[first:last] = new_ends
        self.total -= covered
        self._prefix = None
        return covered

    def discard_below(self, seq: int) -> None:
        """Forget everything below ``seq`` (a cumulative ACK)."""
        if self.starts and self.starts[0] < seq:
            self.remove(self.starts[0], seq)

    def contains(self, seq: int) -> bool:
        index = bisect_right(self.starts, seq) - 1
        return index >= 0 and seq < self.ends[index]

    def range_containing(self, seq: int) -> tuple[int, int] | None:
        index = bisect_right(self.starts, seq) - 1
        if index >= 0 and seq < self.ends[index]:
            return self.starts[index], self.ends[index]
        return None

    def skip(self, seq: int) -> int:
        """``seq`` if it is not covered, else the end of the range covering it."""
        index = bisect_right(self.starts, seq) - 1
        if index >= 0 and seq < self.ends[index]:
            return self.ends[index]
        return seq

    def next_start(self, seq: int) -> int | None:
        """The start of the first range beginning after ``seq``."""
        index = bisect_right(self.starts, seq)
        return self.starts[index] if index < len(self.starts) else None

    def covered_below(self, seq: int) -> int:
        """Bytes covered below ``seq``."""
        prefix = self._prefix
        if prefix is None:
            prefix = self._prefix = list(accumulate(map(sub, self.ends, self.starts), initial=0))
        count = bisect_right(self.ends, seq)  # ranges wholly below seq
        result = prefix[count]
        if count < len(self.starts) and self.starts[count] < seq:
            result += seq - self.starts[count]
        return result

    def covered(self, start: int, end: int) -> int:
        """Bytes covered in ``[start, end)``."""
        if end <= start:
            return 0
        return self.covered_below(end) - self.covered_below(start)


def unwrap_blocks(wire_blocks: Iterable[tuple[int, int]], snd_una: int) -> list[tuple[int, int]]:
    """Absolute (start, end) for a SACK option's 32-bit edges, placed near SND.UNA."""
    result = []
    for left, right in wire_blocks:
        start = unwrap(left, snd_una)
        result.append((start, start + ((right - left) & 0xFFFF_FFFF)))
    return result


def to_wire_blocks(blocks: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """32-bit edges for a :class:`~simtcp.wire.tcp.SackOption` from absolute blocks."""
    return tuple((to_wire(start), to_wire(end)) for start, end in blocks)


# --- receiver: which blocks to report (RFC 2018 §4, RFC 2883 §4) -----------------


def _held_index(held: Sequence[tuple[int, int]], seq: int) -> int:
    """Index of the held block containing ``seq``, or -1."""
    index = bisect_right(held, seq, key=lambda block: block[0]) - 1
    if index >= 0 and seq < held[index][1]:
        return index
    return -1


def duplicate_range(
    seq: int, end: int, rcv_nxt: int, held: Sequence[tuple[int, int]]
) -> tuple[int, int] | None:
    """The bytes of ``[seq, end)`` we already had (RFC 2883 §4): call before storing it.

    Below RCV.NXT that is the part already acknowledged; above it, the first
    overlap with a held out-of-order block (``held`` sorted, disjoint).
    """
    if end <= seq:
        return None
    if seq < rcv_nxt:
        return seq, min(end, rcv_nxt)
    index = bisect_right(held, seq, key=lambda block: block[0]) - 1
    if index < 0 or held[index][1] <= seq:
        index += 1
    if index < len(held) and held[index][0] < end:
        block_start, block_end = held[index]
        return max(seq, block_start), min(end, block_end)
    return None


class SackReceiver:
    """What the receiver remembers to fill SACK options in the RFC's order."""

    __slots__ = ("_recent", "_dsack", "dsack_enabled")

    def __init__(self, *, dsack: bool = True) -> None:
        self._recent: list[tuple[int, int]] = []
        """Ranges of recent out-of-order arrivals, most recent first (bounded)."""
        self._dsack: tuple[int, int] | None = None
        self.dsack_enabled = dsack

    def record_arrival(
        self, seq: int, end: int, *, rcv_nxt: int, duplicate: tuple[int, int] | None = None
    ) -> None:
        """A data segment ``[seq, end)`` arrived (after it was stored; RCV.NXT is updated).

        ``duplicate`` is what :func:`duplicate_range` said before storing.
        """
        if duplicate is not None and self.dsack_enabled:
            self._dsack = duplicate
        if end > rcv_nxt and end > seq:
            recent = self._recent
            recent.insert(0, (max(seq, rcv_nxt), end))
            del recent[_HISTORY:]

    def option_blocks(
        self, *, rcv_nxt: int, held: Sequence[tuple[int, int]], limit: int
    ) -> list[tuple[int, int]]:
        """SACK blocks for the next ACK, at most ``limit``, most recent first.

        ``held`` is the receive buffer's out-of-order blocks (sorted, absolute).
        A pending D-SACK block goes first (RFC 2883 §4 (1)), followed by the held
        block that contains it if any (§4 (2)); then the block holding the
        latest arrival (RFC 2018 §4), then blocks of earlier arrivals, then any
        other held blocks from the highest down. A D-SACK is reported once.
        """
        blocks: list[tuple[int, int]] = []
        if limit <= 0:
            return blocks
        chosen: set[int] = set()
        dsack = self._dsack
        self._dsack = None
        if dsack is not None:
            blocks.append(dsack)
            index = _held_index(held, dsack[0])
            if index >= 0 and held[index] != dsack and held[index][1] >= dsack[1]:
                blocks.append(held[index])
                chosen.add(index)
        recent = self._recent
        kept = []
        for _, end in recent:
            if end <= rcv_nxt:
                continue
            index = _held_index(held, end - 1)
            if index < 0:
                continue
            kept.append((held[index][0], end))  # the arrival's block as it is now
            if index not in chosen and len(blocks) < limit:
                chosen.add(index)
                blocks.append(held[index])
        self._recent = kept[:_HISTORY]
        index = len(held) - 1
        while len(blocks) < limit and index >= 0:
            if index not in chosen:
                blocks.append(held[index])
            index -= 1
        return blocks[:limit]


# --- sender: the scoreboard (RFC 6675) -------------------------------------------


class SegmentKind(enum.Enum):
    """What :meth:`SackScoreboard.next_segment` asks the engine to send."""

    RETRANSMIT = "retransmit"
    """Rules (1) and (3) of RFC 6675 §4 NextSeg(): a hole to resend."""
    NEW_DATA = "new"
    """Rule (2): new data from HighData (the engine clips it to the data and window)."""
    RESCUE = "rescue"
    """Rule (4): the rescue retransmission of the last hole."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NextSegment:
    kind: SegmentKind
    start: int
    end: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SackUpdate:
    """What one ACK changed on the scoreboard."""

    acked: int
    """Bytes newly covered by the cumulative ACK."""
    newly_sacked: int
    """Bytes newly SACKed above the cumulative ACK."""
    dsack: tuple[int, int] | None
    """The D-SACK block (RFC 2883 §4) if the first block reported a duplicate."""


_NO_CHANGE = SackUpdate(acked=0, newly_sacked=0, dsack=None)


class SackScoreboard:
    """RFC 6675's scoreboard for one connection (bounded, wrap-free absolute numbers)."""

    __slots__ = (
        "mss",
        "dup_thresh",
        "snd_una",
        "sacked",
        "retransmitted",
        "lost_marks",
        "high_rxt",
        "rescue_rxt",
        "recovery_point",
        "_mark_cursor",
        "prr",
        "delivered_before_ack",
    )

    def __init__(
        self,
        *,
        snd_una: int,
        mss: int,
        dup_thresh: int = DUP_THRESH,
        max_ranges: int = DEFAULT_MAX_RANGES,
    ) -> None:
        self.mss = mss
        self.dup_thresh = dup_thresh
        self.snd_una = snd_una
        self.sacked = RangeSet(limit=max_ranges)
        self.retransmitted = RangeSet(limit=max_ranges)
        """Retransmitted bytes neither acknowledged nor SACKed nor known lost again."""
        self.lost_marks = RangeSet(limit=max_ranges)
        """Ranges declared lost from outside (RACK, RTO), kept until acknowledged."""
        self.high_rxt = snd_una
        """RFC 6675 HighRxt, exclusive: holes below it were already resent."""
        self.rescue_rxt: int | None = None
        self.recovery_point: int | None = None
        self._mark_cursor = snd_una
        self.prr: Prr | None = None
        """The recovery's Proportional Rate Reduction (RFC 6937), if ``TcpConfig.prr``."""
        self.delivered_before_ack = snd_una
        """:attr:`delivered` before the ACK being processed: RFC 6937's DeliveredData of
        that ACK is the difference."""

    # --- input ---------------------------------------------------------------------

    def update(self, *, ack: int, blocks: Sequence[tuple[int, int]], high_data: int) -> SackUpdate:
        """Apply one ACK: cumulative ``ack`` and absolute SACK ``blocks`` (SND.MAX = ``high_data``).

        Blocks not inside ``[SND.UNA, high_data]`` are ignored, as Linux's
        ``tcp_is_sackblock_valid`` does, except a first block taken as D-SACK.
        """
        self.delivered_before_ack = self.snd_una + self.sacked.total
        acked = self._cumulative_ack(ack)
        if not blocks:
            return SackUpdate(acked=acked, newly_sacked=0, dsack=None) if acked else _NO_CHANGE
        dsack = None
        first_start, first_end = blocks[0]
        if first_end <= ack or (
            len(blocks) > 1 and blocks[1][0] <= first_start and first_end <= blocks[1][1]
        ):
            dsack = (first_start, first_end)  # RFC 2883 §4: the first block repeats data
            blocks = blocks[1:]
        newly = 0
        una = self.snd_una
        for start, end in blocks:
            if not una <= start < end <= high_data:
                continue  # never trust a block outside what is outstanding (RFC 2018 §8)
            added = self.sacked.add(start, end)
            if added > 0:
                newly += added
                self.retransmitted.remove(start, end)
                self.lost_marks.remove(start, end)
        return SackUpdate(acked=acked, newly_sacked=newly, dsack=dsack)

    def cumulative_ack(self, ack: int) -> int:
        """Apply a cumulative ``ack`` alone (an ACK without SACK blocks); return the bytes
        it newly covers. ``update`` without blocks, minus building its :class:`SackUpdate`
        (the engine's common case: the D-SACK it reports needs a block)."""
        self.delivered_before_ack = self.snd_una + self.sacked.total
        return self._cumulative_ack(ack)

    def _cumulative_ack(self, ack: int) -> int:
        una = self.snd_una
        if ack <= una:
            return 0
        self.snd_una = ack
        self.sacked.discard_below(ack)
        self.retransmitted.discard_below(ack)
        self.lost_marks.discard_below(ack)
        if self.high_rxt < ack:
            self.high_rxt = ack
        return ack - una

    def mark_lost(self, start: int, end: int) -> None:
        """Declare ``[start, end)`` lost (RACK, RFC 8985 §6.2), retransmissions included.

        SACKed bytes inside the range stay SACKed; the rest becomes eligible
        for :meth:`next_segment` again even if it was already retransmitted.
        """
        start = max(start, self.snd_una)
        if end <= start:
            return
        self.retransmitted.remove(start, end)
        marks = self.lost_marks
        marks.add(start, end)
        sacked = self.sacked
        first = bisect_right(sacked.ends, start)
        last = bisect_left(sacked.starts, end)
        for piece_start, piece_end in list(
            zip(sacked.starts[first:last], sacked.ends[first:last], strict=True)
        ):
            marks.remove(max(piece_start, start), min(piece_end, end))
        if start < self._mark_cursor:
            self._mark_cursor = start

    def enter_recovery(self, recovery_point: int) -> None:
        """Loss recovery begins (RFC 6675 §5): RecoveryPoint = HighData."""
        self.recovery_point = recovery_point
        self.high_rxt = max(self.high_rxt, self.snd_una)
        self.rescue_rxt = None

    def exit_recovery(self) -> None:
        self.recovery_point = None
        self.prr = None

    def on_rto(self) -> None:
        """RTO: forget SACK information and loss marks (RFC 2018 §8, RFC 6675 §5.1)."""
        self.sacked.clear()
        self.retransmitted.clear()
        self.lost_marks.clear()
        self.high_rxt = self.snd_una
        self._mark_cursor = self.snd_una
        self.rescue_rxt = None
        self.recovery_point = None
        self.prr = None

    # --- RFC 6675 §4 -----------------------------------------------------------------

    @property
    def delivered(self) -> int:
        """SND.UNA plus the bytes SACKed above it: grows by RFC 6937's DeliveredData."""
        return self.snd_una + self.sacked.total

    @property
    def sacked_bytes(self) -> int:
        return self.sacked.total

    @property
    def highest_sacked(self) -> int | None:
        ends = self.sacked.ends
        return ends[-1] if ends else None

    def _lost_edge(self) -> int:
        """Every unSACKed byte below this is lost by RFC 6675's IsLost() rule."""
        starts, ends = self.sacked.starts, self.sacked.ends
        limit = (self.dup_thresh - 1) * self.mss
        above = 0
        index = len(starts) - 1
        count = 1
        while index >= 0:
            above += ends[index] - starts[index]
            if count >= self.dup_thresh or above > limit:
                return starts[index]
            index -= 1
            count += 1
        return self.snd_una

    def is_lost(self, seq: int) -> bool:
        """IsLost(SeqNum) of RFC 6675 §4, or marked lost from outside."""
        if seq < self.snd_una or self.sacked.contains(seq):
            return False
        if self.lost_marks.contains(seq):
            return True
        sacked = self.sacked
        blocks_above = len(sacked.starts) - bisect_right(sacked.starts, seq)
        if blocks_above >= self.dup_thresh:
            return True
        bytes_above = sacked.total - sacked.covered_below(seq + 1)
        return bytes_above > (self.dup_thresh - 1) * self.mss

    def should_enter_recovery(self) -> bool:
        """RFC 6675 §5 (b): IsLost(HighACK + 1) starts recovery without 3 dupacks."""
        return self.is_lost(self.snd_una)

    def lost_bytes(self, high_data: int) -> int:
        """UnSACKed bytes considered lost in ``[SND.UNA, high_data)``."""
        una = self.snd_una
        edge = min(self._lost_edge(), high_data)
        lost = (edge - una) - self.sacked.covered(una, edge)
        return lost + self.lost_marks.covered(edge, high_data)

    def pipe(self, high_data: int) -> int:
        """SetPipe() (RFC 6675 §4): bytes believed to be in the network."""
        outstanding = high_data - self.snd_una
        if outstanding <= 0:
            return 0
        return (
            outstanding - self.sacked.total - self.lost_bytes(high_data) + self.retransmitted.total
        )

    def _first_hole(self, seq: int, limit: int) -> int | None:
        """The first byte at or after ``seq`` below ``limit`` neither SACKed nor resent."""
        sacked, resent = self.sacked, self.retransmitted
        while seq < limit:
            skipped = resent.skip(sacked.skip(seq))
            if skipped == seq:
                return seq
            seq = skipped
        return None

    def _segment_from(self, start: int, high_data: int) -> int:
        end = min(start + self.mss, high_data)
        for ranges in (self.sacked, self.retransmitted):
            boundary = ranges.next_start(start)
            if boundary is not None and boundary < end:
                end = boundary
        return end

    def next_segment(self, *, high_data: int, new_data: bool) -> NextSegment | None:
        """NextSeg() (RFC 6675 §4) during recovery; ``new_data``: unsent data may go.

        Returns None when nothing should be sent. The engine sends the segment
        (clipping NEW_DATA to the data and the peer's window), then calls
        :meth:`note_sent` with it.
        """
        una = self.snd_una
        highest = self.highest_sacked
        # Rule (1): the first lost hole not yet resent (RFC rule, or marked by RACK).
        candidates = []
        if self.lost_marks:
            cursor = max(self._mark_cursor, una)
            mark = self._first_marked(cursor)
            self._mark_cursor = mark if mark is not None else high_data
            if mark is not None:
                candidates.append(mark)
        edge = min(self._lost_edge(), high_data)
        hole = self._first_hole(max(self.high_rxt, una), edge)
        if hole is not None:
            candidates.append(hole)
        if candidates:
            start = min(candidates)
            return NextSegment(
                kind=SegmentKind.RETRANSMIT, start=start, end=self._segment_from(start, high_data)
            )
        if new_data:
            return NextSegment(kind=SegmentKind.NEW_DATA, start=high_data, end=high_data + self.mss)
        if highest is not None:
            # Rule (3): an unSACKed hole below the highest SACK, lost or not.
            hole = self._first_hole(max(self.high_rxt, una), highest)
            if hole is not None:
                return NextSegment(
                    kind=SegmentKind.RETRANSMIT, start=hole, end=self._segment_from(hole, high_data)
                )
        return self._rescue(high_data)

    def _first_marked(self, seq: int) -> int | None:
        marks = self.lost_marks
        index = bisect_right(marks.ends, seq)
        resent = self.retransmitted
        while index < len(marks.starts):
            start = max(marks.starts[index], seq)
            end = marks.ends[index]
            while start < end:
                skipped = resent.skip(start)
                if skipped == start:
                    return start
                start = skipped
            index += 1
        return None

    def _rescue(self, high_data: int) -> NextSegment | None:
        """Rule (4): one segment holding the highest unSACKed byte, once per recovery."""
        point = self.recovery_point
        if point is None or (self.rescue_rxt is not None and self.rescue_rxt >= self.snd_una):
            return None
        top = high_data
        sacked = self.sacked
        if sacked.ends and sacked.ends[-1] >= top:
            top = sacked.starts[-1]
        if top <= self.snd_una or self.retransmitted.contains(top - 1):
            return None  # nothing unSACKed, or its highest byte was already resent
        start = max(top - self.mss, self.snd_una)
        below = bisect_right(sacked.ends, top) - 1  # the SACKed range just under the hole
        if below >= 0 and sacked.ends[below] > start:
            start = sacked.ends[below]
        return NextSegment(kind=SegmentKind.RESCUE, start=start, end=top)

    def note_sent(self, segment: NextSegment) -> None:
        """The engine sent ``segment`` (what :meth:`next_segment` returned, maybe clipped)."""
        if segment.kind is SegmentKind.NEW_DATA:
            return
        self.note_retransmit(segment.start, segment.end, rescue=segment.kind is SegmentKind.RESCUE)

    def note_retransmit(self, start: int, end: int, *, rescue: bool = False) -> None:
        """``[start, end)`` was retransmitted (by NextSeg, a TLP, or an RTO)."""
        start = max(start, self.snd_una)
        if end <= start:
            return
        self.retransmitted.add(start, end)
        if rescue:
            self.rescue_rxt = self.recovery_point  # RFC 6675 §4 rule (4): HighRxt unchanged
        elif end > self.high_rxt and self._first_hole(self.high_rxt, start) is None:
            self.high_rxt = end  # nothing left unsent between HighRxt and this segment
