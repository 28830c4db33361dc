"""UDP sockets (RFC 768): bind, demultiplex, and seeded ephemeral ports."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .errors import AddressInUseError, InvalidHandleError


@dataclass(slots=True)
class UdpSocket:
    handle: int
    address: int  # 0: any local address
    port: int


class UdpSockets:
    """The bound sockets, found by (local address, port) with a wildcard fallback."""

    def __init__(self, ephemeral_ports: tuple[int, int], rng: random.Random) -> None:
        self._ephemeral = ephemeral_ports
        self._rng = rng
        self._by_handle: dict[int, UdpSocket] = {}
        self._by_port: dict[tuple[int, int], UdpSocket] = {}
        self._next_handle = 1

    def bind(self, address: int, port: int) -> UdpSocket:
        if port == 0:
            port = self._free_port(address)
        elif (
            (address, port) in self._by_port
            or (0, port) in self._by_port
            or (address == 0 and any(p == port for _, p in self._by_port))
        ):
            raise AddressInUseError(f"UDP port {port} is already bound")
        socket = UdpSocket(self._next_handle, address, port)
        self._next_handle += 1
        self._by_handle[socket.handle] = socket
        self._by_port[(address, port)] = socket
        return socket

    def _free_port(self, address: int) -> int:
        low, high = self._ephemeral
        start = self._rng.randint(low, high)
        span = high - low + 1
        for step in range(span):
            port = low + (start - low + step) % span
            if (address, port) not in self._by_port and (0, port) not in self._by_port:
                return port
        raise AddressInUseError("no free ephemeral UDP port")

    def get(self, handle: int) -> UdpSocket:
        try:
            return self._by_handle[handle]
        except KeyError:
            raise InvalidHandleError(f"no UDP socket {handle}") from None

    def close(self, handle: int) -> None:
        socket = self.get(handle)
        del self._by_handle[handle]
        del self._by_port[(socket.address, socket.port)]

    def find(self, address: int, port: int) -> UdpSocket | None:
        return self._by_port.get((address, port)) or self._by_port.get((0, port))

    def __len__(self) -> int:
        return len(self._by_handle)
