"""Addresses of both families: IPv4 as a 32-bit ``int``, IPv6 as ``ipaddress.IPv6Address``.

IPv4 addresses stay plain integers everywhere (the IPv4 hot paths compare and
hash them as ints); IPv6 addresses are the standard library's
:class:`~ipaddress.IPv6Address`. The family test is ``isinstance(a, IPv6Address)``.
This module is the one home of the text forms both families take at the API
(parsing) and in events, ``TcpInfo`` and logs (printing, RFC 5952).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from ..errors import AddressError
from .ipv4 import ip_from_str, ip_to_str

Address = int | IPv6Address
"""An IP address of either family: ``int`` (IPv4) or ``IPv6Address``."""

UNSPECIFIED6 = IPv6Address(0)
"""``::`` (RFC 4291 §2.5.2): the IPv6 wildcard of listeners and sockets."""
LOOPBACK6 = IPv6Address(1)
"""``::1`` (RFC 4291 §2.5.3)."""

_WORD = 0xFFFFFFFF
_MAPPED_PREFIX = 0xFFFF << 32
"""``::ffff:0:0/96`` (RFC 4291 §2.5.5.2): IPv4-mapped IPv6 addresses."""


def is_ipv6(address: Address) -> bool:
    """Whether ``address`` is an IPv6 one."""
    return isinstance(address, IPv6Address)


def format_address(address: Address) -> str:
    """The text form: a dotted quad for IPv4, RFC 5952 for IPv6.

    Python's ``str(IPv6Address)`` already compresses the longest run of zero
    words, leftmost on ties, in lower case (RFC 5952 §4); RFC 5952 §5 also asks
    that an IPv4-mapped address end in a dotted quad (``::ffff:192.0.2.1``),
    which Python 3.11 does not do, so that case is written here.
    """
    if isinstance(address, IPv6Address):
        value = int(address)
        if value >> 32 == 0xFFFF:
            return "::ffff:" + ip_to_str(value & _WORD)
        return str(address)
    return ip_to_str(address)


def parse_address(text: str) -> Address:
    """``"10.0.0.1"`` -> int, ``"2001:db8::1"`` or ``"[::1]"`` -> IPv6Address; else ValueError.

    A zone (``fe80::1%eth0``, RFC 6874) is not part of the address and is refused
    here; callers that accept one strip it first (:func:`split_zone`).
    """
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        if "%" in text:
            raise ValueError(f"zone in an IPv6 address: {text!r}")
        return IPv6Address(text)
    return ip_from_str(text)


def address_from_api(text: str) -> Address:
    """An address of either family from the API (brackets and a zone allowed, the zone
    dropped: the route picks the interface); AddressError if it is none."""
    try:
        return parse_address(split_zone(text.strip().strip("[]"))[0])
    except (ValueError, AttributeError):
        raise AddressError(f"not an IP address: {text!r}") from None


def split_zone(text: str) -> tuple[str, str | None]:
    """``"fe80::1%eth0"`` -> (``"fe80::1"``, ``"eth0"``); text without a zone -> (text, None)."""
    address, percent, zone = text.partition("%")
    return (address, zone) if percent else (text, None)


def ipv4_mapped(address: int) -> IPv6Address:
    """``::ffff:a.b.c.d`` for an IPv4 address (RFC 4291 §2.5.5.2)."""
    return IPv6Address(_MAPPED_PREFIX | address)


def unmapped(address: IPv6Address) -> int | None:
    """The IPv4 address inside an IPv4-mapped IPv6 address, or None for any other."""
    value = int(address)
    return value & _WORD if value >> 32 == 0xFFFF else None


def hash_words(address: Address) -> tuple[int, ...]:
    """The address as integers for a keyed hash (RFC 6528 §3 hashes the whole address).

    An IPv4 address is one integer (as before IPv6 existed, so IPv4 ISNs, cookies and
    timestamp offsets do not move); an IPv6 address is its 16 bytes as four 32-bit words.
    """
    if isinstance(address, IPv6Address):
        value = int(address)
        return (value >> 96, value >> 64 & _WORD, value >> 32 & _WORD, value & _WORD)
    return (address,)


def sum_value(address: Address) -> int:
    """An integer congruent modulo 0xffff to the sum of the address's 16-bit words.

    65536 = 1 (mod 0xffff), so any address read as one big-endian integer will do
    (RFC 1071 §2): the pseudo-header arithmetic that sums ``(a >> 16) + (a & 0xffff)``
    for IPv4 stays congruent for a 128-bit value.
    """
    return int(address)


def is_ipv4_text(text: str) -> bool:
    """Whether ``text`` is an IPv4 literal."""
    try:
        IPv4Address(text)
    except ValueError:
        return False
    return True


def is_ipv6_text(text: str) -> bool:
    """Whether ``text`` is an IPv6 literal (brackets and a zone allowed)."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        IPv6Address(split_zone(text)[0])
    except ValueError:
        return False
    return True


__all__ = [
    "LOOPBACK6",
    "UNSPECIFIED6",
    "Address",
    "address_from_api",
    "format_address",
    "hash_words",
    "ipv4_mapped",
    "is_ipv4_text",
    "is_ipv6",
    "is_ipv6_text",
    "parse_address",
    "split_zone",
    "sum_value",
    "unmapped",
]
