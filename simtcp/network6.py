"""The IPv6 network layer as TCP and UDP see it: the seam with ``simtcp/ip6/``.

The transports never build IPv6 headers, walk extension headers or resolve
neighbours. They hand finished upper-layer payloads (checksummed with RFC 8200
§8.1's pseudo-header) to :meth:`Ipv6Network.send_ipv6`, ask which source
address and path MTU reach a destination, and receive from the IPv6 input
through ``TcpFrames.received_ipv6`` and ``Udp.received_ipv6``. The stack
implements this protocol and sets itself as the transports' ``ipv6``; until it
does (or on a stack without IPv6) they treat IPv6 destinations as unroutable.
"""

from __future__ import annotations

from ipaddress import IPv6Address
from typing import Protocol

from .link.interface import InterfaceOffload
from .time import Instant


class Ipv6Network(Protocol):
    """Implemented by :class:`simtcp.stack.Stack` (and by test harnesses)."""

    def send_ipv6(
        self,
        source: IPv6Address | None,
        destination: IPv6Address,
        next_header: int,
        payload: bytes,
        *,
        now: Instant,
        segment_offload: bool = False,
    ) -> None:
        """Send ``payload`` in IPv6 (source None: the route's choice, RFC 6724).

        ``segment_offload``: ``payload`` is one TCP segment larger than the path MTU that
        the link's TSO (or the stack's software GSO) cuts, so it leaves unfragmented."""
        ...

    def route6_link(self, destination: IPv6Address) -> tuple[InterfaceOffload, int]:
        """What the link toward ``destination`` does for us and the path MTU (no offload
        and 0 without a route; no offload toward our own addresses, or where a packet
        too big lowered the path MTU below the link's: TSO cuts at the link's)."""
        ...

    def route6_source(self, destination: IPv6Address) -> tuple[IPv6Address, int] | None:
        """(source address, path MTU) toward ``destination``, or None without a route."""
        ...

    def is_local_address6(self, address: IPv6Address) -> bool:
        """Whether ``address`` is one of ours (a unicast address on some interface)."""
        ...


class ChecksumVerdict(Protocol):
    """The IPv6 input's word on the datagram being delivered (``Ipv6Layer``)."""

    @property
    def checksum_verified(self) -> bool:
        """True while a ``received_ipv6`` hook runs for a datagram whose link vouched for
        its TCP/UDP checksum (a TAP with offloads: the sum may then be only partial, the
        pseudo-header's, and must not be checked)."""
        ...


def is_multicast6(address: IPv6Address) -> bool:
    """``ff00::/8`` (RFC 4291 §2.7), without building an IPv6Network."""
    return int(address) >> 120 == 0xFF


__all__ = ["ChecksumVerdict", "Ipv6Network", "is_multicast6"]
