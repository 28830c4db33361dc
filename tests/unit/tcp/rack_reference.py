"""Reference oracle: RACK-TLP with one record per MSS piece (simtcp/tcp/rack.py before
run records, kept verbatim below) for tests/unit/tcp/test_rack_run_records.py.

RACK-TLP (RFC 8985): time-based loss detection and tail loss probes, as a pure object.

Theory of operation
-------------------

:class:`RackTlp` keeps one record per outstanding segment: its absolute
``[start, end)`` (see :mod:`.seq`), when it was last sent and whether that was
a retransmission. Records live in a dict kept in transmit-time order (a
retransmission moves its record to the end, RFC 8985 §6.2's "time-sorted
list") plus a sorted list of starts for lookups by sequence number. Nothing
reads a clock: every call takes ``now`` and returns what the engine must do.

The engine's hooks:

- :meth:`RackTlp.on_transmit` for every data segment sent (new, fast
  retransmit, RTO, TLP, NextSeg) -- the transmit path in ``output``;
  :meth:`RackTlp.on_transmit_run` for a TSO segment, one record per MSS piece.
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

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from simtcp.time import MILLISECOND, SECOND, Duration, Instant

WC_DEL_ACK_T: Duration = 200 * MILLISECOND
"""RFC 8985 §7.2 WCDelAckT: the worst-case delayed-ACK timer of the peer."""
INITIAL_PTO: Duration = 1 * SECOND
"""RFC 8985 §7.2: PTO before any RTT sample."""
REO_WND_PERSIST = 16
"""RFC 8985 §6.2 step 4: recoveries a grown reordering window persists for."""


@dataclass(slots=True)
class _Segment:
    start: int
    end: int
    xmit_ts: Instant
    retransmitted: bool = False
    lost: bool = False


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


def _sent_after(t1: Instant, seq1: int, t2: Instant, seq2: int) -> bool:
    """RACK_sent_after (RFC 8985 §6.2): transmit time first, end sequence as tie-break."""
    return t1 > t2 or (t1 == t2 and seq1 > seq2)


class RackTlp:
    """RACK loss detection and TLP for one connection."""

    __slots__ = (
        "dup_thresh",
        "max_segments",
        "_segments",
        "_starts",
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
        self._starts: list[int] = []
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
        return len(self._starts)

    @property
    def sacked_segments(self) -> int:
        """RACK.segs_sacked: segments delivered by SACK above SND.UNA."""
        return len(self._sacked_ends)

    # --- transmissions ---------------------------------------------------------------

    def on_transmit(self, start: int, end: int, *, now: Instant) -> None:
        """A data segment ``[start, end)`` (FIN included in ``end``) left at ``now``."""
        if end <= start:
            return
        starts = self._starts
        segments = self._segments
        index = bisect_right(starts, start) - 1
        if index < 0 or segments[starts[index]].end <= start:
            index += 1
        covered_to = start
        while index < len(starts) and starts[index] < end:
            # A retransmission: the records it covers move to the tail of the time order.
            segment = segments.pop(starts[index])
            segment.xmit_ts = now
            segment.retransmitted = True
            segment.lost = False
            segments[segment.start] = segment
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
        those, so each gets its own record, stamped ``now``, ``now + 1``, ... exactly as
        if they had been sent one by one; the FIN rides on the last piece.
        """
        starts = self._starts
        segments = self._segments
        cuts = range(start, data_end, piece)
        last = cuts[-1]
        stamp = now
        if (starts and segments[starts[-1]].end > start) or (
            len(starts) + len(cuts) > self.max_segments
        ):
            for cut in cuts:  # retransmitted records move to the tail of the time order
                self.on_transmit(cut, cut + piece if cut != last else data_end + fin, now=stamp)
                stamp += 1
            return stamp - 1
        for cut in cuts:  # new data beyond every record: append in both orders
            segments[cut] = _Segment(cut, cut + piece if cut != last else data_end + fin, stamp)
            stamp += 1
        starts.extend(cuts)
        return stamp - 1

    def _add_new(self, start: int, end: int, now: Instant) -> None:
        starts = self._starts
        segments = self._segments
        if len(starts) >= self.max_segments and starts:
            last = segments[starts[-1]]
            if last.end == start and not last.retransmitted:
                # Bounded memory: past the cap, new data joins the newest record.
                segments.pop(last.start)
                last.end = end
                last.xmit_ts = now
                segments[last.start] = last
                return
        index = bisect_left(starts, start)
        starts.insert(index, start)
        segments[start] = _Segment(start, end, now)

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
        starts = self._starts
        segments = self._segments
        delivered = []
        count = bisect_left(starts, snd_una)
        if count and segments[starts[count - 1]].end > snd_una:
            count -= 1  # partly acknowledged: not delivered yet
        for start in starts[:count]:
            delivered.append(segments.pop(start))
        del starts[:count]
        sacked_ends = self._sacked_ends
        del sacked_ends[: bisect_right(sacked_ends, snd_una)]
        for block_start, block_end in sack_blocks:
            index = bisect_left(starts, block_start)
            last = index
            while last < len(starts) and segments[starts[last]].end <= block_end:
                segment = segments.pop(starts[last])
                delivered.append(segment)
                sacked_ends.insert(bisect_left(sacked_ends, segment.end), segment.end)
                last += 1
            del starts[index:last]
        return delivered

    def _update_rack(self, delivered: list[_Segment], now: Instant) -> None:
        """Steps 1-3 of RFC 8985 §6.2 for each newly delivered segment, in order.

        One loop over locals rather than a call per segment: an ACK of a TSO
        segment delivers dozens of MSS-sized records at once.
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
            rtt = now - xmit_ts
            retransmitted = segment.retransmitted
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
            if end < fack and not retransmitted:
                reordering = True
            elif end > fack:
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
        lost = []
        timeout = 0
        rack_end = self.rack_end_seq
        deadline_base = self.rack_rtt + reo_wnd
        for segment in self._segments.values():
            if not _sent_after(rack_ts, rack_end, segment.xmit_ts, segment.end):
                break  # the rest were sent later still (time order)
            if segment.lost:
                continue
            remaining = segment.xmit_ts + deadline_base - now
            if remaining <= 0:
                segment.lost = True
                lost.append((segment.start, segment.end))
            elif remaining > timeout:
                timeout = remaining
        self.reorder_at = now + timeout if timeout else None
        return tuple(lost), self.reorder_at

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
        first = self._starts[0] if self._starts else None
        deadline_base = self.rack_rtt + self.reo_wnd(None, True)
        for segment in self._segments.values():
            if segment.lost:
                continue
            if segment.start == first or segment.xmit_ts + deadline_base <= now:
                segment.lost = True
                lost.append((segment.start, segment.end))
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
        if not self._starts:
            return None
        last = self._segments[self._starts[-1]]
        return Probe(new_data=False, start=max(last.start, last.end - mss), end=last.end)

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
