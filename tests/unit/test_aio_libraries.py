"""Unmodified aiohttp and websockets on simtcp hosts, over lossy links, in virtual time.

Sizes: the aiohttp run is the issue's (2,000 keep-alive requests, 20 MB up and
20 MB down over 5% loss + 5% reordering); ``SIMTCP_AIOHTTP_MB`` shrinks or
grows the transfer. The replay test runs a smaller exchange twice from one
seed and compares the pcap of the server's link byte for byte.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from typing import Any

import aiohttp
import pytest
import websockets
from aiohttp import web
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from simtcp.backends.aio_sim import SimNetwork
from simtcp.backends.sim import LinkProfile

LOSSY = LinkProfile(delay=1_000, loss=0.05, reorder=0.05)
MB = 1_000_000
FIXED_DATE = "Thu, 01 Jan 2026 00:00:00 GMT"  # aiohttp stamps the wall clock otherwise


def lossy_network(seed: int) -> SimNetwork:
    net = SimNetwork(seed)
    net.add_host("server", profile=LOSSY)
    net.add_host("client", profile=LOSSY)
    return net


def make_app() -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"hello {request.match_info['n']}")

    async def upload(request: web.Request) -> web.Response:
        digest, size = hashlib.sha256(), 0
        async for chunk in request.content.iter_chunked(65536):
            digest.update(chunk)
            size += len(chunk)
        return web.json_response({"size": size, "sha256": digest.hexdigest()})

    async def download(request: web.Request) -> web.StreamResponse:
        size = int(request.query["size"])
        response = web.StreamResponse()
        response.content_length = size
        await response.prepare(request)
        block = bytes(range(256)) * 256
        for offset in range(0, size, len(block)):
            await response.write(block[: size - offset])
        await response.write_eof()
        return response

    async def fixed_date(request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Date"] = FIXED_DATE

    app = web.Application()
    app.router.add_get("/hello/{n}", hello)
    app.router.add_post("/upload", upload)
    app.router.add_get("/download", download)
    app.on_response_prepare.append(fixed_date)
    return app


async def http_exchange(net: SimNetwork, requests: int, size: int) -> dict[str, Any]:
    with net.host("server"):
        runner = web.AppRunner(make_app())
        await runner.setup()
        site = web.TCPSite(runner, "0.0.0.0", 8080)
        await site.start()
    payload = bytes(index % 251 for index in range(size))
    result: dict[str, Any] = {}
    with net.host("client"):
        connector = aiohttp.TCPConnector(limit=1)  # one keep-alive connection
        async with aiohttp.ClientSession(connector=connector) as session:
            texts = []
            for index in range(requests):
                async with session.get(f"http://server:8080/hello/{index}") as response:
                    texts.append(await response.text())
            result["hello_ok"] = texts == [f"hello {index}" for index in range(requests)]

            async def chunks() -> Any:
                for offset in range(0, size, 65536):
                    yield payload[offset : offset + 65536]

            async with session.post("http://server:8080/upload", data=chunks()) as response:
                result["upload"] = await response.json()
            async with session.get(f"http://server:8080/download?size={size}") as response:
                body = await response.read()
            block = bytes(range(256)) * 256
            expected = (block * (size // len(block) + 1))[:size]
            result["download_ok"] = body == expected
        result["payload_sha256"] = hashlib.sha256(payload).hexdigest()
    await runner.cleanup()
    result["virtual_seconds"] = asyncio.get_running_loop().time()
    return result


def run_http(seed: int, requests: int, size: int) -> tuple[dict[str, Any], str]:
    net = lossy_network(seed)
    capture = io.BytesIO()
    loop = net.loop_factory()
    net.simulator.add_pcap(net.links["server"], capture)
    try:
        result = loop.run_until_complete(http_exchange(net, requests, size))
    finally:
        loop.close()
    return result, hashlib.sha256(capture.getvalue()).hexdigest()


def test_aiohttp_keep_alive_and_streaming_over_loss_and_reordering_every_body_intact() -> None:
    size = int(float(os.environ.get("SIMTCP_AIOHTTP_MB", "20")) * MB)
    result, _ = run_http(7, 2_000, size)
    assert result["hello_ok"]
    assert result["upload"] == {"size": size, "sha256": result["payload_sha256"]}
    assert result["download_ok"]


def test_aiohttp_run_replays_byte_for_byte_from_its_seed() -> None:
    first = run_http(11, 200, 1 * MB)
    second = run_http(11, 200, 1 * MB)
    assert first[0]["download_ok"] and first[0]["hello_ok"]
    assert first == second  # same virtual time, same pcap digest


def test_websockets_echo_1000_messages_under_loss_with_rfc6455_close_codes() -> None:
    net = lossy_network(5)

    async def main() -> dict[str, Any]:
        server_codes: list[int | None] = []

        async def echo(ws: Any) -> None:
            if ws.request.path == "/policy":
                await ws.close(1008, "policy violation")  # RFC 6455 §7.4.1
                return
            async for message in ws:
                await ws.send(message)
            server_codes.append(ws.close_code)

        with net.host("server"):
            server = await serve(echo, "0.0.0.0", 8765)
        with net.host("client"):
            async with connect("ws://server:8765/echo") as ws:
                echoed = []
                for index in range(1_000):
                    await ws.send(f"message {index}")
                    echoed.append(await ws.recv())
            client_code = ws.close_code
            async with connect("ws://server:8765/policy") as ws:
                with pytest.raises(websockets.exceptions.ConnectionClosedError) as closed:
                    await ws.recv()
        server.close()
        await server.wait_closed()
        assert closed.value.rcvd is not None
        return {
            "echo_ok": echoed == [f"message {index}" for index in range(1_000)],
            "client_code": client_code,
            "server_codes": server_codes,
            "policy": (closed.value.rcvd.code, closed.value.rcvd.reason),
        }

    result = net.run(main())
    assert result == {
        "echo_ok": True,
        "client_code": 1000,  # RFC 6455 §7.4.1: normal closure
        "server_codes": [1000],
        "policy": (1008, "policy violation"),
    }
