"""IPv6 (RFC 8200) beside IPv4: output, input, fragments, ND and SLAAC, MLD, ICMPv6.

- :mod:`.addresses`: address kinds, interface identifiers, the routing table;
- :mod:`.output`: :class:`Ipv6Output`, per-link state and the one way out;
- :mod:`.input`: validation, extension headers, delivery, forwarding;
- :mod:`.fragments`: source fragmentation and reassembly;
- :mod:`.neighbours`: the neighbour cache's state machine (RFC 4861 §7.3);
- :mod:`.nd`: Neighbor Discovery, SLAAC and DAD (RFC 4861, RFC 4862);
- :mod:`.mld`: MLDv2 reports (RFC 3810);
- :mod:`.icmp6`: ICMPv6 echo and errors (RFC 4443);
- :mod:`.layer`: :class:`Ipv6Layer`, all of it together for the stack.
"""

from __future__ import annotations

from .layer import Ipv6Layer
from .neighbours import NeighbourState
from .output import AddressState

__all__ = ["AddressState", "Ipv6Layer", "NeighbourState"]
