"""Events the stack reports to its application, popped with ``Stack.next_event()``.

Every event is a frozen, slotted, keyword-only dataclass named in the past
tense. Addresses are dotted-quad strings; connections and sockets are the
integer handles the API returned.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base class of every event."""


# --- ICMP ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class EchoReplyReceived(Event):
    """An ICMP echo reply answered one of our ``ping`` calls."""

    source: str
    identifier: int
    sequence: int
    payload: bytes
    ttl: int


@dataclass(frozen=True, slots=True, kw_only=True)
class IcmpErrorReceived(Event):
    """An ICMP error (unreachable, time exceeded, ...) arrived about a datagram we sent."""

    source: str
    icmp_type: int
    code: int
    original_destination: str
    original_protocol: int


# --- UDP ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DatagramReceived(Event):
    """A UDP datagram arrived on a bound socket."""

    socket: int
    source: str
    source_port: int
    destination: str
    destination_port: int
    data: bytes


# --- TCP ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionAccepted(Event):
    """A passive open completed the handshake on a listener; ``connection`` is new.

    Until this event is handed to the application (``Stack.next_event`` returns it)
    the connection waits in the listener's accept queue and counts against its
    backlog, as in listen(2); once handed over (or once the application uses the
    handle, or the connection ends) it no longer counts.
    """

    listener: int
    connection: int
    remote_address: str
    remote_port: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionEstablished(Event):
    """Our active open (``tcp_connect``) completed the handshake."""

    connection: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DataReceived(Event):
    """New in-order bytes wait in the receive buffer; read them with ``receive``."""

    connection: int
    available: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SendSpaceAvailable(Event):
    """The send buffer, full at a ``send`` call, has room again."""

    connection: int
    space: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerClosed(Event):
    """The peer sent FIN: no more data will arrive (we may still send)."""

    connection: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionReset(Event):
    """The peer reset the connection (or refused it); its state is gone."""

    connection: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionTimedOut(Event):
    """The handshake, the retransmissions or keepalive ran out of attempts."""

    connection: int
    soft_error: tuple[int, int] | None = None
    """The last soft ICMP error (type, code) the connection met, if any (RFC 1122
    §4.2.3.9): Linux reports it instead of ETIMEDOUT (``sk_err_soft``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionFailed(Event):
    """A hard ICMP error (RFC 1122 §4.2.3.9) ended a connection attempt."""

    connection: int
    icmp_type: int
    code: int
    ipv6: bool = False
    """``icmp_type`` and ``code`` are ICMPv6's (RFC 4443), not ICMP's."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionClosed(Event):
    """The connection reached CLOSED and every trace of it left the stack."""

    connection: int
