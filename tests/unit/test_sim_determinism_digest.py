"""The simulator replays a seed exactly: digests of pcaps and arrival logs, pinned.

The digests below were recorded with the simulator as it was before its speed
work (commit 1732b35, the straightforward heap-of-tuples version). Any later
change to ``backends/sim.py`` or ``backends/impair.py`` must keep them: the
same seed must give byte-identical pcaps, the same arrival times, the same
timer calls and the same counters, on clean and on impaired links alike (an
optimisation that changes how the random stream is consumed fails here).

The hosts are scripted fake nodes, not ``simtcp.Stack``, so that changes to the
TCP engine never move these digests: they pin the simulator alone. Each node
sends seeded frames at seeded instants (several at the same instant), answers
some arrivals at once, some through a timer (some due at the very instant they
are armed) and some not at all, so the order of deliveries, timers, processes
and drains inside a step all show in the digest.
"""

from __future__ import annotations

import hashlib
import heapq
import io
import itertools
import random
import struct
from dataclasses import replace

import pytest

from simtcp.backends.impair import LinkProfile
from simtcp.backends.sim import Link, Simulator
from simtcp.time import Instant
from simtcp.wire.offload import set_l4_checksum

BROADCAST = b"\xff" * 6
UNKNOWN = bytes.fromhex("02000000ffee")


def mac(index: int) -> bytes:
    return bytes.fromhex(f"0200000000{index:02x}")


def body_frame(destination: bytes, source: bytes, generation: int, number: int, size: int) -> bytes:
    """An Ethernet frame of ``size`` bytes: ``generation`` and ``number`` after the header."""
    head = destination + source + b"\x88\xb5" + bytes([generation]) + number.to_bytes(4, "big")
    return head + bytes((number + index) & 0xFF for index in range(size - len(head)))


def tcp_frame(destination: bytes, source: bytes, seq: int, payload: bytes) -> bytes:
    """An Ethernet + IPv4 (DF) + TCP (ACK|PSH) frame with a partial checksum, as a host
    with checksum offload hands it to its NIC."""
    tcp = struct.pack("!HHIIBBHHH", 40000, 5001, seq, 1, 5 << 4, 0x18, 65535, 0, 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(tcp),
        0,
        0x4000,
        64,
        6,
        0,
        bytes([10, 0, 0, 1]),
        bytes([10, 0, 0, 2]),
    )
    datagram = bytearray(ip + tcp)
    set_l4_checksum(datagram, partial=True)
    return destination + source + b"\x08\x00" + bytes(datagram)


class ScriptNode:
    """Sends seeded frames at seeded instants and answers some of what arrives."""

    def __init__(
        self,
        index: int,
        seed: int,
        destinations: list[bytes],
        *,
        interfaces: tuple[str, ...] = ("eth0",),
        count: int = 120,
        max_size: int = 1514,
        tcp_to: bytes | None = None,
    ) -> None:
        self.mac = mac(index)
        self.interfaces = interfaces
        self.rng = random.Random(f"digest:{seed}:{index}")
        self.schedule: list[tuple[int, int, str, bytes]] = []
        self.outbox: list[tuple[str, bytes]] = []
        self.log: list[tuple[int, str, str, str]] = []
        self._order = itertools.count()
        rng = self.rng
        for number in range(count):
            at = rng.randrange(0, 400) * 125  # many sends share an instant
            interface = rng.choice(interfaces)
            if tcp_to is not None and rng.random() < 0.5:
                size = rng.randrange(200, 9000)
                data = tcp_frame(tcp_to, self.mac, number * 10_000, rng.randbytes(size))
            else:
                data = body_frame(
                    rng.choice(destinations), self.mac, 0, number, rng.randrange(60, max_size + 1)
                )
            self.send_at(at, interface, data)

    def send_at(self, at: Instant, interface: str, data: bytes) -> None:
        heapq.heappush(self.schedule, (at, next(self._order), interface, data))

    def receive_frame(self, interface: str, frame: bytes | memoryview, *, now: Instant) -> None:
        data = bytes(frame)
        self.log.append((now, "rx", interface, hashlib.sha256(data).hexdigest()[:16]))
        if len(data) < 19 or data[12:14] != b"\x88\xb5" or data[14] >= 2:
            return
        number = int.from_bytes(data[15:19], "big")
        reply = body_frame(data[6:12], self.mac, data[14] + 1, number, max(60, len(data) // 2))
        if number % 3 == 0:
            self.outbox.append((interface, reply))
        elif number % 3 == 1:
            self.send_at(now + (number % 5) * 40, interface, reply)  # 0: due at once

    def frames_to_send(self, *, now: Instant) -> list[tuple[str, bytes]]:
        out, self.outbox = self.outbox, []
        for interface, data in out:
            self.log.append((now, "tx", interface, hashlib.sha256(data).hexdigest()[:16]))
        return out

    def poll_at(self) -> Instant | None:
        return self.schedule[0][0] if self.schedule else None

    def handle_timer(self, *, now: Instant) -> None:
        self.log.append((now, "timer", "", ""))
        while self.schedule and self.schedule[0][0] <= now:
            _, _, interface, data = heapq.heappop(self.schedule)
            self.outbox.append((interface, data))


class Recorder:
    """Digests everything observable about one run."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.streams: list[io.BytesIO] = []
        self.steps: list[int] = []
        sim.add_process(self.steps.append)

    def tap(self, target: Link | tuple[str, str]) -> None:
        stream = io.BytesIO()
        self.sim.add_pcap(target, stream)
        self.streams.append(stream)

    def digest(self, nodes: list[ScriptNode], extra: object = None) -> str:
        sim = self.sim
        hasher = hashlib.sha256()
        for stream in self.streams:
            hasher.update(hashlib.sha256(stream.getvalue()).digest())
        for node in nodes:
            hasher.update(repr(node.log).encode())
        hasher.update(
            repr(
                (
                    self.steps,
                    sim.now,
                    sim.frames_in_flight,
                    sorted(sim.counters.items()),
                    sorted(
                        (name, sorted(counts.items())) for name, counts in sim.link_stats().items()
                    ),
                    extra,
                )
            ).encode()
        )
        return hasher.hexdigest()[:24]


CHAOS = LinkProfile(
    loss=0.05,
    reorder=0.1,
    reorder_delay=300,
    duplicate=0.05,
    corrupt=0.05,
    delay=2_000,
    jitter=700,
    rate=20_000_000,
    queue_limit=16_000,
    mtu=1400,
)
PROFILES: dict[str, tuple[LinkProfile, LinkProfile]] = {
    "perfect": (LinkProfile(), LinkProfile()),
    "delay": (LinkProfile(delay=1_500), LinkProfile(delay=250)),
    "rate": (
        LinkProfile(delay=3_000, rate=50_000_000, queue_limit=20_000),
        LinkProfile(rate=10_000_000, queue_limit=9_000),
    ),
    "mtu": (LinkProfile(mtu=700, delay=10), LinkProfile(mtu=1000)),
    "loss": (LinkProfile(loss=0.2, delay=500), LinkProfile(loss=0.1)),
    "chaos": (CHAOS, LinkProfile(duplicate=0.2, corrupt=0.3, jitter=400, delay=900)),
}


def run_pair(seed: int, name: str) -> str:
    forward, backward = PROFILES[name]
    sim = Simulator(seed)
    nodes = [ScriptNode(1, seed, [mac(2), BROADCAST]), ScriptNode(2, seed, [mac(1)])]
    sim.add_host("a", nodes[0])
    sim.add_host("b", nodes[1])
    link = sim.connect(("a", "eth0"), ("b", "eth0"), forward, backward)
    recorder = Recorder(sim)
    recorder.tap(link)
    recorder.tap(("a", "eth0"))
    recorder.tap(("b", "eth0"))
    sim.run_for(20_000)
    link.set_profile(ab=backward, ba=forward)  # a fault mid-run: the profiles swap
    while sim.now < 35_000 and sim.step():
        pass
    sim.run_until(lambda: sim.frames_in_flight == 0 and not nodes[0].schedule, timeout=1_000_000)
    sim.run_for(10_000_000)
    return recorder.digest(nodes)


def run_switch(seed: int) -> str:
    sim = Simulator(seed)
    switch = sim.add_switch("sw", table_limit=2)  # evictions too
    everyone = [mac(1), mac(2), mac(3), BROADCAST, UNKNOWN]
    nodes = [ScriptNode(index, seed, everyone, count=80) for index in (1, 2, 3)]
    profiles = [
        LinkProfile(),
        LinkProfile(delay=700, rate=30_000_000),
        LinkProfile(loss=0.1, duplicate=0.1, jitter=300, delay=400),
    ]
    recorder = Recorder(sim)
    for index, (node, profile) in enumerate(zip(nodes, profiles, strict=True)):
        name = f"h{index}"
        sim.add_host(name, node)
        link = sim.connect_to_switch("sw", (name, "eth0"), profile, LinkProfile(delay=100))
        recorder.tap(link)
    recorder.tap(("h0", "eth0"))
    sim.inject(("h1", "eth0"), body_frame(mac(2), mac(9), 0, 3, 64), delay=5_000)
    sim.inject(("h2", "eth0"), body_frame(mac(3), mac(9), 0, 4, 64))
    sim.run_for(10_000_000)
    assert switch.counters["flooded"] and switch.counters["forwarded"]
    assert switch.counters["filtered"]
    return recorder.digest(nodes, extra=sorted(switch.counters.items()))


def run_offload(seed: int, name: str) -> str:
    wire_profiles = {
        "gso": LinkProfile(gso=True, gro=True, delay=1_000),
        "gso-rate": LinkProfile(gso=True, gro=True, delay=1_000, rate=100_000_000),
        "gso-lossy": LinkProfile(
            gso=True,
            gro=True,
            delay=1_000,
            loss=0.05,
            reorder=0.1,
            duplicate=0.05,
            corrupt=0.05,
            jitter=50,
        ),
    }
    sim = Simulator(seed)
    nodes = [
        ScriptNode(1, seed, [mac(2)], tcp_to=mac(2), count=60),
        ScriptNode(2, seed, [mac(1)], count=30),
    ]
    sim.add_host("a", nodes[0])
    sim.add_host("b", nodes[1])
    link = sim.connect(
        ("a", "eth0"), ("b", "eth0"), wire_profiles[name], LinkProfile(delay=1_000, gro=True)
    )
    recorder = Recorder(sim)
    recorder.tap(link)
    recorder.tap(("a", "eth0"))
    recorder.tap(("b", "eth0"))
    sim.run_for(10_000_000)
    return recorder.digest(nodes)


EXPECTED_PAIR: dict[tuple[int, str], str] = {
    (1, "chaos"): "98661ff7ed1e0173c7ecc895",
    (1, "delay"): "f88883a31086281107d8fe5d",
    (1, "loss"): "2be5576f68a7a48fd13100b3",
    (1, "mtu"): "478ecdc39c07fe472e94f320",
    (1, "perfect"): "3ccee0cac1f93d25b1056577",
    (1, "rate"): "e6843cf280be629108421e75",
    (7, "chaos"): "7a218a8608639c9a01a3681e",
    (7, "delay"): "9d1c1827507559811b1e8cdb",
    (7, "loss"): "58be4b9a6e04e7aef04bfa53",
    (7, "mtu"): "45068029f1a7314b78df1062",
    (7, "perfect"): "4ecec0e614245176918375a8",
    (7, "rate"): "4a3b4b94e9fa76c97cb6620e",
    (2026, "chaos"): "7be3036a1b6ef4a84e5e7792",
    (2026, "delay"): "fa6402ed46f0ece10bed5e5d",
    (2026, "loss"): "5b55f03013a260908f75c1ae",
    (2026, "mtu"): "c8c50f50d1d98f0ea04a5c7b",
    (2026, "perfect"): "f45bc664a8cc9b6190241c1b",
    (2026, "rate"): "8ea8c3e17c83474c041345c6",
}
EXPECTED_SWITCH: dict[int, str] = {
    1: "15dcbc80089ad405a5ada85c",
    7: "cef1523e9487d63da7690553",
    2026: "9cfa0ecdc30694e54f4bf3aa",
}
EXPECTED_OFFLOAD: dict[tuple[int, str], str] = {
    (1, "gso"): "2e69decef87815653436c0e8",
    (1, "gso-rate"): "1b5b5adefe1cedafb99b6e0c",
    (1, "gso-lossy"): "7eb1389def8963e5ece3d3c0",
    (7, "gso"): "a07478b4a3bc4ce4b069cb7e",
    (7, "gso-rate"): "838e3f7194cdb6a082e13917",
    (7, "gso-lossy"): "f0c82a0f5fd2aa0bd5cf4ab3",
    (2026, "gso"): "5ba10ec2f512c162160012fc",
    (2026, "gso-rate"): "7073219ebe566207500fc550",
    (2026, "gso-lossy"): "926ed80b74e04cec3548854c",
}
SEEDS = (1, 7, 2026)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", sorted(PROFILES))
def test_pair_digest_is_pinned(seed: int, name: str) -> None:
    assert run_pair(seed, name) == EXPECTED_PAIR[seed, name]


@pytest.mark.parametrize("seed", SEEDS)
def test_switch_digest_is_pinned(seed: int) -> None:
    assert run_switch(seed) == EXPECTED_SWITCH[seed]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", ["gso", "gso-rate", "gso-lossy"])
def test_offload_digest_is_pinned(seed: int, name: str) -> None:
    assert run_offload(seed, name) == EXPECTED_OFFLOAD[seed, name]


def test_digests_see_a_different_seed_and_a_different_profile() -> None:
    assert run_pair(1, "chaos") != run_pair(2, "chaos")
    assert run_pair(1, "chaos") != run_pair(1, "loss")
    assert run_pair(3, "chaos") == run_pair(3, "chaos")


# --- with real stacks: no pinned digests (the engine changes), but the same rules ----------


def stack_transfer(pcap_point: str | None) -> tuple[object, ...]:
    from simtcp.programs.transfer import TransferSpec, run_transfer

    spec = TransferSpec(
        bytes=60_000,
        reverse_bytes=20_000,
        seed=11,
        forward=replace(CHAOS, mtu=None),
        backward=PROFILES["chaos"][1],
    )
    stream = io.BytesIO()
    result = (
        run_transfer(spec)
        if pcap_point is None
        else run_transfer(spec, pcap=stream, pcap_point=pcap_point)
    )
    return (
        result.ok,
        result.reason,
        result.bytes_delivered,
        result.virtual_seconds,
        result.retransmits,
        result.link_stats,
        result.closed_at,
        hashlib.sha256(stream.getvalue()).hexdigest(),
    )


def test_stack_transfers_replay_and_taps_change_nothing() -> None:
    plain = stack_transfer(None)
    assert plain[0] is True, plain[1]
    link = stack_transfer("link")
    assert link == stack_transfer("link")  # the same seed, the same pcap
    assert link[:-1] == plain[:-1]  # a tap only watches
    assert stack_transfer("client")[:-1] == plain[:-1]
    assert link[-1] != plain[-1]  # the tap did record something
