"""TAP offloads against the kernel: on (the default), off (--no-offload), and mixed at the router.

The other integration tests run with offloads on; this file runs the core of
them again with ``--no-offload`` (seed session, 8 MiB echo, the router, the
impairment shim), checks that offloads really carry 64 KiB segments, and that
the router cuts the kernel's GSO super-segments for a TAP without offloads.
"""

from __future__ import annotations

import errno
import fcntl
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from simtcp.backends import tap
from simtcp.wire.pcap import read_pcap

from .conftest import TCP_TOOL, ServerProcess, configure_link, ns_python, nsexec, unique_name
from .test_tcp_echo import echo_clients

pytestmark = pytest.mark.timeout(180)

BEHIND = "10.1.1.2"


def stopped_line(server: ServerProcess) -> str:
    assert server.stop() == 0
    return next(line for line in server.stdout if "stopped:" in line)


def counter(line: str, pattern: str) -> int:
    match = re.search(pattern, line)
    assert match, (pattern, line)
    return int(match.group(1))


# --- offloads off ---------------------------------------------------------------


def test_no_offload_seed_session(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(extra=("--no-offload",))
    assert "offloads off (--no-offload)" in server.output()
    result = nsexec(server.netns, "ping", "-c", "5", "-i", "0.05", "-W", "2", "10.0.0.1")
    assert " 0% packet loss" in result.stdout, result.stdout + result.stderr
    result = nsexec(
        server.netns, "nc", "-N", "-w", "5", "10.0.0.1", "80", input="no offload\n", timeout=20
    )
    assert result.stdout == "no offload\n", result.stderr
    line = stopped_line(server)
    assert counter(line, r"frames in \((\d+) GSO\)") == 0


def test_no_offload_8_mib_stream(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(extra=("--no-offload",))
    assert "software GRO merges runs of frames" in server.output()
    summary = echo_clients(server, count=1, size=8 * 1024 * 1024)
    assert summary["ok"] == 1, summary
    summary = echo_clients(server, count=16, size=128 * 1024)
    assert summary["ok"] == 16, summary
    line = stopped_line(server)
    assert counter(line, r"(\d+) runs merged by software GRO") > 0, line
    # Software GSO cut our own echo output; nothing was forwarded (issue 23: the line said
    # "cut for forwarding" for these).
    assert counter(line, r"(\d+) super-segments cut for forwarding") == 0, line
    assert counter(line, r"(\d+) cut from our own output") > 0, line


def test_no_offload_no_gro_8_mib_stream(start_server: Callable[..., ServerProcess]) -> None:
    """The plain per-frame path: every frame reaches the stack as it came."""
    server = start_server(extra=("--no-offload", "--no-gro"))
    assert "no software GRO/GSO (--no-gro)" in server.output()
    summary = echo_clients(server, count=1, size=8 * 1024 * 1024)
    assert summary["ok"] == 1, summary
    summary = echo_clients(server, count=4, size=256 * 1024)
    assert summary["ok"] == 4, summary
    line = stopped_line(server)
    assert counter(line, r"(\d+) runs merged by software GRO") == 0, line


def test_no_offload_impairment_shim(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(
        extra=("--no-offload", "--loss", "0.05", "--reorder", "0.05", "--seed", "7")
    )
    summary = echo_clients(server, count=1, size=2 * 1024 * 1024, timeout=120)
    assert summary["ok"] == 1, summary


# --- offloads on ----------------------------------------------------------------


def test_offload_carries_64_kib_segments(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    assert "offloads on" in server.output()
    summary = echo_clients(server, count=1, size=8 * 1024 * 1024)
    assert summary["ok"] == 1, summary
    line = stopped_line(server)
    assert counter(line, r"frames in \((\d+) GSO\)") > 0, line
    assert counter(line, r"(\d+) dropped by the stack") < 50, line


def test_refused_offloads_fall_back_with_a_note(
    monkeypatch: pytest.MonkeyPatch, make_netns: Callable[[], str]
) -> None:
    real_ioctl = fcntl.ioctl

    def refusing(fd: int, request: int, *args: Any) -> Any:
        if request == tap.TUNSETOFFLOAD:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_ioctl(fd, request, *args)

    monkeypatch.setattr(fcntl, "ioctl", refusing)  # simtcp.backends.tapdevice calls fcntl.ioctl
    name = unique_name("sto")
    device = tap.TapDevice.create(name, interface="veth0", namespace=make_netns(), offload=True)
    try:
        assert not device.vnet_header
        assert device.offload_note is not None and "TUNSETOFFLOAD" in device.offload_note
        assert tap.stack_offload(device) == tap.InterfaceOffload()
        assert device.exists()
    finally:
        device.close()
    assert not device.exists()


# --- the router -----------------------------------------------------------------


@pytest.fixture
def make_routed(
    make_netns: Callable[[], str], start_server: Callable[..., ServerProcess]
) -> Callable[..., ServerProcess]:
    def make(*extra: str) -> ServerProcess:
        server = start_server(netns=make_netns(), netns1=make_netns(), extra=extra)
        configure_link(server.netns1, server.tap1, address=f"{BEHIND}/24", gateway="10.1.1.1")
        configure_link(server.netns, server.tap0, routes=(("10.1.1.0/24", "10.0.0.1"),))
        return server

    return make


@pytest.fixture
def echo_behind() -> Iterator[Callable[[ServerProcess], None]]:
    """Start a kernel echo server on host B (port 7); stopped by PID at the end."""
    processes: list[subprocess.Popen[str]] = []

    def start(server: ServerProcess) -> None:
        process = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                server.netns1,
                sys.executable,
                str(TCP_TOOL),
                "serve",
                "--host",
                BEHIND,
                "--port",
                "7",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "listening"

    yield start
    for process in processes:
        process.terminate()
        process.wait(10)


def tcp_checksum_errors(namespace: str) -> int:
    snmp = nsexec(namespace, "cat", "/proc/net/snmp", check=True).stdout.splitlines()
    names, values = (line.split() for line in snmp if line.startswith("Tcp:"))
    return int(values[names.index("InCsumErrors")])


def routed_echo(server: ServerProcess, *, count: int, size: int) -> None:
    result = ns_python(
        server.netns,
        str(TCP_TOOL),
        "clients",
        "--host",
        BEHIND,
        "--port",
        "7",
        "--count",
        str(count),
        "--bytes",
        str(size),
        "--timeout",
        "60",
        check=False,
        timeout=150,
    )
    assert f'"ok": {count}' in result.stdout, result.stdout + result.stderr + server.output()


def test_no_offload_router(
    make_routed: Callable[..., ServerProcess], echo_behind: Callable[[ServerProcess], None]
) -> None:
    server = make_routed("--no-offload")
    echo_behind(server)
    result = nsexec(server.netns, "ping", "-c", "3", "-i", "0.05", "-W", "2", BEHIND)
    assert " 0% packet loss" in result.stdout, result.stdout
    routed_echo(server, count=4, size=256 * 1024)


def test_gso_super_segments_are_cut_for_a_tap_without_offload(
    make_routed: Callable[..., ServerProcess],
    echo_behind: Callable[[ServerProcess], None],
    tmp_path: Path,
) -> None:
    capture = tmp_path / "router.pcap"
    server = make_routed("--no-offload1", "--pcap", str(capture))
    assert re.search(rf"{server.tap1}: offloads off", server.output())
    echo_behind(server)
    routed_echo(server, count=1, size=4 * 1024 * 1024)
    # The kernel on B verified every segment we cut and took them all.
    assert tcp_checksum_errors(server.netns1) == 0
    line = stopped_line(server)
    assert counter(line, r"(\d+) super-segments cut for forwarding") > 0, line
    mac0, mac1 = (
        bytes.fromhex(server.mac("veth0").replace(":", "")),
        bytes.fromhex(server.mac("veth1").replace(":", "")),
    )
    to_behind = bytes([10, 1, 1, 2])
    with capture.open("rb") as stream:
        frames = [
            frame
            for _, frame in read_pcap(stream)
            if frame[12:14] == b"\x08\x00" and frame[30:34] == to_behind
        ]
    arrived = [len(frame) for frame in frames if frame[0:6] == mac0]
    sent = [len(frame) for frame in frames if frame[6:12] == mac1]
    assert max(arrived) > 1514, "the kernel on A should have sent GSO super-segments"
    assert max(sent) <= 1514, "everything toward B must fit its MTU"
    assert sum(sent) > 4 * 1024 * 1024


def test_offload_router_both_sides(
    make_routed: Callable[..., ServerProcess], echo_behind: Callable[[ServerProcess], None]
) -> None:
    server = make_routed()
    echo_behind(server)
    routed_echo(server, count=4, size=1024 * 1024)
    assert tcp_checksum_errors(server.netns1) == 0
    assert tcp_checksum_errors(server.netns) == 0
    line = stopped_line(server)
    assert counter(line, r"frames out \((\d+) GSO\)") > 0, line
