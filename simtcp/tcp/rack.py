"""RACK-TLP detection (RFC 8985 §6-§7.4): time-based loss marking and probes, as a pure object.

Theory of operation
-------------------

:class:`RackTlp` keeps one record per outstanding segment: its absolute
``[start, end)`` (see :mod:`.seq`), when it was last sent and whether that was
a retransmission -- except that a TSO segment gets ONE run record standing for
its MSS pieces (piece ``k`` stamped ``first + k``, as if sent one by one). A run
is split lazily, only where an ACK, SACK, loss marking or retransmission covers
part of it, so every answer is exactly the per-piece one (pinned against the
per-piece implementation in ``tests/unit/tcp/test_rack_run_records.py``).
Records live in a dict keyed by end sequence, kept in transmit-time order (a
retransmission moves its record to the end, RFC 8985 §6.2's "time-sorted
list"; a split rebuilds it), plus a sorted list of ends for lookups by
sequence number. Nothing reads a clock: every call takes ``now`` and returns
what the engine must do.

The engine's hooks:

- :meth:`RackTlp.on_transmit` for every data segment sent (new, fast
  retransmit, RTO, TLP, NextSeg) -- the transmit path in ``output``;
  :meth:`RackTlp.on_transmit_run` for a TSO segment, one run record of MSS pieces.
- :meth:`RackTlp.on_ack` for every acceptable ACK with its SND.UNA, its
  absolute SACK blocks and whether it carried a D-SACK; it returns a
  :class:`RackVerdict`: ranges now lost (mark them on the SACK scoreboard and
  retransmit them), the RACK reorder-timer deadline, and whether a TLP
  retransmission turned out to have repaired a loss (then run the congestion
  response of fast recovery, RFC 8985 §7.4.2).
- :meth:`RackTlp.on_reorder_timeout` when the reorder deadline passes.
- :meth:`RackTlp.probe_deadline` after sending new data or an ACK of new
  data (RFC 8985 §7.2); when it fires, :meth:`RackTlp.choose_probe` says what
  to send and :meth:`RackTlp.on_probe_sent` records it; then the RTO is armed.
- :meth:`RackTlp.on_rto` when the retransmission timer fires (RFC 8985 §6.3).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Sequence
from dataclasses import dataclass

from ..time import MILLISECOND, SECOND, Duration, Instant

WC_DEL_ACK_T: Duration = 200 * MILLISECOND
"""RFC 8985 §7.2 WCDelAckT: the worst-case delayed-ACK timer of the peer."""
INITIAL_PTO: Duration = 1 * SECOND
"""RFC 8985 §7.2: PTO before any RTT sample."""
REO_WND_PERSIST = 16
"""RFC 8985 §6.2 step 4: recoveries a grown reordering window persists for."""


@dataclass(slots=True)
class _Segment:
    """``count`` MSS pieces ``[start, end)`` of one TSO run (or one segment, ``count`` 1):
    piece ``k`` is ``[start + k * piece, ...)`` (the last ends at ``end``), stamped
    ``xmit_ts + k``; the first ``lost`` pieces are marked lost (always a prefix)."""

    start: int
    end: int
    xmit_ts: Instant
    retransmitted: bool = False
    lost: int = 0
    piece: int = 0
    count: int = 1

    def part(self, low: int, high: int) -> _Segment:
        """Pieces ``[low, high)`` as a record of their own."""
        piece = self.piece
        return _Segment(
            self.start + low * piece,
            self.start + high * piece if high < self.count else self.end,
            self.xmit_ts + low,
            self.retransmitted,
            min(max(self.lost - low, 0), high - low),
            piece,
            high - low,
        )

    def ranges(self, low: int, high: int) -> list[tuple[int, int]]:
        """``[start, end)`` of pieces ``low`` to ``high - 1``."""
        if self.count == 1:
            return [(self.start, self.end)]
        start, piece = self.start, self.piece
        out = [(start + k * piece, start + (k + 1) * piece) for k in range(low, high)]
        if high == self.count:
            out[-1] = (out[-1][0], self.end)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class RackVerdict:
    """What the engine must do after an ACK or a timer."""

    lost: tuple[tuple[int, int], ...] = ()
    """Ranges newly detected lost, in transmit order: retransmit them."""
    reorder_at: Instant | None = None
    """When to run :meth:`RackTlp.on_reorder_timeout` (None: no timer needed)."""
    tlp_repaired_loss: bool = False
    """A TLP retransmission repaired a tail loss: reduce cwnd as fast recovery would."""


NO_VERDICT = RackVerdict()
"""The verdict of almost every ACK: nothing lost, no reorder timer, no repair (shared: a
frozen dataclass, so one instance serves every connection)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Probe:
    """What the probe timer should send (RFC 8985 §7.3)."""

    new_data: bool
    """True: one new segment from SND.NXT; False: retransmit ``[start, end)``."""
    start: int
    end: int


def _trim_front(run: _Segment, taken: int) -> _Segment:
    """Cut the first ``taken`` pieces off ``run`` (left in place, keyed by its unchanged
    end) and return them as a record of their own."""
    start = run.start
    piece = run.piece
    lost = run.lost
    front = _Segment(
        start, start + taken * piece, run.xmit_ts, False, min(lost, taken), piece, taken
    )
    run.start = start + taken * piece
    run.xmit_ts += taken
    run.count -= taken
    run.lost = lost - taken if lost > taken else 0
    return front


def _sent_after(t1: Instant, seq1: int, t2: Instant, seq2: int) -> bool:
    """RACK_sent_after (RFC 8985 §6.2): transmit time first, end sequence as tie-break."""
    return t1 > t2 or (t1 == t2 and seq1 > seq2)


class RackTlp:
    """RACK loss detection and TLP for one connection."""

    __slots__ = (
        "dup_thresh",
        "max_segments",
        "_segments",
        "_ends",
        "_pieces",
        "_sacked_ends",
        "rack_xmit_ts",
        "rack_end_seq",
        "rack_rtt",
        "fack",
        "min_rtt",
        "reordering_seen",
        "reo_wnd_mult",
        "reo_wnd_persist",
        "dsack_round",
        "tlp_end_seq",
        "tlp_is_retrans",
        "tlp_sent_at",
        "tlp_original_acked",
        "reorder_at",
    )

    def __init__(self, *, dup_thresh: int = 3, max_segments: int = 1 << 16) -> None:
        self.dup_thresh = dup_thresh
        self.max_segments = max_segments
        self._segments: dict[int, _Segment] = {}
        """Records by end sequence, in transmit-time order."""
        self._ends: list[int] = []
        """The records' ends, sorted (records never overlap)."""
        self._pieces = 0
        """Pieces (segments) all records stand for."""
        self._sacked_ends: list[int] = []
        """End of each segment delivered by SACK but not yet cumulatively ACKed."""
        self.rack_xmit_ts: Instant | None = None
        self.rack_end_seq = 0
        self.rack_rtt: Duration = 0
        self.fack = 0
        """RACK.fack: the highest end sequence delivered so far."""
        self.min_rtt: Duration | None = None
        self.reordering_seen = False
        self.reo_wnd_mult = 1
        self.reo_wnd_persist = 0
        self.dsack_round: int | None = None
        self.tlp_end_seq: int | None = None
        self.tlp_is_retrans = False
        self.tlp_sent_at: Instant = 0
        self.tlp_original_acked = False
        self.reorder_at: Instant | None = None

    @property
    def outstanding_segments(self) -> int:
        return self._pieces

    @property
    def sacked_segments(self) -> int:
        """RACK.segs_sacked: segments delivered by SACK above SND.UNA."""
        return len(self._sacked_ends)

    def _split(self, record: _Segment, low: int, high: int, singles: bool) -> list[_Segment]:
        """Cut pieces ``[low, high)`` out of ``record`` (one record, or one per piece if
        ``singles``), leaving the rest in place in the time order; return the cut ones."""
        if record.count == 1:
            return [record]
        if singles:
            middle = [record.part(k, k + 1) for k in range(low, high)]
        else:
            middle = [record.part(low, high)]
        parts = (
            ([record.part(0, low)] if low else [])
            + middle
            + ([record.part(high, record.count)] if high < record.count else [])
        )
        ends = self._ends
        index = bisect_left(ends, record.end)
        ends[index : index + 1] = [part.end for part in parts]
        rebuilt: dict[int, _Segment] = {}
        for end, segment in self._segments.items():
            if segment is record:
                for part in parts:
                    rebuilt[part.end] = part
            else:
                rebuilt[end] = segment
        self._segments = rebuilt
        return middle

    @staticmethod
    def _first_piece_from(record: _Segment, seq: int) -> int:
        """Index of the first piece of ``record`` starting at or after ``seq``."""
        if seq <= record.start:
            return 0
        if record.count == 1:
            return 1
        return min(-(-(seq - record.start) // record.piece), record.count)

    @staticmethod
    def _pieces_ending_by(record: _Segment, seq: int) -> int:
        """How many leading pieces of ``record`` end at or before ``seq``."""
        if record.end <= seq:
            return record.count
        if record.count == 1:
            return 0
        return min(max((seq - record.start) // record.piece, 0), record.count - 1)

    # --- transmissions ---------------------------------------------------------------

    def on_transmit(self, start: int, end: int, *, now: Instant) -> None:
        """A data segment ``[start, end)`` (FIN included in ``end``) left at ``now``."""
        if end <= start:
            return
        ends = self._ends
        index = bisect_right(ends, start)
        while index < len(ends):  # pieces of runs it covers become records of their own
            record = self._segments[ends[index]]
            if record.start >= end:
                break
            if record.count > 1:
                low = self._pieces_ending_by(record, start)
                high = self._first_piece_from(record, end)
                self._split(record, low, high, True)
                index = bisect_right(ends, start)
                continue
            index += 1
        segments = self._segments
        index = bisect_right(ends, start)
        covered_to = start
        while index < len(ends):
            # A retransmission: the records it covers move to the tail of the time order.
            segment = segments[ends[index]]
            if segment.start >= end:
                break
            del segments[segment.end]
            segment.xmit_ts = now
            segment.retransmitted = True
            segment.lost = 0
            segments[segment.end] = segment
            covered_to = max(covered_to, segment.end)
            index += 1
        if covered_to < end:
            self._add_new(max(covered_to, start), end, now)

    def on_transmit_run(
        self, start: int, data_end: int, piece: int, *, fin: int, now: Instant
    ) -> Instant:
        """A TSO segment ``[start, data_end)`` (plus ``fin``) left at ``now``; return the last
        stamp used.

        The link cuts it into ``piece``-byte segments and the peer acknowledges and SACKs
        those, so each counts as its own segment, stamped ``now``, ``now + 1``, ...
        exactly as if they had been sent one by one; the FIN rides on the last piece.
        New data gets one run record, split only when an ACK, SACK, loss or
        retransmission covers part of it.
        """
        ends = self._ends
        cuts = range(start, data_end, piece)
        count = len(cuts)
        if (ends and ends[-1] > start) or self._pieces + count > self.max_segments:
            last = cuts[-1]
            stamp = now
            for cut in cuts:  # retransmitted records move to the tail of the time order
                self.on_transmit(cut, cut + piece if cut != last else data_end + fin, now=stamp)
                stamp += 1
            return stamp - 1
        end = data_end + fin
        self._segments[end] = _Segment(start, end, now, False, 0, piece, count)
        ends.append(end)
        self._pieces += count
        return now + count - 1

    def _add_new(self, start: int, end: int, now: Instant) -> None:
        ends = self._ends
        segments = self._segments
        if self._pieces >= self.max_segments and ends:
            last = segments[ends[-1]]
            if last.end == start and not last.retransmitted:
                if last.count > 1:
                    last = self._split(last, last.count - 1, last.count, True)[0]
                    segments = self._segments
                # Bounded memory: past the cap, new data joins the newest record.
                del segments[last.end]
                last.end = end
                last.xmit_ts = now
                segments[end] = last
                ends[-1] = end
                return
        ends.insert(bisect_left(ends, end), end)
        segments[end] = _Segment(start, end, now)
        self._pieces += 1

    # --- ACKs (RFC 8985 §6.2) -----------------------------------------------------------

    def on_ack(
        self,
        *,
        snd_una: int,
        sack_blocks: Sequence[tuple[int, int]],
        dsack: bool,
        snd_nxt: int,
        srtt: Duration | None,
        in_recovery: bool,
        now: Instant,
    ) -> RackVerdict:
        """Process one ACK: SND.UNA after it and its absolute SACK blocks.

        A D-SACK block among ``sack_blocks`` is harmless (it covers nothing
        still outstanding); ``dsack`` says whether there was one
        (:attr:`.sack.SackUpdate.dsack`). ``srtt`` caps the reordering window.
        """
        delivered = self._take_delivered(snd_una, sack_blocks)
        if delivered:
            self._update_rack(delivered, now)
        self._update_dsack_round(snd_una, snd_nxt, dsack)
        repaired = self._tlp_on_ack(snd_una, dsack, now)
        lost, reorder_at = self._detect_loss(srtt, in_recovery, now)
        if not lost and reorder_at is None and not repaired:
            return NO_VERDICT
        return RackVerdict(lost=lost, reorder_at=reorder_at, tlp_repaired_loss=repaired)

    def _take_delivered(
        self, snd_una: int, sack_blocks: Sequence[tuple[int, int]]
    ) -> list[_Segment]:
        ends = self._ends
        segments = self._segments
        count = bisect_right(ends, snd_una)
        delivered = []
        pieces = self._pieces
        for end in ends[:count]:
            segment = segments.pop(end)
            pieces -= segment.count
            delivered.append(segment)
        del ends[:count]
        if ends:
            first = segments[ends[0]]
            if first.count > 1 and first.start + first.piece <= snd_una:
                # The acknowledged front of a run: cut off and delivered, the rest in place.
                taken = min((snd_una - first.start) // first.piece, first.count - 1)
                delivered.append(_trim_front(first, taken))
                pieces -= taken
        self._pieces = pieces
        sacked_ends = self._sacked_ends
        del sacked_ends[: bisect_right(sacked_ends, snd_una)]
        for block_start, block_end in sack_blocks:
            self._take_sacked(block_start, block_end, delivered)
        return delivered

    def _take_sacked(self, block_start: int, block_end: int, delivered: list[_Segment]) -> None:
        """Records (pieces) from the first starting at ``block_start`` on, while they end
        by ``block_end``: delivered by SACK."""
        ends = self._ends
        index = bisect_right(ends, block_start)
        low = (
            self._first_piece_from(self._segments[ends[index]], block_start)
            if (index < len(ends))
            else 0
        )
        sacked_ends = self._sacked_ends
        while index < len(ends):
            record = self._segments[ends[index]]
            if low >= record.count:
                index += 1
                low = 0
                continue
            high = self._pieces_ending_by(record, block_end)
            if high <= low:
                break
            partial = high < record.count  # the next piece ends beyond the block
            if low:
                record = self._split(record, low, high, False)[0]
            elif partial:  # the front of a run: cut off, the rest stays in place
                record = _trim_front(record, high)
            if not partial or low:
                del self._segments[record.end]
                del ends[bisect_left(ends, record.end)]
            delivered.append(record)
            self._pieces -= record.count
            new_ends = (
                list(
                    range(
                        record.start + record.piece,
                        record.start + record.count * record.piece,
                        record.piece,
                    )
                )
                if record.count > 1
                else []
            )
            new_ends.append(record.end)
            pos = bisect_left(sacked_ends, new_ends[0])
            if pos == len(sacked_ends) or sacked_ends[pos] >= new_ends[-1]:
                sacked_ends[pos:pos] = new_ends
            else:
                for e in new_ends:
                    insort(sacked_ends, e)
            if partial:
                break
            low = 0
            index = bisect_right(ends, record.start)

    def _update_rack(self, delivered: list[_Segment], now: Instant) -> None:
        """Steps 1-3 of RFC 8985 §6.2 for each newly delivered segment, in order.

        One loop over locals rather than a call per segment. A run's pieces (never
        retransmitted) go in one step: stamps and ends both rise along it, so its last
        piece has the least RTT and is the latest sent, and only its first piece can
        end below RACK.fack.
        """
        min_rtt = self.min_rtt
        rack_ts = self.rack_xmit_ts
        rack_end = self.rack_end_seq
        rack_rtt = self.rack_rtt
        fack = self.fack
        reordering = self.reordering_seen
        for segment in delivered:
            xmit_ts = segment.xmit_ts
            end = segment.end
            retransmitted = segment.retransmitted
            first_end = end
            if segment.count > 1:
                xmit_ts += segment.count - 1
                first_end = segment.start + segment.piece
            rtt = now - xmit_ts
            if retransmitted:
                if min_rtt is not None and rtt < min_rtt:
                    continue  # step 2: the ACK is for the original, not this retransmission
            elif min_rtt is None or rtt < min_rtt:
                min_rtt = rtt  # step 1 (a simple minimum, not a windowed filter)
            if rack_ts is None or xmit_ts > rack_ts or (xmit_ts == rack_ts and end > rack_end):
                rack_rtt = rtt  # RACK_sent_after: transmit time, then end sequence
                rack_ts = xmit_ts
                rack_end = end
            # Step 3: delivered below the highest delivered sequence means reordering.
            if first_end < fack and not retransmitted:
                reordering = True
            if end > fack:
                fack = end
        self.min_rtt = min_rtt
        self.rack_xmit_ts = rack_ts
        self.rack_end_seq = rack_end
        self.rack_rtt = rack_rtt
        self.fack = fack
        self.reordering_seen = reordering

    def _update_dsack_round(self, snd_una: int, snd_nxt: int, dsack: bool) -> None:
        """Step 4 of RFC 8985 §6.2: grow the reordering window on D-SACK, once per round."""
        if self.dsack_round is not None and snd_una >= self.dsack_round:
            self.dsack_round = None
        if self.dsack_round is None and dsack:
            self.dsack_round = snd_nxt
            self.reo_wnd_mult += 1
            self.reo_wnd_persist = REO_WND_PERSIST

    def on_recovery_exit(self) -> None:
        """Fast or RTO recovery ended (RFC 8985 §6.2 step 4: the persistence count)."""
        self.reo_wnd_persist -= 1
        if self.reo_wnd_persist <= 0:
            self.reo_wnd_mult = 1

    def reo_wnd(self, srtt: Duration | None, in_recovery: bool) -> Duration:
        """RACK.reo_wnd (RFC 8985 §6.2 step 4)."""
        if not self.reordering_seen and (in_recovery or self.sacked_segments >= self.dup_thresh):
            return 0
        min_rtt = self.min_rtt or 0
        window = self.reo_wnd_mult * min_rtt // 4
        return min(window, srtt) if srtt is not None else window

    def _detect_loss(
        self, srtt: Duration | None, in_recovery: bool, now: Instant
    ) -> tuple[tuple[tuple[int, int], ...], Instant | None]:
        """Step 5 of RFC 8985 §6.2: segments sent before RACK.xmit_ts, long enough ago."""
        rack_ts = self.rack_xmit_ts
        if rack_ts is None:
            self.reorder_at = None
            return (), None
        reo_wnd = self.reo_wnd(srtt, in_recovery)
        lost: list[tuple[int, int]] = []
        timeout = 0
        rack_end = self.rack_end_seq
        deadline_base = self.rack_rtt + reo_wnd
        for segment in self._segments.values():
            if segment.count > 1:
                xmit_ts = segment.xmit_ts
                if not segment.lost and not (
                    rack_ts > xmit_ts
                    or (rack_ts == xmit_ts and rack_end > segment.start + segment.piece)
                ):
                    break  # its first piece was sent after RACK.xmit_ts: all the rest too
                stop, timeout = self._detect_run_loss(
                    segment, rack_ts, rack_end, deadline_base, now, lost, timeout
                )
                if stop:
                    break
                continue
            if not _sent_after(rack_ts, rack_end, segment.xmit_ts, segment.end):
                break  # the rest were sent later still (time order)
            if segment.lost:
                continue
            remaining = segment.xmit_ts + deadline_base - now
            if remaining <= 0:
                segment.lost = 1
                lost.append((segment.start, segment.end))
            elif remaining > timeout:
                timeout = remaining
        self.reorder_at = now + timeout if timeout else None
        return tuple(lost), self.reorder_at

    @staticmethod
    def _detect_run_loss(
        run: _Segment,
        rack_ts: Instant,
        rack_end: int,
        deadline_base: int,
        now: Instant,
        lost: list[tuple[int, int]],
        timeout: int,
    ) -> tuple[bool, int]:
        """Step 5 over the pieces of a run; return (stop: a piece was sent after
        RACK.xmit_ts, the reorder timeout so far). Stamps rise along the run, so the
        pieces sent before RACK.xmit_ts and the pieces lost are both prefixes."""
        piece = run.piece
        last = run.count - 1
        done = run.lost
        if done and not _sent_after(
            rack_ts,
            rack_end,
            run.xmit_ts + done - 1,
            run.start + done * piece if done <= last else run.end,
        ):
            return True, timeout
        for k in range(done, run.count):
            xmit_ts = run.xmit_ts + k
            end = run.start + (k + 1) * piece if k < last else run.end
            if not _sent_after(rack_ts, rack_end, xmit_ts, end):
                return True, timeout
            remaining = xmit_ts + deadline_base - now
            if remaining <= 0:
                run.lost = k + 1
                lost.append((end - piece, end) if k < last else (run.start + k * piece, end))
            elif remaining > timeout:
                timeout = remaining
        return False, timeout

    def on_reorder_timeout(
        self, *, srtt: Duration | None, in_recovery: bool, now: Instant
    ) -> RackVerdict:
        """The RACK reorder timer fired (RFC 8985 §6.3): run loss detection again."""
        lost, reorder_at = self._detect_loss(srtt, in_recovery, now)
        if not lost and reorder_at is None:
            return NO_VERDICT
        return RackVerdict(lost=lost, reorder_at=reorder_at)

    def on_rto(self, *, now: Instant) -> RackVerdict:
        """RTO (RFC 8985 §6.3): the first outstanding segment, and every segment
        whose RACK deadline has passed, are lost; any TLP episode ends."""
        self.tlp_end_seq = None
        self.reorder_at = None
        lost = []
        first = self._segments[self._ends[0]].start if self._ends else None
        deadline_base = self.rack_rtt + self.reo_wnd(None, True)
        for segment in self._segments.values():
            for k in range(segment.lost, segment.count):
                start, end = segment.ranges(k, k + 1)[0]
                if start == first or segment.xmit_ts + k + deadline_base <= now:
                    segment.lost = k + 1
                    lost.append((start, end))
                else:
                    break  # later pieces were sent later: not lost either
        lost.sort()
        return RackVerdict(lost=tuple(lost))

    # --- TLP (RFC 8985 §7) ------------------------------------------------------------------

    def probe_deadline(
        self,
        *,
        now: Instant,
        srtt: Duration | None,
        rto_at: Instant | None,
        in_recovery: bool,
        flight_size: int,
        mss: int,
    ) -> Instant | None:
        """When to send a loss probe (RFC 8985 §7.2), or None when none may be scheduled.

        Call after sending new data or after an ACK of new data. No probe in
        fast or RTO recovery, with SACKed segments, during a TLP episode, or
        with nothing in flight. The probe never comes after the RTO would.
        """
        if in_recovery or self.sacked_segments or self.tlp_end_seq is not None:
            return None
        if flight_size <= 0:
            return None
        if srtt is None:
            pto = INITIAL_PTO
        else:
            pto = 2 * srtt
            if flight_size <= mss:
                pto += WC_DEL_ACK_T  # one segment: its ACK may be delayed
        deadline = now + pto
        if rto_at is not None and rto_at < deadline:
            deadline = rto_at
        return deadline

    def choose_probe(self, *, new_data_available: bool, snd_nxt: int, mss: int) -> Probe | None:
        """RFC 8985 §7.3: new data if the window allows, else the last segment sent."""
        if new_data_available:
            return Probe(new_data=True, start=snd_nxt, end=snd_nxt + mss)
        if not self._ends:
            return None
        last = self._segments[self._ends[-1]]
        start = last.start + (last.count - 1) * last.piece  # its last piece
        return Probe(new_data=False, start=max(start, last.end - mss), end=last.end)

    def on_probe_sent(self, *, snd_nxt: int, retransmission: bool, now: Instant) -> None:
        """A probe left (after :meth:`on_transmit` saw it): one probe per episode."""
        self.tlp_end_seq = snd_nxt
        self.tlp_is_retrans = retransmission
        self.tlp_sent_at = now
        self.tlp_original_acked = False

    def _tlp_on_ack(self, snd_una: int, dsack: bool, now: Instant) -> bool:
        """RFC 8985 §7.4: did the probe repair a loss? Ends the episode either way."""
        end_seq = self.tlp_end_seq
        if end_seq is None:
            return False
        if not self.tlp_is_retrans:
            if snd_una >= end_seq:
                self.tlp_end_seq = None
            return False
        if dsack:
            self.tlp_end_seq = None  # the original arrived too: nothing was lost
            return False
        if snd_una < end_seq:
            return False
        min_rtt = self.min_rtt
        if self.tlp_original_acked or (min_rtt is not None and now - self.tlp_sent_at < min_rtt):
            # Too soon to be for the probe: the original's ACK. Await the probe's
            # D-SACK; an ACK beyond the probe ends the episode without a verdict.
            self.tlp_original_acked = True
            if snd_una > end_seq:
                self.tlp_end_seq = None
            return False
        self.tlp_end_seq = None
        return True
