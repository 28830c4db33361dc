"""asyncio over simtcp: streams, servers and datagram endpoints on a Stack, in real or virtual time.

- :class:`AioStack` drives one :class:`~simtcp.Stack` from an asyncio loop (one
  ``call_at`` timer at ``poll_at()``, output drained after every input) and
  offers ``open_connection``, ``start_server`` and ``create_datagram_endpoint``
  shaped like asyncio's own;
- :func:`over_tap` runs it over real TAP devices (``loop.add_reader``);
- :class:`VirtualTimeLoop` runs asyncio in a :class:`backends.sim.Simulator`'s
  virtual time, so asyncio programs over lossy simulated links replay exactly.

Server over a TAP device (root)::

    device = TapDevice.create("tap0", interface="eth0", kernel_address="10.0.0.2/24")
    net = over_tap(stack, [device])
    server = await net.start_server(handle, "10.0.0.1", 7)
    await server.serve_forever()
"""

from __future__ import annotations

from .datagram import DatagramProtocolLike, DatagramTransport
from .driver import AioStack, FrameLink, LoopClock
from .streams import (
    DEFAULT_HIGH_WATER,
    DEFAULT_LIMIT,
    ListenSocket,
    Server,
    StreamReader,
    StreamWriter,
    TcpTransport,
)
from .tap import TapLink, over_tap
from .virtual import SimLink, VirtualTimeDeadlock, VirtualTimeLoop, attach

__all__ = [
    "DEFAULT_HIGH_WATER", "DEFAULT_LIMIT", "AioStack", "DatagramProtocolLike",
    "DatagramTransport", "FrameLink", "ListenSocket", "LoopClock", "Server", "SimLink",
    "StreamReader", "StreamWriter", "TapLink", "TcpTransport", "VirtualTimeDeadlock",
    "VirtualTimeLoop", "attach", "over_tap",
]
