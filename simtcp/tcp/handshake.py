"""The three-way handshake: LISTEN, SYN-SENT and SYN-RECEIVED (RFC 9293 §3.10.7.2-§3.10.7.4).

Theory of operation
-------------------

A connection is born in one of two ways and reaches ESTABLISHED through this
module; :mod:`.states` owns every state after that.

* **Passive open** (RFC 9293 §3.10.7.2). A SYN reaching a
  :class:`~.connection.Listener` with room in its backlog creates a connection
  in SYN-RECEIVED and answers SYN-ACK (:func:`listen_segment_arrives`). A RST
  is ignored; an ACK is answered with a RST, since it belongs to no connection
  we have. When the backlog is full and SYN cookies are on, the listener keeps
  no state (RFC 4987 §3.6): the SYN-ACK's ISN encodes what the connection needs
  (:mod:`.syncookie_codec`, :mod:`.syncookie_listener`), and the ACK that returns it recreates
  the connection directly in ESTABLISHED (:func:`_cookie_ack`). That ACK may
  carry text or a FIN, so the listener hands the new connection on to the
  synchronized-state machine (the ``arrives`` argument, :func:`.states.segment_arrives`).
* **Active open** (RFC 9293 §3.10.7.3). In SYN-SENT, an acceptable SYN-ACK
  establishes the connection (:func:`syn_sent_segment_arrives`); a SYN without
  ACK is a simultaneous open (RFC 9293 Figure 8) and moves to SYN-RECEIVED; an
  acceptable RST refuses the connection.

SYN-RECEIVED ends when an ACK covers our SYN (:func:`syn_received_acked`,
RFC 9293 §3.10.7.4 "fifth"); the rest of that segment is processed as in
ESTABLISHED by :mod:`.states`. Both sides learn the peer's options from its SYN
in one place (:func:`_apply_syn_options`): MSS (RFC 9293 §3.7.1, RFC 6691),
window scale (RFC 7323 §2.2), timestamps (RFC 7323 §3.2) and SACK (RFC 2018).
The handshake's RTT sample follows Karn's rule: only an unretransmitted SYN
gives one (RFC 6298 §3, §5.7).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import DropReason
from ..events import ConnectionReset, DataReceived
from ..time import Instant
from ..wire.address import Address
from ..wire.tcp import ACK, FIN, RST, SYN, FastOpenOption, TcpSegment
from . import congestion, fastopen, recovery, syncookie_listener
from .config import window_shift
from .connection import Connection, Listener
from .family import default_mss
from .machine import State, Trigger, enter
from .options import send_mss
from .output import output, send_ack, send_reset_reply, send_syn
from .rack import RackTlp
from .sack import SackReceiver, SackScoreboard
from .seq import unwrap

if TYPE_CHECKING:
    from .states import Owner

DEFAULT_MSS = 536
"""RFC 9293 §3.7.1: the send MSS when an IPv4 peer's SYN carries no MSS option
(:func:`.family.default_mss` gives IPv6's 1220)."""

SegmentArrives = Callable[["Owner", Connection, TcpSegment, Instant], None]
"""How a synchronized connection processes a segment (:func:`.states.segment_arrives`)."""


# --- LISTEN (RFC 9293 §3.10.7.2) -----------------------------------------


def listen_segment_arrives(
    owner: Owner,
    listener: Listener,
    source: Address,
    destination: Address,
    segment: TcpSegment,
    now: Instant,
    *,
    arrives: SegmentArrives,
) -> None:
    """A segment for a listener: a SYN opens a connection, a SYN cookie's ACK completes one."""
    flags = segment.flags
    host = owner.host
    config = owner.config
    if flags & RST:
        return
    if flags & ACK:
        if (
            not flags & SYN
            and config.syn_cookies
            and _cookie_ack(owner, listener, source, destination, segment, now, arrives)
        ):
            return
        # RFC 9293 §3.10.7.2: an ACK to a listener is from a connection we do not have.
        send_reset_reply(host, source, destination, segment, now)
        return
    if not flags & SYN:
        return
    queue = listener.queue
    if queue.full:
        # Linux's tcp_conn_request: no room to accept the result, cookie or not.
        host.stats.drop(DropReason.TCP_BACKLOG_FULL)
        return
    if queue.syn_full:
        if config.syn_cookies:
            # RFC 4987 §3.6: keep no state; the ISN remembers what we must know.
            host.stats.count("tcp.syn_cookies_sent")
            syncookie_listener.send_cookie_syn_ack(
                host,
                owner.cookies,
                owner.rng,
                config,
                local=destination,
                remote=source,
                mtu=owner.path_mtu(source),
                segment=segment,
                now=now,
            )
            owner.cookies.note_sent(local=destination, local_port=segment.destination_port, now=now)
            return
        host.stats.drop(DropReason.TCP_BACKLOG_FULL)
        return
    conn = owner.new_passive(listener, destination, source, segment, now)  # born in LISTEN
    enter(conn, Trigger.RCV_SYN, now=now)
    _learn_peer_syn(conn, segment)
    if segment.window_scale is not None and conn.config.window_scaling:
        conn.offered_wscale = window_shift(conn.config)
    _apply_syn_options(conn, segment, now)
    fast_open = _fast_open_syn(owner, listener, conn, segment)
    send_syn(conn, now)
    conn.rtt_sent_at = now
    conn.rto_at = now + conn.rto.rto
    conn.rearm()
    host.stats.count("tcp.passive_opens")
    if fast_open:
        owner.fast_open_accepted(conn)


def _fast_open_syn(owner: Owner, listener: Listener, conn: Connection, segment: TcpSegment) -> bool:
    """A Fast Open server's SYN (RFC 7413 §4.2.2); True when its data was taken.

    No cookie, or an invalid one: the SYN-ACK carries the client's valid cookie
    and acknowledges only the SYN (the client sends its data again). A valid
    cookie while the listener's ``fast_open_queue`` has room: the data is
    acknowledged and the application gets the connection at once.
    """
    config = owner.config
    if not config.fast_open_server or not listener.fast_open_queue:
        return False
    option = fastopen.segment_option(config, segment)
    if option is None:
        return False
    stats = owner.host.stats
    cookie = fastopen.server_cookie(owner.rng, conn.remote_address)
    if option.cookie != cookie:
        stats.count(
            "tcp.fast_open_cookie_invalid" if option.cookie else "tcp.fast_open_cookie_request"
        )
        conn.fast_open_option = FastOpenOption(cookie, experimental=option.experimental)
        return False
    payload = segment.payload
    if not payload:
        return False
    if len(listener.fast_open) >= listener.fast_open_queue:
        stats.count("tcp.fast_open_queue_overflow")  # Linux's TCPFastOpenListenOverflow
        return False
    data = bytes(payload[: conn.receive_buffer.free_space])
    conn.rcv_nxt = conn.receive_buffer.add(conn.rcv_nxt, data, conn.rcv_nxt)
    conn.last_ack_sent = conn.rcv_nxt
    conn.rcv_adv = max(conn.rcv_adv, conn.rcv_nxt)
    conn.fast_open = True
    stats.count("tcp.fast_open_accepted")
    return True


def _cookie_ack(
    owner: Owner,
    listener: Listener,
    source: Address,
    destination: Address,
    segment: TcpSegment,
    now: Instant,
    arrives: SegmentArrives,
) -> bool:
    """LISTEN -> ESTABLISHED for an ACK carrying a valid SYN cookie (RFC 4987 §3.6).

    True when the segment was handled (accepted, or dropped so that the client
    retransmits); False when it is no cookie's and RFC 9293 §3.10.7.2's reset applies.
    """
    stats = owner.host.stats
    restored = syncookie_listener.check_cookie(
        owner.cookies, local=destination, remote=source, segment=segment, now=now
    )
    if restored is None:
        return _cookie_ack_failed(owner, destination, segment, now)
    if listener.queue.full:
        # No room in the accept queue: drop, keeping no state (RFC 4987 §3.6), as Linux
        # does with tcp_abort_on_overflow=0. The client thinks it is connected and
        # retransmits; a later copy completes the handshake once the application has
        # taken connections. A reset would kill a client that a moment later fits.
        stats.drop(DropReason.TCP_BACKLOG_FULL)
        return True
    stats.count("tcp.syn_cookies_accepted")
    conn = owner.new_passive(
        listener, destination, source, segment, now, iss=(segment.ack - 1) & 0xFFFFFFFF
    )
    syncookie_listener.restore(conn, restored, segment, now)
    become_established(owner, conn, Trigger.RCV_COOKIE_ACK, now)
    if segment.payload or segment.flags & FIN:
        arrives(owner, conn, segment, now)
    if conn.state is not State.CLOSED:
        conn.rearm()
    return True


def _cookie_ack_failed(
    owner: Owner, destination: Address, segment: TcpSegment, now: Instant
) -> bool:
    """An ACK to a listener whose cookie check failed: drop it (True) or reset it (False).

    A cookie binds the client's ISN, and only the segment at ISN + 1 carries it
    (SEG.SEQ - 1, as Linux's cookie_v4_check reads it). When that first segment
    (the handshake's ACK, or the first data) is lost or overtaken, the client's
    later segments fail the check. If this listener sent cookies recently and the
    ACK number has a cookie's shape, drop it silently: the client retransmits from
    ISN + 1 (RFC 9293 §3.8.1) and that copy validates. Otherwise the RFC 9293
    §3.10.7.2 reset stands (stale connections, forged or random ACKs, listeners that
    never sent a cookie); a blind attacker gains nothing from the drop (no state, no
    reply).
    """
    syn_cookies = owner.cookies
    port = segment.destination_port
    if not (
        syn_cookies.recently_sent(local=destination, local_port=port, now=now)
        and syn_cookies.looks_like_cookie(segment.ack, now=now)
    ):
        return False
    owner.host.stats.count("tcp.syn_cookie_acks_dropped")
    owner.host.stats.drop(DropReason.TCP_NO_CONNECTION)
    return True


def _learn_peer_syn(conn: Connection, segment: TcpSegment) -> None:
    """Record IRS and the peer's SYN window (never scaled, RFC 7323 §2.2)."""
    conn.irs = segment.seq
    conn.rcv_nxt = segment.seq + 1
    conn.last_ack_sent = conn.rcv_nxt
    conn.rcv_adv = conn.rcv_nxt + min(conn.receive_buffer.free_space, 0xFFFF)
    conn.snd_wnd = segment.window
    conn.max_snd_wnd = segment.window
    conn.snd_wl1 = segment.seq
    conn.snd_wl2 = conn.iss


def _apply_syn_options(conn: Connection, segment: TcpSegment, now: Instant) -> None:
    """MSS (RFC 9293 §3.7.1), window scale (RFC 7323 §2.2) and timestamps (§3.2)."""
    config = conn.config
    timestamps = segment.timestamps
    if config.timestamps and timestamps is not None:
        conn.ts_ok = True
        conn.ts.learn_from_syn(timestamps.value, now)
    else:
        conn.ts_ok = False
    peer_mss = segment.mss
    if peer_mss is None:
        peer_mss = default_mss(conn.remote_address)
    # The effective send MSS leaves room for the options every segment will carry
    # (RFC 6691 §3): with timestamps, a full-sized segment is 12 bytes shorter.
    conn.snd_mss = send_mss(peer_mss, conn.rcv_mss, conn.ts_ok)
    peer_shift = segment.window_scale
    if conn.offered_wscale >= 0 and peer_shift is not None:
        conn.snd_wscale = min(peer_shift, 14)
        conn.rcv_wscale = conn.offered_wscale
    else:
        conn.snd_wscale = conn.rcv_wscale = 0
        conn.offered_wscale = -1 if conn.state is State.SYN_RECEIVED else conn.offered_wscale
    conn.sack_ok = config.sack and segment.sack_permitted
    if conn.sack_ok:
        conn.sack_receiver = SackReceiver()
        conn.scoreboard = SackScoreboard(snd_una=conn.iss + 1, mss=conn.snd_mss)
        if config.rack:
            conn.rack = RackTlp()
    conn.cc = congestion.create(
        config.congestion_control,
        mss=conn.snd_mss,
        initial_window_segments=config.initial_window_segments,
    )


# --- SYN-SENT (RFC 9293 §3.10.7.3) ----------------------------------------


def syn_sent_segment_arrives(
    owner: Owner, conn: Connection, segment: TcpSegment, now: Instant
) -> None:
    """A segment for a connection in SYN-SENT (RFC 9293 §3.10.7.3)."""
    flags = segment.flags
    stats = conn.host.stats
    ack = 0
    if flags & ACK:
        ack = unwrap(segment.ack, conn.iss)
        if ack <= conn.iss or ack > conn.snd_max:
            stats.drop(DropReason.TCP_BAD_ACK)
            send_reset_reply(conn.host, conn.remote_address, conn.local_address, segment, now)
            return
    if flags & RST:
        if flags & ACK:
            # RFC 9293 §3.10.7.3: an acceptable RST refuses the connection.
            owner.release(
                conn, ConnectionReset(connection=conn.handle), trigger=Trigger.RCV_RST, now=now
            )
        else:
            stats.drop(DropReason.TCP_RST_INVALID)
        return
    if not flags & SYN:
        stats.drop(DropReason.TCP_BAD_SEGMENT)
        return
    _learn_peer_syn(conn, segment)
    _apply_syn_options(conn, segment, now)
    if not flags & ACK:
        # Simultaneous open (RFC 9293 §3.10.7.3, Figure 8): answer with SYN-ACK.
        enter(conn, Trigger.RCV_SYN, now=now)
        _simultaneous_open(conn, segment)
        send_syn(conn, now)
        conn.rto_at = now + conn.rto.rto
        return
    if conn.retries == 0:
        recovery.rtt_sample(conn, now - conn.rtt_sent_at)  # Karn: only an unretransmitted SYN
    conn.snd_una = ack
    conn.snd_wl2 = ack
    if conn.fast_open_option is not None:
        _fast_open_syn_ack(owner, conn, segment, ack)
    conn.rto.handshake_done(syn_timed_out=conn.retries > 0)  # RFC 6298 §5.7
    conn.retries = 0
    conn.rto_at = None
    become_established(owner, conn, Trigger.RCV_SYN_ACK, now)
    send_ack(conn, now)
    output(conn, now)


def _fast_open_syn_ack(owner: Owner, conn: Connection, segment: TcpSegment, ack: int) -> None:
    """A Fast Open client's SYN-ACK (RFC 7413 §4.2.1): cache its cookie; what it does not
    acknowledge of our SYN's data goes again right after the handshake."""
    option = fastopen.segment_option(owner.config, segment)
    stats = conn.host.stats
    if option is not None and option.cookie:
        mss = segment.mss
        owner.fast_open_cache.put(conn.remote_address, option.cookie, mss or DEFAULT_MSS)
        stats.count("tcp.fast_open_cookie_cached")
    conn.send_buffer.acknowledge(ack)
    if ack < conn.snd_max:
        conn.snd_nxt = ack  # the SYN's data was not taken: resend it (go-back-N)
        if conn.fast_open:
            stats.count("tcp.fast_open_syn_data_unacked")
    elif conn.fast_open:
        stats.count("tcp.fast_open_syn_data_acked")


def _simultaneous_open(conn: Connection, segment: TcpSegment) -> None:
    """Our SYN crossed the peer's: what our SYN-ACK may carry, and the SYN's text.

    RFC 7323 §2.2: a SYN-ACK carries window scale only if the SYN it answers did
    (timestamps and SACK-permitted follow the negotiated ``ts_ok``/``sack_ok``).
    RFC 9293 §3.10.7.3: text on the SYN is queued until the connection is
    synchronized; it is acknowledged now (RCV.NXT moves past it) and handed to the
    application when ESTABLISHED is reached (:func:`become_established`).
    """
    if segment.window_scale is None:
        conn.offered_wscale = -1
    payload = segment.payload
    if payload and not segment.flags & FIN:
        room = conn.receive_buffer.free_space
        data = bytes(payload[:room])
        if data:
            conn.rcv_nxt = conn.receive_buffer.add(conn.rcv_nxt, data, conn.rcv_nxt)
            conn.last_ack_sent = conn.rcv_nxt
            conn.rcv_adv = max(conn.rcv_adv, conn.rcv_nxt)


# --- SYN-RECEIVED (RFC 9293 §3.10.7.4 "fifth") ----------------------------


def syn_received_acked(
    owner: Owner, conn: Connection, segment: TcpSegment, seq: int, ack: int, now: Instant
) -> bool:
    """SYN-RECEIVED's ACK check (RFC 9293 §3.10.7.4 "fifth"): True once ESTABLISHED.

    An ACK outside SND.UNA < SEG.ACK =< SND.NXT draws a RST and is dropped (False).
    """
    if not conn.snd_una < ack <= conn.snd_max:
        conn.host.stats.drop(DropReason.TCP_BAD_ACK)
        send_reset_reply(conn.host, conn.remote_address, conn.local_address, segment, now)
        return False
    listener = conn.listener
    if listener is not None and not conn.active and not conn.fast_open and listener.queue.full:
        # The accept queue is full (listen(2)'s backlog): drop the ACK and stay in
        # SYN-RECEIVED; our SYN-ACK's retransmission draws it again (Linux,
        # tcp_abort_on_overflow=0).
        conn.host.stats.drop(DropReason.TCP_BACKLOG_FULL)
        return False
    if conn.retries == 0:
        recovery.rtt_sample(conn, now - conn.rtt_sent_at)
    conn.rto.handshake_done(syn_timed_out=conn.retries > 0)  # RFC 6298 §5.7
    conn.retries = 0
    conn.rto_at = None
    conn.snd_wnd = segment.window << conn.snd_wscale
    conn.max_snd_wnd = max(conn.max_snd_wnd, conn.snd_wnd)
    conn.snd_wl1 = seq
    conn.snd_wl2 = ack
    # Only the SYN here: data a Fast Open server sent in SYN-RECEIVED (RFC 7413 §4.2.2)
    # is acknowledged by the ESTABLISHED processing that follows.
    conn.snd_una = min(ack, conn.iss + 1)
    become_established(owner, conn, Trigger.RCV_ACK_OF_SYN, now)
    return True


def become_established(owner: Owner, conn: Connection, trigger: Trigger, now: Instant) -> None:
    """Enter ESTABLISHED (then FIN-WAIT-1 if CLOSE came first) and tell the owner."""
    enter(conn, trigger, now=now)
    if conn.fin_seq is not None:
        # RFC 9293 §3.10.4: a CLOSE in SYN-SENT or SYN-RECEIVED was queued for
        # processing after entering ESTABLISHED.
        enter(conn, Trigger.CLOSE, now=now)
    conn.last_received_at = now
    if conn.config.keepalive:
        conn.keepalive_at = now + conn.config.keepalive_idle
    owner.established(conn)
    buffer = conn.receive_buffer
    if buffer.available and conn.visible and (conn.active or not conn.fast_open):
        # Text that came with a SYN in a simultaneous open (RFC 9293 §3.10.7.3).
        conn.host.emit(DataReceived(connection=conn.handle, available=buffer.available))
