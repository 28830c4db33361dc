"""The TCP state machine: RFC 9293 §3.10 after the handshake, and every entry point.

Theory of operation
-------------------

A connection is in one of the eleven states of RFC 9293 §3.3.2 (LISTEN belongs
to :class:`~.connection.Listener` objects, CLOSED to freed connections). Three
kinds of input move it:

1. **Segments** (RFC 9293 §3.10.7). :func:`listen_segment_arrives` handles
   LISTEN (§3.10.7.2), :func:`segment_arrives` the rest. LISTEN, SYN-SENT
   (§3.10.7.3), SYN cookies (RFC 4987 §3.6) and the ACK that ends SYN-RECEIVED
   live in :mod:`.handshake`; every synchronized state runs the §3.10.7.4 checks in
   the RFC's order -- sequence acceptability, RST, SYN, ACK, data, FIN -- with
   the per-state differences in ``_ACK_HANDLERS`` (what an acceptable ACK does
   in each state). Data is accepted only in ``_DATA_STATES``.
2. **Application calls** (§3.10.1-§3.10.5): :func:`app_shutdown`,
   :func:`app_close`, :func:`app_abort`.
3. **Timers** (§3.10.8) live in :mod:`.timeouts`: retransmission, delayed
   ACK, persist, keepalive, TIME-WAIT. The only transition a timer makes is to
   CLOSED (``owner.release``): 2*MSL ran out, or a retry limit did.

These handlers decide *whether* a connection moves; where it moves is a row of
:data:`.machine.TRANSITIONS`, and :func:`.machine.enter` is the only code that
changes ``conn.state`` (it raises on a pair that is not a row: a bug here).

Sequence numbers are absolute integers (:mod:`.seq`): a segment's SEQ is
unwrapped against RCV.NXT and its ACK against SND.UNA before any comparison,
so the wrap at 2**32 needs no special case anywhere below.

What a state change *does* outside the connection (tables, handles, events)
is the owner's job (:class:`Owner`, implemented by the TcpLayer): a handler
calls ``owner.release(conn, event)`` to free a connection and
``owner.established(conn)`` to announce one. What the connection *sends* is
:mod:`.output`'s job. RFC 5961's blind-attack checks are applied where RFC
9293 adopted them: a RST must hit RCV.NXT exactly (else a challenge ACK), and
any SYN in a synchronized state draws a challenge ACK.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..errors import DropReason
from ..events import (
    ConnectionReset,
    DataReceived,
    Event,
    PeerClosed,
)
from ..rng import SeededRandom
from ..time import MILLISECOND, Instant
from ..wire.address import Address
from ..wire.tcp import ACK, FIN, RST, SYN, TcpSegment, TimestampsOption
from . import fastpath, handshake, recovery, timewait
from .config import TcpConfig
from .connection import Connection, Listener
from .fastopen import CookieCache
from .host import TcpHost
from .machine import State, Trigger, enter
from .options import accepts_missing_timestamps
from .output import (
    output,
    schedule_ack,
    send_ack,
    send_reset_for,
    send_syn,
)
from .sack import duplicate_range
from .seq import unwrap
from .syncookie_codec import SynCookies

OOW_ACK_INTERVAL = 500 * MILLISECOND
"""Least time between ACKs answering bare out-of-window segments (RFC 5961 §7 in spirit)."""


class Owner(Protocol):
    """What the state machine needs from the layer that holds the connections."""

    host: TcpHost
    config: TcpConfig
    cookies: SynCookies
    rng: SeededRandom

    def path_mtu(self, remote: Address) -> int:
        """The MTU toward ``remote`` (for a SYN cookie's MSS)."""
        ...

    def release(
        self, conn: Connection, event: Event | None = None, *, trigger: Trigger, now: Instant
    ) -> None:
        """Free the connection (``trigger`` takes it to CLOSED); tell the application with
        ``event`` if it knew the connection."""
        ...

    def established(self, conn: Connection) -> None:
        """Announce a completed handshake (accepted or established event)."""
        ...

    fast_open_cache: CookieCache

    def fast_open_accepted(self, conn: Connection) -> None:
        """Hand a Fast Open connection to the application with its SYN's data (RFC 7413)."""
        ...

    def new_passive(
        self,
        listener: Listener,
        local: Address,
        remote: Address,
        segment: TcpSegment,
        now: Instant,
        *,
        iss: int | None = None,
    ) -> Connection:
        """Create and register a connection for a SYN that reached ``listener``."""
        ...


# --- segment arrival: the handshake states go to .handshake ---------------


def listen_segment_arrives(
    owner: Owner,
    listener: Listener,
    source: Address,
    destination: Address,
    segment: TcpSegment,
    now: Instant,
) -> None:
    """Process one segment for a listener (LISTEN, RFC 9293 §3.10.7.2; see :mod:`.handshake`)."""
    handshake.listen_segment_arrives(
        owner, listener, source, destination, segment, now, arrives=segment_arrives
    )


def segment_arrives(owner: Owner, conn: Connection, segment: TcpSegment, now: Instant) -> None:
    """Process one segment for an existing connection (any state but LISTEN)."""
    delivery = conn.delivery
    delivery.segs_in += 1
    if segment.payload:
        delivery.data_segs_in += 1
        delivery.last_data_received_at = now
        if conn.rcv_nxt >= delivery.rcv_rtt_seq:
            delivery.measure_rcv_rtt(conn, segment, now)
    if conn.config.fast_path and fastpath.try_fast_path(conn, segment, now):
        return  # header prediction did exactly what _synchronized would have
    if conn.state is State.SYN_SENT:
        handshake.syn_sent_segment_arrives(owner, conn, segment, now)
        if segment.payload or segment.flags & FIN:
            _text_on_syn_ack(owner, conn, segment, now)
    else:
        _synchronized(owner, conn, segment, now)


def _text_on_syn_ack(owner: Owner, conn: Connection, segment: TcpSegment, now: Instant) -> None:
    """RFC 9293 §3.10.7.3: text (or a FIN) on the SYN-ACK that established ``conn`` is
    processed once ESTABLISHED, not discarded; it starts just after the peer's SYN."""
    if segment.flags & (SYN | ACK) != SYN | ACK or conn.state not in _DATA_STATES:
        return
    _receive_text(owner, conn, segment, conn.irs + 1, now)
    if conn.state is not State.CLOSED:
        output(conn, now)


# --- synchronized states (RFC 9293 §3.10.7.4) -------------------------------


def _acceptable(conn: Connection, seq: int, length: int) -> bool:
    """RFC 9293 §3.10.7.4 "first": the segment overlaps the receive window.

    The window is RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND: its right edge is
    exclusive. A zero window admits only a bare segment at exactly RCV.NXT, and
    a segment with text whose first octet is RCV.NXT (a window probe), so that
    its ACK is still processed (the RFC's "special allowance"); text beyond the
    window is trimmed later.
    """
    rcv_nxt = conn.rcv_nxt
    window = conn.rcv_adv - rcv_nxt
    if window <= 0:
        if length == 0:
            return seq == rcv_nxt
        return seq <= rcv_nxt < seq + length
    if length == 0:
        return rcv_nxt <= seq < rcv_nxt + window
    return seq + length > rcv_nxt and seq < rcv_nxt + window


def _synchronized(owner: Owner, conn: Connection, segment: TcpSegment, now: Instant) -> None:
    flags = segment.flags
    seq = unwrap(segment.seq, conn.rcv_nxt)
    if conn.state is State.SYN_RECEIVED and flags & SYN and not flags & RST and seq == conn.irs:
        _peer_syn_again(owner, conn, segment, seq, now)
        return
    if not _passes_first_check(conn, segment, seq, now):
        return
    conn.last_received_at = now
    if flags & RST:
        _reset_arrives(owner, conn, seq, now)
        return
    if flags & SYN:
        _syn_in_window(owner, conn, now)
        return
    if not flags & ACK:
        conn.host.stats.drop(DropReason.TCP_BAD_SEGMENT)
        return
    ack = unwrap(segment.ack, conn.snd_una)
    timestamps = segment.timestamps if conn.ts_ok else None
    if timestamps is None:
        if not _ACK_HANDLERS[conn.state](owner, conn, segment, seq, ack, now):
            return
    elif not _ack_with_timestamps(owner, conn, segment, timestamps, seq, ack, now):
        return
    if segment.payload or flags & FIN:
        _receive_text(owner, conn, segment, seq, now)
        if conn.state is State.CLOSED:
            return
    output(conn, now)


def _peer_syn_again(
    owner: Owner, conn: Connection, segment: TcpSegment, seq: int, now: Instant
) -> None:
    """SYN-RECEIVED meets the peer's SYN (SEG.SEQ = IRS) once more."""
    if segment.flags & ACK and unwrap(segment.ack, conn.snd_una) == conn.snd_max:
        # Simultaneous open (RFC 9293 Figure 8, line 6): the peer's SYN-ACK
        # acknowledges our SYN; its SYN is the one we already hold.
        _ack_syn_received(owner, conn, segment, seq + 1, conn.snd_max, now)
        return
    # The peer repeated its SYN: our SYN-ACK was lost; send it again.
    send_syn(conn, now)
    conn.retransmits += 1


def _passes_first_check(conn: Connection, segment: TcpSegment, seq: int, now: Instant) -> bool:
    """RFC 9293 §3.10.7.4 "first" with RFC 7323's PAWS; False: dropped (maybe answered)."""
    length = segment.segment_length
    timestamps = None
    if conn.ts_ok:
        timestamps = segment.timestamps
        if _fails_timestamp_checks(conn, segment, timestamps, now):
            return False
    if not _acceptable(conn, seq, length):
        _unacceptable(conn, segment, seq, length, now, timestamps)
        return False
    return True  # TS.Recent is taken later, once accepted (_ack_with_timestamps)


def _ack_with_timestamps(
    owner: Owner,
    conn: Connection,
    segment: TcpSegment,
    timestamps: TimestampsOption,
    seq: int,
    ack: int,
    now: Instant,
) -> bool:
    """The ACK check of a timestamped segment; TS.Recent keeps its TSval only if accepted.

    RFC 7323 §4.3 (2) / §5.3 R3: echo the newest TSval of an *acceptable* segment
    covering Last.ACK.sent. It is taken before the ACK is processed (retransmissions
    that ACK triggers echo it) and given back when the ACK check drops the segment
    (RFC 9293 §3.10.7.4 "fifth"): otherwise a dropped segment could move TS.Recent
    ahead, and PAWS would reject every later in-order segment.
    """
    ts = conn.ts
    before = (ts.ts_recent, ts.ts_recent_at, ts.valid)
    ts.update_recent(timestamps.value, seg_seq=seq, last_ack_sent=conn.last_ack_sent, now=now)
    if _ACK_HANDLERS[conn.state](owner, conn, segment, seq, ack, now):
        return True
    ts.ts_recent, ts.ts_recent_at, ts.valid = before
    return False


def _fails_timestamp_checks(
    conn: Connection, segment: TcpSegment, timestamps: TimestampsOption | None, now: Instant
) -> bool:
    """RFC 7323 §3.2 (a missing TSopt) and §5.3 R1 (PAWS); True means dropped."""
    rst = bool(segment.flags & RST)
    if timestamps is None:
        if accepts_missing_timestamps(True, rst=rst):
            return False
        conn.host.stats.drop(DropReason.TCP_BAD_SEGMENT)
        return True
    if not conn.ts.paws_rejects(timestamps.value, rst=rst, now=now):
        return False
    conn.host.stats.drop(DropReason.TCP_PAWS)
    if segment.segment_length or now - conn.last_oow_ack_at >= OOW_ACK_INTERVAL:
        conn.last_oow_ack_at = now
        send_ack(conn, now)  # R1: an old duplicate is answered with an ACK and dropped
    return True


def _unacceptable(
    conn: Connection,
    segment: TcpSegment,
    seq: int,
    length: int,
    now: Instant,
    timestamps: TimestampsOption | None = None,
) -> None:
    """RFC 9293 §3.10.7.4 "first": answer with an ACK unless it is a RST, then drop."""
    if segment.flags & RST:
        conn.host.stats.drop(DropReason.TCP_RST_INVALID)
        return
    conn.host.stats.drop(DropReason.TCP_OUT_OF_WINDOW)
    if timestamps is not None and length and seq < conn.rcv_nxt:
        # A retransmission of bytes we hold (our ACK was lost). RFC 7323 §4.3 (2) holds
        # (SEG.SEQ <= Last.ACK.sent), so echo its TSval: echoing the old TS.Recent would
        # hand the sender its whole backoff as an RTT sample.
        conn.ts.update_recent(
            timestamps.value, seg_seq=seq, last_ack_sent=conn.last_ack_sent, now=now
        )
    size = len(segment.payload)
    if size and conn.sack_receiver is not None and seq < conn.rcv_nxt:
        _note_sack_arrival(conn, seq, seq + size, (seq, min(seq + size, conn.rcv_nxt)))
    if conn.state is State.TIME_WAIT and segment.flags & FIN and seq + length == conn.rcv_nxt:
        # RFC 9293 §3.10.7.4 "eighth", TIME-WAIT: a retransmitted FIN restarts 2*MSL.
        conn.close_at = now + 2 * conn.config.msl
    elif length == 0:
        # Like Linux's tcp_invalid_ratelimit: answer bare out-of-window segments at
        # most every OOW_ACK_INTERVAL, so two confused ends cannot ACK each other forever.
        if now - conn.last_oow_ack_at < OOW_ACK_INTERVAL:
            return
        conn.last_oow_ack_at = now
    send_ack(conn, now)


def _reset_arrives(owner: Owner, conn: Connection, seq: int, now: Instant) -> None:
    """RFC 9293 §3.10.7.4 "second", with RFC 5961 §3.2's exact-match rule."""
    if seq != conn.rcv_nxt:
        _challenge_ack(conn, now)
        return
    state = conn.state
    conn.host.stats.count("tcp.resets_received")
    if state is State.SYN_RECEIVED and not conn.visible:
        # Back to LISTEN (Figure 5 note 1): the listener simply forgets the clone (one the
        # application holds already, a Fast Open connection, is reset as any other).
        owner.release(conn, trigger=Trigger.RCV_RST, now=now)
    elif state in (State.CLOSING, State.LAST_ACK, State.TIME_WAIT):
        owner.release(conn, trigger=Trigger.RCV_RST, now=now)
    else:
        owner.release(
            conn, ConnectionReset(connection=conn.handle), trigger=Trigger.RCV_RST, now=now
        )


def _syn_in_window(owner: Owner, conn: Connection, now: Instant) -> None:
    """RFC 9293 §3.10.7.4 "fourth": a SYN in a synchronized state."""
    if conn.state is State.SYN_RECEIVED and not conn.visible:
        owner.release(conn, trigger=Trigger.RCV_SYN, now=now)  # passive open: return to LISTEN
        return
    _challenge_ack(conn, now)  # RFC 5961 §4.2


def _challenge_ack(conn: Connection, now: Instant) -> None:
    """RFC 5961 §3.2/§4.2/§5.2's challenge ACK, at most one per OOW_ACK_INTERVAL (§7)."""
    if now - conn.last_oow_ack_at < OOW_ACK_INTERVAL:
        conn.host.stats.count("tcp.challenge_acks_suppressed")
        return
    conn.last_oow_ack_at = now
    conn.host.stats.count("tcp.challenge_acks")
    send_ack(conn, now)


# --- the ACK field, per state (RFC 9293 §3.10.7.4 "fifth") -------------------

AckHandler = Callable[[Owner, Connection, TcpSegment, int, int, Instant], bool]


def _ack_syn_received(
    owner: Owner, conn: Connection, segment: TcpSegment, seq: int, ack: int, now: Instant
) -> bool:
    if not handshake.syn_received_acked(owner, conn, segment, seq, ack, now):
        return False
    return _ACK_HANDLERS[conn.state](owner, conn, segment, seq, ack, now)


def _ack_established(
    owner: Owner, conn: Connection, segment: TcpSegment, seq: int, ack: int, now: Instant
) -> bool:
    return _process_ack(owner, conn, segment, seq, ack, now)


def _ack_fin_wait_1(
    owner: Owner, conn: Connection, segment: TcpSegment, seq: int, ack: int, now: Instant
) -> bool:
    if not _process_ack(owner, conn, segment, seq, ack, now):
        return False
    if conn.fin_acked:
        enter(conn, Trigger.RCV_ACK_OF_FIN, now=now)
        if conn.app_closed:
            # Linux's tcp_fin_timeout: an orphan must not wait forever for the peer's FIN.
            conn.close_at = now + conn.config.fin_wait_2_timeout
    return True


def _ack_closing(
    owner: Owner, conn: Connection, segment: TcpSegment, seq: int, ack: int, now: Instant
) -> bool:
    if not _process_ack(owner, conn, segment, seq, ack, now):
        return False
    if conn.fin_acked:
        _enter_time_wait(conn, Trigger.RCV_ACK_OF_FIN, now)
    return True


def _ack_last_ack(
    owner: Owner, conn: Connection, segment: TcpSegment, seq: int, ack: int, now: Instant
) -> bool:
    if not _process_ack(owner, conn, segment, seq, ack, now):
        return False
    if conn.fin_acked:
        owner.release(conn, trigger=Trigger.RCV_ACK_OF_FIN, now=now)
        return False
    return True


def _ack_time_wait(
    owner: Owner, conn: Connection, segment: TcpSegment, seq: int, ack: int, now: Instant
) -> bool:
    return True  # only a retransmitted FIN matters here; handled with the FIN


_ACK_HANDLERS: dict[State, AckHandler] = {
    State.SYN_RECEIVED: _ack_syn_received,
    State.ESTABLISHED: _ack_established,
    State.CLOSE_WAIT: _ack_established,
    State.FIN_WAIT_1: _ack_fin_wait_1,
    State.FIN_WAIT_2: _ack_established,
    State.CLOSING: _ack_closing,
    State.LAST_ACK: _ack_last_ack,
    State.TIME_WAIT: _ack_time_wait,
}


def _process_ack(
    owner: Owner, conn: Connection, segment: TcpSegment, seq: int, ack: int, now: Instant
) -> bool:
    """The ACK processing common to ESTABLISHED and the closing states."""
    una = conn.snd_una
    if ack > conn.snd_max:
        # RFC 9293 §3.10.7.4: an ACK of something not yet sent: ACK and drop.
        conn.host.stats.drop(DropReason.TCP_BAD_ACK)
        send_ack(conn, now)
        return False
    if ack < una - conn.max_snd_wnd:
        # RFC 5961 §5.2: an ACK too old to be a duplicate: challenge and drop.
        conn.host.stats.drop(DropReason.TCP_BAD_ACK)
        _challenge_ack(conn, now)
        return False
    conn.persist_probes = 0
    if ack < una:
        return True  # an old duplicate: ignore its ACK field
    window = segment.window << conn.snd_wscale
    old_window = conn.snd_wnd
    conn.take_send_window(seq, ack, window)  # only from newer segments
    sack_blocks = segment.sack_blocks if conn.scoreboard is not None else ()
    if ack > una:
        recovery.new_ack(conn, segment, ack, sack_blocks, now)
    else:
        if sack_blocks:
            recovery.sack_arrived(conn, ack, sack_blocks, now)
        if (
            conn.snd_max > una
            and not segment.payload
            and not segment.flags & (SYN | FIN)
            and window == old_window
        ):
            recovery.duplicate_ack(conn, now)  # RFC 5681 §2's definition of a duplicate ACK
    return True


# --- segment text and FIN (RFC 9293 §3.10.7.4 "seventh" and "eighth") -------

_DATA_STATES = frozenset({State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2})


def _receive_text(
    owner: Owner, conn: Connection, segment: TcpSegment, seq: int, now: Instant
) -> None:
    payload = segment.payload
    size = len(payload)
    if segment.flags & FIN and conn.peer_fin_seq is None and seq + size <= conn.rcv_adv:
        conn.peer_fin_seq = seq + size  # may arrive before the bytes in front of it
    if size and conn.state in _DATA_STATES:
        if conn.app_closed:
            # RFC 1122 §4.2.2.13: data after CLOSE is lost; tell the peer with a RST.
            send_reset_for(conn, now)
            owner.release(conn, trigger=Trigger.RCV_DATA_AFTER_CLOSE, now=now)
            return
        _receive_data(conn, payload, seq, size, now)
    if conn.peer_fin_seq == conn.rcv_nxt and not conn.fin_received:
        _fin_arrives(conn, now)
    elif segment.flags & FIN and not size:
        # A repeated FIN, or (RFC 5681 §4.2) a bare FIN after a gap: out of order, so
        # it draws an immediate duplicate ACK.
        send_ack(conn, now)


def _receive_data(conn: Connection, payload: object, seq: int, size: int, now: Instant) -> None:
    rcv_nxt = conn.rcv_nxt
    start = seq
    end = seq + size
    right_edge = conn.rcv_adv
    peer_fin = conn.peer_fin_seq
    if peer_fin is not None and peer_fin < right_edge:
        right_edge = peer_fin
    if end > right_edge:
        end = right_edge
    if start < rcv_nxt:
        start = rcv_nxt
    buffer = conn.receive_buffer
    sack = conn.sack_receiver
    duplicate = None
    if sack is not None and (seq < rcv_nxt or start != rcv_nxt or buffer.has_out_of_order):
        duplicate = duplicate_range(seq, seq + size, rcv_nxt, buffer.out_of_order_blocks())
    if end <= start:
        if duplicate is not None and sack is not None:
            _note_sack_arrival(conn, seq, seq + size, duplicate)
        send_ack(conn, now)  # nothing new (zero window or duplicate): tell the sender
        return
    data = (
        payload
        if start == seq and end == seq + size
        else (memoryview(payload)[start - seq : end - seq])  # type: ignore[arg-type]
    )
    if start == rcv_nxt:
        _receive_in_order(conn, data, start, end, duplicate, now)  # type: ignore[arg-type]
        return
    # With SACK, hold a block per 2 KiB of buffer (the sender's scoreboard skips them);
    # without, a NewReno sender resends what follows each hole anyway (buffers.py).
    buffer.sack_blocks = sack is not None
    if buffer.add(start, data, rcv_nxt) < 0:  # type: ignore[arg-type]
        conn.host.stats.drop(DropReason.TCP_OUT_OF_ORDER_FULL)
    elif sack is not None:
        _note_sack_arrival(conn, start, end, duplicate)
    conn.host.stats.count("tcp.out_of_order_segments")
    send_ack(conn, now)  # RFC 5681 §4.2: out-of-order data draws an immediate (dup) ACK


def _receive_in_order(
    conn: Connection,
    data: bytes | memoryview,
    start: int,
    end: int,
    duplicate: tuple[int, int] | None,
    now: Instant,
) -> None:
    """Text at RCV.NXT: deliver it (and what it joins), then ACK now or later."""
    buffer = conn.receive_buffer
    rcv_nxt = conn.rcv_nxt
    had_holes = buffer.has_out_of_order
    new_rcv_nxt = buffer.add(start, data, rcv_nxt)
    conn.rcv_nxt = new_rcv_nxt
    if conn.visible:
        conn.host.emit(DataReceived(connection=conn.handle, available=buffer.available))
    if conn.sack_receiver is not None and (had_holes or duplicate is not None):
        _note_sack_arrival(conn, start, end, duplicate)
    if had_holes and (conn.peer_fin_seq != new_rcv_nxt or conn.fin_received):
        # RFC 5681 §4.2: a segment that fills a gap is ACKed at once -- unless the
        # peer's FIN is now in order too: the ACK of the FIN covers both (one ACK).
        send_ack(conn, now)
    else:
        schedule_ack(conn, new_rcv_nxt - rcv_nxt, now)  # the FIN's ACK follows at once


def _note_sack_arrival(
    conn: Connection, start: int, end: int, duplicate: tuple[int, int] | None
) -> None:
    """Remember an arrival for the SACK blocks of our next ACK (RFC 2018 §4, RFC 2883)."""
    sack = conn.sack_receiver
    if sack is not None:
        sack.record_arrival(start, end, rcv_nxt=conn.rcv_nxt, duplicate=duplicate)
        if duplicate is not None:
            conn.sack_pending = True


def _fin_arrives(conn: Connection, now: Instant) -> None:
    """RFC 9293 §3.10.7.4 "eighth": the peer's FIN is next in sequence.

    Only ESTABLISHED, FIN-WAIT-1 and FIN-WAIT-2 get here: the other synchronized
    states have had the peer's FIN already (``fin_received``), and SYN-RECEIVED
    has become ESTABLISHED on the segment's ACK before its FIN is looked at.
    """
    conn.rcv_nxt += 1
    conn.fin_received = True
    if conn.state is State.FIN_WAIT_1 and conn.fin_acked:
        enter(conn, Trigger.RCV_ACK_OF_FIN, now=now)  # Figure 5 note 2, in two rows
    if conn.state is State.FIN_WAIT_2:
        _enter_time_wait(conn, Trigger.RCV_FIN, now)
    else:
        enter(conn, Trigger.RCV_FIN, now=now)
    send_ack(conn, now)
    if conn.visible and not conn.app_closed:
        conn.host.emit(PeerClosed(connection=conn.handle))


def _enter_time_wait(conn: Connection, trigger: Trigger, now: Instant) -> None:
    """RFC 9293 §3.10.7.4: stop every other timer and wait 2*MSL."""
    enter(conn, trigger, now=now)
    conn.rto_at = conn.delack_at = conn.persist_at = conn.keepalive_at = None
    conn.close_at = now + 2 * conn.config.msl
    timewait.shed_for_time_wait(conn)


# --- application calls (RFC 9293 §3.10.4, §3.10.5) -------------------------


def app_shutdown(conn: Connection, now: Instant) -> None:
    """CLOSE of the write side: queue a FIN after the data (RFC 9293 §3.10.4)."""
    if conn.fin_seq is not None:
        return
    conn.write_closed = True
    conn.fin_seq = conn.send_buffer.end
    if conn.state in (State.ESTABLISHED, State.CLOSE_WAIT):
        enter(conn, Trigger.CLOSE, now=now)  # to FIN-WAIT-1 or LAST-ACK
    # SYN-SENT and SYN-RECEIVED keep the FIN queued until the handshake ends.
    output(conn, now)


def app_close(owner: Owner, conn: Connection, now: Instant) -> None:
    """CLOSE (RFC 9293 §3.10.4): no more sending or receiving by the application."""
    if conn.app_closed:
        return
    conn.app_closed = True
    state = conn.state
    if state is State.SYN_SENT:
        owner.release(conn, trigger=Trigger.CLOSE, now=now)
        return
    if conn.receive_buffer.available and state in _DATA_STATES | {State.CLOSE_WAIT}:
        # RFC 1122 §4.2.2.13: closing with unread data resets, so the peer knows.
        app_abort(owner, conn, now)
        return
    app_shutdown(conn, now)
    if conn.state is State.FIN_WAIT_2:
        conn.close_at = now + conn.config.fin_wait_2_timeout


_RESET_ON_ABORT = frozenset(
    {State.SYN_RECEIVED, State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2, State.CLOSE_WAIT}
)


def app_abort(owner: Owner, conn: Connection, now: Instant) -> None:
    """ABORT (RFC 9293 §3.10.5): RST where the peer holds state, then CLOSED."""
    if conn.state in _RESET_ON_ABORT:
        send_reset_for(conn, now)
        conn.host.stats.count("tcp.resets_sent")
    owner.release(conn, trigger=Trigger.ABORT, now=now)
