"""A connection's timers (RFC 9293 §3.10.8): retransmission, delayed ACK, persist, keepalive.

TIME-WAIT's 2*MSL and an orphan's FIN-WAIT-2 limit are timers here too.

:func:`timer_fired` runs whichever deadlines of one connection are due. A
timer never moves a connection between synchronized states; when it ends one
(2*MSL elapsed, a retry limit reached) it asks the owner to release it. What
loss recovery does when the RTO, the reorder timer or the probe timer fires
is :mod:`.recovery`'s (RFC 5681 §3.1, RFC 6675 §5.1, RFC 8985 §6.3, §7.3).
"""

from __future__ import annotations

from ..events import ConnectionTimedOut
from ..time import Instant
from .connection import Connection
from .machine import State, Trigger
from .output import flush_corked, output, retransmit_first, send_ack, send_probe, send_syn
from .recovery import rack_timers, retransmission_timed_out
from .states import Owner


def timer_fired(owner: Owner, conn: Connection, now: Instant) -> None:
    """Run every deadline of ``conn`` that is due at ``now``."""
    close_at = conn.close_at
    if close_at is not None and close_at <= now:
        # TIME-WAIT's 2*MSL, or an orphan's FIN-WAIT-2 limit, ran out.
        conn.close_at = None
        owner.release(conn, trigger=Trigger.TIMEOUT, now=now)
        return
    rto_at = conn.rto_at
    if rto_at is not None and rto_at <= now:
        conn.rto_at = None
        if conn.state in (State.SYN_SENT, State.SYN_RECEIVED):
            _syn_timeout(owner, conn, now)
        else:
            _retransmission_timeout(owner, conn, now)
        if conn.state is State.CLOSED:
            return
    delack_at = conn.delack_at
    if delack_at is not None and delack_at <= now:
        conn.delack_at = None
        send_ack(conn, now)
    persist_at = conn.persist_at
    if persist_at is not None and persist_at <= now:
        conn.persist_at = None
        _persist_timeout(owner, conn, now)
        if conn.state is State.CLOSED:
            return
    keepalive_at = conn.keepalive_at
    if keepalive_at is not None and keepalive_at <= now:
        conn.keepalive_at = None
        _keepalive_timeout(owner, conn, now)
        if conn.state is State.CLOSED:
            return
    cork_at = conn.cork_at
    if cork_at is not None and cork_at <= now:
        conn.cork_at = None
        flush_corked(conn, now)  # TCP_CORK's ceiling
    rack_timers(conn, now)


def _timed_out(owner: Owner, conn: Connection, now: Instant) -> None:
    """A retry or idle limit ran out: CLOSED, and the application is told."""
    owner.release(
        conn,
        ConnectionTimedOut(connection=conn.handle, soft_error=conn.soft_error),
        trigger=Trigger.TIMEOUT,
        now=now,
    )


def _syn_timeout(owner: Owner, conn: Connection, now: Instant) -> None:
    conn.retries += 1
    if conn.retries > conn.config.syn_retries:
        if conn.visible:  # an active open, or a Fast Open connection already handed over
            owner.release(
                conn,
                ConnectionTimedOut(connection=conn.handle, soft_error=conn.soft_error),
                trigger=Trigger.TIMEOUT,
                now=now,
            )
        else:
            owner.release(conn, trigger=Trigger.TIMEOUT, now=now)
        return
    conn.rto.back_off()
    conn.retransmits += 1
    conn.host.stats.count("tcp.syn_retransmits")
    send_syn(conn, now)
    conn.rto_at = now + conn.rto.rto


def _retransmission_timeout(owner: Owner, conn: Connection, now: Instant) -> None:
    """RFC 6298 §5.4-§5.6 with RFC 5681 §3.1's loss window and go-back-N."""
    if conn.snd_una >= conn.snd_nxt and conn.snd_una >= conn.snd_max:
        return
    conn.retries += 1
    if conn.retries > conn.config.data_retries:
        _timed_out(owner, conn, now)
        return
    conn.host.stats.count("tcp.rto_expirations")
    retransmission_timed_out(conn, now)
    conn.rto.back_off()
    conn.rtt_seq = None
    conn.snd_nxt = conn.snd_una
    retransmit_first(conn, now)
    conn.rto_at = now + conn.rto.rto


def _persist_timeout(owner: Owner, conn: Connection, now: Instant) -> None:
    """RFC 9293 §3.8.6.1 / RFC 1122 §4.2.2.17: probe the zero window, backing off."""
    if conn.snd_wnd > 0 or conn.send_buffer.end <= conn.snd_nxt:
        output(conn, now)
        return
    conn.persist_probes += 1
    if conn.persist_probes > conn.config.data_retries:
        _timed_out(owner, conn, now)
        return
    conn.host.stats.count("tcp.window_probes")
    send_probe(conn, now)
    conn.persist_backoff += 1
    interval = conn.rto.rto << min(conn.persist_backoff, 16)
    conn.persist_at = now + min(interval, conn.config.max_rto)


def _keepalive_timeout(owner: Owner, conn: Connection, now: Instant) -> None:
    """RFC 1122 §4.2.3.6: probe an idle connection; drop it after enough silence."""
    config = conn.config
    if not config.keepalive or conn.state not in (State.ESTABLISHED, State.CLOSE_WAIT):
        return
    idle_until = conn.last_received_at + config.keepalive_idle
    if now < idle_until:
        conn.keepalive_probes = 0
        conn.keepalive_at = idle_until
        return
    if conn.keepalive_probes >= config.keepalive_probes:
        _timed_out(owner, conn, now)
        return
    conn.keepalive_probes += 1
    conn.host.stats.count("tcp.keepalive_probes")
    send_probe(conn, now)
    conn.keepalive_at = now + config.keepalive_interval
