"""Header prediction: in-order data and plain ACKs of new data skip the general path.

Theory of operation
-------------------

Van Jacobson's header prediction (4.3BSD-Reno's ``tcp_input``, Linux's
``tcp_rcv_established`` "fast path"; RFC 9293 keeps the general rules it
short-cuts) rests on one observation: on a busy connection almost every
segment is either the next in-order data with nothing else in it, or a plain
ACK of new data. For those, most of the RFC 9293 §3.10.7.4 checks (sequence
acceptability, RST, SYN, the per-state ACK table, FIN, trimming to the
window, duplicate-ACK counting, SACK and D-SACK bookkeeping) are known to
pass or to do nothing, so :func:`try_fast_path` tests a short predicate and
then does only what the general path would end up doing, in its order:

1. TS.Recent (RFC 7323 §4.3), the idle clock, the send window (RFC 9293
   §3.10.7.4 "fifth", SND.WL1/SND.WL2; a changed window is simply taken);
2. if SEG.ACK advances SND.UNA (within SND.MAX): :func:`.recovery.new_ack`
   (free the acknowledged bytes, RTT sample, cwnd, RTO re-arm, RACK);
3. if the segment carries text: append it to the receive queue, advance
   RCV.NXT, the readable event, :func:`.output.schedule_ack` (RFC 1122
   §4.2.3.2);
4. :func:`.output.output`.

The predicate: flags exactly ACK (PSH allowed); SEG.SEQ = RCV.NXT; options
none, or exactly NOP NOP TS on a timestamped connection with a TSval that
passes PAWS (RFC 7323 §5.3 R1) against a TS.Recent that is valid and not idle
past §5.5's 24 days; no loss recovery and no duplicate ACKs counted (RFC 5681
§3.2, RFC 6582, RFC 6675: not needed for exactness, as ACK processing is the
shared :func:`.recovery.new_ack`, but recovery is not the case to optimise);
an ACK of new data that does not acknowledge our FIN, or text, or both; text
only in the states that accept it, all inside the window, with no
out-of-order data held, no FIN of the peer known and the application not
closed. The states are ESTABLISHED and the half-closed ones whose ACK handler
is plain ACK processing until our FIN is acknowledged (a bulk sender that
already queued its FIN spends the whole transfer in FIN-WAIT-1 or LAST-ACK).
Anything else returns False before any state changed, and the caller runs
the general path, which stays the oracle:
``tests/property/test_fastpath_equivalence.py`` runs the same impaired traffic
with the fast path on and off and demands identical frames on the wire,
identical bytes delivered and identical counters.

The only difference is the two counters ``tcp.fast_path_ack`` (segments
without text) and ``tcp.fast_path_data`` (segments with text), the hit rate.
"""

from __future__ import annotations

from ..events import DataReceived
from ..time import Instant
from ..wire.checksum import Buffer
from ..wire.tcp import ACK, PSH, NopOption, TcpSegment, TimestampsOption
from . import recovery
from .connection import Connection
from .machine import State
from .options import PAWS_IDLE_LIMIT
from .output import output, schedule_ack
from .seq import SEQ_MASK

_NOT_PSH = ~PSH & 0xFF
_HALF = 1 << 31
_ACK_STATES = frozenset(
    {
        State.ESTABLISHED,
        State.CLOSE_WAIT,
        State.FIN_WAIT_1,
        State.FIN_WAIT_2,
        State.CLOSING,
        State.LAST_ACK,
    }
)
"""States whose ACK handler (``states._ACK_HANDLERS``) is ``_process_ack`` plus at most a
transition once our FIN is acknowledged, which the predicate excludes."""
_DATA_STATES = frozenset({State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2})
"""States that accept segment text (``states._DATA_STATES``, RFC 9293 §3.10.7.4 "seventh")."""


def try_fast_path(conn: Connection, segment: TcpSegment, now: Instant) -> bool:
    """Process ``segment`` by header prediction if it qualifies; False: nothing was done."""
    advance = _predicted_ack_advance(conn, segment, now)
    if advance < 0:
        return False
    # From here on the general path's checks are known to pass: do what it does, in its order.
    rcv_nxt = conn.rcv_nxt
    if conn.ts_ok and rcv_nxt <= conn.last_ack_sent:
        # RFC 7323 §4.3 (2), TimestampState.update_recent inlined: PAWS passed, so
        # SEG.TSval is not older than TS.Recent.
        ts = conn.ts
        ts.ts_recent = segment.options[2].value  # type: ignore[union-attr]
        ts.ts_recent_at = now
    conn.last_received_at = now
    conn.persist_probes = 0
    ack = conn.snd_una + advance
    conn.take_send_window(rcv_nxt, ack, segment.window << conn.snd_wscale)
    if advance:
        recovery.new_ack(conn, segment, ack, (), now)
    payload = segment.payload
    if payload:
        conn.host.stats.count("tcp.fast_path_data")
        _receive_in_order(conn, payload, rcv_nxt, now)
    else:
        conn.host.stats.count("tcp.fast_path_ack")
    output(conn, now)
    return True


def _predicted_ack_advance(conn: Connection, segment: TcpSegment, now: Instant) -> int:
    """SEG.ACK - SND.UNA if the segment is one header prediction takes, else -1."""
    if (
        segment.flags & _NOT_PSH != ACK
        or conn.state not in _ACK_STATES
        or conn.in_recovery
        or conn.dupacks
    ):
        return -1
    rcv_nxt = conn.rcv_nxt
    if segment.seq != rcv_nxt & SEQ_MASK or not _options_predicted(conn, segment, now):
        return -1
    una = conn.snd_una
    advance = (segment.ack - una) & SEQ_MASK
    size = len(segment.payload)
    if advance:
        if advance > conn.snd_max - una:
            return -1  # beyond SND.MAX, or an old ACK (the unsigned difference wrapped)
    elif not size:
        return -1  # a duplicate ACK or a window update: RFC 5681 §2 counting
    fin_seq = conn.fin_seq
    if fin_seq is not None and una + advance > fin_seq and conn.state is not State.FIN_WAIT_2:
        return -1  # our FIN is acknowledged: a state transition, the general path's job
    if size and (
        conn.state not in _DATA_STATES
        or conn.app_closed
        or conn.peer_fin_seq is not None
        or rcv_nxt + size > conn.rcv_adv
        or conn.receive_buffer.has_out_of_order
    ):
        return -1
    return advance


def _options_predicted(conn: Connection, segment: TcpSegment, now: Instant) -> bool:
    """No options, or on a timestamped connection exactly NOP NOP TS (RFC 7323 Appendix A)
    whose TSval passes PAWS; anything else is for the general path."""
    options = segment.options
    if not conn.ts_ok:
        return not options
    if len(options) != 3:
        return False
    first, second, timestamps = options
    if (
        type(timestamps) is not TimestampsOption
        or type(first) is not NopOption
        or type(second) is not NopOption
    ):
        return False
    ts = conn.ts
    # RFC 7323 §5.3 R1 (PAWS) and §5.5 (an idle TS.Recent): the general path decides.
    return (
        ts.valid
        and now - ts.ts_recent_at <= PAWS_IDLE_LIMIT
        and (timestamps.value - ts.ts_recent) & SEQ_MASK < _HALF
    )  # not seq_lt


def _receive_in_order(conn: Connection, payload: Buffer, rcv_nxt: int, now: Instant) -> None:
    """RFC 9293 §3.10.7.4 "seventh" for the next bytes in order, inside the window."""
    buffer = conn.receive_buffer
    new_rcv_nxt = buffer.add(rcv_nxt, payload, rcv_nxt)
    conn.rcv_nxt = new_rcv_nxt
    if conn.visible:
        conn.host.emit(DataReceived(connection=conn.handle, available=buffer.available))
    schedule_ack(conn, new_rcv_nxt - rcv_nxt, now)
