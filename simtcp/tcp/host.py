"""What the TCP layer needs from the stack around it: a narrow, typed boundary.

The TCP layer never builds IP headers, resolves neighbours or reads a clock.
It hands finished segments to :meth:`TcpHost.send_tcp`, asks the host which
source address, MTU and offloads a destination is reached with, and reports events.
"""

from __future__ import annotations

from typing import Protocol

from ..events import Event
from ..link.interface import InterfaceOffload
from ..stats import Stats
from ..time import Instant
from ..wire.tcp import TcpSegment


class TcpHost(Protocol):
    """Implemented by :class:`simtcp.stack.Stack` (and by test harnesses)."""

    stats: Stats

    def send_tcp(self, source: int, destination: int, segment: TcpSegment, *, now: Instant) -> None:
        """Wrap ``segment`` in IPv4 from ``source`` to ``destination`` and send it."""
        ...

    def route_source(self, destination: int) -> tuple[int, int] | None:
        """(source address, path MTU) used to reach ``destination``, or None without a route."""
        ...

    def route_offload(self, destination: int) -> InterfaceOffload:
        """What the link toward ``destination`` does for us; TCP sizes segments by its
        ``max_segment`` (TSO). No offload without a route or for our own addresses."""
        ...

    def is_local_address(self, address: int) -> bool:
        """Whether ``address`` is one of ours (to validate listens and connects)."""
        ...

    def emit(self, event: Event) -> None:
        """Queue an event for the application."""
        ...
