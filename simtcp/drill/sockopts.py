"""Socket options, ioctl, epoll, recv flags and msghdr calls, as packetdrill models them.

Options that only configure the stack (buffer sizes, TCP_MAXSEG, keepalive)
are gathered before the stack is built; TCP_NODELAY also applies to a
running connection (``Stack.tcp_set_nodelay``). getsockopt answers from the
connection where the kernel would (TCP_MAXSEG is the effective send MSS once
connected, TCP_INFO maps ``tcpi_*`` fields onto :class:`~simtcp.tcp.connection.TcpInfo`)
and from the last value set otherwise. ``recv(..., MSG_PEEK)`` reports the
readable bytes without taking them. epoll instances keep an interest list and
answer ``epoll_wait`` with the same readiness ``poll`` uses.
"""

from __future__ import annotations

from collections.abc import Callable

from ..stack import Stack
from ..tcp.connection import TcpInfo
from .model import ELLIPSIS, ArrayExpr, BitOr, Expr, StructExpr, Symbol
from .sockbase import (
    BUFFER_OPTIONS,
    CONFIG_FIELDS,
    CONSTANTS,
    ERRNO,
    SECONDS_OPTIONS,
    Blocked,
    CheckFailed,
    ConnectionState,
    Harness,
    Socket,
    SyscallFailed,
    Unsupported,
    expr_int,
    iovec_length,
    symbol_name,
)

NO_OP_OPTIONS = frozenset({"SO_DEBUG", "SO_REUSEPORT", "SO_OOBINLINE", "IP_TOS", "SO_PRIORITY"})
"""Options accepted and remembered with no effect in a simulator."""

_TCP_STATES = {
    "ESTABLISHED": 1,
    "SYN-SENT": 2,
    "SYN-RECEIVED": 3,
    "FIN-WAIT-1": 4,
    "FIN-WAIT-2": 5,
    "TIME-WAIT": 6,
    "CLOSED": 7,
    "CLOSE-WAIT": 8,
    "LAST-ACK": 9,
    "LISTEN": 10,
    "CLOSING": 11,
}
"""Linux's TCP_* state numbers (include/net/tcp_states.h), by RFC 9293 state name."""


def _state_number(state: str) -> int:
    return _TCP_STATES.get(state.upper().replace("_", "-"), 0)


_TCP_INFO_FIELDS: dict[str, Callable[[TcpInfo], int]] = {
    "tcpi_state": lambda info: _state_number(info.state),
    "tcpi_snd_mss": lambda info: info.mss,
    "tcpi_rcv_mss": lambda info: info.mss,
    "tcpi_advmss": lambda info: info.mss,
    "tcpi_rto": lambda info: info.rto,
    "tcpi_rtt": lambda info: info.srtt or 0,
    "tcpi_snd_cwnd": lambda info: info.cwnd // max(info.mss, 1),
    "tcpi_snd_ssthresh": lambda info: info.ssthresh // max(info.mss, 1),
    "tcpi_retransmits": lambda info: info.retransmits,
    "tcpi_total_retrans": lambda info: info.retransmits,
    "tcpi_snd_wnd": lambda info: info.snd_wnd,
    "tcpi_rcv_wnd": lambda info: info.rcv_wnd,
    "tcpi_unacked": lambda info: (
        0 if info.mss == 0 else -(-(info.snd_nxt - info.snd_una) // info.mss)
    ),
}
"""``struct tcp_info`` fields a script may check, from the engine's TcpInfo."""


class SocketOptions:
    """Mixed into :class:`.syscalls.Sockets`: the calls below use its table and helpers."""

    sockets: dict[int, Socket]
    connections: dict[int, ConnectionState]
    harness: Harness
    stack_built: bool
    started: int

    def _socket(self, expr: Expr) -> Socket:
        raise NotImplementedError

    def _stack(self, now: int) -> Stack:
        raise NotImplementedError

    def _connection(self, socket: Socket) -> tuple[int, ConnectionState]:
        raise NotImplementedError

    def revents(self, socket: Socket) -> int:
        raise NotImplementedError

    def _sys_read(self, args: tuple[Expr, ...], now: int) -> int:
        raise NotImplementedError

    def _sys_write(self, args: tuple[Expr, ...], now: int) -> int:
        raise NotImplementedError

    # --- recv flags and msghdr -------------------------------------------------------

    def _sys_recv(self, args: tuple[Expr, ...], now: int) -> int:
        flags = expr_int(args[3]) if len(args) > 3 and args[3] is not ELLIPSIS else 0
        socket = self._socket(args[0])
        if flags & CONSTANTS["MSG_PEEK"]:
            return self._peek(
                socket, args, now, nonblocking=bool(flags & CONSTANTS["MSG_DONTWAIT"])
            )
        if flags & CONSTANTS["MSG_DONTWAIT"] and not socket.nonblocking:
            socket.nonblocking = True
            try:
                return self._sys_read(args[:3], now)
            finally:
                socket.nonblocking = False
        return self._sys_read(args[:3], now)

    _sys_recvfrom = _sys_recv

    def _peek(self, socket: Socket, args: tuple[Expr, ...], now: int, *, nonblocking: bool) -> int:
        """MSG_PEEK: what is readable, left in place (POSIX recv(2))."""
        handle, state = self._connection(socket)
        length = expr_int(args[2]) if len(args) > 2 else 0
        readable = 0
        if not state.dead or state.peer_closed:
            readable = self._stack(now).tcp_info(handle).bytes_readable
        if readable:
            return min(length, readable)
        if state.error is not None:
            raise SyscallFailed(state.error)
        if state.peer_closed or state.dead:
            return 0
        if socket.nonblocking or nonblocking:
            raise SyscallFailed("EAGAIN")
        raise Blocked

    def _msghdr_length(self, expr: Expr) -> int:
        if not isinstance(expr, StructExpr):
            raise Unsupported("a msghdr that is not {msg_name(...)=..., msg_iov(N)=[...], ...}")
        iov = expr.get("msg_iov")
        if iov is None:
            raise Unsupported("a msghdr without msg_iov")
        return iovec_length(iov)

    def _sys_recvmsg(self, args: tuple[Expr, ...], now: int) -> int:
        length = self._msghdr_length(args[1])
        flags: Expr = args[2] if len(args) > 2 else 0
        return self._sys_recv((args[0], ELLIPSIS, length, flags), now)

    def _sys_sendmsg(self, args: tuple[Expr, ...], now: int) -> int:
        return self._sys_write((args[0], ELLIPSIS, self._msghdr_length(args[1])), now)

    # --- setsockopt / getsockopt -------------------------------------------------------

    def _sys_setsockopt(self, args: tuple[Expr, ...], now: int) -> int:
        socket = self._socket(args[0])
        name = symbol_name(args[2])
        value_expr = args[3]
        if name == "SO_LINGER":
            return self._set_linger(socket, value_expr)
        if (
            name not in CONFIG_FIELDS
            and name not in NO_OP_OPTIONS
            and name
            not in (
                "SO_REUSEADDR",
                "TCP_CORK",
            )
        ):
            raise Unsupported(f"socket option {name}")
        value = expr_int(value_expr)
        connected = socket.connection is not None and self.stack_built
        if name == "TCP_CORK" and value and not connected:
            raise Unsupported("TCP_CORK on before the connection exists")
        socket.values[name] = value
        if name == "TCP_CORK" and connected and socket.connection is not None:
            self._stack(now).tcp_set_cork(socket.connection, bool(value), now=now)
            return 0
        if name == "TCP_NODELAY" and socket.connection is not None and self.stack_built:
            self._stack(now).tcp_set_nodelay(socket.connection, bool(value), now=now)
            return 0
        if name in CONFIG_FIELDS:
            if self.stack_built:
                if name in BUFFER_OPTIONS and self.harness.lenient:
                    return 0
                raise Unsupported(f"{name} once the stack runs (set it before listen/connect)")
            socket.options[name] = value
        return 0

    def _set_linger(self, socket: Socket, value_expr: Expr) -> int:
        if not isinstance(value_expr, StructExpr):
            raise Unsupported("SO_LINGER without {onoff=..., linger=...}")
        on_off = value_expr.get("l_onoff") or value_expr.get("onoff")
        linger = value_expr.get("l_linger") or value_expr.get("linger")
        on = bool(on_off is not None and expr_int(on_off))
        seconds = expr_int(linger) if linger is not None else 0
        if on and seconds:
            raise Unsupported("SO_LINGER with a non-zero timeout")
        socket.linger_zero = on and seconds == 0
        socket.values["SO_LINGER"] = int(on)
        return 0

    def _option_value(self, socket: Socket, name: str, now: int) -> int | None:
        """What getsockopt gives for a plain integer option; None when it is unknown."""
        if name == "SO_ERROR":
            error: str | None = None
            if socket.connection is not None:
                state = self.connections.setdefault(socket.connection, ConnectionState())
                error, state.error = state.error, None
            return ERRNO[error] if error else 0
        if name == "TCP_MAXSEG" and socket.connection is not None:
            # The effective send MSS once the handshake set it (Linux tcp_current_mss).
            mss = self._stack(now).tcp_info(socket.connection).mss
            if mss:
                return mss
        if name in socket.values:
            return socket.values[name]
        if name in CONFIG_FIELDS:
            value = getattr(self._stack(now).config.tcp, CONFIG_FIELDS[name])
            return value // 1_000_000 if name in SECONDS_OPTIONS else int(value)
        if name in NO_OP_OPTIONS or name in ("SO_REUSEADDR", "TCP_CORK"):
            return 0
        return None

    def _sys_getsockopt(self, args: tuple[Expr, ...], now: int) -> int:
        socket = self._socket(args[0])
        name = symbol_name(args[2])
        expected = args[3]
        if name == "TCP_INFO":
            return self._check_tcp_info(socket, expected, now)
        if name == "SO_LINGER":
            return self._check_linger(socket, expected)
        actual = self._option_value(socket, name, now)
        if actual is None:
            raise Unsupported(f"getsockopt {name}")
        if name in BUFFER_OPTIONS and self.harness.lenient:
            return 0  # Linux doubles the value set; FreeBSD does not: not comparable
        if not isinstance(expected, Symbol | int | ArrayExpr | BitOr):
            return 0
        wanted = expr_int(expected)
        if wanted != actual:
            raise CheckFailed(f"getsockopt {name} gave {actual} instead of {wanted}")
        return 0

    def _check_linger(self, socket: Socket, expected: Expr) -> int:
        if not isinstance(expected, StructExpr):
            return 0
        on = socket.values.get("SO_LINGER", 0)
        for key, value in expected.fields:
            if value is ELLIPSIS:
                continue
            actual = on if key in ("onoff", "l_onoff") else 0
            if key not in ("onoff", "l_onoff", "linger", "l_linger"):
                raise Unsupported(f"SO_LINGER field {key}")
            if expr_int(value) != actual:
                raise CheckFailed(f"getsockopt SO_LINGER {key} gave {actual}")
        return 0

    def _check_tcp_info(self, socket: Socket, expected: Expr, now: int) -> int:
        if socket.connection is None:
            raise SyscallFailed("ENOTCONN")
        if not isinstance(expected, StructExpr):
            return 0
        info = self._stack(now).tcp_info(socket.connection)
        for key, value in expected.fields:
            if value is ELLIPSIS:
                continue
            getter = _TCP_INFO_FIELDS.get(key)
            if getter is None:
                raise Unsupported(f"TCP_INFO field {key}")
            actual = int(getter(info))
            if actual != expr_int(value):
                raise CheckFailed(f"TCP_INFO {key} is {actual}, not {expr_int(value)}")
        return 0

    # --- ioctl and epoll -------------------------------------------------------------------

    def _sys_ioctl(self, args: tuple[Expr, ...], now: int) -> int:
        socket = self._socket(args[0])
        request = symbol_name(args[1])
        if request not in ("FIONREAD", "SIOCINQ"):
            raise Unsupported(f"ioctl {request}")
        readable = 0
        if socket.connection is not None:
            readable = self._stack(now).tcp_info(socket.connection).bytes_readable
        if len(args) > 2 and isinstance(args[2], int | ArrayExpr) and expr_int(args[2]) != readable:
            raise CheckFailed(f"ioctl {request} gave {readable} instead of {expr_int(args[2])}")
        return 0

    def _new_fd(self) -> int:
        fd = 3
        while fd in self.sockets:
            fd += 1
        return fd

    def _sys_epoll_create(self, args: tuple[Expr, ...], now: int) -> int:
        fd = self._new_fd()
        self.sockets[fd] = Socket(fd, epoll={})
        return fd

    _sys_epoll_create1 = _sys_epoll_create

    def _epoll(self, expr: Expr) -> dict[int, int]:
        socket = self._socket(expr)
        if socket.epoll is None:
            raise SyscallFailed("EINVAL")
        return socket.epoll

    def _sys_epoll_ctl(self, args: tuple[Expr, ...], now: int) -> int:
        interest = self._epoll(args[0])
        operation = expr_int(args[1])
        fd = expr_int(args[2])
        if fd not in self.sockets:
            raise SyscallFailed("EBADF")
        if operation == CONSTANTS["EPOLL_CTL_DEL"]:
            if interest.pop(fd, None) is None:
                raise SyscallFailed("ENOENT")
            return 0
        event = args[3] if len(args) > 3 else None
        events_expr = event.get("events") if isinstance(event, StructExpr) else None
        events = expr_int(events_expr) if events_expr is not None else 0
        if operation == CONSTANTS["EPOLL_CTL_ADD"] and fd in interest:
            raise SyscallFailed("EEXIST")
        if operation == CONSTANTS["EPOLL_CTL_MOD"] and fd not in interest:
            raise SyscallFailed("ENOENT")
        interest[fd] = events
        return 0

    def _sys_epoll_wait(self, args: tuple[Expr, ...], now: int) -> int:
        interest = self._epoll(args[0])
        always = CONSTANTS["EPOLLERR"] | CONSTANTS["EPOLLHUP"]
        ready: list[tuple[int, int]] = []
        for fd, events in sorted(interest.items()):
            socket = self.sockets.get(fd)
            revents = self.revents(socket) & (events | always) if socket else 0
            if revents:
                ready.append((fd, revents))
        maximum = expr_int(args[2]) if len(args) > 2 else len(ready)
        ready = ready[: max(maximum, 1)]
        timeout_ms = expr_int(args[3]) if len(args) > 3 else -1
        if not ready and timeout_ms != 0:
            if timeout_ms < 0:
                raise Blocked
            until = self.started + timeout_ms * 1000
            if now < until:
                raise Blocked(until)
        self._check_epoll_events(args[1] if len(args) > 1 else ELLIPSIS, ready)
        return len(ready)

    def _check_epoll_events(self, expected: Expr, ready: list[tuple[int, int]]) -> None:
        items = expected.items if isinstance(expected, ArrayExpr) else (expected,)
        for index, item in enumerate(items):
            if not isinstance(item, StructExpr) or index >= len(ready):
                continue
            fd, revents = ready[index]
            events = item.get("events")
            if events is not None and events is not ELLIPSIS and expr_int(events) != revents:
                raise CheckFailed(
                    f"epoll_wait events of fd {fd} were {revents:#x}, not {expr_int(events):#x}"
                )
            wanted_fd = item.get("fd")
            if wanted_fd is not None and wanted_fd is not ELLIPSIS and expr_int(wanted_fd) != fd:
                raise CheckFailed(f"epoll_wait reported fd {fd}, not {expr_int(wanted_fd)}")
