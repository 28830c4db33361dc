"""Kernel TCP clients (socket code inside the namespace) against simtcp's echo on port 80."""

from __future__ import annotations

import json

import pytest

from .conftest import TCP_TOOL, ServerProcess, ns_python

pytestmark = pytest.mark.timeout(180)


def echo_clients(
    server: ServerProcess,
    *,
    count: int,
    size: int,
    host: str = "10.0.0.1",
    port: int = 80,
    timeout: float = 90,
) -> dict[str, object]:
    result = ns_python(
        server.netns,
        str(TCP_TOOL),
        "clients",
        "--host",
        host,
        "--port",
        str(port),
        "--count",
        str(count),
        "--bytes",
        str(size),
        "--timeout",
        str(timeout),
        timeout=timeout * 2 + 10,
        check=False,
    )
    assert result.stdout.strip(), f"no summary; stderr: {result.stderr}\n{server.output()}"
    summary: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


def test_sixteen_concurrent_clients_each_echo_512_kib(server: ServerProcess) -> None:
    summary = echo_clients(server, count=16, size=512 * 1024)
    assert summary["ok"] == 16, summary


def test_one_8_mib_stream_is_echoed_intact(server: ServerProcess) -> None:
    summary = echo_clients(server, count=1, size=8 * 1024 * 1024)
    assert summary["ok"] == 1, summary


def test_connections_one_after_another_reuse_the_listener(server: ServerProcess) -> None:
    for round_number in range(3):
        summary = echo_clients(server, count=4, size=4096)
        assert summary["ok"] == 4, (round_number, summary)
