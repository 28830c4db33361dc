"""The stack's offload paths: partial checksums out, trusted checksums in, GSO in and forwarded."""

from __future__ import annotations

import random

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether

from simtcp import ArpConfig, ConnectionAccepted, IpConfig, Stack, StackConfig
from simtcp.errors import ConfigError
from simtcp.stack import InterfaceOffload
from simtcp.wire.checksum import internet_checksum
from simtcp.wire.offload import l4_checksum_ok, partial_checksum, segment_tcp, set_l4_checksum

STACK_MAC_0 = "02:00:00:00:00:01"
STACK_MAC_1 = "02:00:00:00:01:01"
PEER_MAC_0 = "0a:00:00:00:00:02"
PEER_MAC_1 = "0a:00:00:00:01:02"
OFFLOAD = InterfaceOffload(tx_checksum=True, max_segment=65535 - 120)
TS = [("Timestamp", (5, 6)), ("NOP", None), ("NOP", None)]


def make_stack(
    offload0: InterfaceOffload | None = None,
    offload1: InterfaceOffload | None = None,
    *,
    mtu0: int = 1500,
    mtu1: int = 1500,
) -> Stack:
    stack = Stack(
        StackConfig(seed=3, arp=ArpConfig(gratuitous_on_add=False), ip=IpConfig(forwarding=True))
    )
    stack.add_interface("veth0", mac=STACK_MAC_0, mtu=mtu0, offload=offload0)
    stack.add_interface("veth1", mac=STACK_MAC_1, mtu=mtu1, offload=offload1)
    stack.add_address("veth0", "10.0.0.1/24")
    stack.add_address("veth1", "10.1.1.1/24")
    for interface, mac, peer, ours in (
        ("veth0", PEER_MAC_0, "10.0.0.2", "10.0.0.1"),
        ("veth1", PEER_MAC_1, "10.1.1.2", "10.1.1.1"),
    ):
        stack.receive_frame(
            interface,
            bytes(Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / _arp_request(mac, peer, ours)),
            now=0,
        )
    stack.frames_to_send(now=0)
    return stack


def _arp_request(mac: str, sender: str, target: str) -> object:
    from scapy.layers.l2 import ARP

    return ARP(op=1, hwsrc=mac, psrc=sender, pdst=target)


def from_peer0(layers: object) -> bytes:
    return bytes(Ether(src=PEER_MAC_0, dst=STACK_MAC_0) / layers)  # type: ignore[operator]


def sent(stack: Stack, interface: str | None = None) -> list[bytes]:
    """IPv4 datagrams the stack sent (on ``interface``, or anywhere)."""
    return [
        frame[14:]
        for name, frame in stack.frames_to_send(now=0)
        if frame[12:14] == b"\x08\x00" and interface in (None, name)
    ]


def with_partial(datagram: bytes) -> bytes:
    data = bytearray(datagram)
    set_l4_checksum(data, partial=True)
    return bytes(data)


def big_segment(size: int, *, flags: str = "PA", dst: str = "10.1.1.2", seq: int = 1000) -> bytes:
    payload = random.Random(size).randbytes(size)
    return bytes(
        IP(src="10.0.0.2", dst=dst, flags="DF", id=50)
        / TCP(sport=40000, dport=7, seq=seq, ack=1, flags=flags, options=TS)
        / payload
    )


def test_max_segment_out_of_range_is_refused() -> None:
    with pytest.raises(ConfigError):
        InterfaceOffload(max_segment=70000)


# --- transmit -----------------------------------------------------------------


def test_tcp_on_a_checksum_offloading_link_carries_the_partial_sum() -> None:
    stack = make_stack(OFFLOAD)
    stack.tcp_connect("10.0.0.2", 80, now=0)
    [syn] = sent(stack, "veth0")
    expected = partial_checksum(0x0A000001, 0x0A000002, 6, len(syn) - 20)
    assert int.from_bytes(syn[36:38], "big") == expected
    assert internet_checksum(syn[:20]) == 0  # the IP header checksum stays ours
    finished = bytearray(syn)
    set_l4_checksum(finished, partial=False)
    assert l4_checksum_ok(finished)


def test_tcp_elsewhere_carries_the_full_checksum() -> None:
    stack = make_stack(OFFLOAD)
    stack.tcp_connect("10.1.1.2", 80, now=0)
    [syn] = sent(stack, "veth1")
    assert l4_checksum_ok(syn)


def test_udp_partial_when_it_fits_full_when_fragmented() -> None:
    stack = make_stack(OFFLOAD)
    socket = stack.udp_bind(5000)
    stack.sendto(socket, b"small", ("10.0.0.2", 9), now=0)
    [small] = sent(stack)
    assert int.from_bytes(small[26:28], "big") == partial_checksum(
        0x0A000001, 0x0A000002, 17, 8 + 5
    )
    stack.sendto(socket, bytes(3000), ("10.0.0.2", 9), now=0)
    fragments = sent(stack)
    assert len(fragments) == 3
    whole = fragments[0][:20] + b"".join(f[20:] for f in fragments)
    whole = whole[:2] + len(whole).to_bytes(2, "big") + whole[4:6] + b"\0\0" + whole[8:]
    assert l4_checksum_ok(whole)


def test_a_segment_up_to_max_segment_leaves_whole_on_a_tso_link() -> None:
    stack = make_stack(OFFLOAD)
    datagram = big_segment(30000, dst="10.0.0.2")
    assert stack.send_ipv4(0x0A000002, 6, datagram[20:], now=0, dont_fragment=True)
    [out] = sent(stack, "veth0")
    assert len(out) == len(datagram)
    plain = make_stack()
    assert not plain.send_ipv4(0x0A000002, 6, datagram[20:], now=0, dont_fragment=True)


def test_route_offload_tells_tcp_what_the_link_does() -> None:
    stack = make_stack(OFFLOAD)
    assert stack.route_offload(0x0A000002) == OFFLOAD
    assert stack.route_offload(0x0A010102) == InterfaceOffload()
    assert stack.route_offload(0x0A000001) == InterfaceOffload()  # our own: loopback
    assert stack.route_offload(0x08080808) == InterfaceOffload()  # no route


# --- receive ------------------------------------------------------------------


def test_partial_checksum_passes_only_when_the_frame_is_vouched_for() -> None:
    stack = make_stack(OFFLOAD)
    stack.tcp_listen(80)
    syn = with_partial(
        bytes(IP(src="10.0.0.2", dst="10.0.0.1") / TCP(sport=40000, dport=80, flags="S", seq=1))
    )
    stack.receive_frame("veth0", from_peer0(IP(syn)), now=0)
    assert sent(stack) == []
    assert stack.stats().get("drop.bad_checksum") == 1
    stack.receive_frame("veth0", from_peer0(IP(syn)), now=0, checksum_verified=True)
    [syn_ack] = sent(stack)
    assert IP(syn_ack)[TCP].flags == "SA"


def test_interface_wide_verification_also_skips_the_check() -> None:
    stack = make_stack(InterfaceOffload(rx_checksum_verified=True))
    bad = bytearray(bytes(IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(type=8) / b"ping"))
    bad[22] ^= 0xFF  # ICMP checksum
    stack.receive_frame("veth0", from_peer0(IP(bytes(bad))), now=0)
    assert len(sent(stack)) == 1


def test_a_gso_super_segment_is_taken_as_one_tcp_segment() -> None:
    stack = make_stack(OFFLOAD)
    stack.tcp_listen(80)
    syn = IP(src="10.0.0.2", dst="10.0.0.1") / TCP(
        sport=40000, dport=80, flags="S", seq=1, options=[("MSS", 1460)]
    )
    stack.receive_frame("veth0", from_peer0(syn), now=0)
    [syn_ack] = sent(stack)
    our_seq = IP(syn_ack)[TCP].seq
    stack.receive_frame(
        "veth0",
        from_peer0(
            IP(src="10.0.0.2", dst="10.0.0.1")
            / TCP(sport=40000, dport=80, flags="A", seq=2, ack=our_seq + 1)
        ),
        now=0,
    )
    data = random.Random(1).randbytes(20000)
    segment = with_partial(
        bytes(
            IP(src="10.0.0.2", dst="10.0.0.1", flags="DF")
            / TCP(sport=40000, dport=80, flags="PA", seq=2, ack=our_seq + 1)
            / data
        )
    )
    stack.receive_frame(
        "veth0", from_peer0(IP(segment)), now=1000, checksum_verified=True, gso_size=1460
    )
    connection = None
    while (event := stack.next_event()) is not None:
        if isinstance(event, ConnectionAccepted):
            connection = event.connection
    assert connection is not None
    assert stack.receive(connection, now=1000) == data


# --- forwarding -----------------------------------------------------------------


def test_super_segment_to_a_link_without_tso_is_cut_in_software() -> None:
    stack = make_stack(OFFLOAD, None)
    original = big_segment(20000, flags="FPA")
    stack.receive_frame(
        "veth0",
        from_peer0(IP(with_partial(original))),
        now=0,
        checksum_verified=True,
        gso_size=1448,
    )
    pieces = sent(stack, "veth1")
    assert len(pieces) == 14
    assert all(len(piece) <= 1500 for piece in pieces)
    for index, piece in enumerate(pieces):
        assert internet_checksum(piece[:20]) == 0 and l4_checksum_ok(piece)
        assert piece[8] == 63  # TTL decremented once
        assert IP(piece)[TCP].seq == 1000 + 1448 * index
    assert b"".join(piece[52:] for piece in pieces) == original[52:]
    assert [IP(p)[TCP].flags.value for p in pieces] == [0x10] * 13 + [0x19]
    assert stack.stats()["ip.gso_segmented"] == 1
    assert stack.stats()["ip.gso_forward_segmented"] == 1  # this one was forwarded
    assert stack.stats()["ip.gso_segments_out"] == 14


def test_super_segment_cut_at_the_smaller_of_gso_size_and_outgoing_mss() -> None:
    stack = make_stack(OFFLOAD, None, mtu1=1000)
    stack.receive_frame(
        "veth0",
        from_peer0(IP(with_partial(big_segment(5000)))),
        now=0,
        checksum_verified=True,
        gso_size=1448,
    )
    assert [len(p) - 52 for p in sent(stack, "veth1")] == [948] * 5 + [260]
    narrow = make_stack(OFFLOAD, None)
    narrow.receive_frame(
        "veth0",
        from_peer0(IP(with_partial(big_segment(5000)))),
        now=0,
        checksum_verified=True,
        gso_size=1000,
    )
    assert [len(p) - 52 for p in sent(narrow, "veth1")] == [1000] * 5


def test_super_segment_without_gso_info_is_known_by_its_size() -> None:
    """What a GRO-merging link hands over: bigger than the link's MTU, full checksum."""
    stack = make_stack(None, None)
    original = big_segment(6000)
    stack.receive_frame("veth0", from_peer0(IP(original)), now=0)
    pieces = sent(stack, "veth1")
    assert [len(p) - 52 for p in pieces] == [1448] * 4 + [208]
    assert all(l4_checksum_ok(piece) for piece in pieces)


def test_corrupt_unvouched_super_segment_is_dropped_not_recut() -> None:
    stack = make_stack(None, None)
    corrupt = bytearray(big_segment(6000))
    corrupt[-1] ^= 1
    stack.receive_frame("veth0", from_peer0(IP(bytes(corrupt))), now=0)
    assert sent(stack) == []
    assert stack.stats()["drop.bad_checksum"] == 1


def test_super_segment_to_a_tso_link_leaves_whole_with_the_partial_sum() -> None:
    stack = make_stack(OFFLOAD, OFFLOAD)
    original = big_segment(20000)
    stack.receive_frame(
        "veth0",
        from_peer0(IP(with_partial(original))),
        now=0,
        checksum_verified=True,
        gso_size=1448,
    )
    [out] = sent(stack, "veth1")
    assert len(out) == len(original)
    assert out[36:38] == with_partial(original)[36:38]
    assert internet_checksum(out[:20]) == 0 and out[8] == 63


def test_super_segment_with_a_smaller_mss_than_the_tso_link_would_use_is_cut_here() -> None:
    """The next link would cut at its MTU's MSS, larger than the peer asked for."""
    stack = make_stack(OFFLOAD, OFFLOAD)
    stack.receive_frame(
        "veth0",
        from_peer0(IP(with_partial(big_segment(5000)))),
        now=0,
        checksum_verified=True,
        gso_size=1000,
    )
    pieces = sent(stack, "veth1")
    assert [len(p) - 52 for p in pieces] == [1000] * 5
    assert all(p[36:38] == with_partial(p)[36:38] for p in pieces)


def test_real_oversized_df_datagram_draws_fragmentation_needed() -> None:
    stack = make_stack(None, None, mtu0=9000)
    stack.receive_frame("veth0", from_peer0(IP(big_segment(4000))), now=0)
    [error] = sent(stack, "veth0")
    icmp = IP(error)[ICMP]
    assert (icmp.type, icmp.code, icmp.nexthopmtu) == (3, 4, 1500)
    assert stack.stats()["drop.fragment_needed"] == 1


def test_oversized_udp_without_df_is_fragmented_with_a_full_checksum() -> None:
    stack = make_stack(None, None, mtu0=9000)
    datagram = with_partial(
        bytes(IP(src="10.0.0.2", dst="10.1.1.2") / UDP(sport=1, dport=2) / bytes(4000))
    )
    stack.receive_frame("veth0", from_peer0(IP(datagram)), now=0, checksum_verified=True)
    fragments = sent(stack, "veth1")
    assert len(fragments) == 3
    udp_header = fragments[0][20:28]
    full = bytearray(datagram)
    set_l4_checksum(full, partial=False)
    assert udp_header == bytes(full[20:28])


def test_forwarded_partial_checksum_is_finished_for_a_plain_link() -> None:
    stack = make_stack(OFFLOAD, None)
    original = bytes(IP(src="10.0.0.2", dst="10.1.1.2") / TCP(sport=1, dport=2) / b"data")
    stack.receive_frame(
        "veth0", from_peer0(IP(with_partial(original))), now=0, checksum_verified=True
    )
    [out] = sent(stack, "veth1")
    assert l4_checksum_ok(out) and out[20:] == original[20:]


def test_unvouched_frame_to_a_checksum_offloading_link_is_checked_first() -> None:
    stack = make_stack(None, OFFLOAD)
    good = bytes(IP(src="10.0.0.2", dst="10.1.1.2") / UDP(sport=1, dport=2) / b"data")
    stack.receive_frame("veth0", from_peer0(IP(good)), now=0)
    [out] = sent(stack, "veth1")
    assert out[20:] == with_partial(good)[20:]
    bad = bytearray(good)
    bad[-1] ^= 1
    stack.receive_frame("veth0", from_peer0(IP(bytes(bad))), now=0)
    assert sent(stack) == []
    assert stack.stats()["drop.bad_checksum"] == 1


def test_plain_to_plain_forwarding_leaves_the_l4_bytes_alone() -> None:
    stack = make_stack(None, None)
    bad = bytearray(bytes(IP(src="10.0.0.2", dst="10.1.1.2") / UDP(sport=1, dport=2) / b"data"))
    bad[-1] ^= 1  # end to end: the router is not the one to judge (RFC 1812 §5.2.2)
    stack.receive_frame("veth0", from_peer0(IP(bytes(bad))), now=0)
    [out] = sent(stack, "veth1")
    assert out[20:] == bytes(bad[20:])


def test_segmenting_pieces_match_the_library_cut() -> None:
    stack = make_stack(OFFLOAD, None)
    original = big_segment(9000)
    stack.receive_frame(
        "veth0",
        from_peer0(IP(with_partial(original))),
        now=0,
        checksum_verified=True,
        gso_size=1448,
    )
    ttl_down = bytearray(original)
    ttl_down[8] -= 1
    assert sent(stack, "veth1") == segment_tcp(bytes(ttl_down), 1448)
