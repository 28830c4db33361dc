"""RACK-TLP (RFC 8985) on explicit timelines: PTO, TLP repair, reordering window, RTO."""

from __future__ import annotations

import heapq

from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp.tcp.buffers import ReceiveBuffer
from simtcp.tcp.rack import INITIAL_PTO, WC_DEL_ACK_T, Probe, RackTlp
from simtcp.tcp.sack import SackReceiver, SackScoreboard, SegmentKind, duplicate_range
from simtcp.time import MILLISECOND, SECOND

MSS = 1000
BASE = (1 << 32) - 2500  # absolute sequence numbers whose wire values wrap mid-test


def _seg(index: int) -> tuple[int, int]:
    return BASE + index * MSS, BASE + (index + 1) * MSS


def _send(rack: RackTlp, index: int, now: int) -> None:
    start, end = _seg(index)
    rack.on_transmit(start, end, now=now)


def _warm(rack: RackTlp, rtt: int = 40 * MILLISECOND) -> int:
    """One segment sent at 0 and ACKed after ``rtt``: min_RTT and RACK.rtt are ``rtt``.

    Returns the segment index the next test segment should use.
    """
    _send(rack, 0, 0)
    verdict = rack.on_ack(
        snd_una=_seg(0)[1],
        sack_blocks=[],
        dsack=False,
        snd_nxt=_seg(0)[1],
        srtt=rtt,
        in_recovery=False,
        now=rtt,
    )
    assert verdict.lost == ()
    assert rack.min_rtt == rtt
    return 1


def test_tail_loss_recovered_by_a_tlp_at_the_exact_pto() -> None:
    rack = RackTlp()
    srtt = 100 * MILLISECOND
    for index in range(10):
        _send(rack, index, 0)
    # ACKs for segments 0..8 arrive at 100 ms; segment 9 (the tail) was lost.
    verdict = rack.on_ack(
        snd_una=_seg(9)[0],
        sack_blocks=[],
        dsack=False,
        snd_nxt=_seg(9)[1],
        srtt=srtt,
        in_recovery=False,
        now=100 * MILLISECOND,
    )
    assert verdict.lost == () and verdict.reorder_at is None
    rto_at = 100 * MILLISECOND + 1 * SECOND
    deadline = rack.probe_deadline(
        now=100 * MILLISECOND, srtt=srtt, rto_at=rto_at, in_recovery=False, flight_size=MSS, mss=MSS
    )
    # PTO = 2 * SRTT + WCDelAckT with a single segment in flight (RFC 8985 §7.2).
    assert deadline == 100 * MILLISECOND + 2 * srtt + WC_DEL_ACK_T == 500 * MILLISECOND
    probe = rack.choose_probe(new_data_available=False, snd_nxt=_seg(9)[1], mss=MSS)
    assert probe == Probe(new_data=False, start=_seg(9)[0], end=_seg(9)[1])
    rack.on_transmit(probe.start, probe.end, now=deadline)
    rack.on_probe_sent(snd_nxt=_seg(9)[1], retransmission=True, now=deadline)
    # One probe per episode.
    assert (
        rack.probe_deadline(
            now=deadline, srtt=srtt, rto_at=rto_at, in_recovery=False, flight_size=MSS, mss=MSS
        )
        is None
    )
    verdict = rack.on_ack(
        snd_una=_seg(9)[1],
        sack_blocks=[],
        dsack=False,
        snd_nxt=_seg(9)[1],
        srtt=srtt,
        in_recovery=False,
        now=deadline + srtt,
    )
    assert verdict.tlp_repaired_loss
    assert rack.tlp_end_seq is None
    assert rack.outstanding_segments == 0


def test_pto_with_several_segments_and_capped_by_the_rto() -> None:
    rack = RackTlp()
    for index in range(3):
        _send(rack, index, 0)
    srtt = 50 * MILLISECOND
    assert (
        rack.probe_deadline(
            now=0, srtt=srtt, rto_at=1 * SECOND, in_recovery=False, flight_size=3 * MSS, mss=MSS
        )
        == 100 * MILLISECOND
    )
    assert (
        rack.probe_deadline(
            now=0,
            srtt=srtt,
            rto_at=70 * MILLISECOND,
            in_recovery=False,
            flight_size=3 * MSS,
            mss=MSS,
        )
        == 70 * MILLISECOND
    )
    assert (
        rack.probe_deadline(
            now=0, srtt=None, rto_at=None, in_recovery=False, flight_size=3 * MSS, mss=MSS
        )
        == INITIAL_PTO
    )
    assert (
        rack.probe_deadline(
            now=0, srtt=srtt, rto_at=None, in_recovery=True, flight_size=3 * MSS, mss=MSS
        )
        is None
    )
    assert (
        rack.probe_deadline(
            now=0, srtt=srtt, rto_at=None, in_recovery=False, flight_size=0, mss=MSS
        )
        is None
    )


def test_probe_prefers_new_data() -> None:
    rack = RackTlp()
    _send(rack, 0, 0)
    assert rack.choose_probe(new_data_available=True, snd_nxt=_seg(1)[0], mss=MSS) == Probe(
        new_data=True, start=_seg(1)[0], end=_seg(1)[1]
    )
    assert RackTlp().choose_probe(new_data_available=False, snd_nxt=0, mss=MSS) is None


def test_tlp_whose_original_arrived_is_not_a_loss() -> None:
    rack = RackTlp()
    first = _warm(rack, 100 * MILLISECOND)
    _send(rack, first, 200 * MILLISECOND)
    rack.on_transmit(*_seg(first), now=550 * MILLISECOND)  # the probe
    rack.on_probe_sent(snd_nxt=_seg(first)[1], retransmission=True, now=550 * MILLISECOND)
    # The original's ACK comes 10 ms after the probe left: too soon to be the probe's.
    verdict = rack.on_ack(
        snd_una=_seg(first)[1],
        sack_blocks=[],
        dsack=False,
        snd_nxt=_seg(first)[1],
        srtt=100 * MILLISECOND,
        in_recovery=False,
        now=560 * MILLISECOND,
    )
    assert not verdict.tlp_repaired_loss
    assert rack.tlp_end_seq is not None
    verdict = rack.on_ack(
        snd_una=_seg(first)[1],
        sack_blocks=[],
        dsack=True,
        snd_nxt=_seg(first)[1],
        srtt=100 * MILLISECOND,
        in_recovery=False,
        now=650 * MILLISECOND,
    )
    assert not verdict.tlp_repaired_loss
    assert rack.tlp_end_seq is None


def test_reordering_within_the_window_is_not_loss() -> None:
    rack = RackTlp()
    first = _warm(rack)  # min_RTT 40 ms: reo_wnd = 10 ms
    a, b = first, first + 1
    _send(rack, a, 100 * MILLISECOND)
    _send(rack, b, 101 * MILLISECOND)
    verdict = rack.on_ack(
        snd_una=_seg(a)[0],
        sack_blocks=[_seg(b)],
        dsack=False,
        snd_nxt=_seg(b)[1],
        srtt=40 * MILLISECOND,
        in_recovery=False,
        now=141 * MILLISECOND,
    )
    assert verdict.lost == ()
    # a was sent at 100 ms: lost at 100 + RACK.rtt 40 + reo_wnd 10 = 150 ms.
    assert verdict.reorder_at == 150 * MILLISECOND
    verdict = rack.on_ack(
        snd_una=_seg(b)[1],
        sack_blocks=[],
        dsack=False,
        snd_nxt=_seg(b)[1],
        srtt=40 * MILLISECOND,
        in_recovery=False,
        now=145 * MILLISECOND,
    )
    assert verdict.lost == () and verdict.reorder_at is None
    assert rack.reordering_seen


def test_beyond_the_reordering_window_is_loss() -> None:
    rack = RackTlp()
    first = _warm(rack)
    a, b = first, first + 1
    _send(rack, a, 100 * MILLISECOND)
    _send(rack, b, 101 * MILLISECOND)
    verdict = rack.on_ack(
        snd_una=_seg(a)[0],
        sack_blocks=[_seg(b)],
        dsack=False,
        snd_nxt=_seg(b)[1],
        srtt=40 * MILLISECOND,
        in_recovery=False,
        now=141 * MILLISECOND,
    )
    assert verdict.reorder_at == 150 * MILLISECOND
    early = rack.on_reorder_timeout(srtt=40 * MILLISECOND, in_recovery=False, now=149 * MILLISECOND)
    assert early.lost == () and early.reorder_at == 150 * MILLISECOND
    verdict = rack.on_reorder_timeout(
        srtt=40 * MILLISECOND, in_recovery=False, now=150 * MILLISECOND
    )
    assert verdict.lost == (_seg(a),)
    assert verdict.reorder_at is None
    again = rack.on_reorder_timeout(srtt=40 * MILLISECOND, in_recovery=False, now=160 * MILLISECOND)
    assert again.lost == ()  # reported once until it is retransmitted


def test_a_lost_retransmission_is_detected_by_time() -> None:
    rack = RackTlp()
    first = _warm(rack)
    a, b, c = first, first + 1, first + 2
    _send(rack, a, 100 * MILLISECOND)
    _send(rack, b, 101 * MILLISECOND)
    rack.on_ack(
        snd_una=_seg(a)[0],
        sack_blocks=[_seg(b)],
        dsack=False,
        snd_nxt=_seg(b)[1],
        srtt=40 * MILLISECOND,
        in_recovery=False,
        now=141 * MILLISECOND,
    )
    assert rack.on_reorder_timeout(
        srtt=40 * MILLISECOND, in_recovery=True, now=150 * MILLISECOND
    ).lost == (_seg(a),)
    rack.on_transmit(*_seg(a), now=150 * MILLISECOND)  # the retransmission (also lost)
    _send(rack, c, 151 * MILLISECOND)
    # c is SACKed after one RTT; the retransmission sent before it is now lost too.
    # In recovery with no reordering seen reo_wnd is 0: lost at 150 + 40 = 190 ms.
    verdict = rack.on_ack(
        snd_una=_seg(a)[0],
        sack_blocks=[(_seg(b)[0], _seg(c)[1])],
        dsack=False,
        snd_nxt=_seg(c)[1],
        srtt=40 * MILLISECOND,
        in_recovery=True,
        now=191 * MILLISECOND,
    )
    assert verdict.lost == (_seg(a),)


def test_an_ack_sooner_than_min_rtt_after_a_retransmission_is_not_an_rtt_sample() -> None:
    rack = RackTlp()
    first = _warm(rack)
    _send(rack, first, 100 * MILLISECOND)
    rack.on_transmit(*_seg(first), now=130 * MILLISECOND)
    rack.on_ack(
        snd_una=_seg(first)[1],
        sack_blocks=[],
        dsack=False,
        snd_nxt=_seg(first)[1],
        srtt=40 * MILLISECOND,
        in_recovery=False,
        now=140 * MILLISECOND,
    )
    assert rack.rack_rtt == 40 * MILLISECOND  # not the ambiguous 10 ms
    assert rack.rack_xmit_ts == 0


def test_dsack_grows_the_reordering_window_once_per_round() -> None:
    rack = RackTlp()
    first = _warm(rack)
    rack.reordering_seen = False
    assert rack.reo_wnd(40 * MILLISECOND, False) == 10 * MILLISECOND
    for index in range(first, first + 4):
        _send(rack, index, 100 * MILLISECOND)
    snd_nxt = _seg(first + 3)[1]
    rack.on_ack(
        snd_una=_seg(first)[1],
        sack_blocks=[],
        dsack=True,
        snd_nxt=snd_nxt,
        srtt=40 * MILLISECOND,
        in_recovery=False,
        now=140 * MILLISECOND,
    )
    assert rack.reo_wnd_mult == 2
    rack.on_ack(
        snd_una=_seg(first + 1)[1],
        sack_blocks=[],
        dsack=True,
        snd_nxt=snd_nxt,
        srtt=40 * MILLISECOND,
        in_recovery=False,
        now=141 * MILLISECOND,
    )
    assert rack.reo_wnd_mult == 2  # same round
    assert rack.reo_wnd(40 * MILLISECOND, False) == 20 * MILLISECOND
    assert rack.reo_wnd(15 * MILLISECOND, False) == 15 * MILLISECOND  # capped at SRTT
    for _ in range(16):
        rack.on_recovery_exit()
    assert rack.reo_wnd_mult == 1


def test_rto_marks_the_first_segment_and_expired_ones_lost() -> None:
    rack = RackTlp()
    first = _warm(rack)
    _send(rack, first, 100 * MILLISECOND)
    _send(rack, first + 1, 100 * MILLISECOND)
    _send(rack, first + 2, 390 * MILLISECOND)
    verdict = rack.on_rto(now=400 * MILLISECOND)
    assert verdict.lost == (_seg(first), _seg(first + 1))  # the last was sent 10 ms ago


@given(st.integers(1, 40), st.integers(1, 200), st.integers(0, 5))
@settings(max_examples=100, deadline=None)
def test_in_order_delivery_is_never_loss(count: int, rtt_ms: int, gap_ms: int) -> None:
    rack = RackTlp()
    rtt = rtt_ms * MILLISECOND
    for index in range(count):
        _send(rack, index, index * gap_ms * MILLISECOND)
    for index in range(count):
        now = index * gap_ms * MILLISECOND + rtt
        verdict = rack.on_ack(
            snd_una=_seg(index)[1],
            sack_blocks=[],
            dsack=False,
            snd_nxt=_seg(count - 1)[1],
            srtt=rtt,
            in_recovery=False,
            now=now,
        )
        assert verdict.lost == ()
    assert rack.outstanding_segments == 0


@given(st.lists(st.integers(0, 30), min_size=1, max_size=30))
@settings(max_examples=100, deadline=None)
def test_sacks_in_any_order_deliver_each_record_once(order: list[int]) -> None:
    rack = RackTlp(max_segments=8)  # past 8 records new data joins the newest one
    for index in range(31):
        _send(rack, index, index)
    assert rack.outstanding_segments <= 8
    for index in order:
        rack.on_ack(
            snd_una=BASE,
            sack_blocks=[_seg(index)],
            dsack=False,
            snd_nxt=_seg(30)[1],
            srtt=None,
            in_recovery=False,
            now=1000,
        )
    rack.on_ack(
        snd_una=_seg(30)[1],
        sack_blocks=[],
        dsack=False,
        snd_nxt=_seg(30)[1],
        srtt=None,
        in_recovery=False,
        now=1000,
    )
    assert rack.outstanding_segments == 0
    assert rack.sacked_segments == 0


# --- RACK-TLP with the SACK scoreboard and receiver: a miniature engine -----------------


class _Model:
    """Sender (scoreboard + RACK-TLP) and receiver (ReceiveBuffer + SackReceiver) joined
    by a 50 ms path with per-packet extra delay; shows how the engine wires the hooks."""

    def __init__(self, count: int, drops: list[bool], jitter: list[int]) -> None:
        self.mss = 100
        self.high = BASE + count * self.mss
        self.rack = RackTlp()
        self.board = SackScoreboard(snd_una=BASE, mss=self.mss)
        self.buffer = ReceiveBuffer(capacity=1 << 20, max_blocks=64)
        self.receiver = SackReceiver()
        self.rcv_nxt = BASE
        self.snd_una = BASE
        self.drops = drops
        self.jitter = jitter
        self.sent = 0
        self.events: list[tuple[int, int, str, tuple[int, ...]]] = []
        self.order = 0
        self.srtt = 100 * MILLISECOND
        self.rto_at: int | None = None
        self.rtos = 0
        self.probes = 0
        self.in_recovery = False
        self.probe_at: int | None = None
        self.reorder_at: int | None = None

    def push(self, at: int, kind: str, *args: int) -> None:
        self.order += 1
        heapq.heappush(self.events, (at, self.order, kind, args))

    def transmit(self, start: int, end: int, now: int, *, first: bool) -> None:
        self.rack.on_transmit(start, end, now=now)
        index = self.sent
        self.sent += 1
        if first and self.drops[index % len(self.drops)]:
            return  # only first transmissions are ever dropped
        delay = 50 * MILLISECOND + self.jitter[index % len(self.jitter)] * MILLISECOND
        self.push(now + delay, "data", start, end)
        if self.rto_at is None:
            self.rto_at = now + 1 * SECOND

    def arrive(self, start: int, end: int, now: int) -> None:
        held = self.buffer.out_of_order_blocks()
        duplicate = duplicate_range(start, end, self.rcv_nxt, held)
        clipped = max(start, self.rcv_nxt)
        if end > clipped:
            self.rcv_nxt = self.buffer.add(clipped, bytes(end - clipped), self.rcv_nxt)
        self.receiver.record_arrival(start, end, rcv_nxt=self.rcv_nxt, duplicate=duplicate)
        blocks = self.receiver.option_blocks(
            rcv_nxt=self.rcv_nxt, held=self.buffer.out_of_order_blocks(), limit=3
        )
        flat = [edge for block in blocks for edge in block]
        self.push(now + 50 * MILLISECOND, "ack", self.rcv_nxt, *flat)

    def ack(self, ack: int, flat: tuple[int, ...], now: int) -> None:
        blocks = list(zip(flat[0::2], flat[1::2], strict=True))
        update = self.board.update(ack=ack, blocks=blocks, high_data=self.high)
        advanced = ack > self.snd_una
        self.snd_una = max(self.snd_una, ack)
        verdict = self.rack.on_ack(
            snd_una=self.snd_una,
            sack_blocks=blocks,
            dsack=update.dsack is not None,
            snd_nxt=self.high,
            srtt=self.srtt,
            in_recovery=self.in_recovery,
            now=now,
        )
        if advanced:
            self.rto_at = now + 1 * SECOND if self.snd_una < self.high else None
        if self.in_recovery and self.snd_una >= self.high:
            self.in_recovery = False
            self.board.exit_recovery()
            self.rack.on_recovery_exit()
        self.after_verdict(verdict.lost, verdict.reorder_at, now)
        if advanced:
            self.arm_probe(now)

    def after_verdict(
        self, lost: tuple[tuple[int, int], ...], reorder_at: int | None, now: int
    ) -> None:
        for start, end in lost:
            self.board.mark_lost(start, end)
        if lost and not self.in_recovery:
            self.in_recovery = True
            self.board.enter_recovery(self.high)
        self.reorder_at = reorder_at
        if reorder_at is not None:
            self.push(reorder_at, "reorder")
        while self.in_recovery:
            segment = self.board.next_segment(high_data=self.high, new_data=False)
            if segment is None or segment.kind is SegmentKind.RESCUE:
                break
            self.board.note_sent(segment)
            self.transmit(segment.start, segment.end, now, first=False)

    def arm_probe(self, now: int) -> None:
        flight = self.high - self.snd_una
        self.probe_at = self.rack.probe_deadline(
            now=now,
            srtt=self.srtt,
            rto_at=self.rto_at,
            in_recovery=self.in_recovery,
            flight_size=flight,
            mss=self.mss,
        )
        if self.probe_at is not None:
            self.push(self.probe_at, "probe")

    def run(self) -> int:
        for index in range((self.high - BASE) // self.mss):
            start = BASE + index * self.mss
            self.transmit(start, start + self.mss, index * MILLISECOND, first=True)
        self.arm_probe((self.high - BASE) // self.mss * MILLISECOND)
        now = 0
        while self.snd_una < self.high and now < 60 * SECOND:
            rto_at = self.rto_at
            if rto_at is not None and (not self.events or rto_at < self.events[0][0]):
                # The RTO fires even when nothing else is pending (a silent tail).
                now = rto_at
                self.rtos += 1
                self.rto_at = None
                self.board.on_rto()
                verdict = self.rack.on_rto(now=now)
                self.in_recovery = False
                self.after_verdict(verdict.lost, None, now)  # resends what it marked lost
                continue
            if not self.events:
                break
            at, _, kind, args = heapq.heappop(self.events)
            now = at
            if kind == "data":
                self.arrive(args[0], args[1], now)
            elif kind == "ack":
                self.ack(args[0], args[1:], now)
            elif kind == "reorder" and self.reorder_at == at:
                verdict = self.rack.on_reorder_timeout(
                    srtt=self.srtt, in_recovery=self.in_recovery, now=now
                )
                self.after_verdict(verdict.lost, verdict.reorder_at, now)
            elif kind == "probe" and self.probe_at == at and self.snd_una < self.high:
                probe = self.rack.choose_probe(
                    new_data_available=False, snd_nxt=self.high, mss=self.mss
                )
                if probe is not None:
                    self.probes += 1
                    self.board.note_retransmit(probe.start, probe.end)
                    self.transmit(probe.start, probe.end, now, first=False)
                    self.rack.on_probe_sent(snd_nxt=self.high, retransmission=True, now=now)
        return now


@given(
    st.integers(2, 40),
    st.lists(st.booleans(), min_size=1, max_size=40),
    st.lists(st.integers(0, 20), min_size=1, max_size=40),
)
@settings(max_examples=150, deadline=None)
def test_any_first_transmission_losses_recover_without_rto(
    count: int, drops: list[bool], jitter: list[int]
) -> None:
    model = _Model(count, drops, jitter)
    model.run()
    assert model.rcv_nxt == model.high  # every byte delivered
    assert model.snd_una == model.high
    # Retransmissions are never lost, so RACK and TLP do it all -- unless the path's
    # jitter delivers a retransmission in less than RACK.min_RTT: RFC 8985 §6.2 step 2
    # then takes its ACK for the original's and RACK.xmit_ts cannot pass a later
    # lost segment; one RTO (which resends every lost segment) ends it.
    assert model.rtos <= (0 if len(set(jitter)) == 1 else 1)
    assert model.probes <= 1 + sum(drops)


def test_model_tail_loss_uses_one_probe() -> None:
    model = _Model(10, [False] * 9 + [True], [0])
    model.run()
    assert model.rcv_nxt == model.high
    assert (model.probes, model.rtos) == (1, 0)
