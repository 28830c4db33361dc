"""``--queues 2``: one worker process per TAP queue, the kernel as the peer.

The kernel spreads flows over the queues (backends/multiqueue.py): these
tests check what a user sees: 16 echo clients served (over IPv4 and IPv6),
ping, ping -6 and ARP answered (by whichever worker gets them), routing
through both workers, a merged status snapshot, SIGTERM ending every worker
and removing the devices, and a crashed worker turning into one line and a
non-zero exit.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from simtcp.programs import status

from .conftest import STOP_TIMEOUT_S, ServerProcess, configure_link, nsexec
from .test_ipv6_tap import STACK0, link_local, ping6, received
from .test_tcp_echo import echo_clients

pytestmark = pytest.mark.timeout(180)

QUEUES = ("--queues", "2")


def worker_pids(server: ServerProcess) -> list[int]:
    for line in server.stdout:
        match = re.search(r"ready \(pid \d+; workers ([\d,]+); supervisor (\d+)", line)
        if match:
            assert int(match.group(2)) == server.pid
            return [int(pid) for pid in match.group(1).split(",")]
    raise AssertionError(f"no ready line with workers in {server.stdout}")


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def queued(start_server: Callable[..., ServerProcess]) -> ServerProcess:
    return start_server(extra=QUEUES)


def test_two_workers_each_open_one_queue_of_each_device(queued: ServerProcess) -> None:
    pids = worker_pids(queued)
    assert len(pids) == 2 and len(set(pids)) == 2
    queues = nsexec(queued.netns, "ls", f"/sys/class/net/{queued.tap0}/queues", check=True)
    assert sorted(queues.stdout.split()) == ["rx-0", "rx-1", "tx-0", "tx-1"]
    for pid in pids:  # the workers parse frames unprivileged, as with one queue
        assert queued.status(pid)["CapEff"] == "0000000000000000"


def test_sixteen_kernel_clients_echo_through_two_queues(queued: ServerProcess) -> None:
    summary = echo_clients(queued, count=16, size=256 * 1024)
    assert summary["ok"] == 16, summary
    assert queued.stop() == 0
    line = next(line for line in queued.stdout if "stopped:" in line)
    assert "16 connections" in line and "over 2 workers" in line, line
    shares = [int(n) for n in re.search(r"workers: (\d+)\+(\d+) connections", line).groups()]  # type: ignore[union-attr]
    assert sum(shares) == 16
    # The kernel hashes each flow to a queue: all 16 on one queue has odds 2 * 2**-16.
    assert min(shares) > 0, line


def test_ping_and_arp_are_answered_by_whichever_worker_gets_them(queued: ServerProcess) -> None:
    result = nsexec(queued.netns, "arping", "-c", "3", "-w", "3", "-i", queued.tap0, "10.0.0.1")
    replies = re.findall(r"bytes from ([0-9a-f:]{17}) \(10\.0\.0\.1\)", result.stdout)
    assert len(replies) >= 3, result.stdout + result.stderr
    assert set(replies) == {queued.mac("veth0")}  # every worker answers with the same MAC
    nsexec(queued.netns, "ip", "route", "add", "10.1.1.0/24", "via", "10.0.0.1", check=True)
    for address in ("10.0.0.1", "10.1.1.1"):
        result = nsexec(queued.netns, "ping", "-c", "10", "-i", "0.05", "-W", "2", address)
        assert " 0% packet loss" in result.stdout, result.stdout + result.stderr


def test_ipv6_ping_and_kernel_tcp_clients_through_two_queues(queued: ServerProcess) -> None:
    """Each worker resolves the kernel's IPv6 address itself (ND learns nothing from a SYN
    or an echo request); the kernel's NA to one worker's NS often reaches the other queue,
    and is relayed (backends/multiqueue.py). Both addresses answer every ping, and 16
    IPv6 clients spread over both workers all echo intact."""
    for target in (STACK0, f"{link_local(queued.mac('veth0'))}%{queued.tap0}"):
        output = ping6(queued.netns, target, count=10)  # retries while DAD runs
        assert received(output) >= 10, output
    summary = echo_clients(queued, count=16, size=64 * 1024, host=STACK0)
    assert summary["ok"] == 16, summary
    assert queued.stop() == 0
    line = next(line for line in queued.stdout if "stopped:" in line)
    shares = [int(n) for n in re.search(r"workers: (\d+)\+(\d+) connections", line).groups()]  # type: ignore[union-attr]
    assert sum(shares) == 16 and min(shares) > 0, line  # all on one queue: odds 2 * 2**-16


def test_routing_through_two_queues(
    make_netns: Callable[[], str], start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server(netns=make_netns(), netns1=make_netns(), extra=QUEUES)
    configure_link(server.netns1, server.tap1, address="10.1.1.2/24", gateway="10.1.1.1")
    configure_link(server.netns, server.tap0, routes=(("10.1.1.0/24", "10.0.0.1"),))
    result = nsexec(server.netns, "ping", "-c", "10", "-i", "0.05", "-W", "2", "10.1.1.2")
    assert " 0% packet loss" in result.stdout, result.stdout + result.stderr
    assert set(re.findall(r"ttl=(\d+)", result.stdout)) == {"63"}


def test_status_socket_merges_the_workers(
    start_server: Callable[..., ServerProcess], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "status.sock"
    server = start_server(extra=(*QUEUES, "--status-socket", str(path)))
    summary = echo_clients(server, count=8, size=64 * 1024)
    assert summary["ok"] == 8, summary
    capsys.readouterr()
    assert status.main_stats(["--socket", str(path), "--json"]) == 0
    counters = json.loads(capsys.readouterr().out)
    assert counters["stack"]["tcp.passive_opens"] == 8  # summed over the workers
    merged = status.query(str(path))
    assert merged["hosts"]["stack"]["counters"]["tcp.passive_opens"] == 8
    assert [worker["queue"] for worker in merged["workers"]] == [0, 1]
    frames = sum(worker["loop"]["frames_in"] for worker in merged["workers"])
    assert merged["loop"]["frames_in"] == frames > 0


def test_sigterm_ends_every_worker_and_removes_the_devices(queued: ServerProcess) -> None:
    pids = worker_pids(queued)
    assert queued.stop() == 0  # the fixture then checks that both devices are gone
    assert all(gone(pid) for pid in pids), pids


def test_a_crashed_worker_is_one_line_and_a_non_zero_exit(queued: ServerProcess) -> None:
    first, second = worker_pids(queued)
    os.kill(second, 9)
    code = queued.process.wait(timeout=STOP_TIMEOUT_S)
    queued.stopped, queued.expected_exit = True, 1
    assert code == 1, queued.output()
    time.sleep(0.2)  # the pump threads read the last lines
    errors = [line for line in queued.stderr if "error" in line]
    assert len(errors) == 1, queued.output()
    assert f"worker 1 (pid {second}, queue 1) died of SIGKILL" in errors[0]
    assert gone(first) and gone(second)
