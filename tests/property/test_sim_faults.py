"""Scripted faults (backends/faults.py): TCP over partitions, holds, heals and crashes.

Invariants: a schedule of partitions and holds that ends healed and released
never loses or corrupts a byte of a transfer whose user timeout outlasts it;
a server crash mid-transfer ends the client's connection in a reset or a
timeout, never in a clean close reported as success; a one-way partition
behaves as a half-broken network and replays exactly from its seed.
"""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp.backends.faults import FaultNet, FaultRule, view_packet
from simtcp.backends.impair import LinkProfile
from simtcp.backends.sim import Link, Simulator
from simtcp.config import StackConfig
from simtcp.programs.scenario_apps import Sender, Sink, make_stack
from simtcp.stack import Stack
from simtcp.tcp.config import TcpConfig
from simtcp.time import MILLISECOND, SECOND

PATIENT = TcpConfig(data_retries=60, syn_retries=60)


def build(
    seed: int, size: int, tcp: TcpConfig = PATIENT, start_at: int = 0
) -> tuple[Simulator, FaultNet, Sender, Sink, Link]:
    sim = Simulator(seed=seed)
    net = FaultNet(sim)
    sink = Sink(port=80, seed=seed)
    sender = Sender("10.0.0.2", 80, size, seed=seed, start_at=start_at)
    for index, (name, start) in enumerate((("a", sender.start), ("b", sink.start)), 1):
        net.add_host(
            name,
            lambda index=index: make_stack(
                StackConfig(seed=seed * 2 + index, tcp=tcp),
                f"02:00:00:00:00:0{index}",
                f"10.0.0.{index}/24",
            ),
            addresses=[f"10.0.0.{index}"],
            start=start,
        )
    link = sim.connect(
        ("a", "eth0"), ("b", "eth0"), LinkProfile(delay=5 * MILLISECOND, rate=20_000_000)
    )
    return sim, net, sender, sink, link


fault = st.tuples(
    st.sampled_from(["partition", "one_way", "back_way", "hold_link", "hold_host", "down"]),
    st.integers(0, 3000),  # start, ms
    st.integers(1, 4000),  # length, ms
)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), faults=st.lists(fault, max_size=5), shuffle=st.booleans())
def test_any_schedule_that_ends_healed_delivers_everything(
    seed: int, faults: list[tuple[str, int, int]], shuffle: bool
) -> None:
    sim, net, sender, sink, link = build(seed, 60_000)
    for kind, start_ms, length_ms in faults:
        start, end = start_ms * MILLISECOND, (start_ms + length_ms) * MILLISECOND
        if kind == "partition":
            net.at(start, net.partition, ["a"], ["b"])
        elif kind in ("one_way", "back_way"):
            sides = (["a"], ["b"]) if kind == "one_way" else (["b"], ["a"])
            net.at(start, lambda sides=sides: net.partition(*sides, one_way=True))
        elif kind == "hold_link":
            net.at(start, lambda: net.hold(link=link))
        elif kind == "hold_host":
            net.at(start, lambda: net.hold(host="b"))
        else:
            net.at(start, net.link_down, link)
        net.at(end, net.heal)
        net.at(end, lambda: net.release(shuffle=shuffle))
    net.at(8 * SECOND, net.heal)
    net.at(8 * SECOND, lambda: net.release(shuffle=shuffle))
    assert sim.run_until(lambda: sender.done, timeout=3600 * SECOND)
    assert sender.outcome == "closed"
    assert sink.intact and sink.received == 60_000 and sink.finished == 1


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    crash_after=st.integers(1, 1_900_000),
    restart=st.booleans(),
)
def test_server_crash_mid_transfer_is_never_a_silent_success(
    seed: int, crash_after: int, restart: bool
) -> None:
    tcp = TcpConfig(data_retries=4, syn_retries=3)
    sim, net, sender, sink, _ = build(seed, 2_000_000, tcp)
    # Mid-transfer: once the server holds ``crash_after`` bytes (fewer than all of them).
    assert sim.run_until(lambda: sink.received >= crash_after, timeout=600 * SECOND)
    assert not sender.done
    net.crash("b")
    if restart:
        net.at(sim.now + 2 * SECOND, net.restart, "b")
    assert sim.run_until(lambda: sender.done, timeout=3600 * SECOND)
    assert sender.outcome in ("reset", "timed out"), sender.outcome
    assert sink.intact  # what did arrive was right; it is just not all of it


def half_broken(seed: int) -> tuple[Simulator, FaultNet, Sender, Sink, Link]:
    """a hears nothing from b: ARP resolved first (a ping),
    then from 1 s on a one-way partition b -> a while a connects."""
    sim, net, sender, sink, link = build(seed, 10_000, TcpConfig(syn_retries=3), SECOND)
    a = net.hosts["a"].node
    assert isinstance(a, Stack)
    a.ping("10.0.0.2", identifier=1, sequence=1, now=0)
    net.at(500 * MILLISECOND, lambda: net.partition(["b"], ["a"], one_way=True))
    return sim, net, sender, sink, link


def one_way_run(seed: int) -> tuple[str, int, str]:
    """The digest of every frame sent in a one-way partitioned run."""
    sim, net, sender, _, _ = half_broken(seed)
    log = hashlib.sha256()
    net.on_send(lambda host, _i, frame, now: log.update(f"{now} {host}".encode() + frame))
    assert sim.run_until(lambda: sender.done, timeout=600 * SECOND)
    return sender.outcome, net.counters["partitioned"], log.hexdigest()


def test_one_way_partition_is_half_broken_and_replays() -> None:
    sim, net, sender, _, _ = half_broken(7)
    sent: list[tuple[str, str]] = []
    net.on_send(lambda host, _i, frame, _now: sent.append((host, view_packet(frame).flags)))
    assert sim.run_until(lambda: sender.done, timeout=600 * SECOND)
    # a's SYN and its 3 retransmissions reach b, which answers each; nothing comes back.
    assert sent.count(("a", "S")) == 4
    assert sent.count(("b", "SA")) >= 4
    assert sender.outcome == "timed out"
    assert net.counters["partitioned"] >= 4
    assert one_way_run(7) == one_way_run(7)


def test_rules_drop_the_third_syn_ack_and_delay_fins() -> None:
    sim, net, sender, sink, _ = build(3, 20_000, TcpConfig(syn_retries=6))
    drop = net.add_rule(FaultRule(action="drop", source="a", flags="S", not_flags="A", nth=1))
    late = net.add_rule(FaultRule(action="delay", flags="F", delay=2 * SECOND))
    fins: list[int] = []
    net.on_send(
        lambda _h, _i, frame, now: fins.append(now) if "F" in view_packet(frame).flags else None
    )
    assert sim.run_until(lambda: sender.done, timeout=600 * SECOND)
    assert sender.outcome == "closed" and sink.intact and sink.received == 20_000
    counts = {rule: (matched, applied) for rule, matched, applied in net.rule_counts()}
    assert counts[drop] == (2, 1)  # the first SYN dropped, its retransmission passed
    assert counts[late][1] >= 2  # both FINs waited


def test_hold_then_release_in_order_and_shuffled() -> None:
    for shuffle in (False, True):
        sim = Simulator(seed=11)
        net = FaultNet(sim)

        class Node:
            def __init__(self) -> None:
                self.received: list[bytes] = []

            def receive_frame(self, interface: str, frame: bytes | memoryview, *, now: int) -> None:
                self.received.append(bytes(frame))

            def frames_to_send(self, *, now: int) -> list[tuple[str, bytes]]:
                return []

            def poll_at(self) -> int | None:
                return None

            def handle_timer(self, *, now: int) -> None:
                return None

        sim.add_host("a", Node())
        sim.add_host("b", b := Node())
        received = b.received
        net.adopt("a"), net.adopt("b")
        sim.connect(("a", "eth0"), ("b", "eth0"), LinkProfile(delay=MILLISECOND))
        net.hold(host="b")
        frames = [bytes([n]) * 60 for n in range(20)]
        for frame in frames:
            sim.transmit(("a", "eth0"), frame)
        sim.run_for(SECOND)
        assert received == [] and net.held == frames
        assert net.release(shuffle=shuffle) == 20
        sim.run_for(SECOND)
        assert sorted(received) == sorted(frames)  # nothing lost, nothing doubled
        assert (received == frames) is (not shuffle)


def test_pause_parks_frames_and_timers_until_resume() -> None:
    sim, net, sender, sink, _ = build(5, 50_000)
    net.at(30 * MILLISECOND, net.pause, "b")
    net.at(3 * SECOND, net.resume, "b")
    assert sim.run_until(lambda: sender.done, timeout=600 * SECOND)
    assert sender.outcome == "closed" and sink.intact and sink.received == 50_000


def test_in_flight_lists_frames_with_their_arrival() -> None:
    sim, net, _, _, link = build(2, 100_000)
    sim.run_for(50 * MILLISECOND)
    flying = net.in_flight(link)
    assert flying and all(at > sim.now for at, _, _ in flying)
    assert [at for at, _, _ in flying] == sorted(at for at, _, _ in flying)
    assert {view.protocol for _, _, view in flying} == {"tcp"}


def test_release_of_one_hold_keeps_what_another_hold_keeps() -> None:
    sim, net, _, _, link = build(9, 1000)
    sim.run_for(2 * SECOND)  # the transfer is over; TIME-WAIT remains
    net.hold(host="b")
    net.hold(link=link)
    for number in range(3):
        sim.transmit(("a", "eth0"), bytes([number]) * 60)
    sim.run_for(SECOND)
    assert len(net.held) == 3
    assert net.release(host="b") == 0  # the link still holds them
    assert net.release(link=link) == 3
    assert net.held == []
