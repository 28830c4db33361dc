"""The Protocol callback contract, with asyncio's own loop over kernel loopback as the oracle.

Hypothesis writes a script (writes, pause/resume of reading, write_eof, close,
abort, a reset from the peer); the same script runs against an echo server on
asyncio's selector loop over 127.0.0.1 and on simtcp in virtual time, and the
client protocol's callback sequences must be equal. Between steps both sides
let the network settle (the kernel side sleeps a little on the wall clock: it
talks to the real kernel).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp.backends.aio_sim import SimNetwork
from simtcp.backends.sim import LinkProfile

KERNEL_SETTLE = 0.03  # seconds of wall clock for loopback to deliver everything
SIM_SETTLE = 0.05  # seconds of virtual time (links of 0.5 ms)


class Client(asyncio.Protocol):
    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.calls.append("connection_made")

    def data_received(self, data: bytes) -> None:
        if self.calls and isinstance(self.calls[-1], int):
            self.calls[-1] += len(data)
        else:
            self.calls.append(len(data))

    def eof_received(self) -> None:
        self.calls.append("eof_received")

    def pause_writing(self) -> None:
        self.calls.append("pause_writing")

    def resume_writing(self) -> None:
        self.calls.append("resume_writing")

    def connection_lost(self, exc: BaseException | None) -> None:
        self.calls.append(("connection_lost", type(exc).__name__ if exc else None))
        self.lost.set_result(None)


class EchoServer(asyncio.Protocol):
    instances: list[EchoServer]

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.instances.append(self)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


steps = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.integers(1, 20_000)),
        st.tuples(st.just("pause")),
        st.tuples(st.just("resume")),
    ),
    max_size=5,
)
endings = st.sampled_from(["eof", "close", "abort", "reset", "none"])


async def play(
    script: list[tuple[Any, ...]],
    ending: str,
    port: int,
    host: str,
    settle: float,
    servers: list[EchoServer],
) -> list[Any]:
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_connection(Client, host, port)
    await asyncio.sleep(settle)
    paused = False
    for step in script:
        if step[0] == "write":
            transport.write(b"x" * step[1])
        elif step[0] == "pause":
            transport.pause_reading()
            paused = True
        else:
            transport.resume_reading()
            paused = False
        await asyncio.sleep(settle)
    if paused:
        transport.resume_reading()
        await asyncio.sleep(settle)
    if ending == "eof":
        transport.write_eof()
    elif ending == "close":
        transport.close()
    elif ending == "abort":
        transport.abort()
    elif ending == "reset":
        peer = servers[-1].transport  # SO_LINGER {1, 0}: the peer's close is an RST
        peer.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        peer.abort()
    else:
        transport.close()
    await asyncio.wait_for(client.lost, 10)
    return client.calls


def on_kernel(script: list[tuple[Any, ...]], ending: str) -> list[Any]:
    async def main() -> list[Any]:
        EchoServer.instances = []
        server = await asyncio.get_running_loop().create_server(EchoServer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await play(
                script, ending, port, "127.0.0.1", KERNEL_SETTLE, EchoServer.instances
            )
        finally:
            server.close()

    return asyncio.run(main())


def on_simtcp(script: list[tuple[Any, ...]], ending: str) -> list[Any]:
    net = SimNetwork(1)
    net.add_host("server", profile=LinkProfile(delay=500))
    net.add_host("client", profile=LinkProfile(delay=500))

    async def main() -> list[Any]:
        EchoServer.instances = []
        with net.host("server"):
            server = await asyncio.get_running_loop().create_server(EchoServer, port=7)
        with net.host("client"):
            try:
                return await play(script, ending, 7, "server", SIM_SETTLE, EchoServer.instances)
            finally:
                server.close()

    return net.run(main())


@settings(max_examples=12, deadline=None)
@given(script=steps, ending=endings)
def test_the_callback_sequence_matches_asyncio_over_the_kernel(
    script: list[tuple[Any, ...]], ending: str
) -> None:
    assert on_simtcp(script, ending) == on_kernel(script, ending)
