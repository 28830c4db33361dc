"""Per-connection state (the TCB of RFC 9293 §3.3.1), listeners, and the read-only TcpInfo.

Sequence numbers here are absolute integers (see :mod:`.seq`); they become
32-bit only on the wire. A connection owns one timer handle on the stack's
shared heap, armed at the earliest of its deadlines (RTO, delayed ACK,
persist, keepalive, TIME-WAIT / FIN-WAIT-2); :meth:`Connection.rearm` keeps
it there in O(1) amortised, so nothing ever scans all connections.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ..time import Instant
from ..timers import TimerHandle, TimerHeap
from ..wire.address import Address, format_address, is_ipv6
from ..wire.tcp import FastOpenOption, TcpOption, TimestampsOption
from .accept_queue import AcceptQueue
from .buffers import ReceiveBuffer, SendBuffer
from .config import TcpConfig
from .congestion import CongestionControl
from .delivery import Delivery, info_fields
from .host import TcpHost
from .machine import HISTORY_LENGTH, State, StateChanged, TransitionLog
from .options import TimestampClock, TimestampState
from .rack import RackTlp
from .rto import RtoEstimator
from .sack import SackReceiver, SackScoreboard

__all__ = ["Connection", "Listener", "PendingAcks", "State", "TcpInfo", "format_address"]

_NO_TIMESTAMPS_YET = TimestampsOption(-1, -1)
"""``Connection.ts_sent`` before the first segment: no real TSval is negative."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpInfo:
    """A snapshot of one connection or listener, for applications, tests and tools.

    Sequence numbers are the 32-bit values seen on the wire; times are microseconds.
    """

    state: str
    local_address: str
    local_port: int
    remote_address: str
    remote_port: int
    snd_una: int = 0
    snd_nxt: int = 0
    rcv_nxt: int = 0
    snd_wnd: int = 0
    rcv_wnd: int = 0
    mss: int = 0
    cwnd: int = 0
    ssthresh: int = 0
    srtt: int | None = None
    rto: int = 0
    retransmits: int = 0
    bytes_in_send_buffer: int = 0
    bytes_readable: int = 0
    bytes_out_of_order: int = 0
    window_scaling: bool = False
    timestamps: bool = False
    sack: bool = False
    backlog: int = 0
    queued: int = 0
    """A listener's completed connections not yet handed to the application (``ss -lt``
    Recv-Q); the backlog bounds these."""
    syn_queued: int = 0
    """A listener's connections in SYN-RECEIVED."""
    soft_error: tuple[int, int] | None = None
    """The last soft ICMP error (type, code) met (RFC 1122 §4.2.3.9), until taken with
    ``TcpLayer.take_soft_error`` (as SO_ERROR reads and clears ``sk_err_soft``)."""
    # What ``ss -ti`` prints, named as Linux's struct tcp_info (tcpi_*) where it has the
    # field; bytes and microseconds unless said (Linux gives some in packets or ms).
    at: int | None = None
    """The time of the snapshot, when the caller gave it: the ``last_*`` ages and the
    running chrono need it."""
    cc: str = ""
    """The congestion control's name (``ss`` prints it: cubic, newreno)."""
    snd_wscale: int = 0
    rcv_wscale: int = 0
    rttvar: int | None = None
    ato: int = 0
    """The delayed-ACK timeout (Linux icsk_ack.ato)."""
    pmtu: int = 0
    """The MTU of the link toward the peer."""
    rcv_mss: int = 0
    """The largest segment received, up to our MSS (Linux rcv_mss, ``ss`` rcvmss)."""
    advmss: int = 0
    """The MSS we advertised."""
    bytes_sent: int = 0
    """Data bytes sent, retransmissions included (RFC 4898 HCDataOctetsOut)."""
    bytes_retrans: int = 0
    bytes_acked: int = 0
    """Sequence space cumulatively acknowledged, our SYN and FIN included, as Linux
    counts it (RFC 4898 HCThruOctetsAcked): a fresh connection shows 1."""
    bytes_received: int = 0
    """Sequence space received in order after the peer's SYN (its FIN included, as
    Linux counts it; RFC 4898 HCThruOctetsReceived)."""
    segs_out: int = 0
    """Segments sent, pure ACKs included; a TSO segment counts as its MSS pieces."""
    segs_in: int = 0
    data_segs_out: int = 0
    data_segs_in: int = 0
    send_rate: int = 0
    """cwnd over the smoothed RTT, bytes per second (what ``ss`` prints as "send")."""
    last_data_sent: int | None = None
    """Microseconds since data was last sent (None: never, or no ``at``)."""
    last_data_recv: int | None = None
    last_ack_recv: int | None = None
    pacing_rate: int | None = None
    """Bytes per second if the sender paced; simtcp does not pace."""
    delivery_rate: int = 0
    """The latest delivery-rate sample kept, bytes per second
    (draft-cheng-iccrg-delivery-rate-estimation; see :mod:`.delivery`)."""
    app_limited: bool = False
    """That sample was taken while the application, not the path, limited sending."""
    delivered: int = 0
    """Bytes acknowledged cumulatively or by SACK."""
    busy_time: int = 0
    """Time with data queued or in flight, the limited times below included."""
    rwnd_limited: int = 0
    """Of ``busy_time``, the time the peer's receive window stopped us."""
    sndbuf_limited: int = 0
    """Of ``busy_time``, the time the application waited for room in the send buffer."""
    unacked: int = 0
    """Segments sent and not yet cumulatively acknowledged (Linux packets_out)."""
    retrans: int = 0
    """Retransmitted segments not yet acknowledged; ``retransmits`` counts them all."""
    lost: int = 0
    """Segments the SACK scoreboard deems lost (RFC 6675 IsLost)."""
    sacked: int = 0
    """Segments SACKed above SND.UNA."""
    reordering: int = 3
    """The duplicate-ACK threshold in segments (RFC 6675 DupThresh)."""
    rcv_rtt: int | None = None
    """The receiver's RTT estimate (see :class:`.delivery.Delivery`)."""
    rcv_space: int = 0
    """The receive buffer auto-tuning has granted."""
    min_rtt: int | None = None
    notsent_bytes: int = 0
    """Queued bytes not yet sent once."""


class Listener:
    """A passive open: the port and its SYN and accept queues (:mod:`.accept_queue`)."""

    __slots__ = ("handle", "address", "port", "backlog", "queue", "fast_open_queue", "fast_open")

    def __init__(self, handle: int, address: Address, port: int, backlog: int) -> None:
        self.handle = handle
        self.address = address
        self.port = port
        self.backlog = backlog
        self.queue = AcceptQueue(backlog)
        self.fast_open_queue = 0
        """TCP_FASTOPEN's qlen: Fast Open connections (RFC 7413 §5.1) that may be in
        SYN-RECEIVED at once; 0: this listener does not take SYN data."""
        self.fast_open: set[Connection] = set()
        """Connections opened with SYN data, still in SYN-RECEIVED."""

    def forget(self, conn: Connection) -> None:
        self.queue.forget(conn)

    def info(self, now: Instant | None = None) -> TcpInfo:
        return TcpInfo(
            at=now,
            state=State.LISTEN.value,
            local_address=format_address(self.address),
            local_port=self.port,
            remote_address="::" if is_ipv6(self.address) else "0.0.0.0",
            remote_port=0,
            backlog=self.backlog,
            queued=len(self.queue.ready),
            syn_queued=len(self.queue.syn_queue),
        )


class PendingAcks:
    """The connections owing an immediate ACK or holding an autocorked segment
    (``Connection.corked``), shared by one layer's connections.

    ``enabled`` turns on when the host first calls ``TcpLayer.flush_acks``, that is
    when it promises to flush before it collects output; until then an owed ACK is
    sent at once. ``due_at`` is the time the queued ACKs were owed at.
    """

    __slots__ = ("enabled", "connections", "due_at")

    def __init__(self) -> None:
        self.enabled = False
        self.connections: list[Connection] = []
        self.due_at: Instant = 0


class Connection:
    """One connection's variables (RFC 9293 §3.3.1 names where they exist)."""

    __slots__ = (
        "handle",
        "state",
        "transitions",
        "transition_log",
        "host",
        "config",
        "timers",
        "timer",
        "key",
        "local_address",
        "local_port",
        "remote_address",
        "remote_port",
        "listener",
        "visible",
        "active",
        "app_closed",
        "write_closed",
        "iss",
        "irs",
        "snd_una",
        "snd_nxt",
        "snd_max",
        "snd_wnd",
        "snd_wl1",
        "snd_wl2",
        "max_snd_wnd",
        "snd_wscale",
        "rcv_wscale",
        "rcv_nxt",
        "rcv_adv",
        "send_buffer",
        "receive_buffer",
        "fin_seq",
        "peer_fin_seq",
        "fin_received",
        "snd_mss",
        "rcv_mss",
        "rcv_mss_seen",
        "nodelay",
        "cork",
        "corked",
        "snd_sml",
        "rto",
        "cc",
        "retries",
        "retransmits",
        "rtt_seq",
        "rtt_sent_at",
        "dupacks",
        "recover",
        "in_recovery",
        "partial_acked",
        "rto_at",
        "delack_at",
        "persist_at",
        "keepalive_at",
        "close_at",
        "persist_backoff",
        "persist_probes",
        "keepalive_probes",
        "unacked_bytes",
        "send_blocked",
        "last_received_at",
        "last_oow_ack_at",
        "soft_error",
        "offered_wscale",
        "ts_ok",
        "ts_clock",
        "ts",
        "last_ack_sent",
        "sack_ok",
        "sack_receiver",
        "scoreboard",
        "sack_pending",
        "rack",
        "rack_clock",
        "reorder_at",
        "probe_at",
        "cork_at",
        "rcv_space_copied",
        "rcv_space_at",
        "route_mtu",
        "route_max_segment",
        "snd_tso",
        "snd_tso_mss",
        "ack_pending",
        "pending_acks",
        "ts_sent",
        "ts_options",
        "fast_open",
        "fast_open_option",
        "syn_data",
        "delivery",
    )

    def __init__(
        self,
        *,
        handle: int,
        host: TcpHost,
        config: TcpConfig,
        timers: TimerHeap,
        timer: TimerHandle,
        local: tuple[Address, int],
        remote: tuple[Address, int],
        iss: int,
        our_mss: int,
        cc: CongestionControl,
        ts_clock: TimestampClock,
        state: State = State.CLOSED,
        transition_log: TransitionLog | None = None,
    ) -> None:
        self.handle = handle
        self.state = state
        """Changed only by :func:`.machine.enter`: CLOSED, or LISTEN for a listener's clone."""
        self.transitions: deque[StateChanged] = deque(maxlen=HISTORY_LENGTH)
        """The latest state changes, oldest first (:func:`.machine.enter` appends)."""
        self.transition_log = TransitionLog() if transition_log is None else transition_log
        """The layer's shared log, whose observer sees every change (set by the layer)."""
        self.host = host
        self.config = config
        self.timers = timers
        self.timer = timer
        self._init_endpoints(local, remote)
        self._init_sequence_space(iss, config)
        self._init_segment_sizes(our_mss)
        self._init_transmission(cc, iss, config)
        self._init_deadlines()
        self._init_options(ts_clock)
        self.delivery = Delivery()
        """Counters, delivery-rate samples and chronos for :meth:`info` (``ss -ti``)."""

    def _init_endpoints(self, local: tuple[Address, int], remote: tuple[Address, int]) -> None:
        """The 4-tuple and what the application knows of the connection."""
        self.local_address, self.local_port = local
        self.remote_address, self.remote_port = remote
        self.key = (self.local_address, self.local_port, self.remote_address, self.remote_port)
        self.listener: Listener | None = None
        self.visible = False
        """The application knows this handle (connect returned it, or it was accepted)."""
        self.active = False
        self.app_closed = False
        self.write_closed = False

    def _init_sequence_space(self, iss: int, config: TcpConfig) -> None:
        """RFC 9293 §3.3.1's send and receive sequence variables, and the two buffers."""
        self.iss = iss
        self.irs = 0
        self.snd_una = iss
        self.snd_nxt = iss
        self.snd_max = iss
        self.snd_wnd = 0
        self.snd_wl1 = 0
        self.snd_wl2 = 0
        self.max_snd_wnd = 0
        self.snd_wscale = 0
        self.rcv_wscale = 0
        self.offered_wscale = 0
        self.rcv_nxt = 0
        self.rcv_adv = 0
        self.send_buffer = SendBuffer(base=iss + 1, capacity=config.send_buffer)
        self.receive_buffer = ReceiveBuffer(
            capacity=config.receive_buffer, max_blocks=config.max_out_of_order_blocks
        )
        self.fin_seq: int | None = None
        """Absolute sequence number of our FIN once the application shut down writing."""
        self.peer_fin_seq: int | None = None
        """Sequence number of the peer's FIN, known possibly before the data before it."""
        self.fin_received = False

    def _init_segment_sizes(self, our_mss: int) -> None:
        """MSS both ways, the link's MTU and TSO limits, and the owed-ACK bookkeeping."""
        self.snd_mss = our_mss
        self.rcv_mss = our_mss
        self.rcv_mss_seen = 0
        self.route_mtu = 0
        """MTU of our link toward the peer (the size its TSO cuts segments to)."""
        self.route_max_segment = 0
        """Largest segment payload that link cuts into MSS-sized frames (TSO); 0: none."""
        self.snd_tso = our_mss
        """Largest payload of one segment we build: a multiple of SND.MSS (see output)."""
        self.snd_tso_mss = 0
        """The SND.MSS ``snd_tso`` was computed for; it is recomputed when they differ."""
        self.ack_pending = False
        """An immediate ACK is owed: it leaves when the host collects output, unless a
        segment we send first carries it (see :class:`PendingAcks`)."""
        self.pending_acks = PendingAcks()
        """The layer's shared queue of connections owing an ACK (set by the layer)."""

    def _init_transmission(self, cc: CongestionControl, iss: int, config: TcpConfig) -> None:
        """Nagle, the RTO estimator (RFC 6298), congestion control and loss recovery."""
        self.nodelay = config.nodelay
        self.cork = False
        """TCP_CORK: segments shorter than the MSS wait until it is cleared, we send a FIN,
        or ``cork_at`` passes."""
        self.corked = False
        """A short segment was held by autocorking: it leaves at the host's flush."""
        self.snd_sml = iss
        """End of the latest segment shorter than the MSS we sent (Minshall's Nagle)."""
        self.rto = RtoEstimator(
            initial_rto=config.initial_rto, min_rto=config.min_rto, max_rto=config.max_rto
        )
        self.cc = cc
        self.retries = 0
        self.retransmits = 0
        self.rtt_seq: int | None = None
        self.rtt_sent_at: Instant = 0
        self.dupacks = 0
        self.recover = iss
        self.in_recovery = False
        self.partial_acked = False
        """A partial ACK arrived in this NewReno recovery (RFC 6582 §3.2 step 5, "Impatient")."""

    def _init_deadlines(self) -> None:
        """Every deadline (RFC 9293 §3.10.8) and the counters of the timers' probes."""
        self.rto_at: Instant | None = None
        self.delack_at: Instant | None = None
        self.persist_at: Instant | None = None
        self.keepalive_at: Instant | None = None
        self.close_at: Instant | None = None
        self.reorder_at: Instant | None = None
        self.probe_at: Instant | None = None
        self.cork_at: Instant | None = None
        """TCP_CORK's ceiling: held data leaves by then even while corked (Linux, 200 ms)."""
        self.persist_backoff = 0
        self.persist_probes = 0
        self.keepalive_probes = 0
        self.unacked_bytes = 0
        self.send_blocked = False
        self.last_received_at: Instant = 0
        self.last_oow_ack_at: Instant = -(1 << 62)
        self.soft_error: tuple[int, int] | None = None
        self.rcv_space_copied = 0
        """Bytes the application read since ``rcv_space_at`` (receive-buffer auto-tuning)."""
        self.rcv_space_at: Instant = 0

    def _init_options(self, ts_clock: TimestampClock) -> None:
        """Timestamps (RFC 7323), SACK (RFC 2018) and RACK-TLP (RFC 8985) state."""
        self.ts_ok = False
        """Both SYNs carried timestamps: every segment now does (RFC 7323 §3.2)."""
        self.ts_clock = ts_clock
        self.ts = TimestampState()
        self.last_ack_sent = 0
        """RCV.NXT as of our latest segment: Last.ACK.sent of RFC 7323 §4.3."""
        self.ts_sent = _NO_TIMESTAMPS_YET
        """The timestamps option of our latest segment (see ``ts_options``)."""
        self.ts_options: tuple[TcpOption, ...] = ()
        """NOP NOP ``ts_sent``: reused (both are immutable) while TSval and TS.Recent stay
        the same, as they do for the segments of one 1 ms tick (:func:`.output.transmit`)."""
        self.sack_ok = False
        """Both SYNs carried SACK-permitted (RFC 2018 §2)."""
        self.sack_receiver: SackReceiver | None = None
        self.scoreboard: SackScoreboard | None = None
        self.sack_pending = False
        """SACK blocks (a D-SACK block, RFC 2883) wait to be reported in the next ACK."""
        self.rack: RackTlp | None = None
        """RACK-TLP state (RFC 8985), on SACK connections when the config asks for it."""
        self.rack_clock: Instant = 0
        """The last transmit stamp given to RACK (strictly increasing)."""
        self.fast_open = False
        """TCP Fast Open (RFC 7413): the server took this connection's SYN data and told the
        application at once; the client's SYN carried data."""
        self.fast_open_option: FastOpenOption | None = None
        """The Fast Open option our SYN (a cookie or a request) or SYN-ACK (a cookie) carries."""
        self.syn_data = 0
        """Bytes of the send buffer our next SYN carries (the first one only)."""

    def __repr__(self) -> str:
        return (
            f"<Connection {self.handle} {self.state.value} "
            f"{format_address(self.local_address)}:{self.local_port} > "
            f"{format_address(self.remote_address)}:{self.remote_port}>"
        )

    def rearm(self) -> None:
        """Arm the connection's one timer at the earliest of its deadlines."""
        deadline = self.rto_at
        for candidate in (
            self.delack_at,
            self.persist_at,
            self.keepalive_at,
            self.close_at,
            self.reorder_at,
            self.probe_at,
            self.cork_at,
        ):
            if candidate is not None and (deadline is None or candidate < deadline):
                deadline = candidate
        self.timers.arm(self.timer, deadline)

    def cancel_timers(self) -> None:
        self.rto_at = self.delack_at = self.persist_at = self.keepalive_at = self.close_at = None
        self.reorder_at = self.probe_at = self.cork_at = None
        self.timers.cancel(self.timer)

    def take_send_window(self, seq: int, ack: int, window: int) -> None:
        """RFC 9293 §3.10.7.4 "fifth": take the (scaled) ``window`` of a segment newer
        than SND.WL1/SND.WL2, and stop probing once it opens."""
        if seq > self.snd_wl1 or (seq == self.snd_wl1 and ack >= self.snd_wl2):
            self.snd_wnd = window
            self.snd_wl1 = seq
            self.snd_wl2 = ack
            if window > self.max_snd_wnd:
                self.max_snd_wnd = window
            if window and self.persist_at is not None:
                self.persist_at = None
                self.persist_backoff = 0

    @property
    def fin_acked(self) -> bool:
        """Our FIN was sent and acknowledged."""
        fin_seq = self.fin_seq
        return fin_seq is not None and self.snd_una > fin_seq

    def info(self, now: Instant | None = None) -> TcpInfo:
        """The snapshot; with ``now``, also the ages (``last_*``) and the running chrono."""
        return TcpInfo(
            **info_fields(self, now),
            state=self.state.value,
            local_address=format_address(self.local_address),
            local_port=self.local_port,
            remote_address=format_address(self.remote_address),
            remote_port=self.remote_port,
            snd_una=self.snd_una & 0xFFFFFFFF,
            snd_nxt=self.snd_nxt & 0xFFFFFFFF,
            rcv_nxt=self.rcv_nxt & 0xFFFFFFFF,
            snd_wnd=self.snd_wnd,
            rcv_wnd=max(self.rcv_adv - self.rcv_nxt, 0),
            mss=self.snd_mss,
            cwnd=self.cc.cwnd,
            ssthresh=self.cc.ssthresh,
            srtt=self.rto.srtt,
            rto=self.rto.rto,
            retransmits=self.retransmits,
            bytes_in_send_buffer=len(self.send_buffer),
            bytes_readable=self.receive_buffer.available,
            bytes_out_of_order=self.receive_buffer.out_of_order_bytes,
            window_scaling=bool(self.snd_wscale or self.rcv_wscale),
            timestamps=self.ts_ok,
            sack=self.sack_ok,
            soft_error=self.soft_error,
        )
