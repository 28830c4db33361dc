"""What TCP's sizes depend on the address family: header bytes, default MSS, minimum MTU."""

from __future__ import annotations

from ipaddress import IPv6Address

from ..wire.address import Address

IPV4_TCP_HEADERS = 40
"""IPv4 plus TCP header bytes without options: MSS = MTU - 40 (RFC 9293 §3.7.1)."""
IPV6_TCP_HEADERS = 60
"""IPv6 plus TCP header bytes without options: MSS = MTU - 60 (RFC 8200 §8.3)."""
IPV6_MIN_MTU = 1280
"""RFC 8200 §5: every IPv6 link carries 1280 bytes; no path MTU is ever smaller (RFC 8201 §4)."""
IPV4_MIN_MTU = 68
"""RFC 791: the smallest datagram every IPv4 module must forward unfragmented."""


def ip_tcp_headers(address: Address) -> int:
    """IP plus TCP header bytes without options toward ``address``."""
    return IPV6_TCP_HEADERS if isinstance(address, IPv6Address) else IPV4_TCP_HEADERS


def default_mss(address: Address) -> int:
    """The send MSS when the peer's SYN carries no MSS option: 536 over IPv4, 1220 over
    IPv6 (RFC 9293 §3.7.1; 1280 - 60)."""
    return IPV6_MIN_MTU - IPV6_TCP_HEADERS if isinstance(address, IPv6Address) else 536


def min_path_mtu(address: Address) -> int:
    """The smallest path MTU a packet too big / fragmentation needed may announce."""
    return IPV6_MIN_MTU if isinstance(address, IPv6Address) else IPV4_MIN_MTU


__all__ = [
    "IPV4_TCP_HEADERS",
    "IPV6_MIN_MTU",
    "IPV6_TCP_HEADERS",
    "default_mss",
    "ip_tcp_headers",
    "min_path_mtu",
]
