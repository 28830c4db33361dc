"""asyncio over IPv6 on dual-stack simulated hosts, in virtual time: streams, servers,
datagrams, names, and unmodified aiohttp, with the socket module's address shapes."""

from __future__ import annotations

import asyncio
import hashlib
import socket
from typing import Any

import aiohttp
from aiohttp import web

from simtcp.backends.aio_sim import SimNetwork
from simtcp.backends.sim import LinkProfile

LOSSY = LinkProfile(delay=1_000, loss=0.03, reorder=0.03)


def dual_stack(seed: int = 1, profile: LinkProfile | None = None) -> SimNetwork:
    net = SimNetwork(seed, prefix6="2001:db8::/64")
    net.add_host("server", profile=profile)
    net.add_host("client", profile=profile)
    return net


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(await reader.read(100))
    await writer.drain()
    writer.close()


def test_streams_over_ipv6_literals_and_names_with_4_tuple_peernames() -> None:
    net = dual_stack()

    async def main() -> None:
        with net.host("server"):
            server = await asyncio.start_server(echo, "::", 7)
            assert server.sockets[0].getsockname() == ("::", 7, 0, 0)
            assert server.sockets[0].family == socket.AF_INET6
        with net.host("client"):
            for host in ("2001:db8::1", "[2001:db8::1]"):
                reader, writer = await asyncio.open_connection(host, 7)
                assert writer.get_extra_info("peername") == ("2001:db8::1", 7, 0, 0)
                sockname = writer.get_extra_info("sockname")
                assert sockname[0] == "2001:db8::2" and len(sockname) == 4
                assert writer.get_extra_info("socket").family == socket.AF_INET6
                writer.write(b"hello six")
                assert await reader.read(100) == b"hello six"
                writer.close()
            # The name has both families; asking for AF_INET6 takes the IPv6 one.
            reader, writer = await asyncio.open_connection("server", 7, family=socket.AF_INET6)
            assert writer.get_extra_info("peername")[0] == "2001:db8::1"
            writer.close()
        server.close()
        await server.wait_closed()

    net.run(main())


def test_the_ipv6_only_wildcard_refuses_ipv4_and_the_default_takes_both() -> None:
    net = dual_stack()

    async def main() -> None:
        with net.host("server"):
            six = await asyncio.start_server(echo, "::", 7)
            both = await asyncio.start_server(echo, None, 8)
        with net.host("client"):
            try:
                await asyncio.open_connection("10.0.0.1", 7)
            except ConnectionRefusedError:
                pass
            else:
                raise AssertionError("an IPv4 client reached an IPv6-only listener")
            for host in ("10.0.0.1", "2001:db8::1"):
                reader, writer = await asyncio.open_connection(host, 8)
                writer.write(host.encode())
                assert await reader.read(100) == host.encode()
                writer.close()
        six.close()
        both.close()

    net.run(main())


def test_loopback_ipv6_on_a_dual_stack_host() -> None:
    net = dual_stack()

    async def main() -> None:
        with net.host("server"):
            server = await asyncio.start_server(echo, "::1", 9)
            reader, writer = await asyncio.open_connection("::1", 9)
            assert writer.get_extra_info("peername") == ("::1", 9, 0, 0)
            writer.write(b"lo")
            assert await reader.read(10) == b"lo"
            writer.close()
            server.close()

    net.run(main())


def test_datagrams_over_ipv6() -> None:
    net = dual_stack()

    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: Any) -> None:
            self.transport.sendto(data.upper(), addr)

    class Client(asyncio.DatagramProtocol):
        def __init__(self) -> None:
            self.got: asyncio.Future[tuple[bytes, Any]] = asyncio.get_running_loop().create_future()

        def datagram_received(self, data: bytes, addr: Any) -> None:
            self.got.set_result((data, addr))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with net.host("server"):
            server, _ = await loop.create_datagram_endpoint(Echo, local_addr=("::", 5353))
            assert server.get_extra_info("sockname") == ("::", 5353, 0, 0)
        with net.host("client"):
            transport, client = await loop.create_datagram_endpoint(
                Client, remote_addr=("2001:db8::1", 5353)
            )
            transport.sendto(b"quack")
            data, addr = await client.got
            assert (data, addr) == (b"QUACK", ("2001:db8::1", 5353, 0, 0))
            transport.close()
        server.close()

    net.run(main())


def make_app() -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"hello {request.remote}")

    async def download(request: web.Request) -> web.Response:
        return web.Response(body=bytes(index % 251 for index in range(int(request.query["n"]))))

    app = web.Application()
    app.router.add_get("/hello", hello)
    app.router.add_get("/download", download)
    return app


def test_aiohttp_unmodified_over_ipv6_through_loss_and_reordering() -> None:
    net = dual_stack(7, LOSSY)
    size = 2_000_000

    async def main() -> None:
        with net.host("server"):
            runner = web.AppRunner(make_app())
            await runner.setup()
            await web.TCPSite(runner, "::", 8080).start()
        with net.host("client"):
            async with aiohttp.ClientSession() as session:
                async with session.get("http://[2001:db8::1]:8080/hello") as response:
                    assert await response.text() == "hello 2001:db8::2"
                for _ in range(20):
                    async with session.get("http://[2001:db8::1]:8080/hello") as response:
                        assert response.status == 200
                url = f"http://[2001:db8::1]:8080/download?n={size}"
                async with session.get(url) as response:
                    body = await response.read()
        expected = bytes(index % 251 for index in range(size))
        assert hashlib.sha256(body).digest() == hashlib.sha256(expected).digest()
        await runner.cleanup()

    net.run(main())


def test_every_host_has_ipv6_loopback_even_without_an_ipv6_prefix() -> None:
    net = SimNetwork(3)
    net.add_host("solo")

    async def main() -> None:
        server = await asyncio.start_server(echo, "localhost", 9)
        assert {sock.getsockname()[0] for sock in server.sockets} == {"127.0.0.1", "::1"}
        for host in ("::1", "127.0.0.1"):
            reader, writer = await asyncio.open_connection(host, 9)
            writer.write(host.encode())
            assert await reader.read(20) == host.encode()
            writer.close()
        server.close()

    net.run(main())
