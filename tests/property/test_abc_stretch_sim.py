"""Slow start with stretch ACKs over the simulator: byte counting keeps its pace.

A receiver that ACKs once per read batch (``TcpConfig.max_stretch_ack``) or per
GRO-merged 64 KiB segment sends one ACK where RFC 5681 §4.2 would send twenty;
a sender growing cwnd by min(N, SMSS) per ACK (RFC 5681 §3.1) then ramps up
about twenty times slower. With Appropriate Byte Counting (RFC 3465 §2.2, L up
to one TSO segment: ``TcpConfig.abc_limit_segments`` 45, or 0 on a TSO route)
the transfer must finish within :data:`FACTOR` (plus one RTT, the granularity of
slow start's rounds) of the virtual time it takes with an ACK every second
segment. The controls show the comparison can fail: with L = one SMSS, stretch
ACKs make the same transfer more than three times slower (standard slow start:
HyStart++, on by default, takes L = 8 SMSS, RFC 9406 §4.2).
"""

from __future__ import annotations

import io
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp.backends.impair import LinkProfile
from simtcp.config import ArpConfig, TcpConfig
from simtcp.link import InterfaceOffload
from simtcp.programs.transfer import TransferSpec, run_transfer
from simtcp.time import MILLISECOND

FACTOR = 1.1
"""Largest ratio of completion times, stretch ACKs over an ACK per two segments."""
OFFLOAD = InterfaceOffload(tx_checksum=True, max_segment=65535 - 120)
"""TSO interfaces, like a TAP with offloads (the link must then cut: ``gso=True``)."""
BUFFERS = {"send_buffer": 4 * 1024 * 1024, "receive_buffer": 4 * 1024 * 1024}


def completion(
    tcp: TcpConfig, link: LinkProfile, size: int, seed: int, offload: InterfaceOffload | None = None
) -> float:
    spec = TransferSpec(
        bytes=size,
        seed=seed,
        forward=link,
        backward=link,
        tcp=tcp,
        arp=ArpConfig(entry_lifetime=10**12),
        offload=offload,
    )
    result = run_transfer(spec)
    assert result.ok, result.reason
    return result.virtual_seconds


@settings(max_examples=12, deadline=None)
@given(
    delay_ms=st.integers(2, 40),
    size=st.integers(500_000, 4_000_000),
    cc=st.sampled_from(["newreno", "cubic"]),
    seed=st.integers(0, 2**16),
)
def test_stretch_acks_finish_within_factor_with_byte_counting(
    delay_ms: int, size: int, cc: str, seed: int
) -> None:
    link = LinkProfile(delay=delay_ms * MILLISECOND)
    tcp = TcpConfig(congestion_control=cc, abc_limit_segments=45, **BUFFERS)
    rtt = 2 * delay_ms / 1000
    every_second = completion(tcp, link, size, seed)
    stretched = completion(replace(tcp, max_stretch_ack=65535), link, size, seed)
    assert stretched <= every_second * FACTOR + rtt
    # Nor slower than the RFC 5681 sender with an ACK every second segment.
    rfc5681 = completion(replace(tcp, abc_limit_segments=1, hystart=False), link, size, seed)
    assert stretched <= rfc5681 * FACTOR + rtt


def test_control_stretch_acks_without_byte_counting_are_much_slower() -> None:
    # Standard slow start: HyStart++ would count up to 8 SMSS per ACK (RFC 9406 §4.2).
    link = LinkProfile(delay=10 * MILLISECOND)
    tcp = TcpConfig(abc_limit_segments=1, hystart=False, **BUFFERS)
    every_second = completion(tcp, link, 4_000_000, 1)
    stretched = completion(replace(tcp, max_stretch_ack=65535), link, 4_000_000, 1)
    assert stretched > 3 * every_second


@settings(max_examples=6, deadline=None)
@given(
    delay_ms=st.integers(2, 40),
    cc=st.sampled_from(["newreno", "cubic"]),
    seed=st.integers(0, 2**16),
)
def test_route_limit_on_a_tso_route_keeps_pace_with_gro_acks(
    delay_ms: int, cc: str, seed: int
) -> None:
    """TSO interfaces and a GSO/GRO link: the receiver sees one 64 KiB segment per burst
    and ACKs it once (as Linux over a TAP with offloads does). With L from the route
    (``abc_limit_segments=0``: one TSO segment) the transfer stays within FACTOR (plus
    one RTT) of one where the link cuts segments but does not merge them on arrival
    (an ACK every second segment); with L = one SMSS it takes over three times as long."""
    size = 4_000_000
    cutting = LinkProfile(delay=delay_ms * MILLISECOND, gso=True)
    merging = replace(cutting, gro=True)
    tcp = TcpConfig(congestion_control=cc, abc_limit_segments=0, **BUFFERS)
    every_second = completion(tcp, cutting, size, seed, OFFLOAD)
    gro_acks = completion(tcp, merging, size, seed, OFFLOAD)
    assert gro_acks <= every_second * FACTOR + 2 * delay_ms / 1000
    rfc5681 = completion(
        replace(tcp, abc_limit_segments=1, hystart=False), merging, size, seed, OFFLOAD
    )
    assert rfc5681 > 3 * gro_acks


def test_route_limit_without_tso_is_one_smss() -> None:
    """``abc_limit_segments=0`` on a route without TSO: L = SMSS, the very frames of the
    RFC 5681 default (here with stretch ACKs, where L matters; standard slow start)."""
    link = LinkProfile(delay=10 * MILLISECOND)
    tcp = TcpConfig(max_stretch_ack=65535, hystart=False, **BUFFERS)
    captures = []
    for segments in (0, 1):
        capture = io.BytesIO()
        spec = TransferSpec(
            bytes=1_000_000,
            seed=5,
            forward=link,
            backward=link,
            tcp=replace(tcp, abc_limit_segments=segments),
            arp=ArpConfig(entry_lifetime=10**12),
        )
        assert run_transfer(spec, pcap=capture, pcap_point="link").ok
        captures.append(capture.getvalue())
    assert captures[0] == captures[1]
    faster = TransferSpec(
        bytes=1_000_000,
        seed=5,
        forward=link,
        backward=link,
        tcp=replace(tcp, abc_limit_segments=45),
        arp=ArpConfig(entry_lifetime=10**12),
    )
    assert run_transfer(faster).virtual_seconds < run_transfer(spec).virtual_seconds
