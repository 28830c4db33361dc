"""The socket layer's vocabulary: errno names, constants, the socket table's records.

Shared by :mod:`.syscalls` (the calls) and :mod:`.sockopts` (socket options,
ioctl, epoll). errno names compare by name; FreeBSD's spellings of a Linux
error (EWOULDBLOCK for EAGAIN, ENOTSUP for EOPNOTSUPP) are aliases.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from ..stack import Stack
from .model import ArrayExpr, BitOr, Expr, StructExpr, Symbol

ERRNO = {
    "EPERM": 1,
    "EBADF": 9,
    "EAGAIN": 11,
    "EWOULDBLOCK": 11,
    "EFAULT": 14,
    "EINVAL": 22,
    "EPIPE": 32,
    "ENOTSOCK": 88,
    "ENOPROTOOPT": 92,
    "EOPNOTSUPP": 95,
    "EADDRINUSE": 98,
    "ENETUNREACH": 101,
    "ECONNABORTED": 103,
    "ECONNRESET": 104,
    "EISCONN": 106,
    "ENOTCONN": 107,
    "ETIMEDOUT": 110,
    "ECONNREFUSED": 111,
    "EHOSTUNREACH": 113,
    "EALREADY": 114,
    "EINPROGRESS": 115,
    "EMSGSIZE": 90,
    "EHOSTDOWN": 112,
    "EADDRNOTAVAIL": 99,
    "EINTR": 4,
    "ENOENT": 2,
    "ENOMEM": 12,
    "EEXIST": 17,
    "ENOBUFS": 105,
    "ESHUTDOWN": 108,
    "ENOTSUP": 95,
    "EDEADLK": 35,
    "EDEADLOCK": 35,
    "EPROTONOSUPPORT": 93,
    "EAFNOSUPPORT": 97,
}
"""errno values as Linux numbers them (names compare by name: FreeBSD spellings are aliases)."""
ERRNO_ALIASES = {"EWOULDBLOCK": "EAGAIN", "ENOTSUP": "EOPNOTSUPP", "EDEADLOCK": "EDEADLK"}
"""Names Linux and FreeBSD both spell for one error (FreeBSD's EAGAIN is EWOULDBLOCK)."""


def same_errno(actual: str | None, expected: str | None) -> bool:
    """Whether two errno names are the same error, on Linux or FreeBSD spelling."""
    if actual is None or expected is None:
        return actual == expected
    return ERRNO_ALIASES.get(actual, actual) == ERRNO_ALIASES.get(expected, expected)


CONSTANTS = {
    "AF_INET": 2,
    "PF_INET": 2,
    "SOCK_STREAM": 1,
    "IPPROTO_TCP": 6,
    "IPPROTO_IP": 0,
    "SOL_SOCKET": 1,
    "SOL_TCP": 6,
    "F_GETFL": 3,
    "F_SETFL": 4,
    "O_RDWR": 2,
    "O_NONBLOCK": 0x800,
    "SHUT_RD": 0,
    "SHUT_WR": 1,
    "SHUT_RDWR": 2,
    "POLLIN": 0x1,
    "POLLPRI": 0x2,
    "POLLOUT": 0x4,
    "POLLERR": 0x8,
    "POLLHUP": 0x10,
    "POLLNVAL": 0x20,
    "POLLRDNORM": 0x40,
    "POLLWRNORM": 0x100,
    "POLLRDHUP": 0x2000,
    "MSG_DONTWAIT": 0x40,
    "MSG_PEEK": 0x2,
    "MSG_WAITALL": 0x100,
    "MSG_NOSIGNAL": 0x4000,
    "FIONREAD": 0x541B,
    "SIOCINQ": 0x541B,
    "EPOLLIN": 0x1,
    "EPOLLPRI": 0x2,
    "EPOLLOUT": 0x4,
    "EPOLLERR": 0x8,
    "EPOLLHUP": 0x10,
    "EPOLLRDHUP": 0x2000,
    "EPOLLET": 1 << 31,
    "EPOLL_CTL_ADD": 1,
    "EPOLL_CTL_DEL": 2,
    "EPOLL_CTL_MOD": 3,
    "F_GETFD": 1,
    "F_SETFD": 2,
    "FD_CLOEXEC": 1,
    **ERRNO,
}
SOCKET_OPTIONS = {
    "SO_REUSEADDR",
    "SO_REUSEPORT",
    "SO_RCVBUF",
    "SO_SNDBUF",
    "SO_ERROR",
    "SO_LINGER",
    "SO_KEEPALIVE",
    "TCP_NODELAY",
    "TCP_MAXSEG",
    "TCP_KEEPIDLE",
    "TCP_KEEPINTVL",
    "TCP_KEEPCNT",
}
BUFFER_OPTIONS = {"SO_RCVBUF", "SO_SNDBUF"}
CONFIG_FIELDS = {
    "SO_RCVBUF": "receive_buffer",
    "SO_SNDBUF": "send_buffer",
    "TCP_NODELAY": "nodelay",
    "TCP_MAXSEG": "mss",
    "SO_KEEPALIVE": "keepalive",
    "TCP_KEEPIDLE": "keepalive_idle",
    "TCP_KEEPINTVL": "keepalive_interval",
    "TCP_KEEPCNT": "keepalive_probes",
}
SECONDS_OPTIONS = {"TCP_KEEPIDLE", "TCP_KEEPINTVL"}
ICMP_ERRNO = {
    0: "ENETUNREACH",
    1: "EHOSTUNREACH",
    2: "ENOPROTOOPT",
    3: "ECONNREFUSED",
    4: "EMSGSIZE",
    5: "EOPNOTSUPP",
    6: "ENETUNREACH",
    7: "EHOSTDOWN",
    9: "ENETUNREACH",
    10: "EHOSTUNREACH",
    13: "EHOSTUNREACH",
}
"""errno of a hard ICMP Destination Unreachable by code, as Linux reports them."""
ICMPV6_ERRNO = {
    (1, 0): "ENETUNREACH",
    (1, 1): "EACCES",
    (1, 2): "EHOSTUNREACH",
    (1, 3): "EHOSTUNREACH",
    (1, 4): "ECONNREFUSED",
    (1, 5): "EACCES",
    (1, 6): "EACCES",
    (2, 0): "EMSGSIZE",
    (4, 0): "EPROTO",
    (4, 1): "ENOPROTOOPT",
    (4, 2): "EPROTO",
}
"""errno of a hard ICMPv6 error by (type, code) (RFC 4443), as Linux's icmpv6_err_convert."""
API_ERRNO = {
    "AddressInUseError": "EADDRINUSE",
    "NoRouteError": "ENETUNREACH",
    "InvalidHandleError": "EBADF",
    "InvalidStateError": "EINVAL",
    "AddressError": "EADDRNOTAVAIL",
}


class SyscallFailed(Exception):
    """The call returns -1 with ``errno``."""

    def __init__(self, errno: str) -> None:
        super().__init__(errno)
        self.errno = errno


class Blocked(Exception):
    """A blocking call cannot complete yet; the runner retries it as time passes.

    ``until`` is when the call gives up by itself (a poll timeout), if ever.
    """

    def __init__(self, until: int | None = None) -> None:
        super().__init__(until)
        self.until = until


class Unsupported(Exception):
    """The call (or argument) has no mapping onto the Stack API."""


class CheckFailed(Exception):
    """An output argument (getsockopt value, poll revents, read bytes) is not what was written."""


class Harness(Protocol):
    """What the socket layer needs from the runner."""

    remote_ip: str
    connect_port: int
    bind_port: int
    lenient: bool

    def stack(self, *, now: int) -> Stack: ...
    def tcp_overrides(self) -> dict[str, int | bool | str]: ...
    def connection_opened(self, *, local_port: int | None, remote_port: int | None) -> None: ...


@dataclass(slots=True)
class ConnectionState:
    """What the events said about one TCP connection handle."""

    established: bool = False
    available: int = 0
    """Bytes waiting to be read, as the last DataReceived event said."""
    peer_closed: bool = False
    error: str | None = None
    """errno of a reset, time-out or ICMP failure, reported once as SO_ERROR or by a call."""
    dead: bool = False
    closed: bool = False


@dataclass(slots=True)
class Socket:
    fd: int
    nonblocking: bool = False
    port: int | None = None
    listener: int | None = None
    connection: int | None = None
    connecting: bool = False
    accept_queue: deque[int] = field(default_factory=deque)
    write_shut: bool = False
    linger_zero: bool = False
    read_offset: int = 0
    write_offset: int = 0
    write_backlog: int = 0
    write_done: int = 0
    options: dict[str, int] = field(default_factory=dict)
    """Options that configure the stack (see :func:`Sockets.pending_config`)."""
    values: dict[str, int] = field(default_factory=dict)
    """Every option's value as last set, for getsockopt."""
    epoll: dict[int, int] | None = None
    """An epoll instance's interest list: fd -> events."""


def expr_int(expr: Expr) -> int:
    """The integer an argument stands for: a number, a known name, ``A|B``, or ``[n]``."""
    if isinstance(expr, int):
        return expr
    if isinstance(expr, Symbol):
        if expr.name not in CONSTANTS:
            raise Unsupported(f"constant {expr.name}")
        return CONSTANTS[expr.name]
    if isinstance(expr, BitOr):
        value = 0
        for part in expr.parts:
            value |= expr_int(part)
        return value
    if isinstance(expr, ArrayExpr) and len(expr.items) == 1:
        return expr_int(expr.items[0])
    raise Unsupported(f"argument {expr!r}")


def iovec_length(expr: Expr) -> int:
    """Total length of ``[{iov_base=..., iov_len=N}, {..., N}]``."""
    if not isinstance(expr, ArrayExpr):
        raise Unsupported("an iovec argument that is not a [{...}] list")
    total = 0
    for item in expr.items:
        if not isinstance(item, StructExpr) or not item.fields:
            raise Unsupported("iovec entries must be {iov_base, iov_len}")
        length = item.get("iov_len")
        total += expr_int(length if length is not None else item.fields[-1][1])
    return total


def symbol_name(expr: Expr) -> str:
    if isinstance(expr, Symbol):
        return expr.name
    raise Unsupported(f"expected a name, got {expr!r}")
