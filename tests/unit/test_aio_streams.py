"""asyncio-shaped streams, servers and datagram endpoints over the simulator, in virtual time.

Each test runs an asyncio program in a VirtualTimeLoop (no wall-clock waits)
and ends with the timer audit of test_aio_harness: never more than one live
driver timer, always at poll_at().
"""

from __future__ import annotations

import asyncio
import errno
import time
from typing import Any

import pytest
from test_aio_harness import (
    CLIENT_ADDRESS,
    SERVER_ADDRESS,
    AuditedLoop,
    echo_handler,
    make_stack,
    network,
)

from simtcp.backends.aio_sim import VirtualTimeDeadlock, VirtualTimeLoop
from simtcp.backends.sim import LinkProfile, Simulator
from simtcp.events import EchoReplyReceived, Event
from simtcp.tcp.config import TcpConfig
from simtcp.time import SECOND


def test_echo_with_lines_exact_reads_and_addresses() -> None:
    net = network()

    async def main() -> None:
        server = await net.server.start_server(echo_handler, SERVER_ADDRESS, 7)
        assert server.is_serving()
        assert server.sockets[0].getsockname() == (SERVER_ADDRESS, 7)
        reader, writer = await net.client.open_connection(SERVER_ADDRESS, 7)
        peer, local = writer.get_extra_info("peername"), writer.get_extra_info("sockname")
        assert peer == (SERVER_ADDRESS, 7)
        assert local[0] == CLIENT_ADDRESS and 1024 <= local[1] <= 65535
        assert writer.get_extra_info("nonsense", "default") == "default"
        writer.write(b"first line\nsecond")
        writer.writelines([b" line\n", b"0123456789", b"tail:end"])
        assert await reader.readline() == b"first line\n"
        assert await reader.readline() == b"second line\n"
        assert await reader.readexactly(4) == b"0123"
        assert await reader.read(6) == b"456789"
        assert await reader.readuntil(b":") == b"tail:"
        writer.write_eof()
        with pytest.raises(RuntimeError):
            writer.write(b"after eof")
        with pytest.raises(asyncio.IncompleteReadError) as caught:
            await reader.readexactly(10)
        assert caught.value.partial == b"end"
        assert await reader.read() == b""
        assert reader.at_eof()
        writer.close()
        await writer.wait_closed()
        assert writer.is_closing()
        server.close()
        await server.wait_closed()

    net.run(main())
    assert net.loop.violations == []


def test_half_close_lets_the_server_answer_after_the_clients_eof() -> None:
    net = network()

    async def summing_handler(reader: Any, writer: Any) -> None:
        data = await reader.read()  # everything, until the client's FIN
        writer.write(f"{len(data)} bytes, sum {sum(data)}\n".encode())
        await writer.drain()
        writer.close()

    async def main() -> bytes:
        await net.server.start_server(summing_handler, SERVER_ADDRESS, 9)
        reader, writer = await net.client.open_connection(SERVER_ADDRESS, 9)
        writer.write(bytes(range(200)) * 100)
        writer.write_eof()
        answer = await reader.readline()
        assert await reader.read() == b""
        writer.close()
        return bytes(answer)

    assert net.run(main()) == f"20000 bytes, sum {sum(range(200)) * 100}\n".encode()
    assert net.loop.violations == []


def test_connect_to_a_closed_port_is_refused() -> None:
    net = network()

    async def main() -> None:
        with pytest.raises(ConnectionRefusedError):
            await net.client.open_connection(SERVER_ADDRESS, 81)

    net.run(main())
    assert net.client.connection_count == 0
    assert net.loop.violations == []


def test_connect_to_a_silent_host_times_out_in_virtual_time() -> None:
    tcp = TcpConfig(syn_retries=2, initial_rto=1 * SECOND)
    net = network(tcp=tcp)
    started = time.monotonic()

    async def main() -> float:
        begin = net.loop.time()
        with pytest.raises(TimeoutError) as caught:
            await net.client.open_connection("10.0.0.99", 80)
        assert caught.value.errno == errno.ETIMEDOUT
        return net.loop.time() - begin

    waited = net.run(main())
    assert waited >= 7.0  # 1 + 2 + 4 s of SYN backoff (RFC 6298 §5.5) before giving up
    assert time.monotonic() - started < 5.0
    assert net.client.timer_deadline == net.client.stack.poll_at()
    assert net.loop.violations == []


def test_no_route_is_enetunreach() -> None:
    net = network()

    async def main() -> None:
        with pytest.raises(OSError) as caught:
            await net.client.open_connection("192.0.2.1", 80)
        assert caught.value.errno == errno.ENETUNREACH

    net.run(main())


def test_reset_by_peer_raises_in_read_and_drain() -> None:
    net = network()

    async def abort_handler(reader: Any, writer: Any) -> None:
        await reader.readexactly(5)
        writer.transport.abort()

    async def main() -> None:
        await net.server.start_server(abort_handler, SERVER_ADDRESS, 7)
        reader, writer = await net.client.open_connection(SERVER_ADDRESS, 7)
        writer.write(b"hello")
        with pytest.raises(ConnectionResetError):
            await reader.read(10)
        with pytest.raises(ConnectionResetError):
            await writer.drain()
        writer.write(b"dropped silently, as asyncio does on a lost transport")
        assert reader.exception() is not None
        await writer.wait_closed()

    net.run(main())
    assert net.loop.violations == []


def test_readline_past_the_limit_is_valueerror_and_the_stream_goes_on() -> None:
    net = network()

    async def main() -> None:
        await net.server.start_server(echo_handler, SERVER_ADDRESS, 7)
        reader, writer = await net.client.open_connection(SERVER_ADDRESS, 7, limit=16)
        writer.write(b"x" * 40 + b"\nshort\n")
        with pytest.raises(ValueError):
            await reader.readline()
        lines = []
        while not lines or lines[-1] != b"short\n":
            try:  # each overrun drops what it looked at, as asyncio's readline does
                lines.append(await reader.readline())
            except ValueError:
                lines.append(b"overrun")
        assert lines[-2:] == [b"x" * 6 + b"\n", b"short\n"]
        writer.close()

    net.run(main())


def test_serve_forever_ends_with_close_and_wait_closed_waits_for_handlers() -> None:
    net = network()
    finished: list[str] = []

    async def slow_handler(reader: Any, writer: Any) -> None:
        await reader.read()
        await asyncio.sleep(2.0)
        finished.append("handler")

    async def main() -> None:
        server = await net.server.start_server(slow_handler, SERVER_ADDRESS, 7, start_serving=False)
        assert not server.is_serving()
        forever = asyncio.ensure_future(server.serve_forever())
        await asyncio.sleep(0.01)
        reader, writer = await net.client.open_connection(SERVER_ADDRESS, 7)
        writer.write_eof()
        await asyncio.sleep(0.5)
        closed_at = net.loop.time()
        server.close()
        assert finished == []
        with pytest.raises(asyncio.CancelledError):
            await forever  # it waits for wait_closed(), which waits for the handler
        assert finished == ["handler"]
        assert net.loop.time() >= closed_at + 1.4
        await server.wait_closed()
        assert await reader.read() == b""  # the handler's end closed the connection
        with pytest.raises(ConnectionRefusedError):
            await net.client.open_connection(SERVER_ADDRESS, 7)

    net.run(main())
    assert net.loop.violations == []


def test_server_as_async_context_manager_and_handler_exception_aborts() -> None:
    net = network()
    errors: list[dict[str, Any]] = []
    net.loop.set_exception_handler(lambda loop, context: errors.append(context))

    async def failing_handler(reader: Any, writer: Any) -> None:
        await reader.readexactly(3)
        raise KeyError("handler bug")

    async def main() -> None:
        async with await net.server.start_server(failing_handler, SERVER_ADDRESS, 7):
            reader, writer = await net.client.open_connection(SERVER_ADDRESS, 7)
            writer.write(b"abc")
            with pytest.raises(ConnectionResetError):
                await reader.read(1)

    net.run(main())
    assert [type(context["exception"]) for context in errors] == [KeyError]


def test_datagram_endpoints_echo_and_connected_endpoint_hears_port_unreachable() -> None:
    net = network()

    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.transport.sendto(data.upper(), addr)

    class Client(asyncio.DatagramProtocol):
        def __init__(self) -> None:
            self.received: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
            self.errors: list[Exception] = []
            self.lost = False

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.received.put_nowait((data, addr))

        def error_received(self, exc: Exception) -> None:
            self.errors.append(exc)

        def connection_lost(self, exc: Exception | None) -> None:
            self.lost = True

    async def main() -> None:
        server, _ = await net.server.create_datagram_endpoint(Echo, local_addr=(SERVER_ADDRESS, 7))
        assert server.get_extra_info("sockname") == (SERVER_ADDRESS, 7)
        transport, client = await net.client.create_datagram_endpoint(
            Client, remote_addr=(SERVER_ADDRESS, 7)
        )
        transport.sendto(b"hello")
        data, addr = await asyncio.wait_for(client.received.get(), 1.0)
        assert (data, addr) == (b"HELLO", (SERVER_ADDRESS, 7))
        with pytest.raises(ValueError):
            transport.sendto(b"elsewhere", (SERVER_ADDRESS, 8))
        stray, stray_client = await net.client.create_datagram_endpoint(
            Client, remote_addr=(SERVER_ADDRESS, 9)
        )
        stray.sendto(b"nobody listens")
        await asyncio.sleep(0.1)
        assert [type(error) for error in stray_client.errors] == [ConnectionRefusedError]
        transport.close()
        await asyncio.sleep(0)
        assert client.lost and transport.is_closing()
        server.close()

    net.run(main())
    assert net.loop.violations == []


def test_events_nobody_claims_go_to_on_event() -> None:
    sim = Simulator(1)
    loop = AuditedLoop(sim)
    seen: list[Event] = []
    loop.attach("a", make_stack(1, SERVER_ADDRESS, "02:00:00:00:00:01"))
    b = loop.attach("b", make_stack(2, CLIENT_ADDRESS, "02:00:00:00:00:02"), on_event=seen.append)
    sim.connect(("a", "eth0"), ("b", "eth0"), LinkProfile(delay=250))

    async def main() -> None:
        b.stack.ping(SERVER_ADDRESS, identifier=7, sequence=1, payload=b"hi", now=b.now())
        b.schedule_flush()
        await asyncio.sleep(0.1)

    loop.run(main())
    replies = [event for event in seen if isinstance(event, EchoReplyReceived)]
    assert [(reply.identifier, reply.payload) for reply in replies] == [(7, b"hi")]
    assert loop.violations == []


def test_virtual_sleep_is_exact_and_costs_no_wall_time() -> None:
    loop = VirtualTimeLoop(Simulator(0))
    started = time.monotonic()

    async def main() -> float:
        await asyncio.sleep(3600.25)
        return loop.time()

    assert loop.run(main()) == 3600.25
    assert loop.simulator.now == 3_600_250_000
    assert time.monotonic() - started < 1.0
    loop.close()


def test_waiting_for_what_can_never_happen_is_a_deadlock_not_a_hang() -> None:
    loop = VirtualTimeLoop(Simulator(0))

    async def main() -> None:
        await loop.create_future()  # nobody will ever resolve it

    with pytest.raises(VirtualTimeDeadlock):
        loop.run(main())
    loop.close()


def test_a_protocol_that_raises_is_reported_and_the_driver_goes_on() -> None:
    net = network()
    errors: list[dict[str, Any]] = []
    net.loop.set_exception_handler(lambda loop, context: errors.append(context))

    class Fragile(asyncio.DatagramProtocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            if data == b"boom":
                raise ZeroDivisionError("protocol bug")
            self.transport.sendto(data, addr)

    class Collect(asyncio.DatagramProtocol):
        def __init__(self) -> None:
            self.got: asyncio.Queue[bytes] = asyncio.Queue()

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.got.put_nowait(data)

    async def main() -> None:
        await net.server.create_datagram_endpoint(Fragile, local_addr=(SERVER_ADDRESS, 7))
        transport, collect = await net.client.create_datagram_endpoint(
            Collect, remote_addr=(SERVER_ADDRESS, 7)
        )
        transport.sendto(b"boom")
        transport.sendto(b"still there?")
        assert await asyncio.wait_for(collect.got.get(), 1.0) == b"still there?"

    net.run(main())
    assert [type(context["exception"]) for context in errors] == [ZeroDivisionError]
    assert net.loop.violations == []
