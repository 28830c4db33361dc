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
class Ip6Config:
    """IPv6 (RFC 8200), ICMPv6 (RFC 4443), Neighbor Discovery (RFC 4861), SLAAC (RFC 4862)."""

    link_local: bool = True
    """Give an interface a link-local address (fe80::/64, RFC 4862 §5.3) when IPv6
    starts on it: at its first IPv6 address, or when it is added (below)."""
    link_local_on_add: bool = False
    """Start IPv6 on every interface as it is added (link-local address, DAD, router
    solicitations, MLD) rather than at its first IPv6 address. Off by default so that
    an IPv4-only stack sends exactly the frames it always did."""
    stable_privacy: bool = False
    """Interface identifiers from RFC 7217's keyed hash of the seed, the prefix and the
    interface name, instead of the MAC's modified EUI-64 (RFC 4291 §2.5.1)."""
    forwarding: bool = False
    """Forward IPv6 between interfaces as a router (RFC 8200 §3 hop limit, RFC 4443
    §3.3 time exceeded). A router also answers router solicitations."""
    default_hop_limit: int = 64
    """Hop limit of packets we originate (until a router's advertisement sets one)."""
    accept_router_advertisements: bool = True
    """Learn default routers, prefixes (SLAAC) and the MTU from RAs (never when
    forwarding). Off, every RA is dropped and counted as ``ra_not_accepted``."""
    accept_redirects: bool = False
    """Follow redirects (RFC 4861 §8.3). Off by default: each is dropped and counted."""
    slaac: bool = True
    """Form addresses from advertised prefixes with the autonomous flag (RFC 4862 §5.5.3)."""
    dad_transmits: int = 1
    """DupAddrDetectTransmits (RFC 4862 §5.1); 0 turns DAD off."""
    dad_delay_max: Duration = 1 * SECOND
    """Random delay before an interface's first DAD probe, up to this
    (MAX_RTR_SOLICITATION_DELAY, RFC 4862 §5.4.2)."""
    retrans_timer: Duration = 1 * SECOND
    """RetransTimer (RFC 4861 §10): between solicitations."""
    reachable_time: Duration = 30 * SECOND
    """BaseReachableTime; each neighbour's ReachableTime is it times 0.5..1.5 (§6.3.2)."""
    delay_first_probe: Duration = 5 * SECOND
    """DELAY_FIRST_PROBE_TIME (RFC 4861 §10)."""
    max_multicast_solicit: int = 3
    """MAX_MULTICAST_SOLICIT: solicitations before an INCOMPLETE entry fails."""
    max_unicast_solicit: int = 3
    """MAX_UNICAST_SOLICIT: probes before a PROBE entry is removed."""
    queue_limit: int = 16
    """Packets kept per neighbour under resolution (RFC 4861 §7.2.2: at least one)."""
    cache_limit: int = 1024
    """Neighbour entries kept at most (the oldest idle one is evicted beyond)."""
    router_solicitations: int = 3
    """MAX_RTR_SOLICITATIONS a host sends when an interface comes up (0: none)."""
    router_solicitation_interval: Duration = 4 * SECOND
    """RTR_SOLICITATION_INTERVAL."""
    router_lifetime: int = 1800
    """Router lifetime (seconds) in the RAs we send as a router."""
    router_advertisement_interval: Duration = 600 * SECOND
    """MaxRtrAdvInterval (RFC 4861 §6.2.1): a router's unsolicited RAs come every third
    to whole of it, at random, after three initial ones 16 s apart (§6.2.4)."""
    mld_unsolicited_reports: int = 2
    """MLDv2 reports sent when a group is joined (the robustness variable, RFC 3810 §9.1)."""
    mld_report_interval: Duration = 1 * SECOND
    """Unsolicited Report Interval (RFC 3810 §9.11)."""
    max_extension_headers: int = 16
    """Extension headers walked per packet before it is dropped (RFC 8504 §5.3)."""
    reassembly_timeout: Duration = 60 * SECOND
    """RFC 8200 §4.5: fragments of a datagram not complete by then are dropped."""
    reassembly_limit: int = 256 * 1024
    """Bytes held in all IPv6 reassembly buffers together."""
    reassembly_max_datagrams: int = 64
    """IPv6 datagrams under reassembly at once."""
    path_mtu_timeout: Duration = 600 * SECOND
    """A lowered path MTU is forgotten after this (RFC 8201 §4: at least 5 minutes)."""
    error_rate: float = 100.0
    """ICMPv6 errors per second we send, on average (RFC 4443 §2.4(f) token bucket)."""
    error_burst: int = 50
    """ICMPv6 errors that may go out back to back."""


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
    ip6: Ip6Config = field(default_factory=Ip6Config)

    def __post_init__(self) -> None:
        if self.arp.max_requests < 1:
            raise ConfigError("arp.max_requests must be at least 1")
        if self.arp.queue_limit < 1:
            raise ConfigError("arp.queue_limit must be at least 1 (RFC 1122 §2.3.2.2)")
        if not 1 <= self.ip.default_ttl <= 255:
            raise ConfigError("ip.default_ttl must be 1..255")
        if self.icmp.error_rate <= 0 or self.icmp.error_burst < 1:
            raise ConfigError("icmp.error_rate must be > 0 and icmp.error_burst >= 1")
        if not 1 <= self.ip6.default_hop_limit <= 255:
            raise ConfigError("ip6.default_hop_limit must be 1..255")
        if self.ip6.queue_limit < 1 or self.ip6.max_multicast_solicit < 1:
            raise ConfigError("ip6.queue_limit and ip6.max_multicast_solicit must be at least 1")
        if self.ip6.error_rate <= 0 or self.ip6.error_burst < 1:
            raise ConfigError("ip6.error_rate must be > 0 and ip6.error_burst >= 1")


__all__ = [
    "ArpConfig",
    "IcmpConfig",
    "Ip6Config",
    "IpConfig",
    "StackConfig",
    "TcpConfig",
    "UdpConfig",
    "MILLISECOND",
    "SECOND",
]
