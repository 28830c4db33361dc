"""ICMP errors quoting our segments: hard/soft (RFC 1122 §4.2.3.9), RFC 5927, PMTU (RFC 1191).

A hard error ends a connection that is still opening; anything else is
remembered as a soft error (RFC 5461). The quoted sequence number must lie in
flight (RFC 5927 §4.1), so a blind attacker cannot reset or slow connections.
"""

from __future__ import annotations

from ..events import ConnectionFailed
from ..time import Instant
from .connection import Connection
from .machine import State, Trigger
from .options import MIN_MSS, TIMESTAMPS_SPACE
from .output import output, update_segment_size
from .seq import unwrap
from .states import Owner

HARD_UNREACHABLE_CODES = frozenset({2, 3, 9, 10, 13})
"""Destination-unreachable codes that end a connection attempt (RFC 1122 §4.2.3.9)."""


def icmp_error(
    owner: Owner,
    conn: Connection,
    *,
    icmp_type: int,
    code: int,
    next_hop_mtu: int,
    quoted_seq: int,
    now: Instant,
) -> None:
    """Act on an ICMP error quoting one of our segments, if it quotes data in flight."""
    seq = unwrap(quoted_seq, conn.snd_una)
    if not conn.snd_una <= seq < max(conn.snd_max, conn.snd_una + 1):
        conn.host.stats.count("tcp.icmp_ignored")  # RFC 5927 §4.1: not in flight
        return
    if icmp_type == 3 and code == 4:
        _path_mtu_shrank(conn, next_hop_mtu, now)
        return
    hard = icmp_type == 3 and code in HARD_UNREACHABLE_CODES
    if hard and conn.state in (State.SYN_SENT, State.SYN_RECEIVED):
        conn.host.stats.count("tcp.icmp_hard_errors")
        event = ConnectionFailed(connection=conn.handle, icmp_type=icmp_type, code=code)
        owner.release(conn, event if conn.active else None, trigger=Trigger.ICMP_ERROR, now=now)
        return
    # RFC 1122 §4.2.3.9 and RFC 5461: soft errors are remembered, not fatal.
    conn.soft_error = (icmp_type, code)
    conn.host.stats.count("tcp.icmp_soft_errors")


def _path_mtu_shrank(conn: Connection, next_hop_mtu: int, now: Instant) -> None:
    """RFC 1191 §6.2: a smaller MSS, and resend what was lost to the small link."""
    # RFC 1191 §3: MSS = MTU - 40; every data segment also carries timestamps (RFC 6691 §3).
    new_mss = next_hop_mtu - 40 - (TIMESTAMPS_SPACE if conn.ts_ok else 0)
    if next_hop_mtu < 68 or new_mss >= conn.snd_mss:
        return
    conn.snd_mss = max(new_mss, MIN_MSS)
    conn.cc.set_mss(conn.snd_mss)
    if conn.scoreboard is not None:
        conn.scoreboard.mss = conn.snd_mss
    conn.host.stats.count("tcp.pmtu_updates")
    # Our link still cuts super-segments at its own MTU, too big for the path now:
    # update_segment_size falls back to one MSS per segment.
    if conn.config.segmentation_offload:
        conn.route_max_segment = conn.host.route_offload(conn.remote_address).max_segment
    update_segment_size(conn)
    if conn.state not in (State.SYN_SENT, State.SYN_RECEIVED):
        conn.snd_nxt = conn.snd_una
        conn.rtt_seq = None
        output(conn, now)
