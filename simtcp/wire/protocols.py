"""Internet protocol numbers (IANA "Assigned Internet Protocol Numbers"; RFC 791 §3.1).

The one home of the numbers an IPv4 header's protocol field (and, later, an
IPv6 header's next-header field) carries; every other module imports them.
"""

from __future__ import annotations

PROTOCOL_ICMP = 1
PROTOCOL_TCP = 6
PROTOCOL_UDP = 17

__all__ = ["PROTOCOL_ICMP", "PROTOCOL_TCP", "PROTOCOL_UDP"]
