"""asyncio over simtcp: streams, servers and datagram endpoints on a Stack, in real or virtual time.

- :class:`AioStack` drives one :class:`~simtcp.Stack` from an asyncio loop (one
  ``call_at`` timer at ``poll_at()``, output drained after every input) and
  offers ``open_connection``, ``start_server`` and ``create_datagram_endpoint``
  shaped like asyncio's own;
- :func:`simtcp.backends.aio_tap.over_tap` runs it over real TAP devices
  (``loop.add_reader``);
- :class:`simtcp.backends.aio_sim.VirtualTimeLoop` runs asyncio in a
  :class:`simtcp.backends.sim.Simulator`'s virtual time, so asyncio programs
  over lossy simulated links replay exactly.

This package is part of the sans-IO core's reach: it knows asyncio, never a
backend. The adapters that need a backend live beside it in
:mod:`simtcp.backends`.

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

__all__ = [
    "DEFAULT_HIGH_WATER",
    "DEFAULT_LIMIT",
    "AioStack",
    "DatagramProtocolLike",
    "DatagramTransport",
    "FrameLink",
    "ListenSocket",
    "LoopClock",
    "Server",
    "SimLink",
    "StreamReader",
    "StreamWriter",
    "TcpTransport",
]
