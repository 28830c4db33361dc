"""packetdrill's socket system calls mapped onto the Stack API, with POSIX results and errnos.

File descriptors start at 3 and take the lowest free number, as a fresh
process's do. A listening socket becomes a ``tcp_listen`` handle, a connecting
one a ``tcp_connect`` handle, an accepted one the handle of its
``ConnectionAccepted`` event. Stack events update each connection's state,
from which reads, writes, ``poll`` and ``SO_ERROR`` are answered.

Socket options that the Stack only takes as configuration (buffer sizes,
TCP_NODELAY, TCP_MAXSEG, keepalive) are gathered before the stack is built:
the runner builds it lazily with them. Set after that, they are unsupported.
"""

from __future__ import annotations

from ..errors import InvalidHandleError, InvalidStateError, NoRouteError, SimtcpError
from ..events import (
    ConnectionAccepted,
    ConnectionClosed,
    ConnectionEstablished,
    ConnectionFailed,
    ConnectionReset,
    ConnectionTimedOut,
    DataReceived,
    Event,
    PeerClosed,
)
from ..stack import Stack
from .model import ArrayExpr, Expr, StructExpr, Symbol, SyscallEvent
from .peer import payload_pattern
from .sockbase import (
    API_ERRNO,
    CONFIG_FIELDS,
    CONSTANTS,
    ERRNO,
    ICMP_ERRNO,
    ICMPV6_ERRNO,
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
    same_errno,
    symbol_name,
)
from .sockopts import SocketOptions

__all__ = [
    "CONSTANTS",
    "ERRNO",
    "Blocked",
    "CheckFailed",
    "Harness",
    "Sockets",
    "SyscallFailed",
    "Unsupported",
    "expr_int",
    "same_errno",
]


class Sockets(SocketOptions):
    """The socket table of the process under test."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.sockets: dict[int, Socket] = {}
        self.connections: dict[int, ConnectionState] = {}
        self.listeners: dict[int, Socket] = {}
        self.stack_built = False
        self.started = 0

    # --- events ---------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        if isinstance(event, ConnectionAccepted):
            self.connections[event.connection] = ConnectionState(established=True)
            listener = self.listeners.get(event.listener)
            if listener is not None:
                listener.accept_queue.append(event.connection)
            return
        handle = getattr(event, "connection", None)
        if handle is None:
            return
        state = self.connections.setdefault(handle, ConnectionState())
        if isinstance(event, ConnectionEstablished):
            state.established = True
        elif isinstance(event, PeerClosed):
            state.peer_closed = True
        elif isinstance(event, ConnectionReset):
            state.error = "ECONNRESET" if state.established else "ECONNREFUSED"
            state.dead = True
        elif isinstance(event, ConnectionTimedOut):
            state.error, state.dead = "ETIMEDOUT", True
        elif isinstance(event, ConnectionFailed):
            if event.ipv6:
                state.error = ICMPV6_ERRNO.get((event.icmp_type, event.code), "EHOSTUNREACH")
            else:
                state.error = ICMP_ERRNO.get(event.code, "EHOSTUNREACH")
            state.dead = True
        elif isinstance(event, ConnectionClosed):
            state.dead = state.closed = True
        elif isinstance(event, DataReceived):
            state.available = event.available

    # --- dispatch -------------------------------------------------------------

    def call(self, event: SyscallEvent, *, now: int, started: int | None = None) -> int:
        """Run one call; returns its value, raises SyscallFailed / Blocked / Unsupported.

        ``started`` is when a blocked call was first made (for poll timeouts).
        """
        self.started = now if started is None else started
        handler = getattr(self, "_sys_" + event.name, None)
        if handler is None:
            raise Unsupported(f"system call {event.name}()")
        try:
            result: int = handler(event.args, now)
        except IndexError:
            raise Unsupported(f"{event.name}() with {len(event.args)} arguments") from None
        except SimtcpError as error:
            # API misuse the Stack refused: the errno a socket would give.
            raise SyscallFailed(API_ERRNO.get(type(error).__name__, "EINVAL")) from None
        return result

    def _socket(self, expr: Expr) -> Socket:
        fd = expr_int(expr)
        socket = self.sockets.get(fd)
        if socket is None:
            raise SyscallFailed("EBADF")
        return socket

    def _stack(self, now: int) -> Stack:
        self.stack_built = True
        return self.harness.stack(now=now)

    def _sys_socket(self, args: tuple[Expr, ...], now: int) -> int:
        if (
            len(args) >= 2
            and not isinstance(args[1], Symbol | int)
            or (len(args) >= 2 and expr_int(args[1]) != CONSTANTS["SOCK_STREAM"])
        ):
            raise Unsupported("sockets other than SOCK_STREAM")
        fd = 3
        while fd in self.sockets:
            fd += 1
        self.sockets[fd] = Socket(fd)
        return fd

    def _sys_bind(self, args: tuple[Expr, ...], now: int) -> int:
        socket = self._socket(args[0])
        if socket.port is not None:
            raise SyscallFailed("EINVAL")
        socket.port = self.harness.bind_port
        return 0

    def _sys_listen(self, args: tuple[Expr, ...], now: int) -> int:
        socket = self._socket(args[0])
        backlog = expr_int(args[1]) if len(args) > 1 else None
        port = socket.port if socket.port is not None else self.harness.bind_port
        if socket.listener is not None:
            return 0
        handle = self._stack(now).tcp_listen(port, backlog=backlog if backlog else None)
        socket.port, socket.listener = port, handle
        self.listeners[handle] = socket
        self.harness.connection_opened(local_port=port, remote_port=None)
        return 0

    def _sys_accept(self, args: tuple[Expr, ...], now: int) -> int:
        socket = self._socket(args[0])
        if socket.listener is None:
            raise SyscallFailed("EINVAL")
        if not socket.accept_queue:
            if socket.nonblocking:
                raise SyscallFailed("EAGAIN")
            raise Blocked
        handle = socket.accept_queue.popleft()
        fd = 3
        while fd in self.sockets:
            fd += 1
        self.sockets[fd] = Socket(fd, port=socket.port, connection=handle)
        return fd

    _sys_accept4 = _sys_accept

    def _sys_connect(self, args: tuple[Expr, ...], now: int) -> int:
        socket = self._socket(args[0])
        if socket.connection is not None:
            state = self.connections.setdefault(socket.connection, ConnectionState())
            if state.error is not None:
                error, state.error = state.error, None
                socket.connecting = False
                raise SyscallFailed(error)
            if state.established:
                if socket.connecting:
                    socket.connecting = False
                    return 0
                raise SyscallFailed("EISCONN")
            if socket.nonblocking:
                raise SyscallFailed("EALREADY")
            raise Blocked
        try:
            handle = self._stack(now).tcp_connect(
                self.harness.remote_ip, self.harness.connect_port, local_port=socket.port, now=now
            )
        except NoRouteError:
            raise SyscallFailed("ENETUNREACH") from None
        socket.connection, socket.connecting = handle, True
        self.connections.setdefault(handle, ConnectionState())
        self.harness.connection_opened(
            local_port=socket.port, remote_port=self.harness.connect_port
        )
        if socket.nonblocking:
            raise SyscallFailed("EINPROGRESS")
        raise Blocked

    def _connection(self, socket: Socket) -> tuple[int, ConnectionState]:
        if socket.connection is None:
            raise SyscallFailed("ENOTCONN")
        return socket.connection, self.connections.setdefault(socket.connection, ConnectionState())

    def _sys_write(self, args: tuple[Expr, ...], now: int) -> int:
        socket = self._socket(args[0])
        handle, state = self._connection(socket)
        if state.error is not None:
            error, state.error = state.error, None
            raise SyscallFailed(error)
        if state.dead or socket.write_shut:
            raise SyscallFailed("EPIPE")
        if not state.established:
            if socket.nonblocking:
                raise SyscallFailed("EAGAIN")
            raise Blocked
        length = expr_int(args[2]) if len(args) > 2 else 0
        if not socket.write_backlog and not socket.write_done:
            socket.write_backlog = length
        data = payload_pattern(socket.write_offset, socket.write_backlog)
        try:
            taken = self._stack(now).send(handle, data, now=now)
        except (InvalidStateError, InvalidHandleError):
            raise SyscallFailed("EPIPE") from None
        socket.write_offset += taken
        socket.write_backlog -= taken
        socket.write_done += taken
        if socket.write_backlog and not socket.nonblocking:
            raise Blocked
        done, socket.write_done, socket.write_backlog = socket.write_done, 0, 0
        if done == 0 and length:
            raise SyscallFailed("EAGAIN")
        return done

    def _sys_send(self, args: tuple[Expr, ...], now: int) -> int:
        return self._sys_write(args[:3], now)

    def _sys_read(self, args: tuple[Expr, ...], now: int) -> int:
        socket = self._socket(args[0])
        handle, state = self._connection(socket)
        length = expr_int(args[2]) if len(args) > 2 else 0
        data = b""
        if not state.dead or state.peer_closed:
            try:
                data = self._stack(now).receive(handle, length, now=now)
            except (InvalidStateError, InvalidHandleError):
                data = b""
        if data:
            expected = payload_pattern(socket.read_offset, len(data))
            if data != expected:
                raise CheckFailed(
                    f"read returned bytes that differ from stream offset "
                    f"{socket.read_offset} onwards"
                )
            socket.read_offset += len(data)
            state.available = max(0, state.available - len(data))
            return len(data)
        if state.error is not None:
            error, state.error = state.error, None
            raise SyscallFailed(error)
        if state.peer_closed or state.dead:
            return 0
        if socket.nonblocking:
            raise SyscallFailed("EAGAIN")
        raise Blocked

    _sys_sendto = _sys_send

    def _sys_writev(self, args: tuple[Expr, ...], now: int) -> int:
        return self._sys_write((args[0], args[1], iovec_length(args[1])), now)

    def _sys_readv(self, args: tuple[Expr, ...], now: int) -> int:
        return self._sys_read((args[0], args[1], iovec_length(args[1])), now)

    def _sys_getsockname(self, args: tuple[Expr, ...], now: int) -> int:
        self._socket(args[0])
        return 0

    _sys_getpeername = _sys_getsockname

    def _sys_shutdown(self, args: tuple[Expr, ...], now: int) -> int:
        socket = self._socket(args[0])
        how = expr_int(args[1])
        handle, state = self._connection(socket)
        if how == CONSTANTS["SHUT_RD"]:
            return 0
        if state.dead:
            raise SyscallFailed("ENOTCONN")
        if not socket.write_shut:
            socket.write_shut = True
            self._stack(now).shutdown(handle, now=now)
        return 0

    def _sys_close(self, args: tuple[Expr, ...], now: int) -> int:
        socket = self._socket(args[0])
        del self.sockets[socket.fd]
        stack = self._stack(now) if socket.listener or socket.connection else None
        try:
            if socket.listener is not None and stack is not None:
                self.listeners.pop(socket.listener, None)
                stack.close(socket.listener, now=now)
            elif socket.connection is not None and stack is not None:
                state = self.connections.get(socket.connection)
                if state is not None and state.closed:
                    return 0
                if socket.linger_zero:
                    stack.abort(socket.connection, now=now)
                else:
                    stack.close(socket.connection, now=now)
        except (InvalidHandleError, InvalidStateError):
            pass
        return 0

    def _sys_fcntl(self, args: tuple[Expr, ...], now: int) -> int:
        socket = self._socket(args[0])
        command = symbol_name(args[1])
        if command == "F_GETFL":
            return CONSTANTS["O_RDWR"] | (CONSTANTS["O_NONBLOCK"] if socket.nonblocking else 0)
        if command == "F_SETFL":
            socket.nonblocking = bool(expr_int(args[2]) & CONSTANTS["O_NONBLOCK"])
            return 0
        raise Unsupported(f"fcntl {command}")

    def revents(self, socket: Socket) -> int:
        """poll(2) readiness of a socket, from what the events said."""
        flags = 0
        if socket.listener is not None:
            return CONSTANTS["POLLIN"] if socket.accept_queue else 0
        if socket.connection is None:
            return CONSTANTS["POLLOUT"] | CONSTANTS["POLLHUP"]
        state = self.connections.setdefault(socket.connection, ConnectionState())
        if state.available or state.peer_closed or state.dead:
            flags |= CONSTANTS["POLLIN"]
        if state.peer_closed:
            flags |= CONSTANTS["POLLRDHUP"]
        if state.established and not state.dead and not socket.write_shut:
            flags |= CONSTANTS["POLLOUT"]
        if state.error is not None:
            flags |= CONSTANTS["POLLERR"]
        if state.dead or (state.peer_closed and socket.write_shut):
            flags |= CONSTANTS["POLLHUP"]
        return flags

    def _sys_poll(self, args: tuple[Expr, ...], now: int) -> int:
        if not isinstance(args[0], ArrayExpr):
            raise Unsupported("poll without a [{fd=..., events=...}] list")
        entries: list[tuple[int, int, Expr | None]] = []
        for item in args[0].items:
            if not isinstance(item, StructExpr):
                raise Unsupported("poll entries must be {fd=..., events=...}")
            fd_expr, events_expr = item.get("fd"), item.get("events")
            if fd_expr is None or events_expr is None:
                raise Unsupported("poll entries need fd= and events=")
            socket = self.sockets.get(expr_int(fd_expr))
            mask = expr_int(events_expr) | CONSTANTS["POLLERR"] | CONSTANTS["POLLHUP"]
            actual = self.revents(socket) & mask if socket else CONSTANTS["POLLNVAL"]
            entries.append((expr_int(fd_expr), actual, item.get("revents")))
        ready = sum(1 for _, actual, _ in entries if actual)
        timeout_ms = expr_int(args[2]) if len(args) > 2 else 0
        if not ready and timeout_ms != 0:
            if timeout_ms < 0:
                raise Blocked
            until = self.started + timeout_ms * 1000
            if now < until:
                raise Blocked(until)
        for fd, actual, wanted_expr in entries:
            if wanted_expr is not None and expr_int(wanted_expr) != actual:
                raise CheckFailed(
                    f"poll revents of fd {fd} were {actual:#x} "
                    f"instead of {expr_int(wanted_expr):#x}"
                )
        return ready

    def pending_config(self) -> dict[str, int | bool]:
        """TcpConfig fields from socket options set before the stack was built."""
        overrides: dict[str, int | bool] = {}
        for socket in self.sockets.values():
            for name, value in socket.options.items():
                field_name = CONFIG_FIELDS.get(name)
                if field_name is None:
                    continue
                if name == "TCP_NODELAY" or name == "SO_KEEPALIVE":
                    overrides[field_name] = bool(value)
                elif name in SECONDS_OPTIONS:
                    overrides[field_name] = value * 1_000_000
                else:
                    overrides[field_name] = value
        return overrides
