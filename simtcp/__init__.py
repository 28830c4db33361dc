"""simtcp: a deterministic, simulation-first TCP/IP stack in pure Python.

The core is sans-IO: feed it Ethernet frames and the current time
(:meth:`Stack.receive_frame`, :meth:`Stack.handle_timer`), take frames, events
and the next deadline out (:meth:`Stack.frames_to_send`, :meth:`Stack.next_event`,
:meth:`Stack.poll_at`). ``simtcp.backends.sim`` drives it in virtual time and
``simtcp.backends.tap`` over real Linux TAP devices.
"""

from __future__ import annotations

from .config import (
    ArpConfig,
    IcmpConfig,
    Ip6Config,
    IpConfig,
    StackConfig,
    TcpConfig,
    UdpConfig,
)
from .errors import (
    AddressError,
    AddressInUseError,
    ConfigError,
    DropReason,
    InvalidHandleError,
    InvalidStateError,
    NoRouteError,
    ParseError,
    SimtcpError,
)
from .events import (
    ConnectionAccepted,
    ConnectionClosed,
    ConnectionEstablished,
    ConnectionFailed,
    ConnectionReset,
    ConnectionTimedOut,
    DatagramReceived,
    DataReceived,
    EchoReplyReceived,
    Event,
    IcmpErrorReceived,
    PeerClosed,
    SendSpaceAvailable,
)
from .stack import InterfaceOffload, Stack
from .time import MILLISECOND, SECOND, Duration, Instant

__version__ = "0.1.0"

__all__ = [
    "MILLISECOND",
    "SECOND",
    "AddressError",
    "AddressInUseError",
    "ArpConfig",
    "ConfigError",
    "ConnectionAccepted",
    "ConnectionClosed",
    "ConnectionEstablished",
    "ConnectionFailed",
    "ConnectionReset",
    "ConnectionTimedOut",
    "DataReceived",
    "DatagramReceived",
    "DropReason",
    "Duration",
    "EchoReplyReceived",
    "Event",
    "IcmpConfig",
    "Ip6Config",
    "IcmpErrorReceived",
    "Instant",
    "InterfaceOffload",
    "InvalidHandleError",
    "InvalidStateError",
    "IpConfig",
    "NoRouteError",
    "ParseError",
    "PeerClosed",
    "SendSpaceAvailable",
    "SimtcpError",
    "Stack",
    "StackConfig",
    "TcpConfig",
    "UdpConfig",
    "__version__",
]
