"""IPv4 addresses by kind and the routing table (longest-prefix match, RFC 1812 §5.2.4.3)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import AddressError
from ..wire.ipv4 import ip_from_str, prefix_mask

LIMITED_BROADCAST = 0xFFFFFFFF


def address_from_str(text: str) -> int:
    """An IPv4 address from the API (``"10.0.0.1"``); AddressError if it is none."""
    try:
        return ip_from_str(text)
    except (ValueError, AttributeError):
        raise AddressError(f"not an IPv4 address: {text!r}") from None


def is_multicast(address: int) -> bool:
    return address >> 28 == 0xE


def is_martian_source(address: int) -> bool:
    """Sources RFC 1122 §3.2.1.3 says a host must discard: broadcast, multicast, loopback."""
    return address == LIMITED_BROADCAST or is_multicast(address) or address >> 24 == 127


@dataclass(frozen=True, slots=True)
class Route:
    network: int
    prefix_length: int
    interface: str
    gateway: int | None = None

    @property
    def mask(self) -> int:
        return prefix_mask(self.prefix_length)


class RoutingTable:
    """Routes with longest-prefix match and a lookup cache cleared on every change."""

    def __init__(self) -> None:
        self._routes: list[Route] = []
        self._cache: dict[int, Route | None] = {}

    def add(self, route: Route) -> None:
        self._routes = [
            r
            for r in self._routes
            if (r.network, r.prefix_length) != (route.network, route.prefix_length)
        ]
        self._routes.append(route)
        self._routes.sort(key=lambda r: -r.prefix_length)
        self._cache.clear()

    def lookup(self, destination: int) -> Route | None:
        try:
            return self._cache[destination]
        except KeyError:
            pass
        found = None
        for route in self._routes:
            if destination & route.mask == route.network:
                found = route
                break
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[destination] = found
        return found
