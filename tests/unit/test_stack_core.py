"""The stack below TCP, one frame at a time with explicit ``now``: ARP, IPv4, ICMP, UDP."""

from __future__ import annotations

from simtcp import (
    ArpConfig,
    DatagramReceived,
    EchoReplyReceived,
    IcmpConfig,
    IcmpErrorReceived,
    IpConfig,
    Stack,
    StackConfig,
)
from simtcp.time import SECOND
from simtcp.wire import icmp as icmp_wire
from simtcp.wire.arp import OPERATION_REPLY, OPERATION_REQUEST, ArpPacket
from simtcp.wire.checksum import internet_checksum
from simtcp.wire.ethernet import (
    BROADCAST_MAC,
    ETHERTYPE_ARP,
    ETHERTYPE_IPV4,
    ETHERTYPE_VLAN,
    ZERO_MAC,
    EthernetFrame,
)
from simtcp.wire.icmp import IcmpMessage
from simtcp.wire.ipv4 import PROTOCOL_ICMP, PROTOCOL_UDP, Ipv4Packet, ip_from_str
from simtcp.wire.udp import UdpDatagram

STACK_MAC_0 = bytes.fromhex("020000000001")
STACK_MAC_1 = bytes.fromhex("020000000101")
PEER_MAC = bytes.fromhex("0a0000000002")
PEER_MAC_1 = bytes.fromhex("0a0000000102")
A_STACK = ip_from_str("10.0.0.1")
A_PEER = ip_from_str("10.0.0.2")
B_STACK = ip_from_str("10.1.1.1")
B_PEER = ip_from_str("10.1.1.2")


def make_stack(**config: object) -> Stack:
    config.setdefault("arp", ArpConfig(gratuitous_on_add=False))
    stack = Stack(StackConfig(seed=7, **config))  # type: ignore[arg-type]
    stack.add_interface("veth0", mac=STACK_MAC_0)
    stack.add_interface("veth1", mac=STACK_MAC_1, mtu=1000)
    stack.add_address("veth0", "10.0.0.1/24")
    stack.add_address("veth1", "10.1.1.1/24")
    return stack


def router() -> Stack:
    return make_stack(ip=IpConfig(forwarding=True))


def ip_frame(
    packet: Ipv4Packet, destination_mac: bytes = STACK_MAC_0, source_mac: bytes = PEER_MAC
) -> bytes:
    return EthernetFrame(destination_mac, source_mac, ETHERTYPE_IPV4, packet.build()).build()


def arp_frame(
    operation: int,
    sender_mac: bytes,
    sender_ip: int,
    target_ip: int,
    destination_mac: bytes = BROADCAST_MAC,
    target_mac: bytes = ZERO_MAC,
) -> bytes:
    packet = ArpPacket(operation, sender_mac, sender_ip, target_mac, target_ip)
    return EthernetFrame(destination_mac, sender_mac, ETHERTYPE_ARP, packet.build()).build()


def teach(
    stack: Stack, interface: str, mac: bytes, address: int, target: int, now: int = 0
) -> None:
    """Make the stack learn a neighbour the way RFC 826 allows: a request aimed at us."""
    stack.receive_frame(interface, arp_frame(OPERATION_REQUEST, mac, address, target), now=now)
    stack.frames_to_send(now=now)


def sent_ipv4(stack: Stack, now: int = 0) -> list[tuple[str, EthernetFrame, Ipv4Packet]]:
    out = []
    for interface, frame in stack.frames_to_send(now=now):
        ethernet = EthernetFrame.parse(frame)
        if ethernet.ethertype == ETHERTYPE_IPV4:
            out.append((interface, ethernet, Ipv4Packet.parse(ethernet.payload)))
    return out


def echo_request(
    source: int, destination: int, ttl: int = 64, payload: bytes = b"abc", identifier: int = 0x1234
) -> Ipv4Packet:
    message = IcmpMessage.echo_request(identifier, 1, payload)
    return Ipv4Packet(
        source, destination, PROTOCOL_ICMP, message.build(), ttl=ttl, identification=99
    )


# --- ARP -------------------------------------------------------------------------


def test_arp_request_for_our_address_gets_a_reply_with_our_mac() -> None:
    stack = make_stack()
    stack.receive_frame("veth0", arp_frame(OPERATION_REQUEST, PEER_MAC, A_PEER, A_STACK), now=0)
    [(interface, frame)] = stack.frames_to_send(now=0)
    ethernet = EthernetFrame.parse(frame)
    reply = ArpPacket.parse(ethernet.payload)
    assert interface == "veth0"
    assert (ethernet.destination, ethernet.source) == (PEER_MAC, STACK_MAC_0)
    assert reply == ArpPacket(OPERATION_REPLY, STACK_MAC_0, A_STACK, PEER_MAC, A_PEER)


def test_arp_request_for_another_host_is_ignored_and_not_learned() -> None:
    stack = make_stack()
    other = ip_from_str("10.0.0.77")
    stack.receive_frame("veth0", arp_frame(OPERATION_REQUEST, PEER_MAC, A_PEER, other), now=0)
    assert stack.frames_to_send(now=0) == []
    assert stack.stats()["arp.cache_entries"] == 0


def test_a_reply_claiming_our_address_never_enters_the_cache() -> None:
    stack = make_stack()
    stack.receive_frame(
        "veth0",
        arp_frame(OPERATION_REPLY, PEER_MAC, A_STACK, A_STACK, STACK_MAC_0, STACK_MAC_0),
        now=0,
    )
    assert stack.stats()["drop.arp_own_address_claimed"] == 1
    assert stack.stats()["arp.cache_entries"] == 0


def test_resolution_retries_then_gives_up_and_drops_the_queue() -> None:
    stack = make_stack()
    stack.ping("10.0.0.2", identifier=1, sequence=1, now=0)
    [(_, first)] = stack.frames_to_send(now=0)
    request = ArpPacket.parse(EthernetFrame.parse(first).payload)
    assert (request.operation, request.sender_ip, request.target_ip) == (
        OPERATION_REQUEST,
        A_STACK,
        A_PEER,
    )
    assert stack.poll_at() == 1 * SECOND
    stack.handle_timer(now=1 * SECOND)
    assert len(stack.frames_to_send(now=1 * SECOND)) == 1
    assert stack.poll_at() == 2 * SECOND
    stack.handle_timer(now=2 * SECOND)
    assert len(stack.frames_to_send(now=2 * SECOND)) == 1
    stack.handle_timer(now=3 * SECOND)
    assert stack.frames_to_send(now=3 * SECOND) == []
    stats = stack.stats()
    assert stats["arp.requests_out"] == 3
    assert stats["drop.arp_unresolved"] == 1
    assert stats["arp.queued_packets"] == 0
    assert stack.poll_at() is None


def test_queued_packets_go_out_in_order_once_resolved_and_the_queue_is_bounded() -> None:
    stack = make_stack(arp=ArpConfig(queue_limit=4, gratuitous_on_add=False))
    for sequence in range(6):
        stack.ping("10.0.0.2", identifier=1, sequence=sequence, now=0)
    assert len(stack.frames_to_send(now=0)) == 1  # one ARP request, not six
    assert stack.stats()["drop.arp_queue_full"] == 2
    stack.receive_frame(
        "veth0",
        arp_frame(OPERATION_REPLY, PEER_MAC, A_PEER, A_STACK, STACK_MAC_0, STACK_MAC_0),
        now=500,
    )
    sequences = [IcmpMessage.parse(p.payload).sequence for _, _, p in sent_ipv4(stack, 500)]
    assert sequences == [0, 1, 2, 3]
    assert stack.poll_at() == 500 + 60 * SECOND  # the entry's lifetime, nothing else


def test_an_entry_in_use_is_revalidated_with_unicast_probes_then_forgotten() -> None:
    stack = make_stack()
    teach(stack, "veth0", PEER_MAC, A_PEER, A_STACK, now=0)
    stack.ping("10.0.0.2", identifier=1, sequence=1, now=10)
    assert len(sent_ipv4(stack, 10)) == 1
    stack.handle_timer(now=60 * SECOND)
    [(_, probe)] = stack.frames_to_send(now=60 * SECOND)
    assert EthernetFrame.parse(probe).destination == PEER_MAC
    for when in (61 * SECOND, 62 * SECOND):
        stack.handle_timer(now=when)
        assert len(stack.frames_to_send(now=when)) == 1
    stack.handle_timer(now=63 * SECOND)
    assert stack.stats()["arp.cache_entries"] == 0


def test_an_unused_entry_expires_quietly() -> None:
    stack = make_stack()
    teach(stack, "veth0", PEER_MAC, A_PEER, A_STACK, now=0)
    stack.handle_timer(now=60 * SECOND)
    assert stack.frames_to_send(now=60 * SECOND) == []
    assert stack.stats()["arp.cache_entries"] == 0


def test_gratuitous_arp_on_address_add() -> None:
    stack = Stack(StackConfig(seed=1))
    stack.add_interface("eth0", mac="02:00:00:00:00:09")
    stack.add_address("eth0", "192.168.5.5/24")
    [(_, frame)] = stack.frames_to_send(now=0)
    packet = ArpPacket.parse(EthernetFrame.parse(frame).payload)
    assert packet.sender_ip == packet.target_ip == ip_from_str("192.168.5.5")


# --- ICMP ------------------------------------------------------------------------


def test_echo_to_each_address_is_answered_from_that_address() -> None:
    stack = make_stack()
    teach(stack, "veth0", PEER_MAC, A_PEER, A_STACK)
    for asked in (A_STACK, B_STACK):
        stack.receive_frame(
            "veth0", ip_frame(echo_request(A_PEER, asked, payload=b"x" * 56)), now=0
        )
        [(interface, _, reply)] = sent_ipv4(stack)
        message = IcmpMessage.parse(reply.payload)
        assert interface == "veth0"
        assert (reply.source, reply.destination) == (asked, A_PEER)
        assert (message.icmp_type, message.identifier, bytes(message.payload)) == (
            icmp_wire.TYPE_ECHO_REPLY,
            0x1234,
            b"x" * 56,
        )


def test_broadcast_echo_is_not_answered() -> None:
    stack = make_stack()
    teach(stack, "veth0", PEER_MAC, A_PEER, A_STACK)
    for destination in (ip_from_str("10.0.0.255"), 0xFFFFFFFF):
        stack.receive_frame(
            "veth0", ip_frame(echo_request(A_PEER, destination), BROADCAST_MAC), now=0
        )
    assert sent_ipv4(stack) == []
    assert stack.stats()["drop.broadcast_echo"] == 2


def test_our_ping_gets_its_reply_as_an_event() -> None:
    stack = make_stack()
    teach(stack, "veth0", PEER_MAC, A_PEER, A_STACK)
    stack.ping("10.0.0.2", identifier=7, sequence=3, payload=b"hi", now=0)
    [(_, _, request)] = sent_ipv4(stack)
    message = IcmpMessage.parse(request.payload)
    reply = IcmpMessage.echo_reply(message.identifier, message.sequence, message.payload)
    stack.receive_frame(
        "veth0", ip_frame(Ipv4Packet(A_PEER, A_STACK, PROTOCOL_ICMP, reply.build(), ttl=61)), now=5
    )
    assert stack.next_event() == EchoReplyReceived(
        source="10.0.0.2", identifier=7, sequence=3, payload=b"hi", ttl=61
    )


def test_udp_to_a_closed_port_draws_port_unreachable_quoting_the_datagram() -> None:
    stack = make_stack()
    teach(stack, "veth0", PEER_MAC, A_PEER, A_STACK)
    datagram = UdpDatagram(5000, 9, b"payload!").build(A_PEER, A_STACK)
    offending = Ipv4Packet(A_PEER, A_STACK, PROTOCOL_UDP, datagram, identification=5)
    stack.receive_frame("veth0", ip_frame(offending), now=0)
    [(_, _, reply)] = sent_ipv4(stack)
    message = IcmpMessage.parse(reply.payload)
    assert (message.icmp_type, message.code) == (3, 3)
    assert bytes(message.payload) == offending.build()[:28]
    assert stack.stats()["drop.port_unreachable"] == 1


def test_unknown_protocol_draws_protocol_unreachable() -> None:
    stack = make_stack()
    teach(stack, "veth0", PEER_MAC, A_PEER, A_STACK)
    stack.receive_frame("veth0", ip_frame(Ipv4Packet(A_PEER, A_STACK, 132, b"sctp?")), now=0)
    [(_, _, reply)] = sent_ipv4(stack)
    assert (reply.payload[0], reply.payload[1]) == (3, 2)


def test_icmp_errors_are_rate_limited_by_a_token_bucket() -> None:
    stack = make_stack(icmp=IcmpConfig(error_rate=10.0, error_burst=3))
    teach(stack, "veth0", PEER_MAC, A_PEER, A_STACK)
    closed_port = UdpDatagram(5000, 9, b"").build(A_PEER, A_STACK)
    for _ in range(5):
        stack.receive_frame(
            "veth0", ip_frame(Ipv4Packet(A_PEER, A_STACK, PROTOCOL_UDP, closed_port)), now=0
        )
    assert len(sent_ipv4(stack)) == 3
    assert stack.stats()["drop.icmp_rate_limited"] == 2
    stack.receive_frame(
        "veth0", ip_frame(Ipv4Packet(A_PEER, A_STACK, PROTOCOL_UDP, closed_port)), now=SECOND // 10
    )
    assert len(sent_ipv4(stack)) == 1  # one token back after 100 ms at 10/s


# --- UDP -------------------------------------------------------------------------


def test_udp_datagram_reaches_the_bound_socket() -> None:
    stack = make_stack()
    socket = stack.udp_bind(53)
    datagram = UdpDatagram(4444, 53, b"query").build(A_PEER, A_STACK)
    stack.receive_frame(
        "veth0", ip_frame(Ipv4Packet(A_PEER, A_STACK, PROTOCOL_UDP, datagram)), now=0
    )
    assert stack.next_event() == DatagramReceived(
        socket=socket,
        source="10.0.0.2",
        source_port=4444,
        destination="10.0.0.1",
        destination_port=53,
        data=b"query",
    )


def test_udp_with_a_bad_checksum_is_dropped_and_counted() -> None:
    stack = make_stack()
    stack.udp_bind(53)
    datagram = bytearray(UdpDatagram(4444, 53, b"query").build(A_PEER, A_STACK))
    datagram[-1] ^= 0xFF
    stack.receive_frame(
        "veth0", ip_frame(Ipv4Packet(A_PEER, A_STACK, PROTOCOL_UDP, bytes(datagram))), now=0
    )
    assert stack.next_event() is None
    assert stack.stats()["drop.bad_checksum"] == 1


# --- forwarding ------------------------------------------------------------------


def test_forwarding_decrements_ttl_with_a_valid_incremental_checksum() -> None:
    stack = router()
    teach(stack, "veth0", PEER_MAC, A_PEER, A_STACK)
    teach(stack, "veth1", PEER_MAC_1, B_PEER, B_STACK)
    original = echo_request(A_PEER, B_PEER, ttl=9)
    stack.receive_frame("veth0", ip_frame(original), now=0)
    [(interface, ethernet, forwarded)] = sent_ipv4(stack)
    assert interface == "veth1" and ethernet.destination == PEER_MAC_1
    assert forwarded.ttl == 8
    assert internet_checksum(forwarded.build_header(len(forwarded.payload))) == 0
    assert bytes(forwarded.payload) == bytes(original.payload)
    assert stack.stats()["ip.forwarded"] == 1


def test_ttl_expiry_draws_time_exceeded_from_the_incoming_side() -> None:
    stack = router()
    teach(stack, "veth0", PEER_MAC, A_PEER, A_STACK)
    stack.receive_frame("veth0", ip_frame(echo_request(A_PEER, B_PEER, ttl=1)), now=0)
    [(_, _, reply)] = sent_ipv4(stack)
    message = IcmpMessage.parse(reply.payload)
    assert (reply.source, reply.destination) == (A_STACK, A_PEER)
    assert (message.icmp_type, message.code) == (icmp_wire.TYPE_TIME_EXCEEDED, 0)


def test_a_host_does_not_forward() -> None:
    stack = make_stack()
    stack.receive_frame("veth0", ip_frame(echo_request(A_PEER, B_PEER)), now=0)
    assert sent_ipv4(stack) == []
    assert stack.stats()["drop.forwarding_disabled"] == 1


def test_no_route_draws_net_unreachable() -> None:
    stack = router()
    teach(stack, "veth0", PEER_MAC, A_PEER, A_STACK)
    stack.receive_frame("veth0", ip_frame(echo_request(A_PEER, ip_from_str("8.8.8.8"))), now=0)
    [(_, _, reply)] = sent_ipv4(stack)
    assert (reply.payload[0], reply.payload[1]) == (3, 0)


def test_too_big_with_df_draws_fragmentation_needed_with_the_mtu() -> None:
    stack = router()
    teach(stack, "veth0", PEER_MAC, A_PEER, A_STACK)
    teach(stack, "veth1", PEER_MAC_1, B_PEER, B_STACK)
    big = echo_request(A_PEER, B_PEER, payload=bytes(1400))
    big.dont_fragment = True
    stack.receive_frame("veth0", ip_frame(big), now=0)
    [(interface, _, reply)] = sent_ipv4(stack)
    message = IcmpMessage.parse(reply.payload)
    assert interface == "veth0"
    assert (message.icmp_type, message.code, message.next_hop_mtu) == (3, 4, 1000)


def test_too_big_without_df_is_fragmented_to_the_smaller_mtu() -> None:
    stack = router()
    teach(stack, "veth0", PEER_MAC, A_PEER, A_STACK)
    teach(stack, "veth1", PEER_MAC_1, B_PEER, B_STACK)
    big = echo_request(A_PEER, B_PEER, payload=bytes(1400))
    stack.receive_frame("veth0", ip_frame(big), now=0)
    pieces = [packet for _, _, packet in sent_ipv4(stack)]
    assert len(pieces) == 2
    assert all(piece.header_length + len(piece.payload) <= 1000 for piece in pieces)
    assert [p.fragment_offset for p in pieces] == [0, 976]
    assert [p.more_fragments for p in pieces] == [True, False]
    assert b"".join(bytes(p.payload) for p in pieces) == bytes(big.payload)


# --- reassembly ------------------------------------------------------------------


def fragments_of(packet: Ipv4Packet, size: int) -> list[Ipv4Packet]:
    payload = bytes(packet.payload)
    pieces = []
    for offset in range(0, len(payload), size):
        chunk = payload[offset : offset + size]
        pieces.append(
            Ipv4Packet(
                packet.source,
                packet.destination,
                packet.protocol,
                chunk,
                identification=packet.identification,
                more_fragments=offset + size < len(payload),
                fragment_offset=offset,
            )
        )
    return pieces


def test_fragments_in_any_order_with_duplicates_reassemble_once() -> None:
    stack = make_stack()
    teach(stack, "veth0", PEER_MAC, A_PEER, A_STACK)
    request = echo_request(A_PEER, A_STACK, payload=bytes(range(256)) * 16)
    pieces = fragments_of(request, 1024)
    for piece in [pieces[2], pieces[0], pieces[0], pieces[4], pieces[1], pieces[3], pieces[3]]:
        stack.receive_frame("veth0", ip_frame(piece), now=0)
    replies = sorted((p for _, _, p in sent_ipv4(stack)), key=lambda p: p.fragment_offset)
    assert [p.more_fragments for p in replies] == [True, True, False]  # 4 KiB over MTU 1500
    message = IcmpMessage.parse(b"".join(bytes(p.payload) for p in replies))
    assert message.icmp_type == icmp_wire.TYPE_ECHO_REPLY
    assert bytes(message.payload) == bytes(range(256)) * 16
    assert stack.stats()["ip.reassembled"] == 1
    assert stack.stats()["ip.fragment_duplicates"] == 1
    # The late copy of fragment 3 opens a new buffer that expires without an ICMP error,
    # since fragment zero is not in it (RFC 1122 §3.3.2).
    stack.handle_timer(now=30 * SECOND)
    assert sent_ipv4(stack, 30 * SECOND) == []
    assert stack.stats()["drop.reassembly_timeout"] == 1


def test_overlapping_fragments_drop_the_datagram() -> None:
    stack = make_stack()
    request = echo_request(A_PEER, A_STACK, payload=bytes(3000))
    pieces = fragments_of(request, 1024)
    overlap = Ipv4Packet(
        A_PEER,
        A_STACK,
        PROTOCOL_ICMP,
        bytes(1024),
        identification=99,
        more_fragments=True,
        fragment_offset=512,
    )
    for piece in [pieces[0], overlap, pieces[1], pieces[2]]:
        stack.receive_frame("veth0", ip_frame(piece), now=0)
    assert stack.stats()["drop.reassembly_overlap"] == 1
    assert stack.stats().get("ip.reassembled", 0) == 0


def test_incomplete_datagram_times_out_with_time_exceeded() -> None:
    stack = make_stack()
    teach(stack, "veth0", PEER_MAC, A_PEER, A_STACK)
    pieces = fragments_of(echo_request(A_PEER, A_STACK, payload=bytes(3000)), 1024)
    stack.receive_frame("veth0", ip_frame(pieces[0]), now=1_000)
    assert stack.poll_at() == 1_000 + 30 * SECOND
    stack.handle_timer(now=1_000 + 30 * SECOND)
    [(_, _, reply)] = sent_ipv4(stack)
    assert (reply.payload[0], reply.payload[1]) == (11, 1)
    assert stack.stats()["ip.reassembly_bytes"] == 0


def test_reassembly_memory_is_bounded() -> None:
    stack = make_stack(ip=IpConfig(reassembly_limit=4096, reassembly_max_datagrams=4))
    for identification in range(50):
        piece = Ipv4Packet(
            A_PEER,
            A_STACK,
            PROTOCOL_ICMP,
            bytes(1024),
            identification=identification,
            more_fragments=True,
        )
        stack.receive_frame("veth0", ip_frame(piece), now=0)
    assert stack.stats()["ip.reassembly_bytes"] <= 4096
    assert stack.stats()["drop.reassembly_limit"] >= 46


# --- hostile frames --------------------------------------------------------------


def test_bad_frames_are_dropped_by_reason() -> None:
    stack = make_stack()
    good = echo_request(A_PEER, A_STACK)
    bad_checksum = bytearray(ip_frame(good))
    bad_checksum[14 + 10] ^= 0xFF
    martian = echo_request(ip_from_str("127.0.0.1"), A_STACK)
    vlan = EthernetFrame(STACK_MAC_0, PEER_MAC, ETHERTYPE_VLAN, b"\x00\x05\x08\x00" + bytes(40))
    for frame in (
        b"",
        b"\x00" * 13,
        bytes(bad_checksum),
        ip_frame(martian),
        vlan.build(),
        ip_frame(good)[:30],
    ):
        stack.receive_frame("veth0", frame, now=0)
    stack.receive_frame("nope", ip_frame(good), now=0)
    stats = stack.stats()
    assert stats["drop.truncated"] == 3
    assert stats["drop.bad_checksum"] == 1
    assert stats["drop.bad_source_address"] == 1
    assert stats["drop.vlan_tagged"] == 1
    assert stats["drop.unknown_interface"] == 1
    assert stats["drop.total"] == 7
    assert stack.frames_to_send(now=0) == []


def test_a_frame_for_another_mac_is_not_ours() -> None:
    stack = make_stack()
    stack.receive_frame("veth0", ip_frame(echo_request(A_PEER, A_STACK), PEER_MAC_1), now=0)
    assert stack.stats()["drop.not_for_us"] == 1


def test_icmp_error_about_our_udp_becomes_an_event() -> None:
    stack = make_stack()
    teach(stack, "veth0", PEER_MAC, A_PEER, A_STACK)
    socket = stack.udp_bind(4000)
    stack.sendto(socket, b"hello", ("10.0.0.2", 9), now=0)
    [(_, _, sent)] = sent_ipv4(stack)
    error = IcmpMessage.destination_unreachable(3, sent.build()[:28])
    stack.receive_frame(
        "veth0", ip_frame(Ipv4Packet(A_PEER, A_STACK, PROTOCOL_ICMP, error.build())), now=1
    )
    assert stack.next_event() == IcmpErrorReceived(
        source="10.0.0.2",
        icmp_type=3,
        code=3,
        original_destination="10.0.0.2",
        original_protocol=PROTOCOL_UDP,
    )


def test_ping_and_udp_to_our_own_address_loop_back() -> None:
    stack = make_stack()
    socket = stack.udp_bind(9999)
    stack.ping("10.1.1.1", identifier=3, sequence=4, payload=b"self", now=0)
    stack.sendto(socket, b"to me", ("10.0.0.1", 9999), now=0)
    assert stack.frames_to_send(now=0) == []  # nothing leaves on the wire
    events = [stack.next_event(), stack.next_event()]
    assert stack.next_event() is None
    assert (
        EchoReplyReceived(source="10.1.1.1", identifier=3, sequence=4, payload=b"self", ttl=64)
        in events
    )
    assert (
        DatagramReceived(
            socket=socket,
            source="10.0.0.1",
            source_port=9999,
            destination="10.0.0.1",
            destination_port=9999,
            data=b"to me",
        )
        in events
    )


def test_tcp_info_and_nodelay_through_the_stack() -> None:
    stack = make_stack()
    teach(stack, "veth0", PEER_MAC, A_PEER, A_STACK)
    connection = stack.tcp_connect("10.0.0.2", 80, now=0)
    stack.tcp_set_nodelay(connection, True, now=0)
    [info] = stack.tcp_connections_info()
    assert info == stack.tcp_info(connection)
    assert "SYN" in str(info.state).upper()


def test_arp_whose_sender_mac_disagrees_with_the_frame_is_dropped() -> None:
    stack = make_stack()
    packet = ArpPacket(OPERATION_REQUEST, PEER_MAC_1, A_PEER, ZERO_MAC, A_STACK)
    frame = EthernetFrame(BROADCAST_MAC, PEER_MAC, ETHERTYPE_ARP, packet.build()).build()
    stack.receive_frame("veth0", frame, now=0)
    assert stack.frames_to_send(now=0) == []
    assert stack.stats()["arp.cache_entries"] == 0
    assert stack.stats()["drop.malformed"] == 1


def test_a_revalidated_entry_is_forgotten_after_a_lifetime_without_use() -> None:
    stack = make_stack()
    teach(stack, "veth0", PEER_MAC, A_PEER, A_STACK, now=0)
    stack.ping("10.0.0.2", identifier=1, sequence=1, now=10)
    stack.frames_to_send(now=10)
    stack.handle_timer(now=60 * SECOND)  # used: a unicast probe
    assert len(stack.frames_to_send(now=60 * SECOND)) == 1
    stack.receive_frame(
        "veth0",
        arp_frame(OPERATION_REPLY, PEER_MAC, A_PEER, A_STACK, STACK_MAC_0, STACK_MAC_0),
        now=60 * SECOND + 5,
    )
    stack.handle_timer(now=120 * SECOND + 5)  # not used since: forgotten quietly
    assert stack.frames_to_send(now=120 * SECOND + 5) == []
    assert stack.stats()["arp.cache_entries"] == 0
