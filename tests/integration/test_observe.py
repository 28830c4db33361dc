"""simtcp plot from a tcpdump capture of a kernel TCP connection (to simtcp's echo over TAP)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from simtcp.programs import plot
from simtcp.programs.tcpseries import from_pcap

from .conftest import ServerProcess
from .test_tcp_echo import echo_clients

pytestmark = pytest.mark.timeout(120)
SIZE = 512 * 1024


def _tcpdump(server: ServerProcess, path: Path) -> subprocess.Popen[str]:
    # -Z root: tcpdump's own privilege drop left it capturing nothing into a root-owned tmp dir.
    argv = ["ip", "netns", "exec", server.netns, "tcpdump", "-Z", "root", "-i", server.tap0,
            "-U", "-n", "-s", "128", "-w", str(path), "tcp"]  # fmt: skip
    capture = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    assert capture.stderr is not None
    line = capture.stderr.readline()  # "tcpdump: listening on ..." once it captures
    assert "listening" in line, line
    return capture


def test_plot_of_a_kernel_connection_captured_by_tcpdump(
    server: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture_path = tmp_path / "kernel.pcap"
    capture = _tcpdump(server, capture_path)
    try:
        summary = echo_clients(server, count=1, size=SIZE)
        time.sleep(0.5)  # tcpdump -U writes each packet; let the last ones land
    finally:
        capture.send_signal(signal.SIGINT)
        _, report = capture.communicate(timeout=10)
    assert summary["ok"] == 1, summary
    assert capture_path.stat().st_size > 24, report
    with capture_path.open("rb") as stream:
        series = from_pcap(stream)
    # Echo: both directions carry SIZE bytes; either is the busiest, and the other acks it.
    source, _, destination = series.flow.partition(">")
    assert "10.0.0.1:80" in (source, destination)
    assert series.data[0][1] == 0
    assert max(end for _, _, end in series.data + series.retransmits) == SIZE
    assert max(ack for _, ack in series.acks) >= SIZE  # the FIN's ACK may be one more
    assert len(series.rtt_samples) > 10 and all(rtt >= 0 for _, rtt in series.rtt_samples)
    assert all(right > ack for (_, ack), (_, right) in zip(series.acks, series.window, strict=True))
    assert sum(rate for _, rate in series.goodput) > 0
    image = tmp_path / "kernel.png"
    assert plot.main([str(capture_path), "-o", str(image), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["flow"] == series.flow
    assert image.read_bytes()[:4] == b"\x89PNG"
