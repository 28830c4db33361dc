"""A simulated host's egress queue: the qdisc between its stack and its link.

Linux keeps a device queue (``txqueuelen`` frames) between the stack and the
NIC, and the NIC takes frames from it only as fast as the wire carries them.
Without one, a stack that sends a burst at one instant (4,000 connections
each sending 4 KiB) hands every frame to the link at once, and the link's
drop-tail bottleneck drops all that does not fit: the stack then learns of
the loss a retransmission timeout later. With one, the burst waits in the
host and leaves at the link's rate.

The simulator (``Simulator.set_host_queue``) puts an :class:`EgressQueue` on
each interface of a host. A frame the host sends joins the queue; the queue
moves frames onto the link while the link's bottleneck has room
(:meth:`~simtcp.backends.impair.Impairment.room_at`) and wakes up when it
will. When ``limit`` frames wait, the host's output is no longer drained:
its frames stay in the stack (back-pressure, like a full qdisc stopping the
device queue), and the stack keeps producing only what its windows allow.
The queue never drops: a frame already handed over is never lost here.
"""

from __future__ import annotations

from collections import deque

from simtcp.errors import ConfigError
from simtcp.time import Instant


class EgressQueue:
    """Frames a host sent that wait for room on its link."""

    __slots__ = ("limit", "frames", "wake_at", "counters")

    def __init__(self, limit: int = 1000) -> None:
        if limit < 1:
            raise ConfigError("an egress queue holds at least one frame")
        self.limit = limit
        """Frames waiting beyond which the host's output waits in the stack."""
        self.frames: deque[bytes] = deque()
        self.wake_at: Instant | None = None
        self.counters = {"sent": 0, "blocked": 0}
        """``sent``: frames moved onto the link; ``blocked``: times the host was held back."""
