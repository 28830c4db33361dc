"""TCP over IPv6 through simtcp's TAP with offloads on (the seed server's default).

Also: kernel TCP routed through simtcp's IPv6 forwarding between two namespaces.
The kernel hands simtcp TSO6 super-segments for the host behind it too; the TAP
loop cuts those (IPv6 forwarding takes no ``gso_size``), else they would draw a
packet too big the sender's TCP never heeds (its MSS already fits).

The device is opened with ``TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6``, so the kernel
hands simtcp IPv6 TCP super-segments (virtio-net GSO TCPV6) with partial checksums,
and takes simtcp's own (``tx_header``'s NEEDS_CSUM and TCPV6) to cut on its side.
A kernel Python client echoes 8 MiB through port 80 over 2001:db8::1 and checks the
SHA-256 of what came back; the server's stop line must report GSO frames both ways
(only IPv6 crossed the TAP): GSO in says the kernel took ``TUN_F_TSO6``, GSO out
that simtcp's TCP built IPv6 super-segments. (Before IPv6 offloads both were 0.)
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import pytest

from .conftest import TCP_TOOL, ServerProcess, ns_python
from .test_ipv6_tap import BEHIND, STACK0, STACK1, ping6, received, routed6
from .test_tcp6_echo import echo_clients, wait_reachable

__all__ = ["routed6"]  # the fixture, shared with test_ipv6_tap

pytestmark = pytest.mark.timeout(240)

SIZE = 8 * 1024 * 1024


def test_kernel_echoes_8_mib_over_ipv6_with_tso6_both_ways(server: ServerProcess) -> None:
    wait_reachable(server, STACK0)
    summary = echo_clients(server, STACK0, count=1, size=SIZE)
    assert summary["ok"] == 1, (summary, server.output())
    assert server.stop() == 0
    stop = re.search(r"frames in \((\d+) GSO\), \d+ frames out \((\d+) GSO\)", server.output())
    assert stop is not None, server.output()
    gso_in, gso_out = int(stop.group(1)), int(stop.group(2))
    assert gso_in > 0, f"the kernel sent no TSO6 super-segment:\n{server.output()}"
    assert gso_out > 0, f"simtcp sent no IPv6 super-segment:\n{server.output()}"


ECHO6 = """
import socket, sys, threading
listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((sys.argv[1], 7007))
listener.listen(8)
print("listening", flush=True)
def serve(conn):
    with conn:
        while chunk := conn.recv(262144):
            conn.sendall(chunk)
while True:
    threading.Thread(target=serve, args=(listener.accept()[0],), daemon=True).start()
"""


def test_kernel_tcp_routed_through_simtcps_ipv6_forwarding_with_offloads(
    routed6: ServerProcess,
) -> None:
    assert received(ping6(routed6.netns1, STACK1)) >= 1  # simtcp's address passed DAD
    assert received(ping6(routed6.netns, BEHIND)) >= 1
    echo = subprocess.Popen(
        ["ip", "netns", "exec", routed6.netns1, sys.executable, "-c", ECHO6, BEHIND],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert echo.stdout is not None and echo.stdout.readline().strip() == "listening"
        result = ns_python(
            routed6.netns,
            str(TCP_TOOL),
            "clients",
            "--host",
            BEHIND,
            "--port",
            "7007",
            "--bytes",
            str(4 * 1024 * 1024),
            "--timeout",
            "60",
            timeout=120,
            check=False,
        )
        summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
        assert '"ok": 1' in summary, (summary, result.stderr, routed6.output())
    finally:
        echo.send_signal(signal.SIGTERM)  # the interpreter we started, by its PID
        try:
            echo.wait(timeout=10)
        except subprocess.TimeoutExpired:
            echo.kill()
            echo.wait()
