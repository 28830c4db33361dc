"""The sans-IO stack: Ethernet frames and time in; frames, events and a deadline out.

SKELETON: the public API below is the contract other modules are written
against; the bodies are being filled in.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import StackConfig
from .events import Event
from .time import Instant


@dataclass(frozen=True, slots=True, kw_only=True)
class InterfaceOffload:
    """What an interface's link does for the stack (DESIGN.md "Offload-ready")."""

    rx_checksum_verified: bool = False
    """Received frames' IPv4/TCP/UDP checksums were already verified by the link."""
    tx_checksum: bool = False
    """The link computes TCP/UDP checksums of frames we send (we leave them partial)."""
    max_segment: int = 0
    """Largest TCP segment (payload) the link cuts into MTU-sized frames; 0 means no TSO."""


class Stack:
    """A TCP/IP host (and router) driven entirely by its caller."""

    def __init__(self, config: StackConfig | None = None) -> None:
        raise NotImplementedError

    # --- topology -----------------------------------------------------------
    def add_interface(self, name: str, *, mac: str | bytes, mtu: int = 1500,
                      offload: InterfaceOffload | None = None) -> None: ...
    def add_address(self, interface: str, address: str, *, now: Instant = 0) -> None:
        """``address`` with prefix, e.g. ``"10.0.0.1/24"``; adds the connected route."""
    def add_route(self, destination: str, *, via: str | None = None,
                  interface: str | None = None) -> None:
        """``destination`` is a prefix (``"0.0.0.0/0"`` for default)."""

    # --- frames and time ----------------------------------------------------
    def receive_frame(self, interface: str, frame: bytes | memoryview, *, now: Instant) -> None: ...
    def frames_to_send(self, *, now: Instant) -> list[tuple[str, bytes]]: ...
    def poll_at(self) -> Instant | None: ...
    def handle_timer(self, *, now: Instant) -> None: ...
    def next_event(self) -> Event | None: ...
    def stats(self) -> dict[str, int]: ...

    # --- ICMP ---------------------------------------------------------------
    def ping(self, destination: str, *, identifier: int, sequence: int, payload: bytes = b"",
             ttl: int | None = None, now: Instant) -> None: ...

    # --- UDP ----------------------------------------------------------------
    def udp_bind(self, port: int = 0, *, address: str | None = None) -> int: ...
    def sendto(self, socket: int, data: bytes, destination: tuple[str, int], *,
               now: Instant) -> None: ...
    def udp_close(self, socket: int) -> None: ...

    # --- TCP ----------------------------------------------------------------
    def tcp_listen(self, port: int, *, address: str | None = None,
                   backlog: int | None = None) -> int: ...
    def tcp_connect(self, address: str, port: int, *, local_port: int | None = None,
                    now: Instant) -> int: ...
    def send(self, connection: int, data: bytes, *, now: Instant) -> int: ...
    def receive(self, connection: int, max_bytes: int = -1, *, now: Instant) -> bytes: ...
    def shutdown(self, connection: int, *, now: Instant) -> None: ...
    def close(self, connection: int, *, now: Instant) -> None: ...
    def abort(self, connection: int, *, now: Instant) -> None: ...
