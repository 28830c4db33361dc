"""The header-prediction fast path against its oracle, the general path.

``simtcp/tcp/fastpath.py`` claims to do, for the segments it takes, exactly what
``states._synchronized`` (RFC 9293 §3.10.7.4) does. The proof here: the same
seeded transfer over the same impaired link (loss, reordering, duplication,
corruption, GRO merging; software GSO on the sending interfaces or not), run
once with ``TcpConfig(fast_path=True)`` and once with ``fast_path=False`` on
both ends, with timestamps, SACK (and RACK) and window scaling drawn on or off,
must put the same frames on the wire at the same virtual times (the link's
pcap, byte for byte), deliver the same bytes, and leave every stack counter
equal except the fast path's own two. A transfer in which the fast path never
ran proves nothing, so the test also checks that it ran.
"""

from __future__ import annotations

import io

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from simtcp.backends.impair import LinkProfile
from simtcp.config import ArpConfig, TcpConfig
from simtcp.link import InterfaceOffload
from simtcp.programs.transfer import TransferResult, TransferSpec, run_transfer
from simtcp.time import MILLISECOND, SECOND

FAST_PATH_COUNTERS = ("tcp.fast_path_ack", "tcp.fast_path_data")
ARP_FOREVER = ArpConfig(entry_lifetime=10**12)


SOFTWARE_GSO = InterfaceOffload(max_segment=65535 - 120, software_segmentation=True)
"""Interfaces that cut 64 KiB TCP segments into frames themselves."""


def run(spec: TransferSpec) -> tuple[TransferResult, bytes, list[dict[str, int]]]:
    """One transfer: its result, the link's pcap, and both stacks' counters at the end."""
    pcap = io.BytesIO()
    result = run_transfer(spec, pcap=pcap, pcap_point="link")
    return result, pcap.getvalue(), [result.client_stats, result.server_stats]


def run_both(spec: TransferSpec) -> tuple[TransferResult, list[dict[str, int]]]:
    """Run ``spec`` with the fast path on and off; assert the runs are indistinguishable.

    Returns the fast run's result and counters.
    """
    fast = TransferSpec(**{**_fields(spec), "tcp": _with_fast_path(spec.tcp, True)})
    slow = TransferSpec(**{**_fields(spec), "tcp": _with_fast_path(spec.tcp, False)})
    fast_result, fast_pcap, fast_stats = run(fast)
    slow_result, slow_pcap, slow_stats = run(slow)
    assert fast_result.reason == slow_result.reason
    assert fast_result.bytes_delivered == slow_result.bytes_delivered
    assert fast_result.retransmits == slow_result.retransmits
    assert fast_result.link_stats == slow_result.link_stats
    assert len(fast_pcap) == len(slow_pcap)
    assert fast_pcap == slow_pcap, "the frames on the wire differ"
    for fast_counters, slow_counters in zip(fast_stats, slow_stats, strict=True):
        for name in FAST_PATH_COUNTERS:
            assert slow_counters.get(name, 0) == 0
        assert _without_fast_path(fast_counters) == slow_counters
    return fast_result, fast_stats


def _fields(spec: TransferSpec) -> dict[str, object]:
    return {name: getattr(spec, name) for name in TransferSpec.__dataclass_fields__}


def _with_fast_path(tcp: TcpConfig, on: bool) -> TcpConfig:
    values = {name: getattr(tcp, name) for name in TcpConfig.__dataclass_fields__}
    values["fast_path"] = on
    return TcpConfig(**values)  # type: ignore[arg-type]


def _without_fast_path(counters: dict[str, int]) -> dict[str, int]:
    return {name: value for name, value in counters.items() if name not in FAST_PATH_COUNTERS}


def hits(stats: list[dict[str, int]]) -> int:
    return sum(counters.get(name, 0) for counters in stats for name in FAST_PATH_COUNTERS)


probabilities = st.one_of(st.just(0.0), st.floats(0.005, 0.2))

profiles = st.builds(
    LinkProfile,
    loss=probabilities,
    reorder=probabilities,
    duplicate=probabilities,
    corrupt=probabilities,
    delay=st.integers(0, 20 * MILLISECOND),
    jitter=st.integers(0, 2 * MILLISECOND),
    reorder_delay=st.integers(100, 10 * MILLISECOND),
    rate=st.one_of(st.just(0), st.integers(5_000_000, 1_000_000_000)),
    gro=st.booleans(),
)

sizes = st.one_of(
    st.integers(0, 5000), st.integers(5000, 400_000), st.sampled_from([1 << 20, 2 << 20])
)
"""Tiny (one window), several windows, and now and then megabytes (many RTTs in steady
state, where the fast path does its work)."""

tcp_configs = st.builds(
    TcpConfig,
    syn_retries=st.just(30),
    data_retries=st.just(60),
    max_rto=st.just(5 * SECOND),
    timestamps=st.booleans(),
    sack=st.booleans(),
    rack=st.booleans(),
    window_scaling=st.booleans(),
    nodelay=st.booleans(),
    receive_buffer=st.sampled_from([16 * 1024, 64 * 1024, 256 * 1024]),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    forward=profiles,
    backward=profiles,
    size=sizes,
    reverse=st.one_of(st.just(0), sizes),
    tcp=tcp_configs,
    mtu=st.sampled_from([1500, 576, 9000]),
    gso=st.booleans(),
)
def test_fast_path_puts_the_same_frames_on_the_wire_as_the_general_path(
    seed: int,
    forward: LinkProfile,
    backward: LinkProfile,
    size: int,
    reverse: int,
    tcp: TcpConfig,
    mtu: int,
    gso: bool,
) -> None:
    spec = TransferSpec(
        bytes=size,
        reverse_bytes=reverse,
        seed=seed,
        forward=forward,
        backward=backward,
        mtu=mtu,
        tcp=tcp,
        arp=ARP_FOREVER,
        offload=SOFTWARE_GSO if gso else None,
    )
    result, stats = run_both(spec)
    assert result.ok, result.reason
    segments = sum(counters["tcp.segments_in"] for counters in stats)
    event(f"fast path took {10 * (10 * hits(stats) // max(segments, 1))}%+ of the segments")


def test_fast_path_takes_most_segments_of_a_clean_transfer_in_every_option_combination() -> None:
    # 20 Mbit/s: frames leave 0.6 ms apart, so consecutive segments carry different TSvals
    # (1 ms ticks) and echoing the wrong one (RFC 7323 §4.3) shows on the wire.
    paced = LinkProfile(delay=5 * MILLISECOND, rate=20_000_000)
    for timestamps in (False, True):
        for sack in (False, True):
            for scaling in (False, True):
                tcp = TcpConfig(timestamps=timestamps, sack=sack, window_scaling=scaling)
                spec = TransferSpec(
                    bytes=200_000,
                    reverse_bytes=50_000,
                    seed=7,
                    tcp=tcp,
                    forward=paced,
                    backward=paced,
                )
                result, stats = run_both(spec)
                assert result.ok, result.reason
                segments = sum(counters["tcp.segments_in"] for counters in stats)
                assert hits(stats) > 0.8 * segments, (timestamps, sack, scaling, stats)


def test_fast_path_runs_and_matches_under_heavy_impairment() -> None:
    impaired = LinkProfile(
        loss=0.1,
        reorder=0.1,
        duplicate=0.05,
        corrupt=0.05,
        delay=2 * MILLISECOND,
        reorder_delay=3 * MILLISECOND,
    )
    spec = TransferSpec(
        bytes=300_000,
        reverse_bytes=100_000,
        seed=11,
        forward=impaired,
        backward=impaired,
        arp=ARP_FOREVER,
        tcp=TcpConfig(syn_retries=30, data_retries=60, max_rto=5 * SECOND),
    )
    result, stats = run_both(spec)
    assert result.ok, result.reason
    assert result.retransmits > 0
    for name in FAST_PATH_COUNTERS:
        assert sum(counters.get(name, 0) for counters in stats) > 0, name
