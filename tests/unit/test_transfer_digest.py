"""The transfer harness's results, pinned: a faster harness must change no result.

``simtcp/transfer.py`` drives both stacks' applications after every simulator
step, generates and checks the data, and decides when a phase is over. Making
it cheaper (a pattern cache shared by sender and receiver, fewer scans per
step) must leave every frame, every virtual time and every byte count as it
was. The digests below were recorded with the harness of commit 872cef0
(before those changes; software GSO then by swapping ``transfer.Stack``, here
through ``TransferSpec.offload``) over clean, lossy, chaotic (five
connections, SYN cookies, GRO), slow-reader, software-GSO and hardware-TSO
links, a time limit and a stall.

They pin the engine too: a change of the TCP engine that moves a frame changes
them, legitimately. Then rerun ``python -m tests.unit.test_transfer_digest``
with the harness unchanged to print the new digests (and say so in the commit).
"""

from __future__ import annotations

import hashlib
import io
import json
import random

import pytest

from simtcp.backends.impair import LinkProfile
from simtcp.config import ArpConfig, TcpConfig
from simtcp.link import InterfaceOffload
from simtcp.programs.transfer import CHUNK, PatternStream, TransferSpec, expected_data, run_transfer
from simtcp.time import MILLISECOND, SECOND

RECORDED = {
    "chaos": "904389e6f8cde061",
    "clean": "b1d822ed50de3659",
    "clean0": "b309d898d1a79fc6",
    "gso": "d2ff65cda0d0e61f",
    "limit": "2976619b0fba8005",
    "lossy": "180cba2f42aa86d0",
    "pause": "2ee86501238b7adf",
    "stall": "a089d5ec0d1d532d",
    "tso": "7f89a9dae99a68f3",
    "zero": "6ce3085f1d813c95",
}
"""Spec name -> digest of the link pcap and the result's figures (see ``digest``)."""

STREAM_DIGEST = "fd42df70e0e84e35"
"""expected_data(3, "5001>", 200_000) + expected_data(3, "5001<", 70_000), same commit."""


def specs() -> dict[str, TransferSpec]:
    ms = MILLISECOND
    lossy = LinkProfile(
        loss=0.02, reorder=0.02, duplicate=0.01, corrupt=0.01, delay=2 * ms, reorder_delay=3 * ms
    )
    chaos = LinkProfile(
        loss=0.08,
        reorder=0.1,
        duplicate=0.05,
        corrupt=0.05,
        delay=1 * ms,
        jitter=500,
        reorder_delay=2 * ms,
        gro=True,
    )
    rated = LinkProfile(delay=5 * ms, rate=50_000_000)
    rated_gso = LinkProfile(delay=5 * ms, rate=50_000_000, gso=True)
    robust = TcpConfig(syn_retries=30, data_retries=60, max_rto=5 * SECOND)
    forever = ArpConfig(entry_lifetime=10**12)
    software_gso = InterfaceOffload(max_segment=65535 - 120, software_segmentation=True)
    tso = InterfaceOffload(max_segment=65535 - 120, tx_checksum=True)
    return {
        "clean": TransferSpec(bytes=1_000_000, seed=1, forward=rated, backward=rated),
        "clean0": TransferSpec(bytes=300_000, reverse_bytes=70_000, seed=2),
        "lossy": TransferSpec(
            bytes=400_000,
            reverse_bytes=150_000,
            seed=3,
            forward=lossy,
            backward=lossy,
            tcp=robust,
            arp=forever,
        ),
        "chaos": TransferSpec(
            bytes=200_000,
            reverse_bytes=100_000,
            seed=4,
            forward=chaos,
            backward=chaos,
            tcp=robust,
            connections=5,
            backlog=2,
        ),
        "pause": TransferSpec(
            bytes=500_000,
            seed=5,
            forward=rated,
            backward=rated,
            pause_reading_after=100_000,
            pause_reading_for=300 * ms,
            connections=2,
        ),
        "gso": TransferSpec(
            bytes=2_000_000,
            reverse_bytes=300_000,
            seed=6,
            forward=lossy,
            backward=rated,
            tcp=robust,
            mtu=9000,
            offload=software_gso,
        ),
        "tso": TransferSpec(
            bytes=3_000_000,
            reverse_bytes=100_000,
            seed=7,
            forward=rated_gso,
            backward=rated_gso,
            offload=tso,
        ),
        "limit": TransferSpec(
            bytes=5_000_000, seed=8, forward=rated, backward=rated, time_limit=200 * ms
        ),
        "stall": TransferSpec(
            bytes=100_000,
            seed=9,
            forward=LinkProfile(loss=1.0),
            backward=LinkProfile(),
            stall_timeout=30 * SECOND,
        ),
        "zero": TransferSpec(bytes=0, seed=10),
    }


def digest(spec: TransferSpec) -> str:
    pcap = io.BytesIO()
    result = run_transfer(spec, pcap=pcap, pcap_point="link")
    figures = [
        hashlib.sha256(pcap.getvalue()).hexdigest()[:16],
        result.reason,
        result.bytes_delivered,
        result.virtual_seconds,
        result.retransmits,
        list(result.connections_left),
        result.closed_at,
        list(result.idle_for),
        result.min_send_window,
        result.link_stats,
    ]
    return hashlib.sha256(json.dumps(figures, sort_keys=True).encode()).hexdigest()[:16]


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_transfer_gives_the_recorded_frames_times_and_counts(name: str) -> None:
    assert digest(specs()[name]) == RECORDED[name]


def test_the_data_stream_is_the_recorded_one() -> None:
    data = expected_data(3, "5001>", 200_000) + expected_data(3, "5001<", 70_000)
    assert hashlib.sha256(data).hexdigest()[:16] == STREAM_DIGEST


def test_pattern_stream_reads_match_fresh_generation_at_any_offset() -> None:
    # The oracle: each chunk generated on its own, as before the shared cache.
    label = "simtcp-transfer:77:9>"
    whole = b"".join(random.Random(f"{label}:{index}").randbytes(CHUNK) for index in range(4))
    reader, other = PatternStream(77, "9>"), PatternStream(77, "9>")
    for offset, size in (
        (0, 10),
        (CHUNK - 5, 10),
        (3 * CHUNK + 7, CHUNK - 7),
        (5, 3 * CHUNK),
        (CHUNK, CHUNK),
        (0, 4 * CHUNK),
    ):
        assert reader.read(offset, size) == whole[offset : offset + size]
        assert other.read(offset, size) == whole[offset : offset + size]


def test_the_shared_chunk_cache_stays_bounded() -> None:
    import simtcp.programs.transfer as transfer_module

    stream = PatternStream(5, "bounded")
    for index in range(transfer_module.SHARED_CHUNKS + 20):
        stream.read(index * CHUNK, 1)
    assert len(transfer_module._shared_chunks) <= transfer_module.SHARED_CHUNKS
    assert ("simtcp-transfer:5:bounded", 0) not in transfer_module._shared_chunks


def test_result_carries_both_stacks_counters_at_the_end() -> None:
    result = run_transfer(TransferSpec(bytes=50_000, reverse_bytes=20_000, seed=3))
    assert result.ok, result.reason
    assert result.client_stats["tcp.connections"] == result.connections_left[0] == 0
    assert result.server_stats["tcp.connections"] == result.connections_left[1] == 0
    assert result.client_stats["tcp.segments_in"] > 0
    assert result.server_stats["tcp.segments_in"] > 0
    assert result.client_stats != result.server_stats


if __name__ == "__main__":
    for spec_name, spec in specs().items():
        print(f'    "{spec_name}": "{digest(spec)}",')
