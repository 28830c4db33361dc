"""The send MSS: a floor against tiny peer values that never outgrows our own link."""

from __future__ import annotations

from simtcp.tcp.options import MIN_MSS, send_mss


def test_peer_and_our_mss_with_and_without_timestamps() -> None:
    assert send_mss(1460, 1460, False) == 1460
    assert send_mss(1460, 1460, True) == 1448
    assert send_mss(536, 1460, True) == 524


def test_a_tiny_peer_mss_is_raised_to_the_floor() -> None:
    assert send_mss(1, 1460, False) == MIN_MSS
    assert send_mss(1, 1460, True) == MIN_MSS


def test_the_floor_never_exceeds_what_a_68_byte_mtu_carries() -> None:
    # RFC 791: every host must accept 68-byte datagrams; MSS 28, 16 with timestamps.
    assert send_mss(1460, 28, True) == 16
    assert send_mss(1, 28, False) == 28
