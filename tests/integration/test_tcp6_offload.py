"""TCP over IPv6 through simtcp's TAP with offloads on (the seed server's default).

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

import pytest

from .conftest import ServerProcess
from .test_ipv6_tap import STACK0
from .test_tcp6_echo import echo_clients, wait_reachable

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
