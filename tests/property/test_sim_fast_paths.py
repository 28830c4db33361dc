"""The simulator's fast paths against the general code they stand in for.

``Impairment.arrival_at`` schedules a frame on a FIFO link (no reordering,
duplication, corruption or jitter; loss allowed) without building lists; the
general ``Impairment.apply`` is its oracle: same arrival instants, same drops,
same counters, same queue, and the same draws from the random stream (checked
by drawing from both streams after every frame). The simulator also hands a lone frame on a GRO link
straight to its host, relying on ``gro_merge`` passing a single frame through
untouched; that assumption is pinned here too.
"""

from __future__ import annotations

import random
import struct

from hypothesis import example, given, settings
from hypothesis import strategies as st

from simtcp.backends.impair import Impairment, LinkProfile
from simtcp.backends.nic import gro_merge
from simtcp.wire.checksum import internet_checksum
from simtcp.wire.offload import set_l4_checksum

# Values that make the boundaries likely: at 8 Mbit/s a byte takes a microsecond, so
# gaps equal to frame sizes free the queue exactly when the next frame comes; sizes
# that add up to the queue limit, and MTUs that fit a frame exactly.
SIZES = [14, 60, 100, 986, 1000, 1500, 1514]
fifo_profiles = st.builds(
    LinkProfile,
    loss=st.sampled_from([0.0, 0.0, 0.3, 1.0]),
    delay=st.sampled_from([0, 1, 100, 5_000]),
    rate=st.sampled_from([0, 3_000_000, 8_000_000, 100_000_000]),
    queue_limit=st.sampled_from([1, 100, 1_000, 1_514, 2_000, 3_028, 20_000]),
    mtu=st.sampled_from([None, 0, 46, 972, 986, 1_500]),
)
sends = st.lists(
    st.tuples(
        st.sampled_from([0, 1, 14, 60, 100, 986, 1_000, 1_514, 3_000]), st.sampled_from(SIZES)
    ),
    max_size=60,
)
"""(microseconds after the previous send, frame size) pairs."""


@settings(max_examples=200, deadline=None)
@given(fifo_profiles, fifo_profiles, sends, st.integers(0, 60))
@example(LinkProfile(delay=5_000), LinkProfile(delay=0), [(0, 60), (0, 60)], 1)  # FIFO
@example(LinkProfile(rate=8_000_000, queue_limit=120), LinkProfile(), [(0, 60)] * 3, 9)
@example(
    LinkProfile(loss=0.5, mtu=46),
    LinkProfile(loss=0.5, rate=8_000_000, queue_limit=100),
    [(0, 60), (0, 14), (0, 60), (0, 60), (0, 14)],
    2,
)  # no draw for frames dropped first
def test_arrival_at_matches_apply(
    first: LinkProfile, second: LinkProfile, frames: list[tuple[int, int]], switch_after: int
) -> None:
    fast_rng, general_rng = random.Random(1), random.Random(1)
    fast = Impairment(first, fast_rng)
    general = Impairment(first, general_rng)
    assert fast.fifo
    now = 0
    for number, (gap, size) in enumerate(frames):
        if number == switch_after:  # a profile change mid-run (a link fault)
            fast.profile = general.profile = second
        now += gap
        frame = bytes([number & 0xFF]) * size
        arrival_at = fast.arrival_at(size, now)
        arrivals = general.apply(frame, now)
        assert arrivals == ([] if arrival_at < 0 else [(arrival_at, frame)])
        assert fast.counters == general.counters
        assert fast.queued_bytes == general.queued_bytes
        assert fast_rng.getstate() == general_rng.getstate()


@settings(max_examples=50, deadline=None)
@given(st.floats(0.0, 1.0), st.sampled_from(["loss", "reorder", "duplicate", "corrupt"]))
def test_only_loss_keeps_the_fast_path(probability: float, name: str) -> None:
    profile = LinkProfile(**{name: probability})  # type: ignore[arg-type]
    assert Impairment(profile, random.Random(1)).fifo == (probability == 0.0 or name == "loss")
    jittery = Impairment(LinkProfile(jitter=1), random.Random(1))
    assert not jittery.fifo
    jittery.profile = LinkProfile(delay=5, loss=0.5)
    assert jittery.fifo


def tcp_data_frame(seq: int, payload: bytes) -> bytes:
    """Ethernet + IPv4 + TCP (ACK, maybe PSH) with good checksums: a frame GRO may merge."""
    tcp = struct.pack("!HHIIBBHHH", 40000, 5001, seq, 1, 5 << 4, 0x10, 65535, 0, 0) + payload
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
    datagram[10:12] = internet_checksum(datagram[:20]).to_bytes(2, "big")
    set_l4_checksum(datagram, partial=False)
    return bytes(6) + bytes(6) + b"\x08\x00" + bytes(datagram)


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=200)
    | st.builds(tcp_data_frame, st.integers(0, 2**32 - 1), st.binary(min_size=1, max_size=1_460))
)
def test_gro_passes_a_lone_frame_through(frame: bytes) -> None:
    assert gro_merge([frame]) == [frame]


def test_gro_merges_two_frames_of_a_run() -> None:
    """The frame above is one GRO merges (so the lone-frame test covers real candidates)."""
    first, second = tcp_data_frame(1000, b"a" * 100), tcp_data_frame(1100, b"b" * 100)
    [merged] = gro_merge([first, second])
    assert merged.endswith(b"a" * 100 + b"b" * 100)
