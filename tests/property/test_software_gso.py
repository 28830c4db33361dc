"""GSO in software (``InterfaceOffload.software_segmentation``): TCP builds 64 KiB
segments, the stack cuts them into wire frames just before they leave.

- ``TcpSegment.build_ipv4_frames`` is ``segment_tcp`` of ``build_ipv4_frame``'s datagram;
- a transfer over links that cut nothing puts the very same frames on the wire,
  byte for byte (IPv4 identifications included: each piece takes the one it would
  have had sent alone) and microsecond for microsecond, with
  ``TcpConfig.segmentation_offload`` on (big segments, cut by the stack) and off;
- and the same frames as interfaces without it (slow start's byte counting set to
  one SMSS per ACK, RFC 5681 §3.1, so the route's segment size changes nothing);
- the control: with it on the stack really cuts big segments.
"""

from __future__ import annotations

import io
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simtcp.backends.impair import LinkProfile
from simtcp.config import ArpConfig, TcpConfig
from simtcp.errors import ConfigError
from simtcp.link import InterfaceOffload
from simtcp.programs.transfer import TransferSpec, run_transfer
from simtcp.time import MILLISECOND, SECOND
from simtcp.wire.offload import segment_tcp
from simtcp.wire.tcp import ACK, CWR, FIN, PSH, SYN, NopOption, TcpSegment, TimestampsOption

SOFTWARE_GSO = InterfaceOffload(max_segment=65535 - 120, software_segmentation=True)
ARP_FOREVER = ArpConfig(entry_lifetime=10**12)
u32 = st.integers(0, 0xFFFFFFFF)


@settings(max_examples=100, deadline=None)
@given(
    u32,
    u32,
    st.sampled_from([ACK, ACK | PSH, ACK | FIN | PSH, ACK | CWR | PSH, SYN, 0]),
    st.booleans(),
    st.integers(0, 20_000),
    st.integers(1, 3000),
    st.integers(0, 0xFFFF),
)
def test_build_ipv4_frames_is_segment_tcp_of_the_whole_frame(
    seq: int, ack: int, flags: int, timestamps: bool, size: int, mss: int, identification: int
) -> None:
    options = (NopOption(), NopOption(), TimestampsOption(seq, ack)) if timestamps else ()
    segment = TcpSegment(
        80, 40000, seq, ack, flags, 501, options, bytes(index * 13 & 0xFF for index in range(size))
    )
    macs = (bytes.fromhex("0a0000000002"), bytes.fromhex("020000000001"))
    addresses = (0x0A000001, 0x0A000002)
    whole = segment.build_ipv4_frame(*macs, *addresses, ttl=64, identification=identification)
    expected = [whole[:14] + piece for piece in segment_tcp(whole[14:], mss)]
    assert (
        segment.build_ipv4_frames(*macs, *addresses, ttl=64, identification=identification, mss=mss)
        == expected
    )


def test_software_segmentation_is_checked() -> None:
    with pytest.raises(ConfigError):
        InterfaceOffload(software_segmentation=True)
    with pytest.raises(ConfigError):
        InterfaceOffload(max_segment=60000, tx_checksum=True, software_segmentation=True)


def wire_frames(pcap: bytes) -> list[tuple[int, int, bytes]]:
    frames = []
    offset = 24
    while offset < len(pcap):
        seconds, micros, length = struct.unpack_from("<III", pcap, offset)
        frames.append((seconds, micros, pcap[offset + 16 : offset + 16 + length]))
        offset += 16 + length
    return frames


probabilities = st.one_of(st.just(0.0), st.floats(0.005, 0.08))
profiles = st.builds(
    LinkProfile,
    loss=probabilities,
    reorder=probabilities,
    duplicate=probabilities,
    delay=st.integers(0, 20 * MILLISECOND),
    rate=st.one_of(st.just(0), st.integers(10_000_000, 1_000_000_000)),
    mtu=st.just(1500),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    forward=profiles,
    backward=profiles,
    size=st.one_of(st.integers(0, 5000), st.integers(50_000, 600_000)),
    reverse=st.integers(0, 100_000),
    sack=st.booleans(),
)
def test_software_segmentation_on_and_off_put_the_same_frames_on_the_wire(
    seed: int, forward: LinkProfile, backward: LinkProfile, size: int, reverse: int, sack: bool
) -> None:
    captures = []
    for offload in (True, False):
        tcp = TcpConfig(
            syn_retries=30,
            data_retries=60,
            max_rto=5 * SECOND,
            sack=sack,
            segmentation_offload=offload,
        )
        capture = io.BytesIO()
        result = run_transfer(
            TransferSpec(
                bytes=size,
                reverse_bytes=reverse,
                seed=seed,
                forward=forward,
                backward=backward,
                tcp=tcp,
                arp=ARP_FOREVER,
                offload=SOFTWARE_GSO,
            ),
            pcap=capture,
            pcap_point="link",
        )
        assert result.ok, result.reason + "\n" + result.detail
        captures.append(wire_frames(capture.getvalue()))
    assert captures[0] == captures[1]
    assert max(len(frame) for _, _, frame in captures[0]) <= 1514


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    forward=profiles,
    backward=profiles,
    size=st.integers(50_000, 400_000),
    reverse=st.integers(0, 50_000),
)
def test_software_segmentation_changes_no_frame_against_a_plain_interface(
    seed: int, forward: LinkProfile, backward: LinkProfile, size: int, reverse: int
) -> None:
    captures = []
    for offload in (SOFTWARE_GSO, None):
        tcp = TcpConfig(syn_retries=30, data_retries=60, max_rto=5 * SECOND, abc_limit_segments=1)
        capture = io.BytesIO()
        result = run_transfer(
            TransferSpec(
                bytes=size,
                reverse_bytes=reverse,
                seed=seed,
                forward=forward,
                backward=backward,
                tcp=tcp,
                arp=ARP_FOREVER,
                offload=offload,
            ),
            pcap=capture,
            pcap_point="link",
        )
        assert result.ok, result.reason + "\n" + result.detail
        captures.append(wire_frames(capture.getvalue()))
    assert captures[0] == captures[1]


def test_the_stack_really_cuts_big_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: TCP hands the stack 64 KiB segments, the link gets MTU-sized frames."""
    cuts: list[int] = []
    original = TcpSegment.build_ipv4_frames

    def counting(self: TcpSegment, *args: object, **kwargs: object) -> list[bytes]:
        frames = original(self, *args, **kwargs)  # type: ignore[arg-type]
        cuts.append(len(frames))
        return frames

    monkeypatch.setattr(TcpSegment, "build_ipv4_frames", counting)
    link = LinkProfile(delay=5 * MILLISECOND, mtu=1500)
    capture = io.BytesIO()
    result = run_transfer(
        TransferSpec(
            bytes=2_000_000,
            seed=3,
            forward=link,
            backward=link,
            arp=ARP_FOREVER,
            offload=SOFTWARE_GSO,
            # A fixed 256 KiB receive window: the sender is window-limited and sends
            # whole 64 KiB segments; auto-tuned, slow start's ACK clock paces it.
            tcp=TcpConfig(receive_buffer_max=0),
        ),
        pcap=capture,
        pcap_point="client",
    )
    assert result.ok
    assert max(cuts) == 45, "a 64 KiB segment is 45 frames of 1,448 bytes"
    assert max(len(frame) for _, _, frame in wire_frames(capture.getvalue())) == 1514
