"""Hosts, names and the current host of a task: what an asyncio loop on simtcp networks with.

A :class:`Network` holds named :class:`Host` objects (one stack and its
driver each) and a hosts table (``"db" -> "10.0.0.5"``). Which host a call
such as ``loop.create_connection`` runs on is a context variable: ``with
net.host("client"):`` sets it for the code inside, and every task created
there inherits it (asyncio copies the context into each task), so one
process can hold a server host and a hundred client hosts. With one host
only, that host is the default.

Names resolve to both families: a name may have IPv4 addresses, IPv6 ones or
both (a dual-stack host), and ``getaddrinfo`` lists them IPv4 first (the order
the hosts table was written in within each family), or one family when asked.
IPv4 first, not RFC 6724's IPv6 first, so that a program written for IPv4
keeps its addresses when a host gains IPv6; ``Network(prefer_ipv6=True)``
takes RFC 6724's order. ``localhost`` is ``127.0.0.1`` and ``::1``.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..wire.address import format_address

if TYPE_CHECKING:
    from ..stack import Stack
    from .driver import AioStack

LOOPBACK = "127.0.0.1/8"
"""Every host's loopback address (RFC 1122 §3.2.1.3), on its interface ``lo``."""
LOOPBACK6 = "::1/128"
"""Every host's IPv6 loopback address (RFC 4291 §2.5.3), on ``lo`` when the stack has IPv6."""

_current_host: contextvars.ContextVar[Host | None] = contextvars.ContextVar(
    "simtcp_current_host", default=None
)


def add_loopback(stack: Stack, *, ipv6: bool = False) -> None:
    """Give ``stack`` the interface ``lo`` with 127.0.0.1/8, and ::1 when the host speaks
    IPv6 (nothing leaves ``lo``: no link carries its gratuitous ARP or DAD probes)."""
    stack.add_interface("lo", mac="00:00:00:00:00:00", mtu=65535)
    stack.add_address("lo", LOOPBACK)  # its gratuitous ARP goes out on "lo", which no link carries
    if ipv6:
        stack.add_address("lo", LOOPBACK6)


def literal(name: str) -> str | None:
    """The normal text of an IP literal (``"[::1]"`` -> ``"::1"``, zone kept), or None."""
    text = name.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        pass
    address, percent, zone = text.partition("%")
    try:
        normal = format_address(ipaddress.IPv6Address(address))
    except ValueError:
        return None
    return f"{normal}%{zone}" if percent else normal


def is_ipv6(address: str) -> bool:
    """Whether a resolved address (text) is an IPv6 one."""
    return ":" in address


def family_of(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if is_ipv6(address) else socket.AF_INET


SockAddr = tuple[str, int] | tuple[str, int, int, int]
"""An address as the socket module gives it: (host, port), or (host, port, flowinfo, scope_id)."""


def sockaddr(address: str, port: int) -> SockAddr:
    """The socket module's address tuple: (host, port) for IPv4, (host, port, flowinfo,
    scope_id) for IPv6 (a zone in the text is dropped: interfaces have no index here)."""
    if is_ipv6(address):
        return (address.partition("%")[0], port, 0, 0)
    return (address, port)


@dataclass(eq=False)
class Host:
    """One simulated or TAP-backed machine: a name, a stack, its driver, its addresses."""

    name: str
    stack: Stack
    addresses: list[str]
    driver: AioStack | None = None
    next_ephemeral: int = field(default=49152)

    def bound_driver(self) -> AioStack:
        if self.driver is None:
            raise RuntimeError(f"host {self.name!r} has no running loop yet")
        return self.driver


def _name_addresses(addresses: list[str]) -> list[str]:
    """What a host's name resolves to: its first IPv4 address and its first IPv6 one,
    global before link-local (never loopback, as a hosts file names a machine)."""
    ipv4: list[str] = []
    ipv6: list[str] = []
    for text in filter(None, map(literal, addresses)):
        address = ipaddress.ip_address(text.partition("%")[0])
        if address.is_loopback:
            continue
        (ipv6 if address.version == 6 else ipv4).append(text)
    ipv6.sort(key=lambda text: ipaddress.IPv6Address(text.partition("%")[0]).is_link_local)
    return ipv4[:1] + ipv6[:1]


class Network:
    """Named hosts, a hosts table and the per-task choice of host."""

    def __init__(self, *, prefer_ipv6: bool = False) -> None:
        self.hosts: dict[str, Host] = {}
        self.names: dict[str, str] = {"localhost": "127.0.0.1"}
        """Each name's first IPv4 address (what ``resolve`` returns)."""
        self.all_names: dict[str, list[str]] = {"localhost": ["127.0.0.1", "::1"]}
        """Each name's addresses of both families, in the order they were declared."""
        self.prefer_ipv6 = prefer_ipv6

    def add_names(self, table: dict[str, str | list[str]]) -> None:
        """Declare names (``{"db": "10.0.0.5"}``, ``{"web": ["10.0.0.6", "2001:db8::6"]}``):
        ``getaddrinfo`` resolves through this table; ValueError for a non-literal."""
        for name, value in table.items():
            addresses = [value] if isinstance(value, str) else list(value)
            normal = [literal(address) for address in addresses]
            for address, text in zip(addresses, normal, strict=True):
                if text is None:
                    raise ValueError(f"not an IP address for {name!r}: {address!r}")
            self._declare(name.lower(), [text for text in normal if text], replace=True)

    def _declare(self, name: str, addresses: list[str], *, replace: bool) -> None:
        if not replace and name in self.all_names:
            return
        self.all_names[name] = addresses
        ipv4 = [address for address in addresses if not is_ipv6(address)]
        if ipv4:
            self.names[name] = ipv4[0]
        else:
            self.names.pop(name, None)

    def register(self, host: Host) -> Host:
        if host.name in self.hosts:
            raise ValueError(f"host {host.name!r} already exists")
        self.hosts[host.name] = host
        self._declare(host.name.lower(), _name_addresses(host.addresses), replace=False)
        return host

    @contextlib.contextmanager
    def host(self, name: str) -> Iterator[Host]:
        """Run the code inside (and the tasks it creates) on host ``name``."""
        if name not in self.hosts:
            raise KeyError(f"no host named {name!r} (hosts: {', '.join(self.hosts)})")
        token = _current_host.set(self.hosts[name])
        try:
            yield self.hosts[name]
        finally:
            _current_host.reset(token)

    def current_host(self, call: str) -> Host:
        """The host the calling task runs on; RuntimeError naming ``call`` when none is chosen."""
        host = _current_host.get()
        if host is not None and self.hosts.get(host.name) is host:
            return host
        if len(self.hosts) == 1:
            return next(iter(self.hosts.values()))
        raise RuntimeError(
            f"{call}: no simtcp host chosen for this task; run it inside "
            f"`with net.host(NAME):` (hosts: {', '.join(self.hosts) or 'none'})"
        )

    def resolve(self, name: str | bytes | None, *, passive: bool, family: int = 0) -> str:
        """The first address of ``name`` (IPv4 unless ``family`` or the name says
        otherwise): a literal, a hosts-table name, or socket.gaierror."""
        return self.resolve_all(name, passive=passive, family=family)[0]

    def resolve_all(self, name: str | bytes | None, *, passive: bool, family: int = 0) -> list[str]:
        """Every address of ``name`` in ``family`` (0: both), in getaddrinfo's order."""
        if isinstance(name, bytes):
            name = name.decode("idna")
        if family not in (0, socket.AF_INET, socket.AF_INET6):
            raise socket.gaierror(socket.EAI_FAMILY, "ai_family not supported")
        if name is None or name == "":
            addresses = ["0.0.0.0", "::"] if passive else ["127.0.0.1", "::1"]
        else:
            text = literal(name)
            if text is not None:
                addresses = [text]
            else:
                found = self.all_names.get(name.lower().rstrip("."))
                if not found:
                    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
                addresses = found
        if family:
            addresses = [a for a in addresses if family_of(a) == family]
            if not addresses:
                raise socket.gaierror(
                    socket.EAI_ADDRFAMILY, "Address family for hostname not supported"
                )
        return sorted(addresses, key=lambda a: is_ipv6(a) != self.prefer_ipv6)

    def reverse(self, address: str) -> str:
        text = literal(address) or address
        for name, values in self.all_names.items():
            if text in values:
                return name
        return address


__all__ = [
    "LOOPBACK",
    "LOOPBACK6",
    "Host",
    "Network",
    "SockAddr",
    "add_loopback",
    "family_of",
    "is_ipv6",
    "literal",
    "sockaddr",
]
