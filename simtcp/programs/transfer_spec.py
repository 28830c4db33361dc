"""What a simulated bulk transfer is asked to do and what it reports.

:class:`TransferSpec` (the link, the configurations, the seed, the byte counts) is
the input of :func:`simtcp.programs.transfer.run_transfer`, :class:`TransferResult` (the
verdict, figures and both stacks' counters) its output; ``simtcp sim transfer``,
the tests and the benchmarks build and read them (importing them from
:mod:`simtcp.programs.transfer`, which re-exports both). Both are frozen, slotted,
keyword-only dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from simtcp.backends.impair import LinkProfile
from simtcp.config import ArpConfig, TcpConfig
from simtcp.link import InterfaceOffload
from simtcp.time import SECOND, Duration


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferSpec:
    """What to transfer, over what link, with what seed."""

    bytes: int
    """Bytes each connection sends from client to server."""
    reverse_bytes: int = 0
    """Bytes each connection sends from server to client at the same time."""
    seed: int = 0
    """Seeds the simulator (impairments), both stacks (ISNs, ports) and the data."""
    forward: LinkProfile = field(default_factory=LinkProfile)
    """The link from client to server."""
    backward: LinkProfile = field(default_factory=LinkProfile)
    """The link from server to client."""
    mtu: int = 1500
    ip_version: int = 4
    """4: TCP over IPv4 (10.0.0.1 -> 10.0.0.2); 6: over IPv6 between dual-stack hosts
    (2001:db8::1 -> 2001:db8::2, both with their IPv4 addresses too), after DAD."""
    """Both stacks' interface MTU (the link's own ``mtu`` is set in the profiles)."""
    tcp: TcpConfig = field(default_factory=TcpConfig)
    """Both stacks' TCP configuration."""
    arp: ArpConfig = field(default_factory=ArpConfig)
    """Both stacks' ARP configuration (a huge ``entry_lifetime`` keeps ARP timers apart
    from TCP's when a test looks for timers left behind)."""
    connections: int = 1
    """Concurrent connections, each carrying ``bytes`` (and ``reverse_bytes``)."""
    backlog: int | None = None
    """The server's listen backlog (None: room for every connection); a small one makes
    the server answer the excess SYNs with SYN cookies."""
    stall_timeout: Duration = 900 * SECOND
    """Virtual time without any progress after which the run is declared stalled."""
    time_limit: Duration | None = None
    """Virtual time after which the data phase gives up, progress or not (None: no limit)."""
    warm_up: bool = True
    """Resolve ARP over a perfect link before the impairments start (see
    ``simtcp.programs.transfer._warm_up``); without it the first frames are impaired too, and
    with many connections most first SYNs wait on (or overflow) the ARP queue."""
    pause_reading_after: int | None = None
    """The server stops reading each connection once it holds this many bytes of it ..."""
    pause_reading_for: Duration = 0
    """... for this long (virtual), then reads again: a slow reader."""
    offload: InterfaceOffload | None = None
    """Both stacks' interface offloads (TSO, software GSO, checksum offload; None: none).
    Hardware TSO or checksum offload needs a link that does the work (``LinkProfile(gso=True)``)."""
    host_queue: int | None = None
    """Each host's egress queue limit in frames (like ``txqueuelen``; see
    ``simtcp.backends.egress``); None: no host queue, frames go straight to the link."""
    test_truncate_delivery: int | None = None
    """TEST ONLY, a deliberately broken run: the server application keeps at most this many
    bytes of each connection and throws the rest away, so any transfer longer than it fails
    ("FIN after N of M bytes"). It exists so that tests of the failure store and of replay
    commands have real failures to record (``--test-truncate-delivery`` on the command
    line); never set it to measure anything."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferResult:
    """The verdict and the figures of one transfer."""

    ok: bool
    """Every byte arrived intact, in order, once, both ends closed cleanly and freed
    every connection."""
    reason: str
    """Why not ok (empty when ok)."""
    bytes: int
    """Bytes to transfer, all connections and directions together."""
    bytes_delivered: int
    """Bytes that arrived and matched, all connections and directions together."""
    virtual_seconds: float
    """Virtual time from the first connect to the last byte and FIN delivered."""
    wall_seconds: float
    cpu_seconds: float
    """CPU time of this process for the whole run (both stacks and the simulator)."""
    retransmits: int
    """Segments retransmitted by both ends, all connections, as counted on the wire
    (:class:`~simtcp.programs.transfer.WireRetransmitCounter`)."""
    link_stats: dict[str, dict[str, int]]
    """Impairment counters per link direction (see ``Simulator.link_stats``)."""
    connections_left: tuple[int, int]
    """``tcp.connections`` of the client and the server stacks at the end."""
    closed_at: float | None
    """Virtual seconds at which both stacks held no connection (after TIME-WAIT)."""
    idle_for: tuple[Duration | None, Duration | None]
    """How long after the end the client's and the server's next timer is due (None: no
    timer armed): with nothing left to do, only ARP's entry lifetime remains."""
    min_send_window: int | None
    """Smallest peer window a client sender saw while the server was not reading
    (None without a reading pause)."""
    detail: str = ""
    """A traceback when the engine raised, for debugging."""
    client_stats: dict[str, int] = field(default_factory=dict)
    """The client stack's ``stats()`` at the end of the run (counters and gauges)."""
    server_stats: dict[str, int] = field(default_factory=dict)
    """The server stack's ``stats()`` at the end of the run."""

    def as_json(self) -> dict[str, object]:
        """The JSON fields ``simtcp sim transfer --json`` prints."""
        return {
            "ok": self.ok,
            "reason": self.reason,
            "bytes": self.bytes,
            "bytes_delivered": self.bytes_delivered,
            "virtual_seconds": round(self.virtual_seconds, 6),
            "wall_seconds": round(self.wall_seconds, 6),
            "cpu_seconds": round(self.cpu_seconds, 6),
            "retransmits": self.retransmits,
            "connections_left": list(self.connections_left),
            "link_stats": self.link_stats,
        }
