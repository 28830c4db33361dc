"""--pcap records every frame at the stack's boundary, with real timestamps."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from simtcp.wire.pcap import read_pcap

from .conftest import ServerProcess, nsexec

pytestmark = pytest.mark.timeout(60)


def test_pcap_holds_the_ping_exchange(
    start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    capture = tmp_path / "serve.pcap"
    server = start_server(extra=("--pcap", str(capture)))
    started_us = time.time_ns() // 1000
    nsexec(server.netns, "ping", "-c", "3", "-i", "0.05", "-W", "2", "10.0.0.1", check=True)
    assert server.stop() == 0
    with capture.open("rb") as stream:
        records = list(read_pcap(stream))
    icmp = [frame for _, frame in records if frame[12:14] == b"\x08\x00" and frame[23] == 1]
    requests = [frame for frame in icmp if frame[34] == 8]
    replies = [frame for frame in icmp if frame[34] == 0]
    assert len(requests) == 3 and len(replies) == 3
    assert any(frame[12:14] == b"\x08\x06" for _, frame in records)  # ARP too
    stamps = [stamp for stamp, _ in records]
    assert stamps == sorted(stamps)
    assert started_us - 5_000_000 < stamps[0] < time.time_ns() // 1000
