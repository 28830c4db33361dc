"""Exceptions for misuse of the API, the one parse error, and drop reasons for bad input.

Bad input from the network never raises out of the stack: it is dropped and
counted by a :class:`DropReason`. Only misuse of the API raises, and always one
of the :class:`SimtcpError` subclasses below.
"""

from __future__ import annotations

import enum


class DropReason(enum.Enum):
    """Why the stack discarded a frame or packet; counted in ``Stack.stats()``."""

    TRUNCATED = "truncated"
    MALFORMED = "malformed"
    BAD_CHECKSUM = "bad_checksum"
    UNSUPPORTED_ETHERTYPE = "unsupported_ethertype"
    VLAN_TAGGED = "vlan_tagged"
    NOT_FOR_US = "not_for_us"
    UNKNOWN_INTERFACE = "unknown_interface"
    BAD_VERSION = "bad_version"
    BAD_HEADER_LENGTH = "bad_header_length"
    BAD_TOTAL_LENGTH = "bad_total_length"
    BAD_SOURCE_ADDRESS = "bad_source_address"
    TTL_EXPIRED = "ttl_expired"
    NO_ROUTE = "no_route"
    FORWARDING_DISABLED = "forwarding_disabled"
    FRAGMENT_NEEDED = "fragment_needed"
    REASSEMBLY_OVERLAP = "reassembly_overlap"
    REASSEMBLY_TIMEOUT = "reassembly_timeout"
    REASSEMBLY_LIMIT = "reassembly_limit"
    ARP_QUEUE_FULL = "arp_queue_full"
    ARP_UNRESOLVED = "arp_unresolved"
    ARP_OWN_ADDRESS_CLAIMED = "arp_own_address_claimed"
    # IPv6 (simtcp/ip6/, simtcp/wire/ipv6.py, simtcp/wire/icmpv6.py)
    IPV6_TOO_MANY_EXTENSION_HEADERS = "ipv6_too_many_extension_headers"
    IPV6_BAD_EXTENSION_HEADER = "ipv6_bad_extension_header"
    IPV6_ROUTING_TYPE0 = "ipv6_routing_type0"
    IPV6_UNKNOWN_OPTION = "ipv6_unknown_option"
    IPV6_UNKNOWN_NEXT_HEADER = "ipv6_unknown_next_header"
    IPV6_FRAGMENT_TOO_BIG = "ipv6_fragment_too_big"
    IPV6_BAD_FRAGMENT = "ipv6_bad_fragment"
    IPV6_BAD_SOURCE = "ipv6_bad_source"
    IPV6_NOT_JOINED = "ipv6_not_joined"
    HOP_LIMIT_EXCEEDED = "hop_limit_exceeded"
    ND_BAD_HOP_LIMIT = "nd_bad_hop_limit"
    ND_INVALID = "nd_invalid"
    ND_QUEUE_FULL = "nd_queue_full"
    ND_UNRESOLVED = "nd_unresolved"
    RA_NOT_ACCEPTED = "ra_not_accepted"
    REDIRECT_IGNORED = "redirect_ignored"
    DAD_TENTATIVE = "dad_tentative"
    MLD_INVALID = "mld_invalid"
    UNKNOWN_PROTOCOL = "unknown_protocol"
    PORT_UNREACHABLE = "port_unreachable"
    ICMP_RATE_LIMITED = "icmp_rate_limited"
    ICMP_UNHANDLED = "icmp_unhandled"
    PACKET_TOO_BIG_NOT_IN_FLIGHT = "packet_too_big_not_in_flight"
    """An ICMPv6 packet too big quoting a TCP segment TCP has not in flight (RFC 5927 §4.1):
    the path MTU stays (RFC 8201 §4)."""
    BROADCAST_ECHO = "broadcast_echo"
    UDP_QUEUE_FULL = "udp_queue_full"
    UDP_ZERO_CHECKSUM = "udp_zero_checksum"
    """A UDP datagram over IPv6 without a checksum (RFC 8200 §8.1 makes it mandatory)."""
    TCP_NO_CONNECTION = "tcp_no_connection"
    TCP_BAD_SEGMENT = "tcp_bad_segment"
    TCP_OUT_OF_WINDOW = "tcp_out_of_window"
    TCP_BACKLOG_FULL = "tcp_backlog_full"
    TCP_PAWS = "tcp_paws"
    TCP_BAD_ACK = "tcp_bad_ack"
    TCP_RST_INVALID = "tcp_rst_invalid"
    TCP_OUT_OF_ORDER_FULL = "tcp_out_of_order_full"


class ParseError(ValueError):
    """The one exception every wire parser raises for malformed bytes.

    ``reason`` says which rule the bytes broke; the stack turns it into a
    :class:`DropReason` and counts it.
    """

    def __init__(self, message: str, reason: DropReason = DropReason.MALFORMED) -> None:
        super().__init__(message)
        self.reason = reason


class SimtcpError(Exception):
    """Base of every exception the API raises for misuse."""


class ConfigError(SimtcpError, ValueError):
    """A configuration value is out of its documented range."""


class AddressError(SimtcpError, ValueError):
    """An address, prefix, MAC or interface name is invalid or unknown."""


class AddressInUseError(SimtcpError):
    """A port or address is already bound (EADDRINUSE)."""


class InvalidHandleError(SimtcpError):
    """A connection or socket handle is unknown or already freed."""


class InvalidStateError(SimtcpError):
    """The call is not allowed in the connection's current state (e.g. send after shutdown)."""


class NoRouteError(SimtcpError):
    """No route leads to the destination (ENETUNREACH)."""
