"""TCP Fast Open (RFC 7413) against the kernel's own, over TAP (issue 15).

The kernel in a namespace we make, with ``net.ipv4.tcp_fastopen=3`` there
(client and server), is first a TFO client of a simtcp server, then a TFO
server for a simtcp client. Each side's first connection fetches a cookie;
the second carries its request in the SYN, and the peer takes it.
Asserted on simtcp's own counters and on the bytes; skipped with the reason
when the namespace has no such sysctl.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from .conftest import link_exists, nsexec, unique_name

if TYPE_CHECKING:
    from simtcp import Stack
    from simtcp.backends.tap import TapDevice, TapLoop

pytestmark = pytest.mark.timeout(120)

STACK = "10.0.0.1"
KERNEL = "10.0.0.2"
REQUEST = b"hello over fast open"

KERNEL_CLIENT = """
import socket, sys
MSG_FASTOPEN = 0x20000000
for _ in range(2):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.sendto(sys.argv[2].encode(), MSG_FASTOPEN, (sys.argv[1], 7))  # blocking: connects
    sock.settimeout(20)
    got = b""
    while len(got) < len(sys.argv[2]):
        data = sock.recv(65536)
        if not data:
            break
        got += data
    sock.close()
    print(got.decode())
"""

KERNEL_SERVER = """
import socket, sys
TCP_FASTOPEN = 23
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.setsockopt(socket.IPPROTO_TCP, TCP_FASTOPEN, 16)
listener.bind((sys.argv[1], 7))
listener.listen(16)
print("ready", flush=True)
listener.settimeout(30)
for _ in range(2):
    conn, _ = listener.accept()
    conn.settimeout(20)
    data = conn.recv(65536)
    conn.sendall(data)
    conn.close()
"""


def fast_open_namespace(make_netns: Callable[[], str]) -> str:
    netns = make_netns()
    result = nsexec(netns, "sysctl", "-w", "net.ipv4.tcp_fastopen=3")
    if result.returncode != 0:
        pytest.skip(f"no net.ipv4.tcp_fastopen in a namespace: {result.stderr.strip()}")
    return netns


def tap_stack(netns: str, name: str) -> tuple[Stack, TapDevice]:
    from simtcp import Stack, StackConfig
    from simtcp.backends.tap import TapDevice, stack_mac
    from simtcp.config import TcpConfig

    device = TapDevice.create(
        name, interface="eth0", namespace=netns, kernel_address=f"{KERNEL}/24"
    )
    tcp = TcpConfig(fast_open_client=True, fast_open_server=True)
    stack = Stack(StackConfig(seed=5, tcp=tcp))
    stack.add_interface("eth0", mac=stack_mac(5, "eth0"))
    stack.add_address("eth0", f"{STACK}/24")
    return stack, device


def test_kernel_fast_open_client_against_simtcp(make_netns: Callable[[], str]) -> None:
    from simtcp.backends.tap import TapLoop
    from simtcp.events import DataReceived, Event

    netns = fast_open_namespace(make_netns)
    name = unique_name("tfo")
    stack, device = tap_stack(netns, name)
    stack.tcp_listen(7, fast_open_queue=16)
    seen: list[tuple[str, bytes]] = []

    def on_event(event: Event, now: int) -> None:
        if isinstance(event, DataReceived):
            state = stack.tcp_info(event.connection).state
            data = stack.receive(event.connection, now=now)
            seen.append((state, data))
            stack.send(event.connection, data, now=now)
            stack.shutdown(event.connection, now=now)

    loop = TapLoop(stack, [device], on_event=on_event)
    client = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            netns,
            sys.executable,
            "-c",
            KERNEL_CLIENT,
            STACK,
            REQUEST.decode(),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while client.poll() is None and time.monotonic() < deadline:
            loop.run_once()
        out, err = client.communicate(timeout=10)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
        loop.close()
        device.close()
    assert not link_exists(name, netns)
    assert client.returncode == 0, err
    assert out.split() == REQUEST.decode().split() * 2
    stats = stack.stats.as_dict()
    print(f"\nserver states at the request: {[state for state, _ in seen]}; {stats}")
    assert stats.get("tcp.fast_open_cookie_request") == 1  # the kernel's first SYN asked
    assert stats.get("tcp.fast_open_accepted") == 1  # its second SYN carried the request
    assert seen[1] == ("SYN-RECEIVED", REQUEST)


def connect_and_wait(stack: Stack, loop: TapLoop, done: set[int]) -> int:
    """Connect with REQUEST as data; run the loop until the connection is closed."""
    handle = stack.tcp_connect(KERNEL, 7, data=REQUEST, now=loop.clock())
    deadline = time.monotonic() + 20
    while handle not in done and time.monotonic() < deadline:
        loop.run_once()
    return handle


def test_simtcp_fast_open_client_against_the_kernel(make_netns: Callable[[], str]) -> None:
    from simtcp.backends.tap import TapLoop
    from simtcp.events import ConnectionClosed, DataReceived, Event, PeerClosed

    netns = fast_open_namespace(make_netns)
    name = unique_name("tfo")
    stack, device = tap_stack(netns, name)
    server = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c", KERNEL_SERVER, KERNEL],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    answers: dict[int, bytes] = {}
    done: set[int] = set()

    def on_event(event: Event, now: int) -> None:
        if isinstance(event, DataReceived):
            data = stack.receive(event.connection, now=now)
            answers[event.connection] = answers.get(event.connection, b"") + data
        elif isinstance(event, PeerClosed):
            stack.close(event.connection, now=now)
        elif isinstance(event, ConnectionClosed):
            done.add(event.connection)

    loop = TapLoop(stack, [device], on_event=on_event)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        handles = [connect_and_wait(stack, loop, done) for _ in range(2)]
        server.wait(timeout=20)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        loop.close()
        device.close()
    assert not link_exists(name, netns)
    assert [answers.get(handle) for handle in handles] == [REQUEST, REQUEST]
    stats = stack.stats.as_dict()
    print(f"\n{stats}")
    assert stats.get("tcp.fast_open_cookie_requested") == 1
    assert stats.get("tcp.fast_open_cookie_cached", 0) >= 1  # the kernel's cookie
    assert stats.get("tcp.fast_open_syn_data_sent") == 1
    assert stats.get("tcp.fast_open_syn_data_acked") == 1  # the kernel took the SYN's data
