"""Kernel clients against simtcp serve: plots of their tcpdump capture, ss and stats listings."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from simtcp.programs import plot, status
from simtcp.programs.tcpseries import from_pcap

from .conftest import ServerProcess
from .test_tcp_echo import echo_clients

pytestmark = pytest.mark.timeout(120)
SIZE = 512 * 1024


def _tcpdump(server: ServerProcess, path: Path) -> subprocess.Popen[str]:
    # --immediate-mode: without it packets wait in the kernel's ring for a block to fill
    # or time out, and a SIGINT soon after the transfer can leave the file empty. No filter:
    # the ARP and ICMPv6 frames in the capture are skipped by the reader.
    argv = ["ip", "netns", "exec", server.netns, "tcpdump", "--immediate-mode", "-i", server.tap0,
            "-U", "-n", "-s", "128", "-w", str(path)]  # fmt: skip
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
        time.sleep(0.2)  # the last ACKs and FINs
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


HOLD_CLIENTS = """
import json, socket, sys
clients = []
for _ in range(2):
    client = socket.create_connection(("10.0.0.1", 80), timeout=10)
    client.sendall(b"x" * 1000)
    received = b""
    while len(received) < 1000:
        received += client.recv(4096)
    clients.append(client)
print(json.dumps([client.getsockname()[1] for client in clients]), flush=True)
sys.stdin.read()  # hold the connections open until the test closes our stdin
"""


def test_ss_and_stats_list_a_live_servers_kernel_clients(
    start_server: Callable[..., ServerProcess],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "status.sock"
    server = start_server(extra=("--status-socket", str(path)))
    holder = subprocess.Popen(
        ["ip", "netns", "exec", server.netns, sys.executable, "-c", HOLD_CLIENTS],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        ports = json.loads(holder.stdout.readline())
        assert status.main_ss(["--socket", str(path), "--json"]) == 0
        listing = json.loads(capsys.readouterr().out)["stack"]
        peers = {
            (info["remote_address"], info["remote_port"]): info
            for info in listing
            if info["local_port"] == 80
        }
        assert set(peers) == {("10.0.0.2", port) for port in ports}
        for info in peers.values():
            assert info["state"] == "ESTABLISHED" and info["local_address"] == "10.0.0.1"
            assert info["srtt"] is not None and info["cwnd"] > 0
        assert status.main_ss(["--socket", str(path)]) == 0
        text = capsys.readouterr().out
        assert text.count("ESTABLISHED") == 2 and f"10.0.0.2:{ports[0]}" in text
        assert status.main_stats(["--socket", str(path), "--json"]) == 0
        counters = json.loads(capsys.readouterr().out)
        assert counters["stack"]["tcp.connections_established"] == 2
        assert counters["stack"]["tcp.connections"] == 2
        assert counters["loop"]["frames_in"] > 0
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    assert server.stop() == 0
    assert not path.exists()  # the root parent removed it
    code = status.main_ss(["--socket", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "cannot ask" in err


def _kernel_ss(namespace: str) -> dict[int, dict[str, str]]:
    """The kernel's own ``ss -tin`` of its connections to port 80, by local port."""
    result = subprocess.run(
        ["ip", "netns", "exec", namespace, "ss", "-tinH", "dport", "= :80"],
        capture_output=True, text=True, check=True, timeout=10,
    )  # fmt: skip
    lines = result.stdout.splitlines()
    found: dict[int, dict[str, str]] = {}
    for header, details in zip(lines[::2], lines[1::2], strict=True):
        port = int(header.split()[3].rsplit(":", 1)[1])
        found[port] = dict(word.split(":", 1) for word in details.split() if ":" in word)
    return found


def test_ss_ti_of_a_live_server_agrees_with_the_kernels(
    start_server: Callable[..., ServerProcess],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each kernel client echoed 1,000 bytes: our side of each connection says what the
    kernel's ``ss -ti`` says of its side (bytes one way are the other's bytes received),
    with a delivery rate and app_limited (1,000 bytes are less than a window), and ``-l``
    lists the echo listener with its queue (Recv-Q 0 accepted-and-waiting, Send-Q the
    backlog)."""
    path = tmp_path / "status.sock"
    server = start_server(extra=("--status-socket", str(path)))
    holder = subprocess.Popen(
        ["ip", "netns", "exec", server.netns, sys.executable, "-c", HOLD_CLIENTS],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        ports = json.loads(holder.stdout.readline())
        time.sleep(0.3)  # the clients' ACKs of the echo, and a delayed ACK or two
        assert status.main_ss(["--socket", str(path), "--json"]) == 0
        ours = {
            info["remote_port"]: info
            for info in json.loads(capsys.readouterr().out)["stack"]
            if info["local_port"] == 80
        }
        kernel = _kernel_ss(server.netns)
        assert set(ours) == set(kernel) == set(ports)
        for port, info in ours.items():
            theirs = kernel[port]
            assert info["bytes_received"] == info["bytes_sent"] == 1000
            assert info["bytes_acked"] == 1001  # our SYN too, as Linux counts
            assert int(theirs["bytes_received"]) == info["bytes_sent"]
            assert int(theirs["bytes_acked"]) == info["bytes_acked"]
            assert info["data_segs_in"] == int(theirs["data_segs_out"])
            assert info["delivery_rate"] > 0 and info["app_limited"]
            assert info["min_rtt"] is not None and info["last_data_sent"] is not None
        assert status.main_ss(["--socket", str(path)]) == 0
        text = capsys.readouterr().out
        assert text.count("delivery_rate ") == 2 and text.count("app_limited") == 2
        assert "lastsnd:" in text and "bytes_acked:1001" in text
        assert status.main_ss(["--socket", str(path), "-l"]) == 0
        (listener,) = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
        assert listener[:2] == ["LISTEN", "0"] and listener[3].endswith(":80")
        assert int(listener[2]) >= 1  # the backlog
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    assert server.stop() == 0
