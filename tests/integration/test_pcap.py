"""--pcap records every frame at the stack's boundary, with real timestamps."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from simtcp.wire.checksum import internet_checksum
from simtcp.wire.offload import l4_checksum_ok
from simtcp.wire.pcap import read_pcap

from .conftest import ServerProcess, nsexec
from .test_tcp_echo import echo_clients

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


def test_pcap_wire_records_what_the_wire_carries(
    start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """Offloads on: 64 KiB segments with partial checksums cross the TAP; --pcap-wire records
    them cut to the MTU with every checksum right, as tcpdump -vv on a wire would see them."""
    capture = tmp_path / "wire.pcap"
    server = start_server(extra=("--pcap", str(capture), "--pcap-wire"))
    assert "offloads on" in server.output()
    summary = echo_clients(server, count=1, size=1024 * 1024)
    assert summary["ok"] == 1, summary
    assert server.stop() == 0
    with capture.open("rb") as stream:
        frames = [frame for _, frame in read_pcap(stream) if frame[12:14] == b"\x08\x00"]
    tcp = [frame for frame in frames if frame[23] == 6]
    assert sum(len(frame) - 54 for frame in tcp) >= 2 * 1024 * 1024  # both directions
    assert max(len(frame) for frame in frames) <= 1514
    for frame in frames:
        assert internet_checksum(frame[14:34]) == 0
        assert l4_checksum_ok(frame[14:]), frame[:64].hex()
