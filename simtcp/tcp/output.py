"""What a connection sends: windows, Nagle and SWS, RFC 6675 §5 (C) NextSeg, RFC 8985 §7.2 PTO.

Every segment of an established connection leaves through :func:`transmit`,
which fills in the ACK number and the receive window (and so doubles as the
ACK we owed). :func:`output` is the one place that decides how much new or
go-back-N data may go now: the smaller of the peer's window and ``cwnd``
(RFC 5681 §3.1), Nagle's rule (RFC 896, RFC 1122 §4.2.3.4) and the sender's
silly-window avoidance (RFC 9293 §3.8.6.2.1).
"""

from __future__ import annotations

from ..time import MILLISECOND, Instant
from ..wire.address import Address
from ..wire.checksum import Buffer
from ..wire.tcp import (
    ACK,
    FIN,
    PSH,
    RST,
    SYN,
    MssOption,
    NopOption,
    SackOption,
    SackPermittedOption,
    TcpOption,
    TcpSegment,
    TimestampsOption,
    WindowScaleOption,
)
from .connection import Connection
from .delivery import CHRONO_BUSY, note_output
from .family import ip_tcp_headers
from .host import TcpHost
from .machine import State
from .options import MAX_OPTIONS_SPACE, TIMESTAMPS_SPACE, TS_TICK, sack_block_capacity
from .sack import NextSegment, SegmentKind, to_wire_blocks
from .seq import SEQ_MASK

_NOP = NopOption()
MAX_WINDOW_SHIFT = 14
IP_TCP_HEADERS = 40
"""IPv4 plus TCP header bytes without options (RFC 9293 §3.7.1)."""
"""RFC 7323 §2.3: a shift count above 14 is used as 14."""


def advertised_window(conn: Connection) -> int:
    """The window field for a segment now; moves RCV.ADV (the right edge we offered).

    Receiver SWS avoidance (RFC 9293 §3.8.6.2.2): the right edge moves only when
    free space has grown by min(buffer/2, MSS) beyond the current offer, and it
    never moves left (RFC 9293 §3.8.6: shrinking the window is discouraged).
    """
    rcv_nxt = conn.rcv_nxt
    current = conn.rcv_adv - rcv_nxt
    if current < 0:
        current = 0
    buffer = conn.receive_buffer
    free = buffer.free_space
    if free > current and (
        free - current >= min(buffer.capacity >> 1, conn.rcv_mss) or free == buffer.capacity
    ):
        current = free
    shift = conn.rcv_wscale
    wire = current >> shift
    if wire > 0xFFFF:
        wire = 0xFFFF
    right_edge = rcv_nxt + (wire << shift)
    if right_edge > conn.rcv_adv:
        conn.rcv_adv = right_edge
    return wire


def transmit(conn: Connection, seq: int, flags: int, payload: Buffer, now: Instant) -> None:
    """Send one synchronized-state segment; it carries our latest ACK and window."""
    rcv_nxt = conn.rcv_nxt
    options: tuple[TcpOption, ...] = ()
    if conn.ts_ok:
        # RFC 7323 §3.2: every segment; NOP NOP TS is the layout of Appendix A. The
        # options are immutable: the previous segment's serve while TSval (1 ms ticks)
        # and TS.Recent are unchanged.
        tsval = (conn.ts_clock.offset + now // TS_TICK) & SEQ_MASK  # TimestampClock.tsval
        ts_recent = conn.ts.ts_recent
        timestamps = conn.ts_sent
        if timestamps.value != tsval or timestamps.echo_reply != ts_recent:
            conn.ts_sent = timestamps = TimestampsOption(tsval, ts_recent)
            conn.ts_options = (_NOP, _NOP, timestamps)
        options = conn.ts_options
        conn.last_ack_sent = rcv_nxt
    if (
        not payload
        and conn.sack_receiver is not None
        and (conn.sack_pending or conn.receive_buffer.has_out_of_order)
    ):
        options += _sack_option(conn, len(options) and TIMESTAMPS_SPACE)
    segment = TcpSegment(
        conn.local_port,
        conn.remote_port,
        seq & SEQ_MASK,
        rcv_nxt & SEQ_MASK,
        flags | ACK,
        advertised_window(conn),
        options,
        payload,
    )
    conn.unacked_bytes = 0
    conn.delack_at = None
    conn.ack_pending = False  # this segment carries the ACK that was owed
    if payload:
        conn.delivery.data_sent(conn, seq, len(payload), now)
    else:
        conn.delivery.control_segs_out += 1
    rack = conn.rack
    if rack is not None and (payload or flags & FIN):
        # RACK orders transmissions by time (RFC 8985 §6.2); segments sent at the same
        # microsecond get distinct, increasing stamps so a retransmission sent after
        # new data is not taken for an older one.
        stamp = conn.rack_clock + 1 if conn.rack_clock >= now else now
        fin = 1 if flags & FIN else 0
        if len(payload) > conn.snd_mss:
            # A TSO segment: the wire carries (and the peer SACKs) its MSS pieces, so
            # RACK keeps one record per piece, stamped as if sent one after the other.
            stamp = rack.on_transmit_run(seq, seq + len(payload), conn.snd_mss, fin=fin, now=stamp)
        else:
            rack.on_transmit(seq, seq + len(payload) + fin, now=stamp)
        conn.rack_clock = stamp
    conn.host.send_tcp(conn.local_address, conn.remote_address, segment, now=now)


def _sack_option(conn: Connection, used: int) -> tuple[TcpOption, ...]:
    """SACK blocks for a pure ACK (RFC 2018 §4, RFC 2883), as many as fit beside ``used``."""
    receiver = conn.sack_receiver
    if receiver is None:
        return ()
    conn.sack_pending = False
    blocks = receiver.option_blocks(
        rcv_nxt=conn.rcv_nxt,
        held=conn.receive_buffer.out_of_order_blocks(),
        limit=sack_block_capacity(used, space=_option_space(conn)),
    )
    if not blocks:
        return ()
    return (_NOP, _NOP, SackOption(to_wire_blocks(blocks)))


def _option_space(conn: Connection) -> int:
    """Option bytes a pure ACK may carry within our link's MTU (RFC 9293 §3.7.1)."""
    mtu = conn.route_mtu
    return mtu - IP_TCP_HEADERS if mtu else MAX_OPTIONS_SPACE


def send_ack(conn: Connection, now: Instant) -> None:
    """A bare ACK (also the challenge ACK of RFC 5961 §3.2).

    Its sequence number is the highest we sent, not SND.NXT: after a timeout
    SND.NXT steps back (go-back-N) below the peer's RCV.NXT, and an ACK
    carrying it would be unacceptable to the peer and so lost (or answered,
    starting an ACK war).
    """
    transmit(conn, conn.snd_max, ACK, b"", now)


def send_reset_for(conn: Connection, now: Instant) -> None:
    """RST from an open connection (abort, RFC 9293 §3.10.5): <SEQ=SND.NXT><CTL=RST>."""
    segment = TcpSegment(conn.local_port, conn.remote_port, conn.snd_nxt & SEQ_MASK, 0, RST, 0)
    conn.delivery.control_segs_out += 1
    conn.host.send_tcp(conn.local_address, conn.remote_address, segment, now=now)


def send_reset_reply(
    host: TcpHost, source: Address, destination: Address, segment: TcpSegment, now: Instant
) -> None:
    """Answer ``segment`` (which arrived from ``source``) with a RST (RFC 9293 §3.10.7.1)."""
    if segment.flags & RST:
        return
    if segment.flags & ACK:
        reply = TcpSegment(segment.destination_port, segment.source_port, segment.ack, 0, RST, 0)
    else:
        ack = (segment.seq + segment.segment_length) & SEQ_MASK
        reply = TcpSegment(segment.destination_port, segment.source_port, 0, ack, RST | ACK, 0)
    host.send_tcp(destination, source, reply, now=now)


def send_syn(conn: Connection, now: Instant) -> None:
    """SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED) with our MSS and maybe window scale."""
    options: tuple[TcpOption, ...] = (MssOption(conn.rcv_mss),)
    if conn.sack_ok or (conn.state is State.SYN_SENT and conn.config.sack):
        options += (_NOP, _NOP, SackPermittedOption())  # RFC 2018 §2
    if conn.offered_wscale >= 0:
        options += (_NOP, WindowScaleOption(conn.offered_wscale))
    if conn.ts_ok or (conn.state is State.SYN_SENT and conn.config.timestamps):
        # RFC 7323 §3.2: offer in our SYN; echo in a SYN-ACK only if the SYN offered.
        echo = conn.ts.ts_recent if conn.state is State.SYN_RECEIVED else 0
        options += (_NOP, _NOP, TimestampsOption(conn.ts_clock.tsval(now), echo))
    fast_open = conn.fast_open_option
    payload = b""
    if fast_open is not None:
        # RFC 7413 §4.1.1, NOP-aligned to a 4-byte boundary.
        options += (_NOP,) * (-(2 + len(fast_open.cookie)) % 4) + (fast_open,)
        if conn.syn_data:
            # RFC 7413 §4.2.1: data with the cookie, in the first SYN only (as Linux).
            payload = conn.send_buffer.slice(conn.iss + 1, conn.syn_data)
    flags = SYN
    ack = 0
    if conn.state is State.SYN_RECEIVED:
        flags |= ACK
        ack = conn.rcv_nxt & SEQ_MASK
    # RFC 7323 §2.2: the window of a SYN is never scaled.
    window = min(conn.receive_buffer.free_space, 0xFFFF)
    segment = TcpSegment(
        conn.local_port, conn.remote_port, conn.iss & SEQ_MASK, ack, flags, window, options, payload
    )
    conn.snd_nxt = conn.iss + 1 + len(payload)
    conn.syn_data = 0
    if conn.snd_max < conn.snd_nxt:
        conn.snd_max = conn.snd_nxt
    if payload:  # Fast Open data (RFC 7413) counts as a data segment, as in Linux
        conn.delivery.data_segs_out += 1
    else:
        conn.delivery.control_segs_out += 1
    conn.host.send_tcp(conn.local_address, conn.remote_address, segment, now=now)


SENDING_STATES = frozenset(
    {State.ESTABLISHED, State.CLOSE_WAIT, State.FIN_WAIT_1, State.CLOSING, State.LAST_ACK}
)


def update_segment_size(conn: Connection) -> int:
    """Set ``conn.snd_tso``, the largest payload of one segment we build, and return it.

    It is the largest multiple of SND.MSS within the route's ``max_segment`` when
    the link cuts segments (TSO) into exactly SND.MSS-sized pieces, that is when
    SND.MSS is what the link's MTU leaves beside the headers (IPv4 or IPv6, TCP and the
    timestamps every data segment carries, RFC 7323 §3.2). Otherwise (a peer or a
    path with a smaller MSS, RFC 1191 §6.2; no offload; loopback) it is SND.MSS.
    """
    mss = conn.snd_mss
    limit = conn.route_max_segment
    size = mss
    options = TIMESTAMPS_SPACE if conn.ts_ok else 0
    headers = ip_tcp_headers(conn.remote_address)
    if limit >= 2 * mss and conn.route_mtu - headers - options == mss:
        size = limit - limit % mss
    conn.snd_tso = size
    conn.snd_tso_mss = mss
    return size


def output(conn: Connection, now: Instant, *, corking: bool = False) -> None:
    """Send whatever the windows, Nagle and SWS avoidance allow, then our FIN if due.

    With TSO one segment may carry up to ``conn.snd_tso`` bytes: it stands for
    the run of MSS-sized segments the rules below would have sent one by one
    (the link cuts it back into them), so only its last piece may be short, and
    that piece goes only where it would have gone alone.

    ``corking`` (the application's ``send`` while the host flushes, with
    ``TcpConfig.autocorking``): a last segment shorter than the MSS is held and
    ``conn.corked`` set; the layer sends it when the host collects output, with
    whatever the application writes until then (Linux's autocorking).
    """
    if conn.state not in SENDING_STATES and not (
        conn.fast_open and conn.state is State.SYN_RECEIVED
    ):
        return  # RFC 7413 §4.2.2: a Fast Open server may answer before the handshake ends
    if conn.in_recovery and conn.scoreboard is not None:
        sack_output(conn, now)
        return
    data_end = conn.send_buffer.end
    mss = conn.snd_mss
    tso = conn.snd_tso if conn.snd_tso_mss == mss else update_segment_size(conn)
    una = conn.snd_una
    nxt = conn.snd_nxt
    fin_seq = conn.fin_seq
    right_edge = una + _send_allowance(conn, mss)
    sent = False
    while True:
        unsent = data_end - nxt
        if unsent <= 0:
            if fin_seq is not None and nxt == fin_seq:
                _send_fin(conn, nxt, now)
                nxt += 1
                sent = True
            break
        usable = right_edge - nxt
        if usable <= 0:
            break
        size = _next_segment_size(
            conn, nxt, tso if tso < unsent else unsent, usable, unsent, corking
        )
        if not size:
            break  # a small segment waits (Nagle, sender SWS)
        end = nxt + size
        fin = fin_seq is not None and end == fin_seq
        _send_data(conn, nxt, size, fin, now)
        nxt = end + 1 if fin else end
        sent = True
        if fin:
            break
    _output_sent(conn, nxt, sent, now)


def _send_allowance(conn: Connection, mss: int) -> int:
    """How far past SND.UNA we may send: the smaller of the peer's window and cwnd."""
    window = conn.snd_wnd
    cwnd = conn.cc.cwnd
    dupacks = conn.dupacks
    if 0 < dupacks < 3 and not conn.in_recovery:
        # RFC 5681 §3.2 step 1 (RFC 3042, limited transmit): each of the first two
        # duplicate ACKs lets one new segment go beyond cwnd, within the peer's window.
        cwnd += dupacks * mss
    return window if window < cwnd else cwnd


def _next_segment_size(
    conn: Connection, nxt: int, size: int, usable: int, unsent: int, corking: bool
) -> int:
    """The payload of the segment at ``nxt`` (``size`` bytes at most); 0 holds it back."""
    mss = conn.snd_mss
    if usable < size:
        size = usable
    if size > mss:
        tail = size % mss
        if tail:
            # The short last piece waits as it would alone (Nagle, sender SWS, corking).
            tail_at = nxt + size - tail
            if tail_at >= conn.snd_max and _hold_small_segment(
                conn, tail, conn.send_buffer.end - tail_at, corking
            ):
                size -= tail
    elif size < mss and nxt >= conn.snd_max and _hold_small_segment(conn, size, unsent, corking):
        return 0
    return size


def _send_fin(conn: Connection, nxt: int, now: Instant) -> None:
    """RFC 9293 §3.10.4: the FIN follows the queued data at once."""
    transmit(conn, nxt, FIN | ACK, b"", now)
    if nxt < conn.snd_max:
        conn.retransmits += 1


def _send_data(conn: Connection, nxt: int, size: int, fin: bool, now: Instant) -> None:
    """Send ``size`` bytes from ``nxt`` (with our FIN if ``fin``), timed per RFC 6298 §3."""
    buffer = conn.send_buffer
    end = nxt + size
    flags = ACK | FIN if fin else ACK
    if end == buffer.end:
        flags |= PSH
    transmit(conn, nxt, flags, buffer.slice(nxt, size), now)
    mss = conn.snd_mss
    if size <= mss:
        if nxt < conn.snd_max:
            conn.retransmits += 1
        else:
            if size < mss:
                conn.snd_sml = end  # Minshall's Nagle: a small segment is in flight
            if conn.rtt_seq is None:
                conn.rtt_seq = end
                conn.rtt_sent_at = now
    else:
        if size % mss and end > conn.snd_max:
            conn.snd_sml = end  # its last piece is small
        _account_pieces(conn, nxt, end, mss, now)


def _output_sent(conn: Connection, nxt: int, sent: bool, now: Instant) -> None:
    """Advance SND.NXT/SND.MAX and arm the RTO, the loss probe or the persist timer."""
    conn.snd_nxt = nxt
    if nxt > conn.snd_max:
        conn.snd_max = nxt
    if sent:
        if conn.rto_at is None:
            conn.rto_at = now + conn.rto.rto
        conn.persist_at = None
        if conn.rack is not None:
            arm_probe(conn, now)
    elif (
        conn.snd_wnd == 0
        and conn.send_buffer.end > nxt
        and conn.rto_at is None
        and conn.persist_at is None
    ):
        # RFC 9293 §3.8.6.1: probe a zero window on the persist timer.
        conn.persist_backoff = 0
        conn.persist_at = now + conn.rto.rto
    delivery = conn.delivery
    if (
        not sent
        or delivery.chrono != CHRONO_BUSY
        or conn.snd_wnd < conn.cc.cwnd
        or conn.send_blocked
    ):
        note_output(conn, delivery, nxt, now)  # else busy, as it was


def _account_pieces(conn: Connection, start: int, end: int, mss: int, now: Instant) -> None:
    """Retransmission count and RTT timing (RFC 6298 §3) of a TSO segment's MSS pieces,
    as if each had been sent alone: the first new piece is the one timed."""
    snd_max = conn.snd_max
    first_new = start
    if start < snd_max:
        resent = (snd_max if snd_max < end else end) - start
        pieces = (resent + mss - 1) // mss
        conn.retransmits += pieces
        first_new = start + pieces * mss
    if first_new < end and conn.rtt_seq is None:
        conn.rtt_seq = first_new + mss if first_new + mss < end else end
        conn.rtt_sent_at = now


def _hold_small_segment(conn: Connection, size: int, unsent: int, corking: bool) -> bool:
    """Whether a segment smaller than the MSS should wait (Nagle, sender SWS, corking)."""
    una = conn.snd_una
    outstanding = conn.snd_max > una
    if size == unsent:
        # The application's last bytes.
        if conn.fin_seq is not None:
            return False  # closing: the FIN must not wait (RFC 9293 §3.10.4)
        if conn.cork:
            return True  # TCP_CORK: only full-sized segments until it is cleared
        nagle = (
            not conn.nodelay
            and outstanding
            # RFC 896 / RFC 1122 §4.2.3.4: one small segment in flight at a time;
            # Minshall's variant (as Linux's tcp_minshall_check) counts only small ones.
            and (conn.snd_sml > una or not conn.config.minshall_nagle)
        )
        if corking and not nagle:
            conn.corked = True  # autocorking: it leaves at the host's flush
            return True
        return nagle
    if not outstanding:
        return False  # nothing in flight: no ACK is coming to clock us, send now
    # Window-limited: RFC 9293 §3.8.6.2.1, wait until half the largest window fits.
    return size < conn.max_snd_wnd >> 1


CORK_CEILING = 200 * MILLISECOND
"""Longest that TCP_CORK holds data (Linux's tcp(7): "a 200 millisecond ceiling")."""


def flush_corked(conn: Connection, now: Instant) -> None:
    """Send what TCP_CORK holds, leaving the cork set (its ceiling ran out, or
    TCP_NODELAY was set: Linux's tcp(7) flushes pending output then too)."""
    cork, conn.cork = conn.cork, False
    output(conn, now)
    conn.cork = cork


def retransmit_first(conn: Connection, now: Instant) -> None:
    """Resend the segment at SND.UNA (fast retransmit, partial ACK, RTO)."""
    una = conn.snd_una
    buffer = conn.send_buffer
    data_end = buffer.end
    size = data_end - una
    if size > conn.snd_mss:
        size = conn.snd_mss
    if size < 0:
        size = 0
    fin_seq = conn.fin_seq
    fin = fin_seq is not None and una + size == fin_seq and conn.snd_max > fin_seq
    if size == 0 and not fin:
        return
    flags = ACK | FIN if fin else ACK
    transmit(conn, una, flags, buffer.slice(una, size), now)
    conn.retransmits += 1
    end = una + size + (1 if fin else 0)
    rtt_seq = conn.rtt_seq
    if rtt_seq is not None and rtt_seq <= end:
        conn.rtt_seq = None  # Karn's rule (RFC 6298 §3)
    if conn.snd_nxt < end:
        conn.snd_nxt = end
    if conn.snd_max < end:
        conn.snd_max = end  # a full-sized resend may carry bytes never sent before


def send_probe(conn: Connection, now: Instant) -> None:
    """A zero-window or keepalive probe: an empty segment at SND.UNA - 1.

    The peer finds it old, so it must answer with an ACK carrying its current
    window (RFC 9293 §3.10.7.4 "first"); no data is risked and SND.NXT does
    not move. Linux probes the same way (RFC 1122 §4.2.3.6 allows it for
    keepalives; for zero windows it replaces the one-byte probe of §4.2.2.17).
    """
    transmit(conn, conn.snd_una - 1, ACK, b"", now)


def schedule_ack(conn: Connection, size: int, now: Instant) -> None:
    """Delayed ACK (RFC 1122 §4.2.3.2, RFC 5681 §4.2) for ``size`` new in-order bytes.

    ACK at once every second full-sized segment, where full-sized is the largest
    segment seen from the peer (capped at our MSS): with timestamps on, the
    peer's full segments are 12 bytes shorter than the MSS we announced.

    "At once" means before the host collects its output, when the host flushes
    (:class:`.connection.PendingAcks`): data the application sends meanwhile
    carries the ACK (RFC 1122 §4.2.3.2 piggybacking) and no pure ACK is needed.
    """
    if size > conn.rcv_mss_seen:
        conn.rcv_mss_seen = size if size < conn.rcv_mss else conn.rcv_mss
    conn.unacked_bytes += size
    if conn.unacked_bytes >= 2 * conn.rcv_mss_seen:
        owe_ack(conn, now)
    elif conn.delack_at is None:
        conn.delack_at = now + conn.config.delayed_ack


def owe_ack(conn: Connection, now: Instant) -> bool:
    """An ACK is due now: queue it for the host's flush, or send it when nothing flushes.

    Queued (:class:`.connection.PendingAcks`), it leaves when the host collects
    output, at ``now``, unless a segment the connection sends before then carries
    it (RFC 1122 §4.2.3.2 piggybacking). Returns whether it was sent at once
    (the caller then re-arms the connection's timer).
    """
    pending = conn.pending_acks
    if not pending.enabled:
        send_ack(conn, now)
        return True
    if not conn.ack_pending:
        conn.ack_pending = True
        if not pending.connections:
            pending.due_at = now
        pending.connections.append(conn)
    return False


def retransmit_range(conn: Connection, start: int, end: int, now: Instant) -> int:
    """Resend ``[start, end)`` (our FIN too if it lies inside); return the end sent."""
    buffer = conn.send_buffer
    data_end = buffer.end
    stop = end if end < data_end else data_end
    size = stop - start if stop > start else 0
    fin_seq = conn.fin_seq
    fin = fin_seq is not None and start <= fin_seq < end and conn.snd_max > fin_seq
    if size == 0 and not fin:
        return start
    flags = ACK | FIN if fin else ACK
    transmit(conn, start, flags, buffer.slice(start, size), now)
    conn.retransmits += 1
    sent_end = start + size + (1 if fin else 0)
    if conn.snd_max < sent_end:
        conn.snd_max = sent_end
    rtt_seq = conn.rtt_seq
    if rtt_seq is not None and start < rtt_seq <= sent_end:
        conn.rtt_seq = None  # Karn's rule (RFC 6298 §3)
    return sent_end


def sack_output(conn: Connection, now: Instant, *, first_at_once: bool = False) -> None:
    """RFC 6675 §5 (C): while cwnd - pipe >= SMSS, send what NextSeg() picks.

    ``first_at_once``: recovery begins; RFC 6675 §5 (4.3) retransmits the first
    hole whatever pipe is. What leaves is counted as PRR's prr_out (RFC 6937).
    """
    scoreboard = conn.scoreboard
    if scoreboard is None:
        return
    mss = conn.snd_mss
    prr = scoreboard.prr
    buffer = conn.send_buffer
    fin_seq = conn.fin_seq
    sent = False
    for _ in range(256):  # bounded work per call; ACKs keep the loop going
        high = conn.snd_max
        if conn.cc.cwnd - scoreboard.pipe(high) < mss and not (first_at_once and not sent):
            break
        window_end = conn.snd_una + conn.snd_wnd
        data_end = buffer.end
        new_data = (data_end > high and high < window_end) or (
            fin_seq is not None and high == fin_seq
        )
        choice = scoreboard.next_segment(high_data=high, new_data=new_data)
        if choice is None:
            break
        if choice.kind is SegmentKind.NEW_DATA:
            size = min(mss, data_end - high, max(window_end - high, 0))
            end = high + size
            fin = fin_seq is not None and end == fin_seq
            if size <= 0 and not fin:
                break
            flags = ACK | FIN if fin else ACK
            transmit(conn, high, flags, buffer.slice(high, size), now)
            conn.snd_nxt = conn.snd_max = end + (1 if fin else 0)
        else:
            sent_end = retransmit_range(conn, choice.start, choice.end, now)
            if sent_end <= choice.start:
                break
            scoreboard.note_sent(NextSegment(kind=choice.kind, start=choice.start, end=sent_end))
            size = sent_end - choice.start
        if prr is not None:
            prr.on_sent(size)
        sent = True
    if sent and conn.rto_at is None:
        conn.rto_at = now + conn.rto.rto


def arm_probe(conn: Connection, now: Instant) -> None:
    """Schedule a tail loss probe (RFC 8985 §7.2) after new data or an ACK of new data."""
    rack = conn.rack
    if rack is None:
        return
    conn.probe_at = rack.probe_deadline(
        now=now,
        srtt=conn.rto.srtt,
        rto_at=conn.rto_at,
        in_recovery=conn.in_recovery,
        flight_size=conn.snd_max - conn.snd_una,
        mss=conn.snd_mss,
    )
