"""Properties of link impairments and of the simulator for arbitrary profiles and traffic."""

from __future__ import annotations

import io
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp.backends.impair import Impairment, LinkProfile
from simtcp.backends.sim import Simulator

probabilities = st.sampled_from([0.0, 0.0, 0.01, 0.1, 0.5, 1.0])

profiles = st.builds(
    LinkProfile,
    loss=probabilities,
    reorder=probabilities,
    reorder_delay=st.integers(0, 5_000),
    duplicate=probabilities,
    corrupt=probabilities,
    delay=st.integers(0, 50_000),
    jitter=st.integers(0, 5_000),
    rate=st.sampled_from([0, 1_000_000, 10_000_000, 1_000_000_000]),
    queue_limit=st.integers(64, 100_000),
    mtu=st.sampled_from([None, 576, 1500]),
)

# (gap since the previous frame in microseconds, frame length)
traffic = st.lists(st.tuples(st.integers(0, 2_000), st.integers(14, 1_600)), max_size=80)


def send_all(
    profile: LinkProfile, frames: list[tuple[int, int]], seed: int
) -> tuple[Impairment, list[tuple[int, int, int, bytes]]]:
    """Offer every frame; (sent_at, index, arrive_at, copy) for every copy that arrives."""
    impairment = Impairment(profile, random.Random(seed))
    arrivals = []
    now = 0
    for index, (gap, length) in enumerate(frames):
        now += gap
        data = index.to_bytes(2, "big") * (length // 2) + b"x" * (length % 2)
        for arrive_at, copy in impairment.apply(data, now):
            arrivals.append((now, index, arrive_at, copy))
        assert impairment.queued_bytes <= profile.queue_limit
    return impairment, arrivals


@settings(max_examples=300, deadline=None)
@given(profiles, traffic, st.integers(0, 2**32))
def test_counters_add_up_and_times_are_sane(
    profile: LinkProfile, frames: list[tuple[int, int]], seed: int
) -> None:
    impairment, arrivals = send_all(profile, frames, seed)
    counters = impairment.counters
    assert counters["sent"] == len(frames)
    assert counters["delivered"] == len(arrivals)
    assert counters["sent"] == (
        counters["lost"]
        + counters["queue_drops"]
        + counters["mtu_drops"]
        + counters["delivered"]
        - counters["duplicated"]
    )
    for sent_at, _, arrive_at, _ in arrivals:
        assert arrive_at >= sent_at + max(0, profile.delay - profile.jitter)
    if profile.mtu is not None:
        assert all(len(copy) <= profile.mtu + 14 for _, _, _, copy in arrivals)


@settings(max_examples=300, deadline=None)
@given(profiles, traffic, st.integers(0, 2**32))
def test_frames_stay_in_order_unless_reordered(
    profile: LinkProfile, frames: list[tuple[int, int]], seed: int
) -> None:
    impairment, arrivals = send_all(profile, frames, seed)
    if impairment.counters["reordered"] == 0:
        times = [arrive_at for _, _, arrive_at, _ in arrivals]
        assert times == sorted(times)
    if impairment.counters["corrupted"] == 0:
        for _, index, _, copy in arrivals:
            assert copy[:2] == index.to_bytes(2, "big") or len(copy) < 2


@settings(max_examples=200, deadline=None)
@given(st.integers(1_000, 1_000_000_000), st.lists(st.integers(14, 1_600), min_size=1, max_size=50))
def test_rate_spaces_back_to_back_frames_by_serialization_time(
    rate: int, lengths: list[int]
) -> None:
    impairment = Impairment(LinkProfile(rate=rate, queue_limit=10**9), random.Random(0))
    finished = [impairment.apply(b"\0" * length, 0)[0][0] for length in lengths]
    total_bits = 0
    for length, finished_at in zip(lengths, finished, strict=True):
        total_bits += length * 8
        # The last bit of each frame leaves at ceil(bits so far / rate), exactly.
        assert finished_at == -(-total_bits * 1_000_000 // rate)


@settings(max_examples=100, deadline=None)
@given(profiles, traffic, st.integers(0, 2**32))
def test_same_seed_same_arrivals(
    profile: LinkProfile, frames: list[tuple[int, int]], seed: int
) -> None:
    assert send_all(profile, frames, seed)[1] == send_all(profile, frames, seed)[1]


class Chatter:
    """Emits its frames at given times; answers each arrival with one frame back."""

    def __init__(self, schedule: list[tuple[int, bytes]]) -> None:
        self.schedule = sorted(schedule, key=lambda item: item[0], reverse=True)
        self.outbox: list[tuple[str, bytes]] = []
        self.arrivals = 0

    def receive_frame(self, interface: str, frame: bytes | memoryview, *, now: int) -> None:
        self.arrivals += 1
        if self.arrivals < 500:
            self.outbox.append((interface, bytes(frame)[::-1]))

    def frames_to_send(self, *, now: int) -> list[tuple[str, bytes]]:
        out, self.outbox = self.outbox, []
        return out

    def poll_at(self) -> int | None:
        return self.schedule[-1][0] if self.schedule else None

    def handle_timer(self, *, now: int) -> None:
        while self.schedule and self.schedule[-1][0] <= now:
            self.outbox.append(("eth0", self.schedule.pop()[1]))


def simulated_pcap(profile: LinkProfile, schedule: list[tuple[int, bytes]], seed: int) -> bytes:
    sim = Simulator(seed)
    sim.add_host("a", Chatter(schedule))
    sim.add_host("b", Chatter([]))
    link = sim.connect(("a", "eth0"), ("b", "eth0"), profile)
    stream = io.BytesIO()
    sim.add_pcap(link, stream)
    sim.add_pcap(("b", "eth0"), stream)
    sim.run_for(10_000_000)
    return stream.getvalue()


@settings(max_examples=50, deadline=None)
@given(
    profiles,
    st.lists(
        st.tuples(st.integers(0, 1_000_000), st.binary(min_size=14, max_size=200)), max_size=40
    ),
    st.integers(0, 2**32),
)
def test_simulator_replays_byte_identical_pcaps(
    profile: LinkProfile, schedule: list[tuple[int, bytes]], seed: int
) -> None:
    assert simulated_pcap(profile, schedule, seed) == simulated_pcap(profile, schedule, seed)
