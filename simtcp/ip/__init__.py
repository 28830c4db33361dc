"""IPv4 (and, later, IPv6 beside it): routing, output, input, fragments, forwarding.

- :mod:`.routing`: addresses by kind, the routing table;
- :mod:`.output`: :class:`Ipv4Output`, the one way out for every datagram;
- :mod:`.input`: validation, reassembly, local delivery (general path);
- :mod:`.fragments`: fragmentation and the reassembly buffers;
- :mod:`.forward`: forwarding between interfaces, with offloads.
"""

from __future__ import annotations

from .fragments import Reassembler, copied_options, fragment
from .routing import LIMITED_BROADCAST, Route, RoutingTable, is_martian_source, is_multicast

__all__ = [
    "LIMITED_BROADCAST",
    "Reassembler",
    "Route",
    "RoutingTable",
    "copied_options",
    "fragment",
    "is_martian_source",
    "is_multicast",
]
