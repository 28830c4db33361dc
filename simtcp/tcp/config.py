"""TCP configuration: every knob of the connection engine, time in microseconds."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from ..time import MILLISECOND, SECOND, Duration


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpConfig:
    """TCP (RFC 9293, RFC 6298, RFC 5681, RFC 1122 §4.2)."""

    mss: int = 1460
    """Largest segment we accept, before clamping to the route's MTU (RFC 9293 §3.7.1)."""
    send_buffer: int = 512 * 1024
    """Bytes the application may queue for sending per connection, at first."""
    send_buffer_max: int = 8 * 1024 * 1024
    """Ceiling of send-buffer auto-tuning: a writer that finds the buffer full earns room
    for two congestion windows (Linux's ``tcp_sndbuf_expand``); at or below
    ``send_buffer`` auto-tuning is off. 8 MiB, twice Linux's ``tcp_wmem`` max: 4 MiB
    holds less than the 5 MB bandwidth-delay product of 1 Gbit/s at 40 ms (one stream
    got 57% of such a link), 8 MiB holds 1.6 of them, and a flight that stays below
    BDP plus a BDP-sized bottleneck queue also ends slow start there without a loss."""
    receive_buffer: int = 256 * 1024
    """Bytes held for the application per connection at first; bounds the advertised window."""
    receive_buffer_max: int = 16 * 1024 * 1024
    """Ceiling of receive-buffer auto-tuning (as Linux's ``tcp_moderate_rcvbuf=1``): the
    buffer grows toward four times what the application reads per RTT (dynamic
    right-sizing, as Linux's tcp_rcv_space_adjust) when window scaling is on; at or below
    ``receive_buffer`` auto-tuning is off. 16 MiB rather than Linux's ``tcp_rmem`` max of
    6 MiB: the window must cover the sender's whole flight (BDP plus the bottleneck's
    queue) and the out-of-order data held during a recovery, about 3 BDP at 1 Gbit/s
    with 40 ms; the window scale offered follows it (shift 9)."""
    initial_rto: Duration = 1 * SECOND
    """RTO before any RTT sample (RFC 6298 §2.1)."""
    min_rto: Duration = 200 * MILLISECOND
    """Lower bound of the RTO (RFC 6298 §2.4 says 1 s; Linux uses 200 ms)."""
    max_rto: Duration = 60 * SECOND
    """Upper bound of the RTO (RFC 6298 §2.5)."""
    syn_retries: int = 6
    """SYN (and SYN-ACK) retransmissions before giving up."""
    data_retries: int = 15
    """Retransmissions of the same data before the connection times out (RFC 1122 R2)."""
    delayed_ack: Duration = 40 * MILLISECOND
    """Longest delay of an ACK (RFC 1122 §4.2.3.2: < 0.5 s)."""
    nodelay: bool = False
    """Disable Nagle's algorithm (RFC 896) for new connections (TCP_NODELAY)."""
    minshall_nagle: bool = True
    """Nagle's rule as Linux applies it (Minshall's variant, draft-minshall-nagle): a small
    segment waits only while an earlier *small* segment is unacknowledged, so the short
    tail of a response after full-sized segments leaves at once. Off: RFC 896 / RFC 1122
    §4.2.3.4 as written (any unacknowledged data holds a small segment)."""
    autocorking: bool = True
    """Linux's ``tcp_autocorking``: a segment shorter than the MSS that the application's
    ``send`` would leave is held until the host collects output (``Stack.frames_to_send``),
    so several small writes of one step leave in as few full-sized segments as possible.
    Only when the host flushes (``TcpLayer.flush_acks``); data that fills whole segments
    leaves at once."""
    msl: Duration = 30 * SECOND
    """Maximum segment lifetime; TIME-WAIT lasts 2*MSL (RFC 9293 §3.4.2)."""
    keepalive: bool = False
    """Send keepalive probes on idle connections (RFC 1122 §4.2.3.6)."""
    keepalive_idle: Duration = 7200 * SECOND
    """Idle time before the first keepalive probe."""
    keepalive_interval: Duration = 75 * SECOND
    """Time between unanswered keepalive probes."""
    keepalive_probes: int = 9
    """Unanswered probes before the connection is dropped."""
    backlog: int = 128
    """Default listen backlog (half-open plus accepted-but-unclaimed connections)."""
    congestion_control: str = "cubic"
    """Congestion control by name: ``"cubic"`` (RFC 9438, the default of Linux, FreeBSD 14
    and Windows) or ``"newreno"`` (RFC 5681 with RFC 6582)."""
    prr: bool = True
    """Proportional Rate Reduction (RFC 6937) as the sending rule of SACK fast recovery:
    what leaves per ACK follows what the receiver got (:mod:`.prr`); off, RFC 6675 §5 (C)
    sends while ``cwnd - pipe >= SMSS``. Either way the first hole goes at once (§5 (4.3))."""
    hystart: bool = True
    """HyStart++ (RFC 9406) in slow start: leave it for Conservative Slow Start when the
    RTT of a round grows by more than its threshold (:mod:`.hystart`), before a loss does."""
    initial_window_segments: int = 10
    """Initial congestion window in segments (RFC 6928)."""
    ephemeral_ports: tuple[int, int] = (49152, 65535)
    """Range for automatically chosen local ports."""
    window_scaling: bool = True
    """Offer the window scale option (RFC 7323 §2) so windows may exceed 64 KiB."""
    timestamps: bool = True
    """Offer timestamps (RFC 7323 §3): RTT from every ACK (RTTM) and PAWS."""
    sack: bool = True
    """Offer SACK (RFC 2018): report out-of-order blocks, recover per RFC 6675."""
    rack: bool = True
    """With SACK: RACK-TLP loss detection and tail loss probes (RFC 8985)."""
    syn_cookies: bool = True
    """Answer SYNs with SYN cookies (RFC 4987 §3.6) while a listener's backlog is full."""
    fast_open_client: bool = False
    """TCP Fast Open as a client (RFC 7413; bit 1 of Linux's ``net.ipv4.tcp_fastopen``):
    ``connect(..., data=)`` asks for a cookie, then sends data in later SYNs."""
    fast_open_server: bool = False
    """TCP Fast Open as a server (RFC 7413; bit 2 of ``net.ipv4.tcp_fastopen``), on
    listeners given a ``fast_open_queue`` (the TCP_FASTOPEN socket option)."""
    fast_open_experimental: bool = False
    """Also honour the pre-RFC experimental option (kind 254, ExID 0xF989, RFC 6994)."""
    max_out_of_order_blocks: int = 256
    """Separate out-of-order ranges held per connection, at least; with SACK the receive
    buffer raises it to one per 2 KiB of its capacity (a window thinned to every other
    full segment by a drop-tail queue), so only holes smaller than a segment hit it.
    Segments making more ranges are dropped."""
    fin_wait_2_timeout: Duration = 60 * SECOND
    """How long a connection the application closed waits in FIN-WAIT-2 for the peer's FIN."""
    fast_path: bool = True
    """Header prediction (:mod:`.fastpath`): in-order data and plain ACKs on an ESTABLISHED
    connection skip the general RFC 9293 §3.10.7.4 checks; off, every segment takes the
    general path (the oracle the equivalence property test compares against)."""
    segmentation_offload: bool = True
    """Build segments of several MSS at once where the route's link cuts them into MSS-sized
    frames (TSO/GSO, :attr:`simtcp.link.InterfaceOffload.max_segment`); off, every segment
    carries at most one MSS. The bytes on the wire are the same either way."""
    abc_limit_segments: int = 1
    """L of Appropriate Byte Counting (RFC 3465 §2.2) in SMSS: in slow start one ACK of N
    new bytes grows cwnd by min(N, L), never taking it further past ssthresh than RFC 5681
    §3.1's min(N, SMSS) would, and by at most one SMSS in the slow start after an RTO (RFC
    3465 §2.3). 1 (default) is RFC 5681 §3.1 equation 3; 2 is RFC 3465 §2.3's allowance for
    delayed ACKs. 0: as many SMSS as one TSO segment of the route holds (1 without TSO):
    a TSO route already takes bursts that long from us, and a receiver behind GRO (Linux
    over a TAP with offloads) or with ``max_stretch_ack`` ACKs once per such burst, so with
    1 slow start ramps about 20 times slower there (see
    :func:`simtcp.tcp.recovery.slow_start_limit`). Congestion avoidance counts bytes
    whatever this is (RFC 3465 §2.1)."""
    max_stretch_ack: int = 0
    """ACK thinning: bytes an ACK owed for every second segment (RFC 5681 §4.2) may come
    to cover while more segments arrive before the host collects output (Linux's GRO
    makes such stretch ACKs of up to 64 KiB). 0: none, the owed ACK leaves before the
    next segment and only one still owed at collection may ride on reply data. Over a
    TAP, 65535 drops a third of the frames an echo writes; but a sender growing cwnd by
    min(N, SMSS) per ACK in slow start (RFC 5681 §3.1, ours) then ramps up slower."""

    def __post_init__(self) -> None:
        checks = (
            (88 <= self.mss <= 65495, "tcp.mss must be 88..65495"),
            (
                self.send_buffer >= 1
                and self.receive_buffer >= 1
                and self.send_buffer_max >= 0
                and self.receive_buffer_max >= 0,
                "tcp.send_buffer and tcp.receive_buffer must be at least 1 byte",
            ),
            (
                0 < self.min_rto <= self.max_rto and self.initial_rto > 0,
                "tcp.min_rto <= tcp.max_rto, all RTOs > 0",
            ),
            (self.syn_retries >= 0 and self.data_retries >= 0, "tcp retries must be >= 0"),
            (
                0 < self.delayed_ack < 500 * MILLISECOND,
                "tcp.delayed_ack must be in (0, 500 ms) (RFC 1122 §4.2.3.2)",
            ),
            (self.msl > 0, "tcp.msl must be > 0"),
            (self.backlog >= 1, "tcp.backlog must be at least 1"),
            (self.initial_window_segments >= 1, "tcp.initial_window_segments must be >= 1"),
            (self.max_out_of_order_blocks >= 1, "tcp.max_out_of_order_blocks must be >= 1"),
            (self.max_stretch_ack >= 0, "tcp.max_stretch_ack must be >= 0"),
            (self.abc_limit_segments >= 0, "tcp.abc_limit_segments must be >= 0"),
            (
                1 <= self.ephemeral_ports[0] <= self.ephemeral_ports[1] <= 65535,
                "tcp.ephemeral_ports must be a range within 1..65535",
            ),
            (
                self.keepalive_idle > 0
                and self.keepalive_interval > 0
                and self.keepalive_probes >= 1,
                "tcp keepalive times must be > 0, probes >= 1",
            ),
        )
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


def window_shift(config: TcpConfig) -> int:
    """The window scale we offer: room for the largest the receive buffer may grow to."""
    size = max(config.receive_buffer, config.receive_buffer_max)
    shift = 0
    while shift < 14 and size >> shift > 0xFFFF:
        shift += 1
    return shift
