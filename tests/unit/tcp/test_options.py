"""RFC 7323 helpers: window scale, TSval clock, PAWS (across the wrap), RTTM, option space."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp.rng import SeededRandom
from simtcp.tcp.options import (
    PAWS_IDLE_LIMIT,
    TIMESTAMPS_SPACE,
    TimestampClock,
    TimestampState,
    accepts_missing_timestamps,
    carries_timestamps,
    effective_mss,
    negotiate_window_scale,
    sack_block_capacity,
)
from simtcp.time import MILLISECOND, SECOND
from simtcp.wire.tcp import NopOption, SackOption, TimestampsOption, build_options


def test_window_scale_needs_both_sides_and_caps_at_14() -> None:
    assert negotiate_window_scale(7, 9) == (9, 7)
    assert negotiate_window_scale(7, None) == (0, 0)
    assert negotiate_window_scale(None, 5) == (0, 0)
    assert negotiate_window_scale(3, 15) == (14, 3)  # RFC 7323 §2.3
    assert negotiate_window_scale(0, 255) == (14, 0)


def test_effective_mss_subtracts_option_bytes() -> None:
    assert effective_mss(1460, TIMESTAMPS_SPACE) == 1448
    assert effective_mss(1460, 0) == 1460
    assert effective_mss(10, 40) == 1


def test_sack_capacity_matches_real_option_bytes() -> None:
    assert sack_block_capacity(0) == 4
    assert sack_block_capacity(TIMESTAMPS_SPACE) == 3
    blocks = tuple((i, i + 1) for i in range(4))
    assert len(build_options((NopOption(), NopOption(), SackOption(blocks)))) <= 40
    with_ts = (
        NopOption(),
        NopOption(),
        TimestampsOption(1, 2),
        NopOption(),
        NopOption(),
        SackOption(blocks[:3]),
    )
    assert len(build_options(with_ts)) <= 40


def test_which_segments_carry_timestamps() -> None:
    assert carries_timestamps(wanted=True, negotiated=False, syn=True)
    assert not carries_timestamps(wanted=False, negotiated=False, syn=True)
    assert carries_timestamps(wanted=True, negotiated=True, syn=False)
    assert not carries_timestamps(wanted=True, negotiated=False, syn=False)
    assert not accepts_missing_timestamps(True, rst=False)
    assert accepts_missing_timestamps(True, rst=True)
    assert accepts_missing_timestamps(False, rst=False)


def test_clock_ticks_per_millisecond_and_wraps() -> None:
    clock = TimestampClock(0xFFFF_FFFE)
    assert clock.tsval(0) == 0xFFFF_FFFE
    assert clock.tsval(999) == 0xFFFF_FFFE
    assert clock.tsval(1 * MILLISECOND) == 0xFFFF_FFFF
    assert clock.tsval(2 * MILLISECOND) == 0
    assert clock.tsval(5 * MILLISECOND) == 3


def test_clock_offset_is_seeded_and_per_connection() -> None:
    one = TimestampClock.for_connection(SeededRandom(1), 1, 2, 3, 4)
    again = TimestampClock.for_connection(SeededRandom(1), 1, 2, 3, 4)
    other_tuple = TimestampClock.for_connection(SeededRandom(1), 1, 2, 3, 5)
    other_seed = TimestampClock.for_connection(SeededRandom(2), 1, 2, 3, 4)
    assert one.offset == again.offset
    assert one.offset != other_tuple.offset
    assert one.offset != other_seed.offset


def test_rtt_from_echo_across_the_wrap() -> None:
    clock = TimestampClock(0xFFFF_FFF0)
    sent = clock.tsval(0)
    assert clock.rtt_from_echo(sent, 40 * MILLISECOND) == 40 * MILLISECOND  # wraps at 16 ms
    assert clock.rtt_from_echo(sent, 300) == MILLISECOND // 2  # under one tick
    assert clock.rtt_from_echo((sent + 5) & 0xFFFF_FFFF, 0) is None  # from the future


def test_paws_rejects_an_old_duplicate_across_the_wrap() -> None:
    state = TimestampState()
    state.learn_from_syn(0xFFFF_FFF0, now=0)
    # TS.Recent advances across 2**32.
    state.update_recent(0x10, seg_seq=100, last_ack_sent=100, now=1 * SECOND)
    assert state.ts_recent == 0x10
    assert state.paws_rejects(0xFFFF_FFF8, rst=False, now=2 * SECOND)  # before the wrap: old
    assert not state.paws_rejects(0x10, rst=False, now=2 * SECOND)  # equal is fine
    assert not state.paws_rejects(0x11, rst=False, now=2 * SECOND)
    assert not state.paws_rejects(0xFFFF_FFF8, rst=True, now=2 * SECOND)  # RSTs pass


def test_paws_forgets_after_24_idle_days() -> None:
    state = TimestampState()
    state.learn_from_syn(1000, now=0)
    assert state.paws_rejects(999, rst=False, now=PAWS_IDLE_LIMIT)
    assert not state.paws_rejects(999, rst=False, now=PAWS_IDLE_LIMIT + 1)
    assert not state.valid
    state.update_recent(999, seg_seq=5, last_ack_sent=5, now=PAWS_IDLE_LIMIT + 1)
    assert state.ts_recent == 999
    assert state.paws_rejects(998, rst=False, now=PAWS_IDLE_LIMIT + 2)


def test_update_recent_only_from_segments_covering_last_ack_sent() -> None:
    state = TimestampState()
    state.learn_from_syn(100, now=0)
    state.update_recent(200, seg_seq=1001, last_ack_sent=1000, now=1)  # beyond: ignored
    assert state.ts_recent == 100
    state.update_recent(200, seg_seq=1000, last_ack_sent=1000, now=1)
    assert state.ts_recent == 200
    state.update_recent(150, seg_seq=900, last_ack_sent=1000, now=2)  # older: ignored
    assert state.ts_recent == 200
    assert state.ts_recent_at == 1


@given(
    st.integers(min_value=0, max_value=0xFFFF_FFFF),
    st.integers(min_value=1, max_value=(1 << 31) - 1),
)
@settings(max_examples=200, deadline=None)
def test_paws_is_modular(recent: int, behind: int) -> None:
    state = TimestampState()
    state.learn_from_syn(recent, now=0)
    assert state.paws_rejects((recent - behind) & 0xFFFF_FFFF, rst=False, now=1)
    assert not state.paws_rejects((recent + behind - 1) & 0xFFFF_FFFF, rst=False, now=1)
