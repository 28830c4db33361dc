"""TIME-WAIT assassination by a new SYN (RFC 6191, RFC 1122 §4.2.2.13).

A client that reuses its port while our end still holds the old connection in
TIME-WAIT (a server that closed first, serving many short connections) would
otherwise draw only an ACK for the old connection and wait a whole SYN
retransmission timeout. Like Linux's ``tcp_timewait_state_process``, a SYN that
is provably newer than anything of the old incarnation ends the TIME-WAIT at
once and reaches the listener as any SYN does.
"""

from __future__ import annotations

from ..wire.tcp import ACK, FIN, RST, SYN, TcpSegment
from .connection import Connection, State
from .seq import seq_lt, unwrap


def new_syn_reopens(conn: Connection, segment: TcpSegment) -> bool:
    """``segment`` is a bare SYN that may end ``conn``'s TIME-WAIT for a new connection.

    RFC 6191 §2: with timestamps on both, the SYN's TSval must be greater than
    TS.Recent (the newest TSval of the old connection); without, its ISN must be
    beyond RCV.NXT (RFC 1122 §4.2.2.13), so no old duplicate is taken for new data.
    """
    if conn.state is not State.TIME_WAIT:
        return False
    if segment.flags & (SYN | ACK | RST | FIN) != SYN:
        return False
    timestamps = segment.timestamps
    if conn.ts_ok and timestamps is not None and conn.ts.valid:
        return seq_lt(conn.ts.ts_recent, timestamps.value)
    return unwrap(segment.seq, conn.rcv_nxt) > conn.rcv_nxt


def shed_for_time_wait(conn: Connection) -> None:
    """Drop what TIME-WAIT never uses, so a server's many TIME-WAITs stay small.

    In TIME-WAIT everything we sent is acknowledged (our FIN included): the
    SACK scoreboard and RACK's transmit record (RFC 6675, RFC 8985) have
    nothing left to do; both are optional and every user checks for None.
    """
    conn.scoreboard = None
    conn.rack = None
    conn.reorder_at = conn.probe_at = None
