"""What ``ss -ti`` shows beyond the TCB: segment and byte counters, delivery-rate samples, chronos.

One :class:`Delivery` per connection (``conn.delivery``) keeps what Linux's
``tcp_get_info`` reports and the TCB does not hold:

- **counters** (RFC 4898's tcpEStatsPerfSegsOut/SegsIn, DataSegsOut/In, and
  OctetsRetrans): every segment sent and received, the data segments among
  them (a TSO segment counts as the MSS pieces the link cuts it into, as Linux
  counts ``tcp_skb_pcount``), the bytes retransmitted, and when data was last
  sent and received;
- **delivery-rate estimation** (draft-cheng-iccrg-delivery-rate-estimation,
  Linux's ``tcp_rate.c``): each transmission of data is stamped with the
  connection's ``delivered`` count, the time of the latest delivery and the
  first send time of the current flight; each ACK that delivers data takes the
  most recently sent range it delivered and makes a sample *delivered bytes
  over max(send interval, ACK interval)*. A sample shorter than the minimum RTT
  is discarded (§3.3, "interval < MinRTT" cannot be a real delivery rate). A
  range sent while the application had nothing more to send is marked
  app-limited (§3.4): its sample replaces the reported rate only if it is
  higher, since it shows what the application offered rather than what the
  path could carry;
- **chronos** (Linux's ``tcp_chrono_*``): how long the connection was busy
  (data queued or in flight), and how much of that it was limited by the
  peer's receive window or by the send buffer.
- the receiver's RTT estimate (Linux's ``tcp_rcv_rtt_measure``) and the
  minimum RTT.

Sequence numbers are the connection's absolute integers; times are microseconds.
"""

from __future__ import annotations

from bisect import bisect_right
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from ..time import Instant

if TYPE_CHECKING:
    from ..wire.tcp import TcpSegment
    from .connection import Connection

__all__ = ["CHRONO_BUSY", "CHRONO_NONE", "CHRONO_RWND", "CHRONO_SNDBUF", "Delivery"]

CHRONO_NONE, CHRONO_BUSY, CHRONO_RWND, CHRONO_SNDBUF = 0, 1, 2, 3
"""What the connection's time is spent on, in Linux's priority order (a higher one, when
it applies, is the one that counts): idle, busy, limited by the peer's receive window,
limited by the send buffer."""

# A sent range: [start, end, delivered, delivered_at, first_sent_at, sent_at, app_limited,
# done (SACKed), retransmitted]. Lists, so that a retransmission restamps its range in place.
_START, _END, _DELIVERED, _DELIVERED_AT, _FIRST_SENT_AT, _SENT_AT, _APP_LIMITED, _DONE = range(8)
_RETRANSMITTED = 8
_end_of = itemgetter(_END)
_COMPACT_AT = 64
"""Acknowledged ranges are dropped from the front of the list in batches of at least this."""


class Delivery:
    """One connection's counters, rate samples and chronos (see the module docstring)."""

    __slots__ = (
        "control_segs_out",
        "data_segs_out",
        "segs_in",
        "data_segs_in",
        "bytes_retrans",
        "last_data_sent_at",
        "last_data_received_at",
        "min_rtt",
        "rcv_rtt",
        "rcv_rtt_at",
        "rcv_rtt_seq",
        "delivered",
        "delivered_at",
        "first_sent_at",
        "app_limited_until",
        "ranges",
        "head",
        "irregular",
        "rate_delivered",
        "rate_interval",
        "rate_app_limited",
        "chrono",
        "chrono_since",
        "chrono_totals",
    )

    def __init__(self) -> None:
        self.control_segs_out = 0
        """Segments sent without data (SYN, pure ACK, FIN, RST)."""
        self.data_segs_out = 0
        self.segs_in = 0
        self.data_segs_in = 0
        self.bytes_retrans = 0
        self.last_data_sent_at: Instant | None = None
        self.last_data_received_at: Instant | None = None
        self.min_rtt: int | None = None
        """The least RTT over the connection's life, from the send stamps of the ranges
        delivered (never from a retransmission)."""
        self.rcv_rtt: int | None = None
        """The receiver's RTT estimate: from the TSecr of arriving data with timestamps,
        else the time one receive window takes to arrive (an upper bound, as Linux)."""
        self.rcv_rtt_at: Instant = 0
        self.rcv_rtt_seq = 0
        """Where the window being measured ends (0: none yet)."""
        self.delivered = 0
        """C.delivered: bytes cumulatively acknowledged or SACKed (draft §3.1)."""
        self.delivered_at: Instant = 0
        self.first_sent_at: Instant = 0
        self.app_limited_until = 0
        """C.app_limited: the ``delivered`` count that ends the app-limited phase; 0: none."""
        self.ranges: list[list[int]] = []
        self.head = 0
        self.irregular = False
        """Some range was restamped or SACKed: the newest delivered is not simply the last."""
        self.rate_delivered = 0
        self.rate_interval = 0
        self.rate_app_limited = False
        self.chrono = CHRONO_NONE
        self.chrono_since: Instant = 0
        self.chrono_totals = [0, 0, 0, 0]

    # --- sending -----------------------------------------------------------------

    def data_sent(self, conn: Connection, seq: int, size: int, now: Instant) -> None:
        """A segment carrying ``size`` bytes from ``seq`` leaves (before SND.MAX moves)."""
        mss = conn.snd_mss
        self.data_segs_out += (size + mss - 1) // mss if size > mss else 1
        self.last_data_sent_at = now
        snd_max = conn.snd_max
        end = seq + size
        if snd_max <= conn.snd_una:
            # draft §3.2: nothing in flight, a new flight starts now.
            self.first_sent_at = self.delivered_at = now
        elif seq >= snd_max:
            ranges = self.ranges
            last = ranges[-1] if len(ranges) > self.head else None
            if (
                last is not None
                and last[_SENT_AT] == now
                and last[_END] == seq
                and last[_DELIVERED] == self.delivered
                and last[_APP_LIMITED] == self.app_limited_until
                and not last[_DONE]
            ):
                # Sent in the same instant with the same stamps: one range, as the
                # segments of one TSO burst are one skb in Linux.
                last[_END] = end
                return
        stamp = [
            seq,
            end,
            self.delivered,
            self.delivered_at,
            self.first_sent_at,
            now,
            self.app_limited_until,
            0,
            0,
        ]
        if seq >= snd_max:
            self.ranges.append(stamp)
            return
        self.irregular = True
        resent_end = end if end < snd_max else snd_max
        self.bytes_retrans += resent_end - seq
        self._restamp(seq, resent_end, stamp)
        if end > snd_max:
            stamp[_START] = snd_max
            self.ranges.append(stamp)

    def _restamp(self, start: int, end: int, stamp: list[int]) -> None:
        """A retransmission of [start, end): its ranges carry this send's stamps now, as
        Linux's ``tcp_rate_skb_sent`` restamps a retransmitted skb."""
        ranges = self.ranges
        index = bisect_right(ranges, start, lo=self.head, key=_end_of)
        while index < len(ranges) and ranges[index][_START] < end:
            record = ranges[index]
            record[_DELIVERED : _DONE + 1] = stamp[_DELIVERED : _DONE + 1]
            record[_RETRANSMITTED] = 1
            index += 1

    def check_app_limited(self, conn: Connection) -> None:
        """The application writes: if less than an MSS was waiting, no loss is pending
        and the flight is under cwnd, the path was not what limited the connection
        (draft §3.4, Linux's ``tcp_rate_check_app_limited`` in ``tcp_sendmsg``)."""
        flight = conn.snd_max - conn.snd_una
        if (
            conn.send_buffer.end - conn.snd_nxt < conn.snd_mss
            and flight < conn.cc.cwnd
            and not conn.in_recovery
        ):
            self.app_limited_until = (self.delivered + flight) or 1

    # --- acknowledgements ----------------------------------------------------------------

    def acked(self, conn: Connection, blocks: list[tuple[int, int]], now: Instant) -> None:
        """An ACK moved SND.UNA or SACKed data: update C.delivered and take a rate sample."""
        ack = conn.snd_una
        scoreboard = conn.scoreboard
        delivered = ack - conn.iss - 1
        if scoreboard is not None:
            delivered += scoreboard.sacked.total
        if delivered <= self.delivered:
            return
        self.delivered = delivered
        self.delivered_at = now
        if blocks or self.irregular:
            newest = self._newly_delivered(ack, blocks[0] if blocks else None)
        else:
            # The common ACK: ranges sent in order, once each, none SACKed; the last
            # one it covers is the most recently sent.
            ranges = self.ranges
            head = index = self.head
            count = len(ranges)
            while index < count and ranges[index][_END] <= ack:
                index += 1
            newest = ranges[index - 1] if index > head else None
            if index < count and ranges[index][_START] < ack:
                ranges[index][_START] = ack  # a partial ACK: only whole ranges make samples
            if index >= _COMPACT_AT and index * 2 >= count:
                del ranges[:index]
                index = 0
            self.head = index
        if newest is not None:
            if not newest[_RETRANSMITTED]:
                # The RTT of the newest range delivered, in microseconds from its send
                # stamp (Karn: not for a retransmission), as Linux's tcp_min_rtt: finer
                # than the 1 ms ticks of timestamps, which the interval check needs.
                rtt = now - newest[_SENT_AT]
                if rtt > 0 and (self.min_rtt is None or rtt < self.min_rtt):
                    self.min_rtt = rtt
            self._sample(newest)
        if self.app_limited_until and delivered > self.app_limited_until:
            self.app_limited_until = 0

    def _newly_delivered(self, ack: int, block: tuple[int, int] | None) -> list[int] | None:
        """Mark the ranges this ACK delivered (cumulatively, or inside its first SACK
        block, which holds the segment that triggered it: RFC 2018 §4); return the most
        recently sent of them (the greatest P.delivered, draft §3.3)."""
        ranges = self.ranges
        head = self.head
        count = len(ranges)
        newest: list[int] | None = None
        index = bisect_right(ranges, ack, lo=head, key=_end_of)
        if index > head:
            if self.irregular:
                # Retransmissions were restamped or ranges SACKed: look at each.
                for record in ranges[head:index]:
                    if not record[_DONE] and (
                        newest is None or record[_DELIVERED] > newest[_DELIVERED]
                    ):
                        newest = record
            else:  # sent in order, once each: the last is the most recent
                newest = ranges[index - 1]
        if index < count and ranges[index][_START] < ack:
            ranges[index][_START] = ack  # a partial ACK: only whole ranges make samples
        if index >= _COMPACT_AT and index * 2 >= count:
            del ranges[:index]
            index = 0
            if not ranges:
                self.irregular = False
        self.head = index
        if block is not None:
            start, end = block
            position = bisect_right(ranges, start, lo=index, key=_end_of)
            while position < len(ranges) and ranges[position][_END] <= end:
                record = ranges[position]
                if record[_START] >= start and not record[_DONE]:
                    record[_DONE] = 1
                    self.irregular = True
                    if newest is None or record[_DELIVERED] > newest[_DELIVERED]:
                        newest = record
                position += 1
        return newest

    def _sample(self, newest: list[int]) -> None:
        """draft §3.3 UpdateRateSample and GenerateRateSample for the range ``newest``."""
        send_elapsed = newest[_SENT_AT] - newest[_FIRST_SENT_AT]
        ack_elapsed = self.delivered_at - newest[_DELIVERED_AT]
        self.first_sent_at = newest[_SENT_AT]
        delivered = self.delivered - newest[_DELIVERED]
        interval = send_elapsed if send_elapsed > ack_elapsed else ack_elapsed
        min_rtt = self.min_rtt
        if interval <= 0 or (min_rtt is not None and interval < min_rtt):
            return  # too short to be a delivery rate (ACK compression)
        app_limited = bool(newest[_APP_LIMITED])
        # Linux's tcp_rate_gen: an app-limited sample only raises the reported rate.
        if not app_limited or delivered * self.rate_interval >= self.rate_delivered * interval:
            self.rate_delivered = delivered
            self.rate_interval = interval
            self.rate_app_limited = app_limited

    @property
    def delivery_rate(self) -> int:
        """Bytes per second of the latest sample kept; 0 before the first."""
        if not self.rate_interval:
            return 0
        return self.rate_delivered * 1_000_000 // self.rate_interval

    # --- receiving ----------------------------------------------------------------------

    def measure_rcv_rtt(self, conn: Connection, segment: TcpSegment, now: Instant) -> None:
        """Data reached ``rcv_rtt_seq``, the end of the window measured (the caller checks):
        one receiver RTT sample per window, as Linux's ``tcp_rcv_rtt_measure``. With
        timestamps it is the age of the TSval the segment echoes; without, the time the
        window took to arrive (an upper bound on the RTT, so the estimate keeps the least)."""
        rcv_nxt = conn.rcv_nxt
        started_at = self.rcv_rtt_at
        measuring = self.rcv_rtt_seq > 0
        self.rcv_rtt_seq = rcv_nxt + max(conn.rcv_adv - rcv_nxt, 1)
        self.rcv_rtt_at = now
        estimate = self.rcv_rtt
        if conn.ts_ok:
            timestamps = segment.timestamps
            if timestamps is None or not timestamps.echo_reply:
                return
            sample = conn.ts_clock.rtt_from_echo(timestamps.echo_reply, now)
            if sample is not None:
                self.rcv_rtt = (
                    sample if estimate is None else estimate - estimate // 8 + sample // 8
                )
        elif measuring:
            sample = now - started_at
            if sample > 0 and (estimate is None or sample < estimate):
                self.rcv_rtt = sample

    # --- chronos -------------------------------------------------------------------------

    def chrono_to(self, kind: int, now: Instant) -> None:
        """From now on the connection's time counts as ``kind`` (a ``CHRONO_*``)."""
        current = self.chrono
        if kind == current:
            return
        if current:
            self.chrono_totals[current] += now - self.chrono_since
        self.chrono = kind
        self.chrono_since = now

    def chrono_total(self, kind: int, now: Instant | None) -> int:
        """Microseconds spent as ``kind``, the running stretch included when ``now`` is known."""
        total = self.chrono_totals[kind]
        if now is not None and self.chrono == kind:
            total += now - self.chrono_since
        return total


def note_output(conn: Connection, delivery: Delivery, nxt: int, now: Instant) -> None:
    """After an output pass: what limits the connection now. Linux's rules
    (``tcp_write_xmit``, ``tcp_cwnd_validate``): the receive window when it stops
    unsent data; the send buffer when all of it is in flight (but for less than an MSS
    that Nagle holds), cwnd has room for more and the application waits for room; else
    busy while data is queued or in flight."""
    unsent = conn.send_buffer.end - nxt
    flight = conn.snd_max - conn.snd_una
    if unsent > 0 and nxt >= conn.snd_una + conn.snd_wnd:
        kind = CHRONO_RWND
    elif unsent < conn.snd_mss and conn.send_blocked and flight < conn.cc.cwnd:
        kind = CHRONO_SNDBUF
    elif unsent > 0 or flight > 0:
        kind = CHRONO_BUSY
    else:
        kind = CHRONO_NONE
    if kind != delivery.chrono:
        delivery.chrono_to(kind, now)


def _segments(size: int, mss: int) -> int:
    return (size + mss - 1) // mss if size > 0 else 0


def _age(at: Instant | None, now: Instant | None) -> int | None:
    return None if at is None or now is None else now - at


def info_fields(conn: Connection, now: Instant | None) -> dict[str, Any]:
    """The fields of ``TcpInfo`` that ``ss -ti`` adds to the TCB's (Linux's tcp_get_info)."""
    delivery = conn.delivery
    mss = conn.snd_mss or 1
    fin_sent = 1 if conn.fin_seq is not None and conn.snd_max > conn.fin_seq else 0
    data_sent = max(conn.snd_max - conn.iss - 1 - fin_sent, 0)
    # As Linux counts them (tcp_snd_una_update, tcp_rcv_nxt_update): every advance of
    # SND.UNA, so our SYN and FIN too (a fresh connection shows bytes_acked:1), and of
    # RCV.NXT after the handshake, so the peer's FIN but not its SYN.
    received = max(conn.rcv_nxt - conn.irs - 1, 0)
    scoreboard = conn.scoreboard
    sacked = lost = retrans = 0
    reordering = 3
    if scoreboard is not None:
        sacked = _segments(scoreboard.sacked_bytes, mss)
        lost = _segments(scoreboard.lost_bytes(conn.snd_max), mss)
        retrans = _segments(scoreboard.retransmitted.total, mss)
        reordering = scoreboard.dup_thresh
    srtt = conn.rto.srtt
    busy = sum(delivery.chrono_total(kind, now) for kind in (1, 2, 3))
    return {
        "at": now,
        "cc": conn.cc.name,
        "snd_wscale": conn.snd_wscale,
        "rcv_wscale": conn.rcv_wscale,
        "rttvar": conn.rto.rttvar if srtt is not None else None,
        "ato": conn.config.delayed_ack,
        "pmtu": conn.route_mtu,
        "rcv_mss": conn.rcv_mss_seen,
        "advmss": conn.rcv_mss,
        "bytes_sent": data_sent + delivery.bytes_retrans,
        "bytes_retrans": delivery.bytes_retrans,
        "bytes_acked": max(conn.snd_una - conn.iss, 0),
        "bytes_received": received,
        "segs_out": delivery.data_segs_out + delivery.control_segs_out,
        "segs_in": delivery.segs_in,
        "data_segs_out": delivery.data_segs_out,
        "data_segs_in": delivery.data_segs_in,
        "send_rate": conn.cc.cwnd * 1_000_000 // srtt if srtt else 0,
        "last_data_sent": _age(delivery.last_data_sent_at, now),
        "last_data_recv": _age(delivery.last_data_received_at, now),
        "last_ack_recv": _age(conn.last_received_at if delivery.segs_in else None, now),
        "delivery_rate": delivery.delivery_rate,
        "app_limited": delivery.rate_app_limited,
        "delivered": delivery.delivered,
        "busy_time": busy,
        "rwnd_limited": delivery.chrono_total(CHRONO_RWND, now),
        "sndbuf_limited": delivery.chrono_total(CHRONO_SNDBUF, now),
        "unacked": _segments(conn.snd_max - conn.snd_una, mss),
        "retrans": retrans,
        "lost": lost,
        "sacked": sacked,
        "reordering": reordering,
        "rcv_rtt": delivery.rcv_rtt,
        "rcv_space": conn.receive_buffer.capacity,
        "min_rtt": delivery.min_rtt,
        "notsent_bytes": max(conn.send_buffer.end - conn.snd_nxt, 0),
    }
