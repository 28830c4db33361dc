"""The parsed form of a packetdrill script: header options, timed events, skipped lines.

A script is a list of events, each with the line it came from and a time
specification that the runner resolves against virtual time, exactly as
packetdrill resolves it against the wall clock (absolute, ``+relative``, ``*``
and ``t1~t2`` ranges, ``t1...t2`` for a blocking system call).

Sequence and acknowledgement numbers are kept as the script wrote them,
relative to each side's initial sequence number; TCP options reuse the
option classes of :mod:`simtcp.wire.tcp`, with SACK edges also relative.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ..wire.tcp import TcpOption


class TimeKind(enum.Enum):
    """How an event's time is written."""

    ABSOLUTE = "absolute"
    """``0.100``: that many seconds after the script started."""
    RELATIVE = "relative"
    """``+0.100``: that long after the previous event."""
    ANY = "any"
    """``*``: whenever it happens."""
    ABSOLUTE_RANGE = "absolute_range"
    """``0.1~0.2``: at some time inside the range."""
    RELATIVE_RANGE = "relative_range"
    """``+0.1~+0.2``: inside the range, counted from the previous event."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeSpec:
    """An event's time as written; microseconds, resolved by the runner."""

    kind: TimeKind
    start_us: int = 0
    """The time (absolute) or offset (relative); the range's low end."""
    end_us: int | None = None
    """The range's high end (same base as ``start_us``), for ``~`` ranges."""
    blocking_end_us: int | None = None
    """For ``a...b`` on a system call: when the blocked call must return."""
    blocking_end_relative: bool = False
    """Whether ``blocking_end_us`` is relative to the call's start."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Symbol:
    """A bare name in a system call argument: ``SOCK_STREAM``, ``SO_LINGER``."""

    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BitOr:
    """``O_RDWR|O_NONBLOCK``: symbols or integers or-ed together."""

    parts: tuple[int | Symbol, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ArrayExpr:
    """``[1]``, ``[{fd=4, events=POLLIN}]``: a list of expressions."""

    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class StructExpr:
    """``{l_onoff=1, l_linger=0}``: named fields (unnamed items get ``_0``, ``_1``...)."""

    fields: tuple[tuple[str, Expr], ...]

    def get(self, name: str) -> Expr | None:
        for key, value in self.fields:
            if key == name:
                return value
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class StringExpr:
    """A quoted string argument."""

    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallExpr:
    """``htons(8080)``, ``inet_addr("192.0.2.1")``: a function applied to arguments."""

    name: str
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class EllipsisExpr:
    """``...``: a value the script does not care about."""


Expr = int | Symbol | BitOr | ArrayExpr | StructExpr | StringExpr | CallExpr | EllipsisExpr
ELLIPSIS = EllipsisExpr()


@dataclass(frozen=True, slots=True, kw_only=True)
class HeaderOption:
    """A ``--name=value`` line before the first event."""

    line: int
    name: str
    value: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class PacketEvent:
    """``< S 0:0(0) win 1000 <mss 1000>`` (inbound) or ``> S. 0:0(0) ack 1 ...`` (outbound)."""

    line: int
    time: TimeSpec
    text: str
    inbound: bool
    """``<``: the runner sends it to the stack; ``>``: the stack must send it."""
    flags: int
    """TCP flag bits (simtcp.wire.tcp constants)."""
    seq_start: int
    seq_end: int
    payload_length: int
    ack: int | None = None
    window: int | None = None
    urgent_pointer: int | None = None
    options: tuple[TcpOption, ...] | None = ()
    """The option list; None for ``<...>`` (any options)."""
    ecn: str | None = None
    """``[noecn]``, ``[ect0]``, ``[ect1]``, ``[ce]`` or ``[ect01]``: the IP header's ECN field."""
    tos: int | None = None
    """``(tos 0x..)``: the whole IP TOS byte."""
    ttl: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class IcmpEvent:
    """``< icmp unreachable port_unreachable [1:1(0)]``-style lines."""

    line: int
    time: TimeSpec
    text: str
    inbound: bool
    icmp_type: str
    code: str
    mtu: int | None = None
    quoted: PacketEvent | None = None
    """The quoted TCP segment, when the line gives one in ``[...]``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SyscallEvent:
    """``+0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)``."""

    line: int
    time: TimeSpec
    text: str
    name: str
    args: tuple[Expr, ...]
    result: int | None
    """Expected return value; None for ``= ...`` (not checked)."""
    errno: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ShellEvent:
    """A backtick shell command: run only when :mod:`.commands` knows it, else a skip."""

    line: int
    time: TimeSpec
    text: str
    command: str
    untimed: bool = False
    """Written without a time: packetdrill's init (first) or cleanup (last) command."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeEvent:
    """A ``%{ ... }%`` Python block: never run, reported as a skipped line."""

    line: int
    time: TimeSpec
    text: str
    code: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UnsupportedEvent:
    """A line using a packetdrill feature simtcp's drill cannot run (the script is skipped)."""

    line: int
    time: TimeSpec
    text: str
    feature: str


Event = PacketEvent | IcmpEvent | SyscallEvent | ShellEvent | CodeEvent | UnsupportedEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class Script:
    """A whole parsed script."""

    name: str
    options: tuple[HeaderOption, ...] = ()
    events: tuple[Event, ...] = ()
    directives: tuple[tuple[str, str], ...] = field(default=())
    """``// name: value`` comments of the first lines (``xfail``, ``config``...)."""

    def directive(self, name: str) -> str | None:
        for key, value in self.directives:
            if key == name:
                return value
        return None
