"""An event loop whose networking is simtcp: asyncio's own calls, on the current task's host.

:class:`NetworkLoopMixin` goes in front of an asyncio event loop class (the
virtual-time loop of :mod:`simtcp.backends.aio_sim`, or a plain selector loop
over TAP in :mod:`simtcp.backends.aio_tap`) and replaces its networking:
``create_connection``, ``create_server``, ``create_datagram_endpoint``,
``getaddrinfo`` and ``getnameinfo`` run on the simtcp host the calling task
runs on (:meth:`simtcp.aio.network.Network.current_host`), so
``asyncio.open_connection``, ``asyncio.start_server``, aiohttp and websockets
run unchanged. TLS (``ssl=``) goes through asyncio's own ``sslproto`` over the
simtcp transport.

Nothing falls back to the kernel. Calls with no simtcp meaning (Unix sockets,
``sock=`` with a real socket, ``sock_recv`` and friends) raise
``NotImplementedError`` naming the call. One exception is made, for libraries
that connect a socket themselves (aiohttp through aiohappyeyeballs creates a
socket, ``await loop.sock_connect(sock, addr)``, then
``loop.create_connection(sock=sock)``): ``sock_connect`` opens the simtcp
connection and remembers it under that socket, which is never connected in
the kernel and is closed when ``create_connection(sock=...)`` takes it over.
"""

from __future__ import annotations

import asyncio
import builtins
import errno
import socket
import ssl as ssl_module
import sys
from asyncio import sslproto
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import AddressInUseError, SimtcpError
from ..wire.address import address_from_api
from .datagram import open_datagram_endpoint
from .network import Host, Network, SockAddr, family_of, is_ipv6, literal, sockaddr
from .server import SimServer
from .streams import raise_os_error
from .transport import StreamTransport

_SSL_HANDSHAKE_TIMEOUT = 60.0
_SSL_SHUTDOWN_TIMEOUT = 30.0

_UNSUPPORTED = (
    "create_unix_connection",
    "create_unix_server",
    "connect_accepted_socket",
    "sock_recv",
    "sock_recv_into",
    "sock_recvfrom",
    "sock_recvfrom_into",
    "sock_sendall",
    "sock_sendto",
    "sock_accept",
    "sock_sendfile",
)  # pipes and subprocesses are not networking: they stay the loop's own


def _not_implemented(name: str) -> Callable[..., Any]:
    async def refused(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            f"loop.{name}() has no simtcp meaning (no kernel sockets on a simtcp loop)"
        )

    refused.__name__ = name
    return refused


async def _connect(host: Host, address: str, port: int, local_port: int | None) -> StreamTransport:
    """Open one simtcp connection; the transport once established (asyncio's errors)."""
    driver = host.bound_driver()
    try:
        handle = driver.stack.tcp_connect(address, port, local_port=local_port, now=driver.now())
    except AddressInUseError as error:
        raise OSError(errno.EADDRINUSE, f"error while attempting to bind: {error}") from None
    except SimtcpError as error:
        raise_os_error(error)
    transport = StreamTransport(driver, handle)
    transport.connecting = driver.loop.create_future()
    driver.add_connection(handle, transport)
    driver.schedule_flush()
    try:
        await transport.connecting
    except asyncio.CancelledError:
        transport.abort()
        raise
    except ConnectionRefusedError:
        raise ConnectionRefusedError(
            errno.ECONNREFUSED, f"Connect call failed {sockaddr(address, port)!r}"
        ) from None
    return transport


class NetworkLoopMixin:
    """asyncio's networking calls on simtcp hosts (put it before the loop class)."""

    network: Network
    _presockets: dict[int, tuple[socket.socket, StreamTransport]]

    def _simtcp_setup(self, network: Network) -> None:
        self.network = network
        self._presockets = {}

    @property
    def _aloop(self) -> asyncio.AbstractEventLoop:
        return self  # type: ignore[return-value]

    # --- names ----------------------------------------------------------------------

    async def getaddrinfo(
        self,
        host: bytes | str | None,
        port: bytes | str | int | None,
        *,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[tuple[Any, Any, int, str, SockAddr]]:
        """Resolve through the network's hosts table (socket.gaierror for unknown names).

        AF_INET results carry (host, port), AF_INET6 ones (host, port, flowinfo,
        scope_id) as the socket module's do; a dual-stack name gives both families
        (``family=`` keeps one), IPv4 first unless the network prefers IPv6."""
        addresses = self.network.resolve_all(
            host, passive=bool(flags & socket.AI_PASSIVE), family=family
        )
        number = _port_number(port, type)
        kinds = [type] if type else [socket.SOCK_STREAM, socket.SOCK_DGRAM]
        result: list[tuple[Any, Any, int, str, SockAddr]] = []
        canonical = host if flags & socket.AI_CANONNAME and isinstance(host, str) else ""
        for address in addresses:
            for kind in kinds:
                protocol = proto or (
                    socket.IPPROTO_TCP if kind == socket.SOCK_STREAM else socket.IPPROTO_UDP
                )
                result.append(
                    (
                        family_of(address),
                        socket.SocketKind(kind),
                        protocol,
                        canonical,
                        sockaddr(address, number),
                    )
                )
                canonical = ""  # getaddrinfo(3): only the first result carries it
        return result

    async def getnameinfo(self, sockaddr: tuple[Any, ...], flags: int = 0) -> tuple[str, str]:
        address, port = sockaddr[0], sockaddr[1]
        name = address if flags & socket.NI_NUMERICHOST else self.network.reverse(address)
        return name, str(port)

    # --- TCP --------------------------------------------------------------------------

    async def create_connection(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: str | None = None,
        port: int | None = None,
        *,
        ssl: Any = None,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        sock: socket.socket | None = None,
        local_addr: tuple[str, int] | None = None,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        happy_eyeballs_delay: float | None = None,
        interleave: int | None = None,
        all_errors: bool = False,
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        """asyncio's ``create_connection`` on the current host (``ssl=`` through sslproto)."""
        if server_hostname is not None and not ssl:
            raise ValueError("server_hostname is only meaningful with ssl")
        if sock is not None:
            if host is not None or port is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            transport = self._take_presocket(sock, "create_connection")
        else:
            if host is None or port is None:
                raise ValueError("host and port was not specified and no sock specified")
            current = self.network.current_host("loop.create_connection")
            infos = await self.getaddrinfo(
                host, port, family=family, type=socket.SOCK_STREAM, proto=proto, flags=flags
            )
            local_port = int(local_addr[1]) if local_addr and local_addr[1] else None
            transport = await self._connect_first(current, infos, local_port, all_errors)
        if ssl and server_hostname is None:
            server_hostname = host if isinstance(host, str) else None
        return await self._attach_client(
            transport,
            protocol_factory,
            ssl,
            server_hostname,
            ssl_handshake_timeout,
            ssl_shutdown_timeout,
        )

    async def _connect_first(
        self,
        host: Host,
        infos: list[tuple[Any, Any, int, str, SockAddr]],
        local_port: int | None,
        all_errors: bool,
    ) -> StreamTransport:
        exceptions: list[OSError] = []
        for *_, address in infos:
            try:
                return await _connect(host, address[0], address[1], local_port)
            except OSError as error:
                exceptions.append(error)
        group = getattr(builtins, "ExceptionGroup", None)  # Python 3.11+
        if all_errors and group is not None:
            raise group("create_connection failed", exceptions)
        if len(exceptions) == 1 or len({str(error) for error in exceptions}) == 1:
            raise exceptions[0]
        raise OSError(f"Multiple exceptions: {', '.join(str(error) for error in exceptions)}")

    async def _attach_client(
        self,
        transport: StreamTransport,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        ssl: Any,
        server_hostname: str | None,
        handshake_timeout: float | None,
        shutdown_timeout: float | None,
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        protocol = protocol_factory()
        waiter: asyncio.Future[None] = self._aloop.create_future()
        if not ssl:
            transport.attach(protocol, waiter)
            await _wait_or_abort(waiter, transport)
            return transport, protocol
        context = ssl_module.create_default_context() if ssl is True else ssl
        options = ssl_timeouts(handshake_timeout, shutdown_timeout)
        ssl_protocol = sslproto.SSLProtocol(
            self._aloop,
            protocol,
            context,
            waiter,
            server_side=False,
            server_hostname=server_hostname,
            **options,
        )
        transport.attach(ssl_protocol)
        await _wait_or_abort(waiter, transport)
        return ssl_protocol._app_transport, protocol

    async def sock_connect(self, sock: socket.socket, address: Any) -> None:
        """Connect ``sock`` on simtcp (for aiohappyeyeballs); see the module docstring."""
        if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
            raise NotImplementedError(
                "loop.sock_connect() on simtcp takes AF_INET and AF_INET6 TCP sockets"
            )
        current = self.network.current_host("loop.sock_connect")
        host, port = address[0], int(address[1])
        infos = await self.getaddrinfo(host, port, family=sock.family, type=socket.SOCK_STREAM)
        transport = await self._connect_first(current, infos[:1], None, False)
        self._presockets[sock.fileno()] = (sock, transport)

    def _take_presocket(self, sock: Any, call: str) -> StreamTransport:
        fileno = sock.fileno() if hasattr(sock, "fileno") else -1
        entry = self._presockets.get(fileno)
        if entry is None or entry[0] is not sock:
            raise NotImplementedError(
                f"loop.{call}(sock=...): simtcp cannot use a kernel socket; "
                "pass host and port (the socket was not connected by this loop's sock_connect)"
            )
        del self._presockets[fileno]
        sock.close()  # never connected in the kernel: the simtcp connection replaces it
        return entry[1]

    async def create_server(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: str | Iterable[str] | None = None,
        port: int | None = None,
        *,
        family: int = socket.AF_UNSPEC,
        flags: int = socket.AI_PASSIVE,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: Any = None,
        reuse_address: bool | None = None,
        reuse_port: bool | None = None,
        keep_alive: bool | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        start_serving: bool = True,
    ) -> SimServer:
        """asyncio's ``create_server`` on the current host (port 0: an ephemeral port)."""
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        if sock is not None:
            raise NotImplementedError(
                "loop.create_server(sock=...): simtcp cannot listen on a kernel socket; "
                "pass host and port"
            )
        current = self.network.current_host("loop.create_server")
        hosts: list[str | None] = [host] if host is None or isinstance(host, str) else [*host]
        addresses = self._listen_addresses(current, hosts, family)
        server = SimServer(
            current.bound_driver(),
            protocol_factory,
            ssl=ssl,
            backlog=backlog,
            ssl_handshake_timeout=ssl_handshake_timeout or _SSL_HANDSHAKE_TIMEOUT,
            ssl_shutdown_timeout=ssl_shutdown_timeout or _SSL_SHUTDOWN_TIMEOUT,
        )
        try:
            server.listen(addresses, int(port or 0), current)
        except BaseException:
            server.close()
            raise
        if start_serving:
            await server.start_serving()
        return server

    def _listen_addresses(
        self, current: Host, hosts: list[str | None], family: int
    ) -> list[str | None]:
        """Where ``create_server`` listens: None is every address of both families (one
        listener, where asyncio opens 0.0.0.0 and an IPV6_V6ONLY ::), ``"::"`` every IPv6
        one. A name's IPv6 addresses that the host lacks are skipped (AI_ADDRCONFIG)."""
        addresses: list[str | None] = []
        for name in hosts:
            if not name and family != socket.AF_INET6:
                addresses.append(None)
                continue
            found = self.network.resolve_all(name, passive=True, family=family)
            if literal(name or "") is None and len(found) > 1:
                found = [a for a in found if not is_ipv6(a) or _is_local(current, a)] or found
            addresses.extend(None if a == "0.0.0.0" else a for a in found)
        return list(dict.fromkeys(addresses))

    # --- UDP ----------------------------------------------------------------------------

    async def create_datagram_endpoint(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        local_addr: tuple[str, int] | None = None,
        remote_addr: tuple[str, int] | None = None,
        *,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        reuse_port: bool | None = None,
        allow_broadcast: bool | None = None,
        sock: socket.socket | None = None,
    ) -> tuple[asyncio.DatagramTransport, asyncio.BaseProtocol]:
        """asyncio's ``create_datagram_endpoint`` on the current host."""
        if sock is not None:
            raise NotImplementedError(
                "loop.create_datagram_endpoint(sock=...): simtcp cannot use a kernel socket"
            )
        if isinstance(local_addr, str) or isinstance(remote_addr, str):
            raise NotImplementedError("loop.create_datagram_endpoint(): no Unix sockets on simtcp")
        current = self.network.current_host("loop.create_datagram_endpoint")
        local = remote = None
        if remote_addr is not None:
            remote = (
                self.network.resolve(remote_addr[0], passive=False, family=family),
                int(remote_addr[1]),
            )
            if not family:
                family = family_of(remote[0])
        if local_addr is not None:
            local = (
                self.network.resolve(local_addr[0], passive=True, family=family),
                int(local_addr[1]),
            )
        elif family == socket.AF_INET6:
            local = ("::", 0)
        transport, protocol = open_datagram_endpoint(
            current.bound_driver(),
            protocol_factory,  # type: ignore[arg-type]
            local_addr=local,
            remote_addr=remote,
        )
        return transport, protocol  # type: ignore[return-value]


for _name in _UNSUPPORTED:
    setattr(NetworkLoopMixin, _name, _not_implemented(_name))


async def _wait_or_abort(waiter: asyncio.Future[None], transport: StreamTransport) -> None:
    try:
        await waiter
    except BaseException:
        transport.abort()
        raise


def _is_local(host: Host, address: str) -> bool:
    stack = host.bound_driver().stack
    try:
        return stack.tcp.host.is_local_address(address_from_api(address))
    except SimtcpError:
        return False


def _port_number(port: bytes | str | int | None, kind: int) -> int:
    if port is None:
        return 0
    if isinstance(port, bytes):
        port = port.decode()
    if isinstance(port, str):
        if port.isdigit():
            return int(port)
        try:
            return socket.getservbyname(port, "udp" if kind == socket.SOCK_DGRAM else "tcp")
        except OSError:
            raise socket.gaierror(socket.EAI_SERVICE, "Servname not supported") from None
    return int(port)


def ssl_timeouts(handshake: float | None, shutdown: float | None) -> dict[str, Any]:
    """sslproto's timeout arguments (``ssl_shutdown_timeout`` exists from Python 3.11)."""
    options: dict[str, Any] = {"ssl_handshake_timeout": handshake or _SSL_HANDSHAKE_TIMEOUT}
    if sys.version_info >= (3, 11):
        options["ssl_shutdown_timeout"] = shutdown or _SSL_SHUTDOWN_TIMEOUT
    return options


def run_with(loop_factory: Callable[[], asyncio.AbstractEventLoop], main: Any) -> Any:
    """``asyncio.run(main, loop_factory=...)`` on every supported Python (3.10+).

    Runs ``main`` on a new loop from the factory, then cancels what is left,
    finishes async generators and the default executor, and closes the loop.
    """
    loop = loop_factory()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    finally:
        try:
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


__all__ = ["NetworkLoopMixin", "run_with", "ssl_timeouts"]
