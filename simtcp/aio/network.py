"""Hosts, names and the current host of a task: what an asyncio loop on simtcp networks with.

A :class:`Network` holds named :class:`Host` objects (one stack and its
driver each) and a hosts table (``"db" -> "10.0.0.5"``). Which host a call
such as ``loop.create_connection`` runs on is a context variable: ``with
net.host("client"):`` sets it for the code inside, and every task created
there inherits it (asyncio copies the context into each task), so one
process can hold a server host and a hundred client hosts. With one host
only, that host is the default.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..stack import Stack
    from .driver import AioStack

LOOPBACK = "127.0.0.1/8"
"""Every host's loopback address (RFC 1122 §3.2.1.3), on its interface ``lo``."""

_current_host: contextvars.ContextVar[Host | None] = contextvars.ContextVar(
    "simtcp_current_host", default=None
)


def add_loopback(stack: Stack) -> None:
    """Give ``stack`` the interface ``lo`` with 127.0.0.1/8 (no gratuitous ARP leaves it)."""
    stack.add_interface("lo", mac="00:00:00:00:00:00", mtu=65535)
    stack.add_address("lo", LOOPBACK)  # its gratuitous ARP goes out on "lo", which no link carries


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


class Network:
    """Named hosts, a hosts table and the per-task choice of host."""

    def __init__(self) -> None:
        self.hosts: dict[str, Host] = {}
        self.names: dict[str, str] = {"localhost": "127.0.0.1"}

    def add_names(self, table: dict[str, str]) -> None:
        """Declare names (``{"db": "10.0.0.5"}``): ``getaddrinfo`` resolves through this table."""
        for name, address in table.items():
            ipaddress.IPv4Address(address)
            self.names[name.lower()] = address

    def register(self, host: Host) -> Host:
        if host.name in self.hosts:
            raise ValueError(f"host {host.name!r} already exists")
        self.hosts[host.name] = host
        self.names.setdefault(host.name.lower(), host.addresses[0])
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

    def resolve(self, name: str | bytes | None, *, passive: bool) -> str:
        """A dotted quad for ``name``: a literal, a hosts-table name, or socket.gaierror."""
        if isinstance(name, bytes):
            name = name.decode("idna")
        if name is None or name == "":
            return "0.0.0.0" if passive else "127.0.0.1"
        try:
            return str(ipaddress.IPv4Address(name))
        except ValueError:
            pass
        address = self.names.get(name.lower().rstrip("."))
        if address is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return address

    def reverse(self, address: str) -> str:
        for name, value in self.names.items():
            if value == address:
                return name
        return address


__all__ = ["LOOPBACK", "Host", "Network", "add_loopback"]
