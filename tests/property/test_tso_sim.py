"""TSO in the simulator: big segments put the very same frames on the wire as MSS-sized ones.

Both stacks offload segmentation (their interfaces accept 64 KiB segments and
the simulator's links cut them at the MTU, and merge on arrival like GRO). A
transfer runs twice, with ``TcpConfig.segmentation_offload`` on and off, under
loss, reordering and duplication, SACK on or off: every byte must arrive once
and in order (``run_transfer`` checks each byte), and since a big segment only
stands for the segments the engine would have sent one by one, the frames on
the link must be identical, byte for byte and microsecond for microsecond (but
for the IPv4 identification, see :func:`wire_frames`).
"""

from __future__ import annotations

import io
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simtcp.backends.impair import LinkProfile
from simtcp.config import ArpConfig, TcpConfig
from simtcp.link import InterfaceOffload
from simtcp.programs.transfer import TransferResult, TransferSpec, run_transfer
from simtcp.time import MILLISECOND, SECOND

OFFLOAD = InterfaceOffload(tx_checksum=True, max_segment=65535 - 120)
ARP_FOREVER = ArpConfig(entry_lifetime=10**12)


def frame_sizes(pcap: bytes) -> list[int]:
    """Captured length of every record of a pcap file."""
    sizes = []
    offset = 24
    while offset < len(pcap):
        (length,) = struct.unpack_from("<I", pcap, offset + 8)
        sizes.append(length)
        offset += 16 + length
    return sizes


def wire_frames(pcap: bytes) -> list[tuple[int, int, bytes]]:
    """(seconds, microseconds, frame) of every record, with the IPv4 identification and
    header checksum blanked: GSO numbers the pieces of one datagram from its own
    identification up, so the identifications that follow shift (RFC 6864 §4.1: they
    carry no meaning for atomic datagrams)."""
    frames = []
    offset = 24
    while offset < len(pcap):
        seconds, micros, length = struct.unpack_from("<III", pcap, offset)
        frame = bytearray(pcap[offset + 16 : offset + 16 + length])
        if frame[12:14] == b"\x08\x00":
            frame[18:20] = frame[24:26] = b"\0\0"
        frames.append((seconds, micros, bytes(frame)))
        offset += 16 + length
    return frames


def run(spec: TransferSpec, point: str) -> tuple[TransferResult, bytes]:
    capture = io.BytesIO()
    result = run_transfer(spec, pcap=capture, pcap_point=point)
    assert result.ok, result.reason + "\n" + result.detail
    assert result.bytes_delivered == result.bytes
    return result, capture.getvalue()


probabilities = st.one_of(st.just(0.0), st.floats(0.005, 0.1))
profiles = st.builds(
    LinkProfile,
    loss=probabilities,
    reorder=probabilities,
    duplicate=probabilities,
    delay=st.integers(0, 20 * MILLISECOND),
    rate=st.one_of(st.just(0), st.integers(10_000_000, 1_000_000_000)),
    mtu=st.just(1500),
    gso=st.just(True),
    gro=st.booleans(),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    forward=profiles,
    backward=profiles,
    size=st.one_of(st.integers(0, 5000), st.integers(50_000, 2_000_000)),
    reverse=st.one_of(st.integers(0, 5000), st.integers(20_000, 500_000)),
    sack=st.booleans(),
    rack=st.booleans(),
    nodelay=st.booleans(),
)
def test_segmentation_offload_on_and_off_put_the_same_frames_on_the_wire(
    seed: int,
    forward: LinkProfile,
    backward: LinkProfile,
    size: int,
    reverse: int,
    sack: bool,
    rack: bool,
    nodelay: bool,
) -> None:
    def spec(offload: bool) -> TransferSpec:
        tcp = TcpConfig(
            syn_retries=30,
            data_retries=60,
            max_rto=5 * SECOND,
            sack=sack,
            rack=rack,
            nodelay=nodelay,
            segmentation_offload=offload,
        )
        return TransferSpec(
            bytes=size,
            reverse_bytes=reverse,
            seed=seed,
            forward=forward,
            backward=backward,
            tcp=tcp,
            arp=ARP_FOREVER,
            offload=OFFLOAD,
        )

    on, wire_on = run(spec(True), "link")
    off, wire_off = run(spec(False), "link")
    assert on.bytes_delivered == off.bytes_delivered
    assert wire_frames(wire_on) == wire_frames(wire_off)


def test_the_hosts_really_send_big_segments() -> None:
    """The control: with offload on, the client hands its link segments of many MSS."""
    link = LinkProfile(delay=5 * MILLISECOND, mtu=1500, gso=True, gro=True)
    sizes = {}
    for offload in (True, False):
        tcp = TcpConfig(segmentation_offload=offload)
        _, capture = run(
            TransferSpec(
                bytes=2_000_000,
                seed=3,
                forward=link,
                backward=link,
                tcp=tcp,
                arp=ARP_FOREVER,
                offload=OFFLOAD,
            ),
            "client",
        )
        sizes[offload] = frame_sizes(capture)
    assert max(sizes[False]) == 1514
    assert max(sizes[True]) == 14 + 20 + 32 + 45 * 1448
    assert len(sizes[True]) < len(sizes[False]) // 3
