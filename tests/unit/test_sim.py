"""The simulator and its link impairments, driven by small fake nodes with explicit times."""

from __future__ import annotations

import heapq
import io
import itertools
import random

import pytest

from simtcp.backends.impair import Impairment, LinkProfile, flip_random_bit
from simtcp.backends.sim import SimulationError, SimulationStalled, Simulator
from simtcp.errors import ConfigError
from simtcp.wire.pcap import read_pcap

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")
MAC_C = bytes.fromhex("020000000003")
BROADCAST = b"\xff" * 6


def frame(destination: bytes, source: bytes, number: int, size: int = 60) -> bytes:
    """An Ethernet frame of ``size`` bytes carrying ``number`` right after the header."""
    body = number.to_bytes(4, "big")
    return destination + source + b"\x88\xb5" + body + bytes(size - 18)


def number_of(data: bytes) -> int:
    return int.from_bytes(data[14:18], "big")


class FakeNode:
    """Sends scheduled frames at their times, records arrivals, optionally echoes them."""

    def __init__(self, mac: bytes = MAC_A, *, echo: bool = False) -> None:
        self.mac = mac
        self.echo = echo
        self.schedule: list[tuple[int, int, str, bytes]] = []  # heap of (at, order, iface, frame)
        self.outbox: list[tuple[str, bytes]] = []
        self.received: list[tuple[int, str, bytes]] = []
        self.timer_calls: list[int] = []
        self._order = itertools.count()

    def send_at(self, at: int, interface: str, data: bytes) -> None:
        heapq.heappush(self.schedule, (at, next(self._order), interface, data))

    def receive_frame(self, interface: str, data: bytes | memoryview, *, now: int) -> None:
        data = bytes(data)
        self.received.append((now, interface, data))
        if self.echo:
            self.outbox.append((interface, data[6:12] + self.mac + data[12:]))

    def frames_to_send(self, *, now: int) -> list[tuple[str, bytes]]:
        out, self.outbox = self.outbox, []
        return out

    def poll_at(self) -> int | None:
        return self.schedule[0][0] if self.schedule else None

    def handle_timer(self, *, now: int) -> None:
        self.timer_calls.append(now)
        while self.schedule and self.schedule[0][0] <= now:
            _, _, interface, data = heapq.heappop(self.schedule)
            self.outbox.append((interface, data))


def pair(
    profile: LinkProfile, back: LinkProfile | None = None, *, seed: int = 1, echo: bool = False
) -> tuple[Simulator, FakeNode, FakeNode]:
    sim = Simulator(seed)
    a, b = FakeNode(MAC_A), FakeNode(MAC_B, echo=echo)
    sim.add_host("a", a)
    sim.add_host("b", b)
    sim.connect(("a", "eth0"), ("b", "eth0"), profile, back)
    return sim, a, b


# --- timing --------------------------------------------------------------


def test_delay_is_exact_and_asymmetric() -> None:
    sim, a, b = pair(LinkProfile(delay=1_000), LinkProfile(delay=3_000), echo=True)
    a.send_at(0, "eth0", frame(MAC_B, MAC_A, 1))
    a.send_at(250, "eth0", frame(MAC_B, MAC_A, 2))
    sim.run_for(10_000)
    assert [(at, number_of(data)) for at, _, data in b.received] == [(1_000, 1), (1_250, 2)]
    assert [(at, number_of(data)) for at, _, data in a.received] == [(4_000, 1), (4_250, 2)]
    assert sim.now == 10_000


def test_rate_serializes_frames_exactly_without_rounding_drift() -> None:
    # 3 Mbit/s: a 100-byte frame takes 266.67us; the last bit of frame k leaves at
    # ceil(k * 800 / 3) us, and the fractions add up exactly.
    sim, a, b = pair(LinkProfile(rate=3_000_000, delay=50))
    for number in range(3):
        a.send_at(0, "eth0", frame(MAC_B, MAC_A, number, size=100))
    sim.run_for(5_000)
    assert [at for at, _, _ in b.received] == [267 + 50, 534 + 50, 800 + 50]


def test_rate_queue_is_drop_tail_and_drains() -> None:
    # 8 Mbit/s is one byte per microsecond; 2,500 bytes fit two 1,000-byte frames.
    sim, a, b = pair(LinkProfile(rate=8_000_000, queue_limit=2_500))
    for number in range(5):
        a.send_at(0, "eth0", frame(MAC_B, MAC_A, number, size=1_000))
    a.send_at(1_000, "eth0", frame(MAC_B, MAC_A, 5, size=1_000))  # the first has left
    sim.run_for(10_000)
    assert [(at, number_of(data)) for at, _, data in b.received] == [
        (1_000, 0),
        (2_000, 1),
        (3_000, 5),
    ]
    counters = sim.link_stats()["a:eth0>b:eth0"]
    assert counters["queue_drops"] == 3
    assert counters["sent"] == 6 and counters["delivered"] == 3 and counters["arrived"] == 3


def test_jitter_stays_within_bounds_and_never_reorders() -> None:
    sim, a, b = pair(LinkProfile(delay=10_000, jitter=2_000), seed=7)
    for number in range(500):
        a.send_at(number * 100, "eth0", frame(MAC_B, MAC_A, number))
    sim.run_for(200_000)
    assert [number_of(data) for _, _, data in b.received] == list(range(500))
    delays = [at - number_of(data) * 100 for at, _, data in b.received]
    assert all(8_000 <= delay <= 12_000 + 100 * 20 for delay in delays)
    # FIFO clamps some delays upward, but jitter must actually spread them.
    assert min(delays) < 8_500 and len(set(delays)) > 100


def test_mtu_drops_oversized_frames_only() -> None:
    sim, a, b = pair(LinkProfile(mtu=100))
    a.send_at(0, "eth0", frame(MAC_B, MAC_A, 1, size=114))
    a.send_at(0, "eth0", frame(MAC_B, MAC_A, 2, size=115))
    sim.run_for(1_000)
    assert [number_of(data) for _, _, data in b.received] == [1]
    assert sim.link_stats()["a:eth0>b:eth0"]["mtu_drops"] == 1


# --- impairment statistics -----------------------------------------------


def run_many(
    profile: LinkProfile, count: int = 10_000, *, seed: int = 3
) -> tuple[Simulator, FakeNode]:
    sim, a, b = pair(profile, seed=seed)
    for number in range(count):
        a.send_at(number * 10, "eth0", frame(MAC_B, MAC_A, number))
    sim.run_for(count * 10 + 1_000_000)
    return sim, b


def test_loss_rate_is_close_to_profile() -> None:
    sim, b = run_many(LinkProfile(loss=0.1))
    counters = sim.link_stats()["a:eth0>b:eth0"]
    assert 900 <= counters["lost"] <= 1_100
    assert len(b.received) == 10_000 - counters["lost"]
    numbers = [number_of(data) for _, _, data in b.received]
    assert numbers == sorted(set(numbers))


def test_duplicates_arrive_right_behind_the_original() -> None:
    sim, b = run_many(LinkProfile(duplicate=0.05))
    counters = sim.link_stats()["a:eth0>b:eth0"]
    assert 400 <= counters["duplicated"] <= 600
    numbers = [number_of(data) for _, _, data in b.received]
    assert len(numbers) == 10_000 + counters["duplicated"]
    assert sorted(set(numbers)) == list(range(10_000))
    assert numbers == sorted(numbers)


def test_corruption_flips_exactly_one_bit() -> None:
    sim, b = run_many(LinkProfile(corrupt=0.05))
    counters = sim.link_stats()["a:eth0>b:eth0"]
    assert 400 <= counters["corrupted"] <= 600
    originals = [frame(MAC_B, MAC_A, number) for number in range(10_000)]
    damaged = 0
    for (_, _, data), original in zip(b.received, originals, strict=True):
        flipped = sum(bin(x ^ y).count("1") for x, y in zip(data, original, strict=True))
        assert flipped in (0, 1)
        damaged += flipped
    assert damaged == counters["corrupted"]


def test_reordered_frames_are_overtaken() -> None:
    sim, b = run_many(LinkProfile(reorder=0.1, reorder_delay=55, delay=1_000))
    counters = sim.link_stats()["a:eth0>b:eth0"]
    assert 900 <= counters["reordered"] <= 1_100
    numbers = [number_of(data) for _, _, data in b.received]
    assert sorted(numbers) == list(range(10_000))
    # A held-back frame is passed by the frames sent in the next 55us.
    late, highest = 0, -1
    for number in numbers:
        late += number < highest
        highest = max(highest, number)
    assert late == counters["reordered"]


def test_counters_add_up() -> None:
    profile = LinkProfile(
        loss=0.2,
        duplicate=0.1,
        corrupt=0.1,
        reorder=0.1,
        jitter=30,
        rate=10_000_000,
        queue_limit=600,
        mtu=1_500,
    )
    sim, b = run_many(profile, count=5_000)
    counters = sim.link_stats()["a:eth0>b:eth0"]
    assert counters["queue_drops"] > 0 and counters["lost"] > 0
    assert counters["sent"] == (
        counters["lost"]
        + counters["queue_drops"]
        + counters["mtu_drops"]
        + counters["delivered"]
        - counters["duplicated"]
    )
    assert counters["arrived"] == counters["delivered"] == len(b.received)


def test_flip_random_bit_changes_one_bit_and_keeps_length() -> None:
    rng = random.Random(5)
    original = bytes(range(64))
    for _ in range(200):
        damaged = flip_random_bit(original, rng)
        assert len(damaged) == 64
        assert sum(bin(x ^ y).count("1") for x, y in zip(damaged, original, strict=True)) == 1
    assert flip_random_bit(b"", rng) == b""


def test_impairment_is_usable_alone() -> None:
    impairment = Impairment(LinkProfile(delay=5, duplicate=1.0), random.Random(1))
    assert impairment.apply(b"xyz", 10) == [(15, b"xyz"), (15, b"xyz")]
    impairment.profile = LinkProfile(loss=1.0)
    assert impairment.apply(b"xyz", 20) == []
    assert impairment.counters["sent"] == 2 and impairment.counters["lost"] == 1


@pytest.mark.parametrize(
    "field, value",
    [("loss", 1.5), ("corrupt", -0.1), ("delay", -1), ("queue_limit", 0), ("mtu", -1)],
)
def test_profile_rejects_out_of_range_values(field: str, value: float) -> None:
    with pytest.raises(ConfigError):
        LinkProfile(**{field: value})


# --- determinism and pcap -------------------------------------------------


def impaired_run(seed: int) -> bytes:
    profile = LinkProfile(
        loss=0.1, duplicate=0.1, corrupt=0.1, reorder=0.2, delay=500, jitter=200, rate=50_000_000
    )
    sim, a, _ = pair(profile, seed=seed, echo=True)
    stream = io.BytesIO()
    sim.add_pcap(("a", "eth0"), stream)
    for number in range(300):
        a.send_at(number * 37, "eth0", frame(MAC_B, MAC_A, number, size=60 + number))
    sim.run_for(1_000_000)
    return stream.getvalue()


def test_same_seed_gives_byte_identical_pcap() -> None:
    first, second = impaired_run(11), impaired_run(11)
    assert first == second
    assert len(first) > 300 * 60
    assert impaired_run(12) != first


def test_interface_tap_records_sends_and_arrivals_in_virtual_time() -> None:
    sim, a, _ = pair(LinkProfile(delay=1_500_000), LinkProfile(delay=700), echo=True)
    stream = io.BytesIO()
    sim.add_pcap(("a", "eth0"), stream)
    sent = frame(MAC_B, MAC_A, 9)
    a.send_at(2_000_000, "eth0", sent)
    sim.run_for(5_000_000)
    records = list(read_pcap(io.BytesIO(stream.getvalue())))
    echoed = MAC_A + MAC_B + sent[12:]
    assert records == [(2_000_000, sent), (3_500_700, echoed)]


def test_link_tap_records_both_directions_before_loss() -> None:
    sim = Simulator(1)
    a, b = FakeNode(MAC_A), FakeNode(MAC_B, echo=True)
    sim.add_host("a", a)
    sim.add_host("b", b)
    link = sim.connect(("a", "eth0"), ("b", "eth0"), LinkProfile(delay=10), LinkProfile(loss=1.0))
    stream = io.BytesIO()
    sim.add_pcap(link, stream)
    a.send_at(5, "eth0", frame(MAC_B, MAC_A, 1))
    sim.run_for(100)
    records = list(read_pcap(io.BytesIO(stream.getvalue())))
    assert [(at, number_of(data)) for at, data in records] == [(5, 1), (15, 1)]
    assert a.received == []


# --- switch -------------------------------------------------------------


def test_switch_floods_unknown_then_forwards_learned_destinations() -> None:
    sim = Simulator(2)
    nodes = {name: FakeNode(mac) for name, mac in (("a", MAC_A), ("b", MAC_B), ("c", MAC_C))}
    switch = sim.add_switch("sw")
    for name, node in nodes.items():
        sim.add_host(name, node)
        sim.connect_to_switch("sw", (name, "eth0"), LinkProfile(delay=100))
    a, b, c = nodes["a"], nodes["b"], nodes["c"]
    a.send_at(0, "eth0", frame(BROADCAST, MAC_A, 1))  # flooded to b and c
    b.send_at(1_000, "eth0", frame(MAC_A, MAC_B, 2))  # a is learned: only a
    a.send_at(2_000, "eth0", frame(MAC_B, MAC_A, 3))  # b is learned: only b
    c.send_at(3_000, "eth0", frame(MAC_C, MAC_C, 4))  # to itself: filtered
    sim.run_for(10_000)
    assert [(at, number_of(data)) for at, _, data in a.received] == [(1_200, 2)]
    assert [(at, number_of(data)) for at, _, data in b.received] == [(200, 1), (2_200, 3)]
    assert [(at, number_of(data)) for at, _, data in c.received] == [(200, 1)]
    assert switch.counters == {"forwarded": 2, "flooded": 1, "filtered": 1, "runts": 0}


def test_switch_floods_unknown_unicast() -> None:
    sim = Simulator(2)
    sim.add_switch("sw")
    nodes = [FakeNode(mac) for mac in (MAC_A, MAC_B, MAC_C)]
    for index, node in enumerate(nodes):
        sim.add_host(f"h{index}", node)
        sim.connect_to_switch("sw", (f"h{index}", "eth0"))
    nodes[0].send_at(0, "eth0", frame(MAC_C, MAC_A, 1))
    sim.run_for(10)
    assert [len(node.received) for node in nodes] == [0, 1, 1]


# --- the clock -------------------------------------------------------------


def test_run_until_times_out_at_the_deadline() -> None:
    sim, a, b = pair(LinkProfile(delay=10))
    a.send_at(1_000, "eth0", frame(MAC_B, MAC_A, 1))
    assert sim.run_until(lambda: False, timeout=500) is False
    assert sim.now == 500 and b.received == []
    assert sim.run_until(lambda: bool(b.received), timeout=5_000) is True
    assert sim.now == 1_010


def test_run_until_checks_the_condition_first() -> None:
    sim, a, _ = pair(LinkProfile())
    a.send_at(1_000, "eth0", frame(MAC_B, MAC_A, 1))
    assert sim.run_until(lambda: True, timeout=5_000) is True
    assert sim.now == 0 and sim.counters["steps"] == 0


def test_time_jumps_straight_to_poll_at_deadlines() -> None:
    sim, a, _ = pair(LinkProfile())
    a.send_at(3_600_000_000, "eth0", frame(MAC_B, MAC_A, 1))
    assert sim.run_until(lambda: bool(a.timer_calls), timeout=7_200_000_000)
    assert sim.now == 3_600_000_000
    assert a.timer_calls == [3_600_000_000]
    assert sim.counters["steps"] == 1


def test_output_queued_before_running_goes_out_first() -> None:
    sim, a, b = pair(LinkProfile(delay=20))
    sim.run_for(100)
    a.outbox.append(("eth0", frame(MAC_B, MAC_A, 1)))  # as if an API call at now=100
    sim.run_for(100)
    assert [(at, number_of(data)) for at, _, data in b.received] == [(120, 1)]


def test_step_returns_false_when_idle() -> None:
    sim, a, b = pair(LinkProfile(delay=20))
    assert sim.step() is False
    a.send_at(5, "eth0", frame(MAC_B, MAC_A, 1))
    assert sim.step() is True and sim.now == 5
    assert sim.step() is True and sim.now == 25 and len(b.received) == 1
    assert sim.step() is False and sim.now == 25


def test_processes_run_after_every_step_with_now() -> None:
    sim, a, b = pair(LinkProfile(delay=20))
    seen: list[tuple[int, int]] = []
    sim.add_process(lambda now: seen.append((now, len(b.received))))
    a.send_at(5, "eth0", frame(MAC_B, MAC_A, 1))
    sim.run_for(100)
    assert seen == [(5, 0), (25, 1)]


def test_stalled_node_is_reported() -> None:
    class Stuck(FakeNode):
        def poll_at(self) -> int | None:
            return 0

    sim = Simulator(0, max_steps_per_instant=50)
    sim.add_host("stuck", Stuck())
    with pytest.raises(SimulationStalled):
        sim.run_for(10)


def test_link_fault_and_repair_mid_run() -> None:
    sim = Simulator(4)
    a, b = FakeNode(MAC_A), FakeNode(MAC_B)
    sim.add_host("a", a)
    sim.add_host("b", b)
    link = sim.connect(("a", "eth0"), ("b", "eth0"))
    for number in range(30):
        a.send_at(number * 10, "eth0", frame(MAC_B, MAC_A, number))
    sim.run_for(100)
    link.set_profile(ab=LinkProfile(loss=1.0))
    sim.run_for(100)
    link.set_profile(ab=LinkProfile())
    sim.run_for(1_000)
    # The frames sent at t=100 and t=200 go out in the step at the end of each run.
    assert [number_of(data) for _, _, data in b.received] == list(range(11)) + list(range(21, 30))
    assert link.ab.counters["lost"] == 10


def test_inject_and_unattached_output() -> None:
    sim = Simulator(0)
    lonely = FakeNode(MAC_A, echo=True)
    sim.add_host("lonely", lonely)
    sim.inject(("lonely", "eth9"), frame(MAC_A, MAC_B, 1), delay=30)
    sim.run_for(100)
    assert [(at, iface) for at, iface, _ in lonely.received] == [(30, "eth9")]
    assert sim.counters["unattached"] == 1 and sim.counters["injected"] == 1


def test_topology_misuse_raises() -> None:
    sim, _, _ = pair(LinkProfile())
    with pytest.raises(SimulationError):
        sim.add_host("a", FakeNode())
    with pytest.raises(SimulationError):
        sim.connect(("a", "eth0"), ("b", "eth1"))
    with pytest.raises(SimulationError):
        sim.connect(("a", "eth1"), ("nobody", "eth0"))
    with pytest.raises(SimulationError):
        sim.connect_to_switch("no-switch", ("a", "eth2"))
