"""IPv6 addresses by kind, interface identifiers (EUI-64, RFC 7217) and the routing table.

Addresses are :class:`ipaddress.IPv6Address` throughout (IPv4 ones stay ``int``);
the routing table matches on their 128-bit integer values, longest prefix first.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from ipaddress import IPv6Address

from ..errors import AddressError

ALL_NODES = IPv6Address("ff02::1")
ALL_ROUTERS = IPv6Address("ff02::2")
ALL_MLDV2_ROUTERS = IPv6Address("ff02::16")
LINK_LOCAL_PREFIX = IPv6Address("fe80::")
UNSPECIFIED = IPv6Address(0)
LOOPBACK = IPv6Address(1)

_MASK128 = (1 << 128) - 1


def prefix_mask6(length: int) -> int:
    """The netmask of a prefix length as a 128-bit integer."""
    return (_MASK128 << (128 - length)) & _MASK128


def is_multicast6(address: IPv6Address) -> bool:
    return address.packed[0] == 0xFF


def is_link_local6(address: IPv6Address) -> bool:
    """fe80::/10 (RFC 4291 §2.5.6)."""
    return int(address) >> 118 == 0x3FA


def address6_from_str(text: str) -> IPv6Address:
    """An IPv6 address from the API; AddressError if it is none."""
    try:
        return IPv6Address(text.strip().split("%")[0])
    except (ValueError, AttributeError):
        raise AddressError(f"not an IPv6 address: {text!r}") from None


def prefix6_from_str(text: str) -> tuple[IPv6Address, int]:
    """``"2001:db8::1/64"`` -> (address, 64); a bare address is a /128."""
    address_text, _, length_text = text.partition("/")
    address = address6_from_str(address_text)
    if not length_text:
        return address, 128
    if not length_text.isdigit() or int(length_text) > 128:
        raise AddressError(f"not an IPv6 prefix length: {text!r}")
    return address, int(length_text)


def eui64_interface_id(mac: bytes) -> int:
    """The modified EUI-64 identifier of a MAC (RFC 4291 §2.5.1, appendix A)."""
    eui = bytes([mac[0] ^ 0x02]) + mac[1:3] + b"\xff\xfe" + mac[3:6]
    return int.from_bytes(eui, "big")


def stable_interface_id(
    secret: bytes, prefix: IPv6Address, interface: str, dad_counter: int
) -> int:
    """RFC 7217 §5: F(Prefix, Net_Iface, Network_ID, DAD_Counter, secret_key), low 64 bits.

    SHA-256 as the PRF (§5 suggests it); ``secret`` comes from the seed, so the same
    seed gives the same addresses on the same prefix, and other seeds other ones.
    """
    message = (
        prefix.packed[:8] + interface.encode() + b"\x00" + dad_counter.to_bytes(4, "big") + secret
    )
    identifier = int.from_bytes(hashlib.sha256(message).digest()[:8], "big")
    # RFC 5453 reserved identifiers (all zeros, the subnet-router anycast) are never chosen.
    return identifier if identifier not in (0, 0xFDFFFFFFFFFFFF80) else identifier ^ 1


def with_interface_id(prefix: IPv6Address, identifier: int) -> IPv6Address:
    return IPv6Address((int(prefix) & prefix_mask6(64)) | (identifier & ((1 << 64) - 1)))


def common_prefix_length(a: IPv6Address, b: IPv6Address) -> int:
    """RFC 6724 §2.2 CommonPrefixLen."""
    return 128 - (int(a) ^ int(b)).bit_length()


@dataclass(frozen=True, slots=True)
class Route6:
    network: int
    prefix_length: int
    interface: str
    gateway: IPv6Address | None = None


class RoutingTable6:
    """IPv6 routes, longest prefix first, with a lookup cache cleared on every change."""

    def __init__(self) -> None:
        self._routes: list[Route6] = []
        self._cache: dict[IPv6Address, Route6 | None] = {}

    def add(self, route: Route6) -> None:
        self._routes = [
            r
            for r in self._routes
            if (r.network, r.prefix_length, r.interface)
            != (route.network, route.prefix_length, route.interface)
            and not (
                route.prefix_length == 0 and r.prefix_length == 0 and r.gateway == route.gateway
            )
        ]
        self._routes.append(route)
        self._routes.sort(key=lambda r: -r.prefix_length)
        self._cache.clear()

    def remove(
        self, network: int, prefix_length: int, *, gateway: IPv6Address | None = None
    ) -> None:
        self._routes = [
            r
            for r in self._routes
            if (r.network, r.prefix_length) != (network, prefix_length)
            or (gateway is not None and r.gateway != gateway)
        ]
        self._cache.clear()

    def lookup(self, destination: IPv6Address) -> Route6 | None:
        try:
            return self._cache[destination]
        except KeyError:
            pass
        value = int(destination)
        found = None
        for route in self._routes:
            if value & prefix_mask6(route.prefix_length) == route.network:
                found = route
                break
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[destination] = found
        return found

    def routes(self) -> list[Route6]:
        return list(self._routes)
