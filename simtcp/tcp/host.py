"""What the TCP layer needs from the stack around it: a narrow, typed boundary.

The TCP layer never builds IP headers, resolves neighbours or reads a clock.
It hands finished segments to :meth:`TcpHost.send_tcp`, asks the host which
source address, MTU and offloads a destination is reached with, and reports events.
Addresses are of either family (:data:`simtcp.wire.address.Address`): an ``int``
is IPv4, an ``IPv6Address`` IPv6; a connection's two ends are always one family.
"""

from __future__ import annotations

from typing import Protocol

from ..events import Event
from ..link.interface import InterfaceOffload
from ..stats import Stats
from ..time import Instant
from ..wire.address import Address
from ..wire.tcp import TcpSegment


class TcpHost(Protocol):
    """Implemented by :class:`simtcp.stack.Stack` (and by test harnesses)."""

    stats: Stats

    def send_tcp(
        self, source: Address, destination: Address, segment: TcpSegment, *, now: Instant
    ) -> None:
        """Wrap ``segment`` in IPv4 or IPv6 (by the family of the addresses) and send it."""
        ...

    def route_source(self, destination: Address) -> tuple[Address, int] | None:
        """(source address, path MTU) used to reach ``destination``, or None without a route.

        The source is of the destination's family; for IPv6 the MTU is the path MTU
        learnt from packet too big messages (RFC 8201), at least 1280."""
        ...

    def route_offload(self, destination: Address) -> InterfaceOffload:
        """What the link toward ``destination`` does for us; TCP sizes segments by its
        ``max_segment`` (TSO). No offload without a route or for our own addresses."""
        ...

    def is_local_address(self, address: Address) -> bool:
        """Whether ``address`` is one of ours (to validate listens and connects)."""
        ...

    def emit(self, event: Event) -> None:
        """Queue an event for the application."""
        ...
