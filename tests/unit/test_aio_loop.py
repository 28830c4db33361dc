"""asyncio's own calls on simtcp hosts in virtual time: transports, servers, names, bad use.

The contract is asyncio's: the callback order of a Protocol, the exceptions
``create_connection``/``create_server``/``getaddrinfo`` raise, nothing leaked.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
from typing import Any

import pytest

from simtcp.aio.transport import SimSocket, StreamTransport
from simtcp.backends.aio_sim import SimNetwork, VirtualTimeDeadlock
from simtcp.backends.sim import LinkProfile


def two_hosts(seed: int = 1, profile: LinkProfile | None = None) -> SimNetwork:
    net = SimNetwork(seed)
    net.add_host("server", profile=profile or LinkProfile(delay=1_000))
    net.add_host("client", profile=profile or LinkProfile(delay=1_000))
    net.add_names({"db": "10.0.0.1"})
    return net


class Recorder(asyncio.Protocol):
    """Records every callback, in order, with the bytes it got."""

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.transport: Any = None
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.calls.append("connection_made")

    def data_received(self, data: bytes) -> None:
        if self.calls and isinstance(self.calls[-1], bytes):
            self.calls[-1] += data
        else:
            self.calls.append(bytes(data))

    def eof_received(self) -> bool | None:
        self.calls.append("eof_received")
        return None

    def pause_writing(self) -> None:
        self.calls.append("pause_writing")

    def resume_writing(self) -> None:
        self.calls.append("resume_writing")

    def connection_lost(self, exc: BaseException | None) -> None:
        self.calls.append(("connection_lost", type(exc).__name__ if exc else None))
        self.done.set_result(None)


class Echo(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


def test_protocol_callbacks_come_in_asyncio_order_and_connection_lost_once() -> None:
    net = two_hosts(profile=LinkProfile(delay=1_000, loss=0.05))

    async def main() -> list[Any]:
        with net.host("server"):
            server = await asyncio.get_running_loop().create_server(Echo, "0.0.0.0", 9000)
        with net.host("client"):
            transport, protocol = await asyncio.get_running_loop().create_connection(
                Recorder, "server", 9000
            )
            assert isinstance(transport, asyncio.Transport)
            for index in range(20):
                transport.write(b"%03d" % index)
            transport.write_eof()
            await protocol.done
        server.close()
        await server.wait_closed()
        return protocol.calls

    calls = net.run(main())
    assert calls == [
        "connection_made",
        b"".join(b"%03d" % i for i in range(20)),
        "eof_received",
        ("connection_lost", None),
    ]


def test_buffered_protocol_gets_get_buffer_and_buffer_updated() -> None:
    net = two_hosts()
    payload = bytes(range(256)) * 1000

    class Buffered(asyncio.BufferedProtocol):
        def __init__(self) -> None:
            self.buffer = bytearray(4096)
            self.got = bytearray()
            self.done = asyncio.get_running_loop().create_future()

        def get_buffer(self, sizehint: int) -> bytearray:
            return self.buffer

        def buffer_updated(self, nbytes: int) -> None:
            self.got += self.buffer[:nbytes]

        def eof_received(self) -> None:
            self.done.set_result(bytes(self.got))

    async def main() -> bytes:
        loop = asyncio.get_running_loop()

        async def send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(payload)
            await writer.drain()
            writer.close()

        with net.host("server"):
            server = await asyncio.start_server(send, "10.0.0.1", 9001)
        with net.host("client"):
            _, protocol = await loop.create_connection(Buffered, "10.0.0.1", 9001)
            got = await protocol.done
        server.close()
        return got

    assert net.run(main()) == payload


def test_flow_control_pauses_at_the_high_water_mark_and_resumes_at_the_low() -> None:
    net = two_hosts()

    class Silent(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            transport.pause_reading()  # the window closes: the writer's buffer fills up
            asyncio.get_running_loop().call_later(5, transport.resume_reading)

    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        with net.host("server"):
            server = await loop.create_server(Silent, port=9002)
        with net.host("client"):
            transport, protocol = await loop.create_connection(Recorder, "server", 9002)
            for _ in range(200):
                transport.write(b"x" * 16384)
            assert transport.get_write_buffer_size() > 64 * 1024
            await asyncio.sleep(10)
            assert transport.get_write_buffer_size() == 0
            transport.abort()
            await protocol.done
        server.close()
        return protocol.calls

    assert net.run(main()) == [
        "connection_made",
        "pause_writing",
        "resume_writing",
        ("connection_lost", None),
    ]


def test_a_host_connects_to_its_own_listener_over_loopback_and_its_address() -> None:
    net = two_hosts()

    async def main() -> list[bytes]:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(await reader.read())
            writer.close()

        results = []
        with net.host("server"):
            server = await asyncio.start_server(echo, port=9003)
            for name in ("localhost", "127.0.0.1", "10.0.0.1", "server"):
                reader, writer = await asyncio.open_connection(name, 9003)
                writer.write(name.encode())
                writer.write_eof()
                results.append(await reader.read())
                writer.close()
                await writer.wait_closed()
            server.close()
            await server.wait_closed()
        return results

    assert net.run(main()) == [b"localhost", b"127.0.0.1", b"10.0.0.1", b"server"]


def test_virtual_time_sleeps_instantly_and_wait_for_times_out_in_virtual_time() -> None:
    net = two_hosts()

    async def main() -> tuple[float, bool]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(30)
        slept = loop.time() - start
        timed_out = False
        try:
            await asyncio.wait_for(loop.create_future(), 5)
        except TimeoutError:
            timed_out = True
        return slept, timed_out

    assert net.run(main()) == (30.0, True)


def test_a_deadlock_raises_with_the_waiting_tasks() -> None:
    net = two_hosts()

    async def stuck() -> None:
        await asyncio.get_running_loop().create_future()

    with pytest.raises(VirtualTimeDeadlock, match="stuck"):
        net.run(stuck())


def test_server_sockets_are_socket_like_and_port_zero_is_ephemeral() -> None:
    net = two_hosts()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with net.host("server"):
            server = await loop.create_server(Echo, "0.0.0.0", 0)
            (sock,) = server.sockets
            assert isinstance(sock, SimSocket)
            assert (sock.family, sock.type) == (socket.AF_INET, socket.SOCK_STREAM)
            address, port = sock.getsockname()
            assert address == "0.0.0.0" and 49152 <= port <= 65535
        with net.host("client"):
            transport, _ = await loop.create_connection(Recorder, "server", port)
            raw = transport.get_extra_info("socket")
            assert raw.getpeername() == ("10.0.0.1", port)
            assert raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1  # as asyncio
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
            assert raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
            assert transport.get_extra_info("peername") == ("10.0.0.1", port)
            transport.close()
        server.close()
        await server.wait_closed()

    net.run(main())


def test_names_resolve_through_the_hosts_table_and_unknown_names_raise_gaierror() -> None:
    net = two_hosts()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo("db", 80, type=socket.SOCK_STREAM)
        assert infos == [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", 80))]
        assert (await loop.getaddrinfo("localhost", "80"))[0][4] == ("127.0.0.1", 80)
        with pytest.raises(socket.gaierror):
            await loop.getaddrinfo("nowhere.example", 80)
        with net.host("client"), pytest.raises(socket.gaierror):
            await asyncio.open_connection("nowhere.example", 80)

    net.run(main())


def test_bad_use_raises_what_asyncio_raises_and_leaks_nothing() -> None:
    net = two_hosts()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with net.host("server"):
            server = await loop.create_server(Echo, port=9004)
            with pytest.raises(OSError) as in_use:
                await loop.create_server(Echo, port=9004)
            assert in_use.value.errno == errno.EADDRINUSE
        with net.host("client"):
            with pytest.raises(ConnectionRefusedError) as refused:
                await asyncio.open_connection("server", 9999)
            assert refused.value.errno == errno.ECONNREFUSED
            with pytest.raises(NotImplementedError, match="create_connection"):
                await loop.create_connection(Echo, sock=socket.socket())
            with pytest.raises(NotImplementedError, match="create_server"):
                await loop.create_server(Echo, sock=socket.socket())
            with pytest.raises(NotImplementedError, match="create_unix_connection"):
                await loop.create_unix_connection(Echo, "/tmp/nowhere")
            with pytest.raises(NotImplementedError, match="sock_recv"):
                await loop.sock_recv(socket.socket(), 1)
        with pytest.raises(RuntimeError, match="no simtcp host chosen"):
            await asyncio.open_connection("server", 9004)
        server.close()
        await server.wait_closed()
        assert asyncio.all_tasks() == {asyncio.current_task()}

    net.run(main())
    for host in net.hosts.values():
        driver = host.bound_driver()
        assert driver.connection_count == 0
        assert not driver._servers


def test_a_reset_peer_gives_connection_reset_error_once() -> None:
    net = two_hosts()

    class Resetter(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            linger = struct.pack("ii", 1, 0)  # close() is then an RST, as the kernel's
            transport.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, linger
            )
            transport.abort()

    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        with net.host("server"):
            server = await loop.create_server(Resetter, port=9005)
        with net.host("client"):
            transport, protocol = await loop.create_connection(Recorder, "server", 9005)
            await protocol.done
            transport.write(b"after")  # dropped, as asyncio does on a lost transport
            reader, writer = await asyncio.open_connection("server", 9005)
            with pytest.raises(ConnectionResetError):
                await reader.read(10)
            writer.close()
        server.close()
        return protocol.calls

    assert net.run(main()) == ["connection_made", ("connection_lost", "ConnectionResetError")]


def test_datagram_endpoint_is_an_asyncio_datagram_transport_and_hears_port_unreachable() -> None:
    net = two_hosts()

    class Udp(asyncio.DatagramProtocol):
        def __init__(self) -> None:
            self.events: list[Any] = []
            self.got = asyncio.get_running_loop().create_future()

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.events.append((data, addr[0]))
            if not self.got.done():
                self.got.set_result(None)

        def error_received(self, exc: Exception) -> None:
            self.events.append(type(exc).__name__)
            if not self.got.done():
                self.got.set_result(None)

    class UdpEcho(asyncio.DatagramProtocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.transport.sendto(data, addr)

    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        with net.host("server"):
            await loop.create_datagram_endpoint(UdpEcho, local_addr=("0.0.0.0", 5353))
        with net.host("client"):
            transport, protocol = await loop.create_datagram_endpoint(
                Udp, remote_addr=("server", 5353)
            )
            assert isinstance(transport, asyncio.DatagramTransport)
            transport.sendto(b"ping")
            await protocol.got
            closed, lost = await loop.create_datagram_endpoint(Udp, remote_addr=("server", 9))
            closed.sendto(b"anyone?")
            await lost.got
        return protocol.events[:1] + lost.events

    # (the stack's ICMP event does not quote ports: every endpoint connected to that host
    # hears it, see simtcp/aio/datagram.py, so only the first event of the echo's is checked)
    assert net.run(main()) == [(b"ping", "10.0.0.1"), "ConnectionRefusedError"]


def test_streams_of_asyncio_run_over_the_transport() -> None:
    net = two_hosts(profile=LinkProfile(delay=500, loss=0.05, reorder=0.05))

    async def main() -> bytes:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            line = await reader.readline()
            writer.write(line.upper())
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        with net.host("server"):
            server = await asyncio.start_server(handle, "0.0.0.0", 9006)
        with net.host("client"):
            reader, writer = await asyncio.open_connection("server", 9006)
            assert isinstance(writer.transport, StreamTransport)
            writer.write(b"hello simtcp\n")
            answer = await reader.read()
            writer.close()
            await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return answer

    assert net.run(main()) == b"HELLO SIMTCP\n"


def self_signed(tmp_path: Any, name: str) -> tuple[str, str]:
    """A throwaway certificate for ``name`` and its key, as PEM files."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=36500))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


def test_tls_through_asyncio_sslproto_over_the_simtcp_transport(tmp_path: Any) -> None:
    import ssl

    cert, key = self_signed(tmp_path, "server")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=cert)
    net = two_hosts(profile=LinkProfile(delay=1_000, loss=0.05))

    async def main() -> tuple[bytes, str]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write((await reader.readline()).upper())
            await writer.drain()
            writer.close()

        with net.host("server"):
            server = await asyncio.start_server(handle, port=8443, ssl=server_context)
        with net.host("client"):
            reader, writer = await asyncio.open_connection("server", 8443, ssl=client_context)
            writer.write(b"secret hello\n" * 1000)
            answer = await reader.readline()
            version = writer.get_extra_info("ssl_object").version()
            writer.close()
            with pytest.raises(ssl.SSLCertVerificationError):
                await asyncio.open_connection("server", 8443, ssl=ssl.create_default_context())
        server.close()
        return answer, version

    assert net.run(main()) == (b"SECRET HELLO\n", "TLSv1.3")
