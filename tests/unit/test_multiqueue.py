"""Multi-queue serving without a device: port shares, counter sums, the merged status,
``--queues`` validation, each worker's stack configuration, the ARP and NA relay, and the
supervisor forking real (tiny) workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simtcp.backends.multiqueue import (
    ArpRelayingStack,
    Supervisor,
    WorkerLink,
    aggregate,
    is_relayed,
    parse_queues,
    port_slice,
)
from simtcp.config import StackConfig
from simtcp.programs import serve
from simtcp.programs.serve_queues import merge_snapshots
from simtcp.programs.status import format_stats
from simtcp.stack import Stack
from simtcp.wire.icmpv6 import (
    Icmpv6Message,
    NdOptions,
    NeighborAdvertisement,
    NeighborSolicitation,
)
from simtcp.wire.ipv6 import NEXT_ICMPV6, Ipv6Packet

REPO = Path(__file__).resolve().parents[2]


# --- ephemeral ports ------------------------------------------------------------------


@st.composite
def ranges_and_counts(draw: st.DrawFn) -> tuple[tuple[int, int], int]:
    low = draw(st.integers(1, 65535))
    high = draw(st.integers(low, 65535))
    count = draw(st.integers(1, min(256, high - low + 1)))
    return (low, high), count


@given(ranges_and_counts())
def test_port_shares_are_disjoint_contiguous_and_cover_the_range(
    case: tuple[tuple[int, int], int],
) -> None:
    """Invariant: the workers' shares tile the range in order, sizes within one of each
    other, so no two workers ever choose the same local port (hence the same 4-tuple)."""
    (low, high), count = case
    shares = [port_slice((low, high), index, count) for index in range(count)]
    assert shares[0][0] == low and shares[-1][1] == high
    for (_, end), (start, _) in zip(shares, shares[1:], strict=False):
        assert start == end + 1
    sizes = {end - start + 1 for start, end in shares}
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1


def test_default_range_for_two_workers() -> None:
    assert port_slice((49152, 65535), 0, 2) == (49152, 57343)
    assert port_slice((49152, 65535), 1, 2) == (57344, 65535)


@pytest.mark.parametrize(("index", "count"), [(2, 2), (-1, 2), (0, 5)])
def test_a_share_that_cannot_exist_is_refused(index: int, count: int) -> None:
    with pytest.raises(ValueError, match="share"):
        port_slice((10, 13), index, count)


# --- stats ---------------------------------------------------------------------------


def test_aggregate_sums_key_by_key_and_missing_keys_count_zero() -> None:
    assert aggregate([{"a": 1, "b": 2}, {"b": 3, "c": 4}, {}]) == {"a": 1, "b": 5, "c": 4}
    assert aggregate([]) == {}


@given(st.lists(st.dictionaries(st.sampled_from("abcd"), st.integers(0, 10**9)), max_size=8))
def test_aggregate_total_is_the_sum_of_all_reports(reports: list[dict[str, int]]) -> None:
    """Invariant: summing per worker then over keys equals summing every value."""
    assert sum(aggregate(reports).values()) == sum(sum(r.values()) for r in reports)


def _snapshot(connections: int, opens: int, frames: int) -> dict[str, Any]:
    return {
        "schema": "simtcp.status",
        "version": 1,
        "hosts": {
            "stack": {
                "connections": [{"remote_port": n} for n in range(connections)],
                "counters": {"tcp.passive_opens": opens},
            }
        },
        "loop": {"frames_in": frames},
    }


def test_merged_snapshot_lists_every_connection_and_sums_counters() -> None:
    merged = merge_snapshots([_snapshot(2, 5, 100), _snapshot(1, 3, 50)])
    assert merged["version"] == 1 and merged["schema"] == "simtcp.status"
    assert len(merged["hosts"]["stack"]["connections"]) == 3
    assert merged["hosts"]["stack"]["counters"] == {"tcp.passive_opens": 8}
    assert merged["loop"] == {"frames_in": 150}
    assert [w["connections"] for w in merged["workers"]] == [2, 1]
    assert format_stats(merged) == [
        f"{'stack.tcp.passive_opens':<48}{8:>12}",
        f"{'loop.frames_in':<48}{150:>12}",
    ]


# --- the command line ------------------------------------------------------------------


@pytest.mark.parametrize("text", ["0", "-1", "abc", "", "1.5", "257"])
def test_bad_queue_counts_are_one_line_and_exit_2(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        serve.main(["--queues", text], prog="simtcp serve")
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("simtcp serve: error: argument --queues:"), err


def test_bad_queue_count_from_the_seed_script() -> None:
    for text in ("0", "-1", "abc"):
        result = subprocess.run(
            [sys.executable, str(REPO / "echo_reply_server.py"), "--queues", text],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, result
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "--queues" in result.stderr and not result.stdout


def test_good_queue_counts_parse() -> None:
    assert [parse_queues(text) for text in ("1", "2", " 16 ", "256")] == [1, 2, 16, 256]


@pytest.mark.parametrize(
    ("extra", "complaint"),
    [(("--attach", "a,b"), "--attach"), (("--pcap", "x.pcap"), "--pcap")],
)
def test_queues_refuse_what_one_process_owns(
    extra: tuple[str, ...], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert serve.main(["--queues", "2", *extra], prog="simtcp serve") == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and complaint in err


def _args(*argv: str) -> Any:
    return serve.build_parser().parse_args(list(argv))


def test_one_queue_keeps_todays_stack_configuration() -> None:
    config = serve._stack_config(_args(), None)
    assert config == serve._stack_config(_args(), WorkerLink(0, 1, -1, -1))
    assert config.tcp.ephemeral_ports == StackConfig().tcp.ephemeral_ports
    assert config.arp.gratuitous_on_add


def test_each_worker_gets_its_ports_and_only_the_first_announces() -> None:
    first = serve._stack_config(_args("--seed", "7"), WorkerLink(0, 2, -1, -1))
    second = serve._stack_config(_args("--seed", "7"), WorkerLink(1, 2, -1, -1))
    assert first.seed == second.seed == 7  # the same ISN and SYN-cookie secret
    assert first.tcp.ephemeral_ports == first.udp.ephemeral_ports == (49152, 57343)
    assert second.tcp.ephemeral_ports == second.udp.ephemeral_ports == (57344, 65535)
    assert first.arp.gratuitous_on_add and not second.arp.gratuitous_on_add
    assert first.ip.forwarding and second.ip.forwarding


# --- the ARP relay ---------------------------------------------------------------------


class _Recorder:
    def __init__(self) -> None:
        self.received: list[tuple[str, bytes]] = []

    def receive_frame(self, interface: str, frame: Any, **_: Any) -> None:
        self.received.append((interface, bytes(frame)))

    def frames_to_send(self, *, now: int) -> list[tuple[str, bytes]]:
        return []

    def poll_at(self) -> int | None:
        return None

    def handle_timer(self, *, now: int) -> None:
        pass

    def next_event(self) -> None:
        return None


def _arp(operation: int) -> bytes:
    header = b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06"
    return header + b"\x00\x01\x08\x00\x06\x04" + operation.to_bytes(2, "big") + bytes(20)


def test_arp_replies_reach_the_other_workers_and_nothing_else_does() -> None:
    import socket

    inbox, outbox = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    inbox.setblocking(False)
    try:
        sender = ArpRelayingStack(_Recorder(), WorkerLink(0, 2, -1, -1, -1, (outbox.fileno(),)))
        receiver_inner = _Recorder()
        receiver = ArpRelayingStack(receiver_inner, WorkerLink(1, 2, -1, -1, inbox.fileno()))
        ip_frame = b"\x00" * 12 + b"\x08\x00" + bytes(40)
        for frame in (_arp(1), _arp(2), ip_frame):
            sender.receive_frame("veth0", frame, now=0)
        assert len(sender.stack.received) == 3  # type: ignore[attr-defined]
        assert receiver.receive_relayed(5) == 1
        assert receiver_inner.received == [("veth0", _arp(2))]
        assert receiver.receive_relayed(6) == 0
    finally:
        inbox.close()
        outbox.close()


OUR_MAC = bytes.fromhex("020000000001")
KERNEL_MAC = bytes.fromhex("02000000aa01")
OURS6 = IPv6Address("fd00::1")
KERNEL6 = IPv6Address("fd00::2")


def _icmpv6_frame(message: Icmpv6Message, source: IPv6Address, destination: IPv6Address) -> bytes:
    packet = Ipv6Packet(source, destination, NEXT_ICMPV6, message.build(source, destination), 255)
    return OUR_MAC + KERNEL_MAC + b"\x86\xdd" + packet.build()


def _advertisement(*, solicited: bool) -> bytes:
    advert = NeighborAdvertisement(
        KERNEL6, solicited=solicited, override=True, options=NdOptions(target_lladdr=KERNEL_MAC)
    )
    return _icmpv6_frame(advert.to_message(), KERNEL6, OURS6)


def test_only_arp_replies_and_solicited_neighbour_advertisements_are_relayed() -> None:
    solicitation = NeighborSolicitation(OURS6, NdOptions(source_lladdr=KERNEL_MAC))
    echo = Icmpv6Message.echo_request(1, 1, b"ping")
    ipv4 = b"\x00" * 12 + b"\x08\x00" + bytes(40)
    assert is_relayed(_arp(2)) and is_relayed(_advertisement(solicited=True))
    assert is_relayed(memoryview(_advertisement(solicited=True)))
    assert not is_relayed(_arp(1))
    assert not is_relayed(_advertisement(solicited=False))  # RFC 4861 §4.4: S flag clear
    assert not is_relayed(_icmpv6_frame(solicitation.to_message(), KERNEL6, OURS6))
    assert not is_relayed(_icmpv6_frame(echo, KERNEL6, OURS6))
    assert not is_relayed(ipv4)
    assert not is_relayed(_advertisement(solicited=True)[:58])  # cut before the flags


@given(st.binary(max_size=80))
def test_the_relay_test_never_raises(frame: bytes) -> None:
    """Any frame the kernel writes, however short, gets an answer and no exception."""
    assert is_relayed(frame) in (True, False)
    assert is_relayed(memoryview(frame)) == is_relayed(frame)


def _worker_stack() -> Stack:
    stack = Stack(StackConfig(seed=3))
    stack.add_interface("veth0", mac=OUR_MAC.hex(":"), now=0)
    stack.add_address("veth0", f"{OURS6}/64", now=0)
    while (at := stack.poll_at()) is not None and at <= 3_000_000:
        stack.handle_timer(now=at)
    stack.frames_to_send(now=3_000_000)
    assert stack.is_local_address6(OURS6)  # DAD done
    return stack


def test_a_neighbour_advertisement_read_by_another_worker_completes_resolution() -> None:
    """Worker 0 solicits the kernel's address; the kernel's NA lands on worker 1's queue
    (the module doc says why): relayed, it lets worker 0 send the echo it queued."""
    import socket

    inbox, outbox = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    inbox.setblocking(False)
    try:
        asking = ArpRelayingStack(_worker_stack(), WorkerLink(0, 2, -1, -1, inbox.fileno()))
        other = ArpRelayingStack(_worker_stack(), WorkerLink(1, 2, -1, -1, -1, (outbox.fileno(),)))
        now = 3_000_000
        asking.stack.ping(str(KERNEL6), identifier=9, sequence=1, now=now)
        solicited = [bytes(f) for _, f in asking.frames_to_send(now=now)]
        assert len(solicited) == 1 and solicited[0][54] == 135  # a neighbor solicitation
        other.receive_frame("veth0", _advertisement(solicited=True), now=now + 100)
        assert other.frames_to_send(now=now + 100) == []  # no entry there: discarded
        assert asking.receive_relayed(now + 200) == 1
        sent = [bytes(f) for _, f in asking.frames_to_send(now=now + 200)]
        assert len(sent) == 1 and sent[0][:6] == KERNEL_MAC and sent[0][54] == 128  # echo
        assert asking.stack.neighbour6_state("veth0", str(KERNEL6)) == "reachable"
    finally:
        inbox.close()
        outbox.close()


# --- the supervisor, with real forked workers ----------------------------------------------


def _polite(link: WorkerLink) -> int:
    try:  # the SIGTERM comes once every worker said ready: maybe before pause() here
        link.ready()
        signal.pause()
    except KeyboardInterrupt:
        link.send("final", {"queue": link.index})
    return 0


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_supervisor_stops_every_worker_and_collects_their_reports() -> None:
    supervisor = Supervisor(3)
    supervisor.start(_polite)
    seen: list[list[int]] = []

    def ready(pids: list[int]) -> None:
        seen.append(pids)
        supervisor.stop_all()

    result = supervisor.run(on_ready=ready)
    assert result.code == 0 and result.failure is None
    assert result.finals == [{"queue": 0}, {"queue": 1}, {"queue": 2}]
    assert len(seen) == 1 and all(_gone(pid) for pid in seen[0])


def _crash_second(link: WorkerLink) -> int:
    if link.index == 1:
        link.ready()
        os._exit(3)
    return _polite(link)


def test_a_worker_that_exits_on_its_own_stops_the_rest_and_fails() -> None:
    supervisor = Supervisor(2)
    supervisor.start(_crash_second)
    pids = [worker.pid for worker in supervisor.workers]
    result = supervisor.run(on_ready=lambda pids: None)
    assert result.code == 1
    assert result.failure == f"worker 1 (pid {pids[1]}, queue 1) exited 3"
    assert all(_gone(pid) for pid in pids)


def test_stop_line_sums_the_workers_reports_and_shows_the_spread() -> None:
    from simtcp.programs.serve_queues import stop_line

    loop = {
        "frames_in": 10,
        "frames_out": 20,
        "gso_in": 1,
        "gso_out": 2,
        "gro_merged": 0,
    }
    finals = [
        {"loop": loop, "stats": {"drop.total": 1}, "accepted": 9, "echoed": 900},
        {"loop": loop, "stats": {"drop.total": 2}, "accepted": 7, "echoed": 700},
    ]
    line = stop_line(finals)
    assert line.startswith("stopped: 16 connections, 1600 bytes echoed, 20 frames in (2 GSO)")
    assert "3 dropped by the stack" in line
    assert line.endswith("(over 2 workers: 9+7 connections)")


def test_stop_line_without_any_report_is_all_zeros() -> None:
    """Workers stopped before their loops ran may report nothing; the line still prints."""
    from simtcp.programs.serve_queues import stop_line

    line = stop_line([])
    assert line.startswith("stopped: 0 connections, 0 bytes echoed, 0 frames in (0 GSO)")
    assert line.endswith("(over 0 workers: 0 connections)")


@pytest.mark.parametrize("queues", [0, -1, 257])
def test_a_device_refuses_a_queue_count_the_driver_would(queues: int) -> None:
    """Checked before anything is opened: no device, no privilege needed."""
    from simtcp.backends.tap import TapError
    from simtcp.backends.tapdevice import TapDevice

    with pytest.raises(TapError, match="1..256 queues"):
        TapDevice.create_queues("mq-never", queues, interface="veth0")
