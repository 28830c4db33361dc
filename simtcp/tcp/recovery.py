"""Loss recovery: RFC 5681 §3.1-§3.2, RFC 6582, RFC 6675 §5 and RFC 8985 §6.2-§7.4 in the engine.

What an ACK does to the sender (RTT samples, cwnd, fast retransmit, recovery)
and what recovery does when the RTO, RACK's reorder timer or the tail loss
probe timer fires (:func:`retransmission_timed_out`, :func:`rack_timers`,
:func:`send_loss_probe`); :mod:`.timeouts` only decides that a timer is due.
The data structures these rules drive live in :mod:`.sack` (RFC 6675 §4's
scoreboard) and :mod:`.rack` (RFC 8985's detection); :mod:`.output` sends
what they choose.

Without SACK, recovery is RFC 5681 §3.2 with RFC 6582 (NewReno) partial ACKs:
three duplicate ACKs retransmit SND.UNA's segment, each partial ACK the next
one. With SACK (RFC 2018) negotiated, the connection keeps an RFC 6675
scoreboard (:class:`.sack.SackScoreboard`): recovery starts on three
duplicate ACKs or when IsLost(SND.UNA) holds, cwnd drops to ssthresh, and
:func:`.output.sack_output` sends what NextSeg() chooses while
``cwnd - pipe >= SMSS`` -- only what is missing, several holes per RTT.

With RACK-TLP (RFC 8985, :mod:`.rack`) on top of SACK, every transmission is
time-stamped; an ACK that delivers a later-sent segment marks earlier ones
lost once they are a reordering window overdue (so a lost retransmission is
resent without waiting for the RTO), a reorder timer re-checks the rest, and
a tail loss probe after about two SRTTs of silence makes a lost last segment
show itself by SACK instead of by timeout.
"""

from __future__ import annotations

from ..events import SendSpaceAvailable
from ..time import Instant
from ..wire.tcp import ACK, FIN, TcpSegment
from .connection import Connection
from .hystart import HYSTART_L_SEGMENTS
from .output import (
    SENDING_STATES,
    arm_probe,
    output,
    retransmit_first,
    retransmit_range,
    sack_output,
    transmit,
)
from .prr import Prr
from .rack import RackVerdict
from .sack import unwrap_blocks


def rtt_sample(conn: Connection, rtt: int) -> None:
    """One RTT measurement for the RTO estimator and the congestion control."""
    conn.rto.sample(rtt)
    conn.cc.on_rtt_sample(rtt)


def sack_arrived(
    conn: Connection, ack: int, wire_blocks: tuple[tuple[int, int], ...], now: Instant
) -> None:
    """Apply SACK blocks of an ACK that did not advance SND.UNA."""
    scoreboard = conn.scoreboard
    if scoreboard is not None:
        blocks = unwrap_blocks(wire_blocks, conn.snd_una)
        update = scoreboard.update(ack=ack, blocks=blocks, high_data=conn.snd_max)
        if update.newly_sacked:
            conn.delivery.acked(conn, blocks, now)
        _rack_ack(conn, blocks, update.dsack is not None, now)
        if conn.in_recovery:
            prr_ack(conn)


def new_ack(
    conn: Connection,
    segment: TcpSegment,
    ack: int,
    wire_blocks: tuple[tuple[int, int], ...],
    now: Instant,
) -> None:
    """SND.UNA < SEG.ACK <= SND.MAX: data left the network (RFC 9293 §3.10.7.4 "fifth")."""
    una = conn.snd_una
    acked = ack - una
    flight = conn.snd_max - una
    blocks, dsack = _update_scoreboard(conn, ack, wire_blocks)
    conn.snd_una = ack
    if conn.snd_nxt < ack:
        conn.snd_nxt = ack
    conn.send_buffer.acknowledge(ack)
    _measure_rtt(conn, segment, ack, now)  # a valid sample also ends the backoff
    conn.delivery.acked(conn, blocks, now)
    conn.retries = 0
    # RFC 6298 §5 (Karn): without a valid RTT sample the backed-off RTO stays in force;
    # an ACK of a retransmission alone does not reset it.
    if conn.in_recovery:
        restart_timer = _recovery_ack(conn, ack, acked, now)
    else:
        _open_ack(conn, ack, acked, flight, now)
        restart_timer = True
    _after_ack(conn, blocks, dsack, now, restart_timer=restart_timer)
    if conn.in_recovery:
        prr_ack(conn)


def prr_ack(conn: Connection) -> None:
    """RFC 6937 §3.1 on an ACK during SACK recovery: ``cwnd = pipe + sndcnt``.

    The output that follows the ACK sends while ``cwnd - pipe >= SMSS``, so
    sndcnt is rounded up to whole segments (``prr_out`` counts what really
    left). An ACK that delivered nothing changes nothing, as in Linux's
    ``tcp_cwnd_reduction``: the reduction bound is earned by delivery.
    """
    scoreboard = conn.scoreboard
    if scoreboard is None or scoreboard.prr is None:
        return
    prr = scoreboard.prr
    delivered = scoreboard.delivered - scoreboard.delivered_before_ack
    scoreboard.delivered_before_ack = scoreboard.delivered  # counted once per ACK
    if delivered <= 0 and prr.prr_out:
        return
    pipe = scoreboard.pipe(conn.snd_max)
    sndcnt = prr.on_ack(delivered, pipe)
    mss = conn.snd_mss
    conn.cc.cwnd = pipe + -(-sndcnt // mss) * mss


def _update_scoreboard(
    conn: Connection, ack: int, wire_blocks: tuple[tuple[int, int], ...]
) -> tuple[list[tuple[int, int]], bool]:
    """Give a new cumulative ACK and its SACK blocks to the scoreboard: (blocks, D-SACK?)."""
    scoreboard = conn.scoreboard
    blocks: list[tuple[int, int]] = []
    dsack = False
    if scoreboard is not None:
        if wire_blocks:
            blocks = unwrap_blocks(wire_blocks, conn.snd_una)
            dsack = (
                scoreboard.update(ack=ack, blocks=blocks, high_data=conn.snd_max).dsack is not None
            )
        else:  # the common ACK: no blocks, no D-SACK, no SackUpdate to build
            scoreboard.cumulative_ack(ack)
    return blocks, dsack


def _recovery_ack(conn: Connection, ack: int, acked: int, now: Instant) -> bool:
    """A new ACK during fast recovery; False when the RTO must not restart."""
    cc = conn.cc
    scoreboard = conn.scoreboard
    if ack >= conn.recover:
        conn.in_recovery = False  # RFC 6582 §3.2 step 6 / RFC 6675 §5: a full ACK
        conn.dupacks = 0
        if scoreboard is not None:
            scoreboard.exit_recovery()
        if conn.rack is not None:
            conn.rack.on_recovery_exit()
        cc.on_exit_recovery(conn.snd_max - ack)
    elif scoreboard is None:
        retransmit_first(conn, now)  # RFC 6582 §3.2 step 5: a partial ACK
        cc.on_partial_ack(acked)
        if conn.partial_acked:
            # RFC 6582 §3.2 step 5 restarts the timer on the FIRST partial ACK only (the
            # Impatient variant, §4.1): with many losses in one window, one repair per RTT
            # would take longer than letting the RTO go back and resend them all.
            return False
        conn.partial_acked = True
    return True


def _open_ack(conn: Connection, ack: int, acked: int, flight: int, now: Instant) -> None:
    """A new ACK outside recovery: grow cwnd (RFC 5681 §3.1), maybe enter SACK recovery."""
    cc = conn.cc
    scoreboard = conn.scoreboard
    conn.dupacks = 0
    if not cc.abc_limit:
        cc.abc_limit = slow_start_limit(conn)
        if conn.config.hystart and scoreboard is not None and not cc.hystart_used:
            # RFC 9406 in the initial slow start, with SACK only: a sender without it
            # repairs one hole per RTT, and with HyStart++ the lossless NewReno row of
            # bench_loss_recovery fell from 94.7 to 74.7 Mbit/s (3 RTOs; the property
            # tests test_newreno_many_losses and test_cubic_no_sack_overshoot agree).
            cc.start_hystart(limit_segments=HYSTART_L_SEGMENTS)
    if cc.hystart is not None:
        cc.hystart_ack(ack, conn.snd_max)
    cc.on_ack(acked, flight, now)
    if (
        scoreboard is not None
        and scoreboard.sacked
        and ack > conn.recover
        and scoreboard.should_enter_recovery()
    ):
        enter_recovery(conn, now)  # RFC 6675 §5 (b): IsLost(HighACK + 1)


def slow_start_limit(conn: Connection) -> int:
    """L of RFC 3465 §2.2 in bytes: ``TcpConfig.abc_limit_segments`` SMSS, or for 0 the
    SMSS that fit in one segment the route's link segments for us (TSO; 1 without).

    RFC 3465 §2.3 caps L at 2*SMSS because a larger increase per ACK lets the sender
    put a longer line-rate burst on the wire than ACK clocking would. A route with
    TSO already takes bursts of ``max_segment`` bytes from us in one piece (and with
    ``segmentation_offload`` off the same frames leave back to back, see
    tests/property/test_tso_sim.py), so an ACK may add up to that much without making
    a burst longer than the ones we send anyway: with a receiver that ACKs once per
    64 KiB (a GRO receiver such as Linux over a TAP), slow start still doubles cwnd
    per RTT. Linux itself counts every acknowledged segment in slow start with no
    limit (tcp_slow_start). The route's size, not ``conn.snd_tso``, so that the
    segmentation_offload switch changes no frame on the wire.
    """
    mss = conn.snd_mss
    segments = conn.config.abc_limit_segments
    if segments == 0:
        max_segment = conn.host.route_offload(conn.remote_address).max_segment
        segments = max(max_segment // mss, 1)
    return segments * mss


def _after_ack(
    conn: Connection,
    blocks: list[tuple[int, int]],
    dsack: bool,
    now: Instant,
    *,
    restart_timer: bool,
) -> None:
    """The timer, RACK and send-space bookkeeping every new ACK ends with."""
    ack = conn.snd_una
    if restart_timer or conn.snd_max <= ack:
        # RFC 6298 §5.2 and §5.3: stop the timer when all is acknowledged, else restart it.
        conn.rto_at = now + conn.rto.rto if conn.snd_max > ack else None
    if conn.rack is not None:
        _rack_ack(conn, blocks, dsack, now)
        arm_probe(conn, now)
    if conn.send_blocked:
        buffer = conn.send_buffer
        if buffer.free_space >= max(buffer.capacity >> 2, 1):
            conn.send_blocked = False
            conn.host.emit(SendSpaceAvailable(connection=conn.handle, space=buffer.free_space))


def _measure_rtt(conn: Connection, segment: TcpSegment, ack: int, now: Instant) -> None:
    rtt_seq = conn.rtt_seq
    if rtt_seq is not None and ack >= rtt_seq:
        conn.rtt_seq = None
        if not conn.ts_ok:
            rtt_sample(conn, now - conn.rtt_sent_at)  # Karn's rule kept by rtt_seq
    if conn.ts_ok:
        timestamps = segment.timestamps
        if timestamps is not None and timestamps.echo_reply:
            # RFC 7323 §4.1-§4.2: RTTM from an ACK that advances SND.UNA.
            rtt = conn.ts_clock.rtt_from_echo(timestamps.echo_reply, now)
            if rtt is not None:
                rtt_sample(conn, rtt)


def duplicate_ack(conn: Connection, now: Instant) -> None:
    """RFC 5681 §3.2 steps 1-4 (and RFC 6675 §5 with SACK)."""
    conn.dupacks += 1
    scoreboard = conn.scoreboard
    if conn.in_recovery:
        if scoreboard is None:
            conn.cc.on_dupack_in_recovery()  # RFC 5681 §3.2 step 4
        return
    if conn.snd_una <= conn.recover:
        return  # RFC 6582 §3.2 step 2: still within the last recovery's window
    if conn.dupacks >= 3 or (
        scoreboard is not None and scoreboard.sacked and scoreboard.should_enter_recovery()
    ):
        enter_recovery(conn, now)


def reduction_flight(conn: Connection) -> int:
    """The FlightSize a loss response reduces from (RFC 5681 §3.1 equation 4, RFC 9438
    §4.6): SND.MAX - SND.UNA, but with SACK at most cwnd.

    RFC 5681 takes FlightSize rather than cwnd so that an application-limited
    sender does not keep a window it never used. With SACK the other bound
    matters too: a recovery that begins as the last one ends (the first hole
    of the next loss just above the recovery point) counts everything SACKed
    above that hole, a window's worth; 0.7 of flight then exceeds the cwnd in
    force, and under steady loss ssthresh grew each episode (5% random loss,
    100 Mbit/s, 40 ms: 92 Mbit/s sent through the loss, ssthresh 74 -> 1,739
    segments). Linux reduces from cwnd (RFC 9438 §4.6 allows it); the smaller
    of the two keeps both guarantees.
    """
    flight = conn.snd_max - conn.snd_una
    if conn.scoreboard is not None and conn.cc.cwnd < flight:
        return conn.cc.cwnd
    return flight


def enter_recovery(conn: Connection, now: Instant) -> None:
    """Fast retransmit and the start of fast recovery."""
    conn.host.stats.count("tcp.fast_retransmits")
    conn.recover = conn.snd_max
    conn.in_recovery = True
    conn.partial_acked = False
    cc = conn.cc
    cc.on_enter_recovery(reduction_flight(conn), now)
    scoreboard = conn.scoreboard
    if scoreboard is None:
        retransmit_first(conn, now)  # RFC 5681 §3.2 step 2
    else:
        cc.cwnd = cc.ssthresh  # RFC 6675 §5 (4.2): no inflation, pipe does the counting
        scoreboard.enter_recovery(conn.snd_max)
        if conn.config.prr:
            # RFC 6937 §3.1: RecoverFS is what was in flight before this ACK showed the
            # loss, less what the receiver already held (RFC 6675 pipe before the loss).
            held = scoreboard.delivered_before_ack - scoreboard.snd_una
            scoreboard.prr = Prr(
                ssthresh=cc.ssthresh,
                recover_fs=conn.snd_max - conn.snd_una - held,
                mss=conn.snd_mss,
            )
            prr_ack(conn)
        # RFC 6675 §5 (4.3): the first hole goes at once, even while pipe >= cwnd (more
        # than half the window outstanding); then (C) sends as the pipe allows.
        sack_output(conn, now, first_at_once=True)
    conn.rto_at = now + conn.rto.rto


def _rack_ack(conn: Connection, blocks: list[tuple[int, int]], dsack: bool, now: Instant) -> None:
    """RFC 8985 §6.2: update RACK from an ACK and act on what it finds lost."""
    rack = conn.rack
    if rack is None:
        return
    verdict = rack.on_ack(
        snd_una=conn.snd_una,
        sack_blocks=blocks,
        dsack=dsack,
        snd_nxt=conn.snd_max,
        srtt=conn.rto.srtt,
        in_recovery=conn.in_recovery,
        now=now,
    )
    apply_rack_verdict(conn, verdict, now)


def apply_rack_verdict(conn: Connection, verdict: RackVerdict, now: Instant) -> None:
    """Mark RACK's lost ranges on the scoreboard; recover; keep the reorder timer."""
    scoreboard = conn.scoreboard
    conn.reorder_at = verdict.reorder_at
    if scoreboard is None:
        return
    if verdict.lost:
        conn.host.stats.count("tcp.rack_lost_segments", len(verdict.lost))
        for start, end in verdict.lost:
            scoreboard.mark_lost(start, end)
        if not conn.in_recovery:
            enter_recovery(conn, now)  # RFC 8985 §6.2 step 5: loss detected by time
    if verdict.tlp_repaired_loss and not conn.in_recovery:
        # RFC 8985 §7.4.2: the probe repaired a loss; respond as to one loss.
        conn.cc.on_enter_recovery(reduction_flight(conn), now)
        conn.cc.cwnd = conn.cc.ssthresh


# --- timeouts: what loss recovery does when a timer fires ----------------------


def retransmission_timed_out(conn: Connection, now: Instant) -> None:
    """The RTO fired (RFC 5681 §3.1 loss window): leave recovery, forget SACK and RACK state."""
    conn.cc.on_rto(conn.snd_max - conn.snd_una, first=conn.retries == 1)
    conn.in_recovery = False
    conn.dupacks = 0
    conn.recover = conn.snd_max  # RFC 6582 §3.2 step 4 after a timeout
    if conn.rack is not None:
        conn.rack.on_rto(now=now)  # RFC 8985 §6.3; go-back-N resends everything
        conn.reorder_at = conn.probe_at = None
    if conn.scoreboard is not None:
        conn.scoreboard.on_rto()  # RFC 6675 §5.1: SACK information may be reneged


def rack_timers(conn: Connection, now: Instant) -> None:
    """RACK's reorder timer (RFC 8985 §6.3) and the tail loss probe (§7.3)."""
    rack = conn.rack
    if rack is None:
        return
    reorder_at = conn.reorder_at
    if reorder_at is not None and reorder_at <= now:
        conn.reorder_at = None
        verdict = rack.on_reorder_timeout(srtt=conn.rto.srtt, in_recovery=conn.in_recovery, now=now)
        apply_rack_verdict(conn, verdict, now)
        output(conn, now)
    probe_at = conn.probe_at
    if probe_at is not None and probe_at <= now:
        conn.probe_at = None
        if not conn.in_recovery and conn.state in SENDING_STATES:
            send_loss_probe(conn, now)


def send_loss_probe(conn: Connection, now: Instant) -> None:
    """The probe timer fired (RFC 8985 §7.3): one new segment, or the last one again."""
    rack = conn.rack
    scoreboard = conn.scoreboard
    if rack is None or scoreboard is None or conn.snd_una >= conn.snd_max:
        return
    buffer = conn.send_buffer
    high = conn.snd_max
    window_end = conn.snd_una + conn.snd_wnd
    new_data = buffer.end > high and window_end > high and conn.snd_nxt == high
    probe = rack.choose_probe(new_data_available=new_data, snd_nxt=high, mss=conn.snd_mss)
    if probe is None:
        return
    conn.host.stats.count("tcp.loss_probes")
    if probe.new_data:
        size = min(conn.snd_mss, buffer.end - high, window_end - high)
        end = high + size
        fin = conn.fin_seq is not None and end == conn.fin_seq
        transmit(conn, high, ACK | FIN if fin else ACK, buffer.slice(high, size), now)
        conn.snd_nxt = conn.snd_max = end + (1 if fin else 0)
    else:
        sent_end = retransmit_range(conn, probe.start, probe.end, now)
        if sent_end <= probe.start:
            return
        scoreboard.note_retransmit(probe.start, sent_end)
    rack.on_probe_sent(snd_nxt=conn.snd_max, retransmission=not probe.new_data, now=now)
    conn.rto_at = now + conn.rto.rto  # RFC 8985 §7.3: the RTO follows the probe
