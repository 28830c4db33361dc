"""Configuration: one frozen dataclass per layer, every knob documented, time in microseconds."""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ConfigError
from .tcp.config import TcpConfig
from .time import MILLISECOND, SECOND, Duration


@dataclass(frozen=True, slots=True, kw_only=True)
class ArpConfig:
    """Neighbour cache and resolution (RFC 826, RFC 1122 §2.3.2)."""

    entry_lifetime: Duration = 60 * SECOND
    """How long a resolved entry is trusted before it is re-validated."""
    request_interval: Duration = 1 * SECOND
    """Time between ARP requests for an unresolved address."""
    max_requests: int = 3
    """Requests sent before resolution fails and the queue is dropped."""
    queue_limit: int = 16
    """Packets kept per unresolved destination (RFC 1122 §2.3.2.2: at least one)."""
    cache_limit: int = 1024
    """Neighbour entries kept at most (the oldest is evicted beyond this), and also the most
    destinations under resolution at once (packets for more are dropped)."""
    gratuitous_on_add: bool = True
    """Announce a new address with a gratuitous ARP request."""


@dataclass(frozen=True, slots=True, kw_only=True)
class IpConfig:
    """IPv4 (RFC 791, RFC 1122 §3.3)."""

    forwarding: bool = False
    """Forward datagrams between interfaces as a router (RFC 1812 in spirit)."""
    default_ttl: int = 64
    """TTL of datagrams we originate."""
    reassembly_timeout: Duration = 30 * SECOND
    """Fragments of a datagram are dropped if it is not complete by then (RFC 1122 §3.3.2)."""
    reassembly_limit: int = 256 * 1024
    """Bytes held in all reassembly buffers together."""
    reassembly_max_datagrams: int = 64
    """Datagrams under reassembly at once."""


@dataclass(frozen=True, slots=True, kw_only=True)
class IcmpConfig:
    """ICMP (RFC 792, RFC 1122 §3.2.2)."""

    error_rate: float = 100.0
    """ICMP errors per second we send, on average (a token bucket; RFC 1812 §4.3.2.8)."""
    error_burst: int = 50
    """Errors that may go out back to back before the rate limit applies."""
    reply_to_broadcast: bool = False
    """Answer echo requests sent to a broadcast address (RFC 1122 §3.2.2.6: may ignore)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UdpConfig:
    """UDP (RFC 768)."""

    ephemeral_ports: tuple[int, int] = (49152, 65535)
    """Range for automatically chosen local ports."""
    send_checksum: bool = True
    """Compute the checksum of datagrams we send (RFC 1122 §4.1.3.4: must by default)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StackConfig:
    """Everything a :class:`simtcp.Stack` can be tuned with."""

    seed: int = 0
    """The one source of randomness: ISN keys, ephemeral ports, IP IDs."""
    event_limit: int = 100_000
    """Events held for the application. Beyond it, events the network alone can multiply
    (echo replies, datagrams, ICMP errors) are dropped and counted as ``events.dropped``;
    connection events, bounded by the number of connections, are always kept."""
    fast_paths: bool = True
    """Take the common frames in one step (``simtcp/tcpio.py``): a plain TCP segment or
    echo request received, a TCP segment to a resolved next hop sent, each without
    building the layered objects. Off, every frame takes the general layered path (the
    fast paths' oracle): the same frames, events and counters, only slower. Tests turn it
    off to compare the two. The TCP engine's header prediction is a separate switch,
    ``TcpConfig.fast_path``."""
    arp: ArpConfig = field(default_factory=ArpConfig)
    ip: IpConfig = field(default_factory=IpConfig)
    icmp: IcmpConfig = field(default_factory=IcmpConfig)
    udp: UdpConfig = field(default_factory=UdpConfig)
    tcp: TcpConfig = field(default_factory=TcpConfig)

    def __post_init__(self) -> None:
        if self.arp.max_requests < 1:
            raise ConfigError("arp.max_requests must be at least 1")
        if self.arp.queue_limit < 1:
            raise ConfigError("arp.queue_limit must be at least 1 (RFC 1122 §2.3.2.2)")
        if not 1 <= self.ip.default_ttl <= 255:
            raise ConfigError("ip.default_ttl must be 1..255")
        if self.icmp.error_rate <= 0 or self.icmp.error_burst < 1:
            raise ConfigError("icmp.error_rate must be > 0 and icmp.error_burst >= 1")


__all__ = [
    "ArpConfig",
    "IcmpConfig",
    "IpConfig",
    "StackConfig",
    "TcpConfig",
    "UdpConfig",
    "MILLISECOND",
    "SECOND",
]
