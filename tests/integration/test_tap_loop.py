"""The TAP loop's own mechanics, over a datagram socketpair standing in for a TAP fd (no root).

A full kernel queue (EAGAIN) must delay frames, never lose or reorder them,
and pause input meanwhile; the impairment shim must be seeded and exact.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from simtcp.backends.impair import LinkProfile
from simtcp.backends.tap import ImpairedPath, TapDevice, TapLoop, stack_mac
from tests.fake_tap import FakeStack, drain, socketpair_device

pytestmark = [pytest.mark.unprivileged, pytest.mark.timeout(30)]


@pytest.fixture
def pair() -> Iterator[tuple[TapDevice, socket.socket]]:
    with socketpair_device(send_buffer=4096) as devices:
        yield devices


def test_full_queue_delays_frames_without_loss_or_reordering(
    pair: tuple[TapDevice, socket.socket],
) -> None:
    device, kernel = pair
    stack = FakeStack()
    loop = TapLoop(stack, [device], clock=lambda: 1)
    try:
        frames = [i.to_bytes(4, "big") * 300 for i in range(3000)]
        stack.outbox = [("veth0", frame) for frame in frames]
        loop.run_once()
        assert loop.counters["write_blocked"] == 1
        assert device.write_queue, "the socket should have filled up"
        kernel.send(b"input while blocked")
        loop.run_once()
        assert stack.received == [], "input must wait while output is blocked"
        arrived: list[bytes] = []
        for _ in range(10_000):
            arrived += drain(kernel)
            if len(arrived) == len(frames) and not device.write_queue:
                break
            loop.run_once()
        loop.run_once()
        assert arrived == frames
        assert loop.counters["frames_out"] == len(frames)
        assert [(f.interface, f.frame) for f in stack.received] == [
            ("veth0", b"input while blocked")
        ]
    finally:
        loop.close()


def test_frames_for_an_unknown_interface_are_counted(pair: tuple[TapDevice, socket.socket]) -> None:
    device, kernel = pair
    stack = FakeStack()
    loop = TapLoop(stack, [device], clock=lambda: 1)
    try:
        stack.outbox = [("nope", b"x" * 60), ("veth0", b"y" * 60)]
        loop.run_once()
        assert drain(kernel) == [b"y" * 60]
        assert loop.counters["write_errors"] == 1
    finally:
        loop.close()


def test_stop_from_outside_ends_run(pair: tuple[TapDevice, socket.socket]) -> None:
    device, _ = pair
    stack = FakeStack()
    loop = TapLoop(stack, [device], clock=lambda: 1)
    try:
        loop.stop()
        loop.run(handle_signals=False)
        assert stack.timer_calls <= 1
    finally:
        loop.close()


def test_impaired_path_is_seeded() -> None:
    profile = LinkProfile(loss=0.2, reorder=0.2, duplicate=0.2)

    def run(seed: int) -> list[bytes]:
        path = ImpairedPath(profile, seed=seed, stream="in:veth0")
        out: list[bytes] = []
        for index in range(500):
            out += path.push(index.to_bytes(2, "big"), now=index * 100)
        return out + path.release(10**9)

    assert run(1) == run(1)
    assert run(1) != run(2)
    delivered = run(1)
    assert delivered != sorted(delivered)  # reordered
    assert len(set(delivered)) < 500  # some lost
    assert len(delivered) > len(set(delivered))  # some twice


def test_impaired_path_holds_reordered_frames_until_due() -> None:
    path = ImpairedPath(LinkProfile(reorder=1.0, reorder_delay=1000), seed=0, stream="s")
    assert path.push(b"a", now=0) == []
    assert path.next_release_at() == 1000
    assert path.release(999) == []
    assert path.release(1000) == [b"a"]


def test_total_loss_delivers_nothing() -> None:
    path = ImpairedPath(LinkProfile(loss=1.0), seed=0, stream="s")
    assert [path.push(b"x", now=i) for i in range(50)] == [[]] * 50
    assert path.impairment.counters["lost"] == 50


def test_stack_macs_are_unicast_local_and_distinct() -> None:
    macs = {stack_mac(seed, name) for seed in range(20) for name in ("veth0", "veth1")}
    assert len(macs) == 40
    for mac in macs:
        first = int(mac[:2], 16)
        assert first & 1 == 0 and first & 2 == 2
    assert stack_mac(3, "veth0") == stack_mac(3, "veth0")
