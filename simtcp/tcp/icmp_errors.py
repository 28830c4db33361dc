"""ICMP errors quoting our segments: hard/soft (RFC 1122 §4.2.3.9), RFC 5927, PMTU (RFC 1191).

A hard error ends a connection that is still opening; anything else is
remembered as a soft error (RFC 5461). The quoted sequence number must lie in
flight (RFC 5927 §4.1), so a blind attacker cannot reset or slow connections.

ICMPv6 (RFC 4443) errors follow the same rules (:func:`icmpv6_error`): RFC 4443
§3.1's destination-unreachable codes that mean "nobody will ever take this"
(administratively prohibited 1, port unreachable 4, source address failed
policy 5, reject route 6) and parameter problem code 1 (unrecognized next
header: IPv4's protocol unreachable) are hard; no route (0), beyond scope (2),
address unreachable (3), time exceeded and the other parameter problems are soft,
the mapping Linux's ``icmpv6_err_convert`` makes. Packet too big (§3.2) lowers
the MSS to the path MTU minus 60, the MTU never taken below 1280 (RFC 8201 §4).
"""

from __future__ import annotations

from ipaddress import IPv6Address

from ..events import ConnectionFailed
from ..time import Instant
from .connection import Connection
from .family import IPV6_MIN_MTU, ip_tcp_headers, min_path_mtu
from .machine import State, Trigger
from .options import MIN_MSS, TIMESTAMPS_SPACE
from .output import output, update_segment_size
from .seq import unwrap
from .states import Owner

HARD_UNREACHABLE_CODES = frozenset({2, 3, 9, 10, 13})
"""Destination-unreachable codes that end a connection attempt (RFC 1122 §4.2.3.9)."""

ICMPV6_DESTINATION_UNREACHABLE = 1
ICMPV6_PACKET_TOO_BIG = 2
ICMPV6_TIME_EXCEEDED = 3
ICMPV6_PARAMETER_PROBLEM = 4
HARD_UNREACHABLE_CODES6 = frozenset({1, 4, 5, 6})
"""ICMPv6 destination-unreachable codes that end a connection attempt (RFC 4443 §3.1)."""
PARAMETER_PROBLEM_NEXT_HEADER = 1
"""RFC 4443 §3.4 code 1, unrecognized next header: the peer speaks no TCP (hard)."""


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
    if not _in_flight(conn, quoted_seq):
        return
    if icmp_type == 3 and code == 4:
        _path_mtu_shrank(conn, next_hop_mtu, now)
        return
    hard = icmp_type == 3 and code in HARD_UNREACHABLE_CODES
    _hard_or_soft(owner, conn, hard, icmp_type, code, now)


def icmpv6_error(
    owner: Owner,
    conn: Connection,
    *,
    icmp_type: int,
    code: int,
    mtu: int,
    quoted_seq: int,
    now: Instant,
) -> None:
    """Act on an ICMPv6 error (RFC 4443) quoting one of our segments, if it quotes data
    in flight (RFC 5927 §4.1 applies to IPv6 alike); ``mtu`` is packet too big's."""
    if not _in_flight(conn, quoted_seq):
        return
    if icmp_type == ICMPV6_PACKET_TOO_BIG:
        _path_mtu_shrank(conn, mtu, now)
        return
    hard = (icmp_type == ICMPV6_DESTINATION_UNREACHABLE and code in HARD_UNREACHABLE_CODES6) or (
        icmp_type == ICMPV6_PARAMETER_PROBLEM and code == PARAMETER_PROBLEM_NEXT_HEADER
    )
    _hard_or_soft(owner, conn, hard, icmp_type, code, now)


def quote_in_flight(conn: Connection, quoted_seq: int) -> bool:
    """RFC 5927 §4.1: SND.UNA =< quoted SEG.SEQ < SND.NXT (the highest sent), so a
    blind attacker must guess a sequence number in flight."""
    seq = unwrap(quoted_seq, conn.snd_una)
    return conn.snd_una <= seq < max(conn.snd_max, conn.snd_una + 1)


def _in_flight(conn: Connection, quoted_seq: int) -> bool:
    if not quote_in_flight(conn, quoted_seq):
        conn.host.stats.count("tcp.icmp_ignored")  # RFC 5927 §4.1: not in flight
        return False
    return True


def _hard_or_soft(
    owner: Owner, conn: Connection, hard: bool, icmp_type: int, code: int, now: Instant
) -> None:
    if hard and conn.state in (State.SYN_SENT, State.SYN_RECEIVED):
        conn.host.stats.count("tcp.icmp_hard_errors")
        event = ConnectionFailed(
            connection=conn.handle,
            icmp_type=icmp_type,
            code=code,
            ipv6=isinstance(conn.remote_address, IPv6Address),
        )
        owner.release(conn, event if conn.active else None, trigger=Trigger.ICMP_ERROR, now=now)
        return
    # RFC 1122 §4.2.3.9 and RFC 5461: soft errors are remembered, not fatal.
    conn.soft_error = (icmp_type, code)
    conn.host.stats.count("tcp.icmp_soft_errors")


def _path_mtu_shrank(conn: Connection, next_hop_mtu: int, now: Instant) -> None:
    """RFC 1191 §6.2 (RFC 8201 §4 for IPv6): a smaller MSS, and resend what was lost
    to the small link."""
    remote = conn.remote_address
    if isinstance(remote, IPv6Address):
        # RFC 8201 §4: never below IPv6's minimum link MTU, whatever the message says.
        next_hop_mtu = max(next_hop_mtu, IPV6_MIN_MTU)
    # RFC 1191 §3: MSS = MTU - 40 (IPv6: - 60); every data segment also carries
    # timestamps (RFC 6691 §3).
    new_mss = next_hop_mtu - ip_tcp_headers(remote) - (TIMESTAMPS_SPACE if conn.ts_ok else 0)
    if next_hop_mtu < min_path_mtu(remote) or new_mss >= conn.snd_mss:
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
