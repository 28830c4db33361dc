"""Differential tests against scapy, an independent implementation of the same formats.

simtcp -> scapy: what simtcp builds, scapy dissects into the same fields, and
scapy's own checksum of the dissected packet (chksum deleted, rebuilt) is the one
simtcp wrote. scapy -> simtcp: what scapy builds, simtcp parses (verifying every
checksum) into the same fields.
"""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.compat import raw
from scapy.layers.inet import (  # noqa: E402
    ICMP,
    IP,
    TCP,
    UDP,
    IPerror,
    IPOption_NOP,
    IPOption_Router_Alert,
    IPOption_RR,
)
from scapy.layers.inet import TCPOptions as SCAPY_TCP_OPTIONS  # noqa: E402
from scapy.layers.l2 import ARP, Ether  # noqa: E402
from scapy.packet import Packet  # noqa: E402

from simtcp.wire.arp import ArpPacket  # noqa: E402
from simtcp.wire.ethernet import ETHERTYPE_ARP, ETHERTYPE_IPV4, EthernetFrame, mac_to_str  # noqa: E402
from simtcp.wire.icmp import IcmpMessage  # noqa: E402
from simtcp.wire.ipv4 import (  # noqa: E402
    PROTOCOL_ICMP,
    PROTOCOL_TCP,
    PROTOCOL_UDP,
    Ipv4Packet,
    ip_from_str,
    ip_to_str,
)
from simtcp.wire.tcp import (  # noqa: E402
    EndOfOptionList,
    MssOption,
    NopOption,
    SackOption,
    SackPermittedOption,
    TcpOption,
    TcpSegment,
    TimestampsOption,
    UnknownOption,
    WindowScaleOption,
)
from simtcp.wire.udp import UdpDatagram  # noqa: E402

SETTINGS = settings(max_examples=60, deadline=None)

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
macs = st.binary(min_size=6, max_size=6)
payloads = st.binary(max_size=120)
MAC_A = bytes.fromhex("525400123456")
MAC_B = bytes.fromhex("525400abcdef")


def _scapy_checksum_agrees(frame: bytes, layer: type[Packet]) -> bool:
    """scapy's checksum for the layer, recomputed from the dissected fields, equals ours."""
    packet = Ether(frame)
    written = packet[layer].chksum
    del packet[layer].chksum
    return bool(Ether(raw(packet))[layer].chksum == written)


def _ether_ipv4(ip: Ipv4Packet) -> bytes:
    return EthernetFrame(MAC_B, MAC_A, ETHERTYPE_IPV4, ip.build()).build()


# --- IPv4 options both sides know: NOP, router alert, record route --------------


@st.composite
def ip_option_lists(draw: st.DrawFn) -> tuple[bytes, list[Packet]]:
    """Raw IPv4 options laid out here by hand, with the scapy objects that mean the same."""
    raw_options, scapy_options = b"", []
    for choice in draw(st.lists(st.sampled_from(["nop", "alert", "rr"]), max_size=4)):
        if choice == "nop":
            encoding, option = b"\x01", IPOption_NOP()
        elif choice == "alert":
            encoding, option = b"\x94\x04\x00\x00", IPOption_Router_Alert()
        else:
            routers = draw(st.lists(u32, min_size=1, max_size=4))
            encoding = bytes((7, 3 + 4 * len(routers), 4)) + b"".join(
                router.to_bytes(4, "big") for router in routers
            )
            option = IPOption_RR(routers=[ip_to_str(router) for router in routers])
        if len(raw_options) + len(encoding) <= 40:
            raw_options += encoding
            scapy_options.append(option)
    return raw_options + bytes(-len(raw_options) % 4), scapy_options


ip_headers = st.fixed_dictionaries(
    {
        "source": u32,
        "destination": u32,
        "ttl": u8,
        "identification": u16,
        "tos": u8,
        "dont_fragment": st.booleans(),
        "more_fragments": st.booleans(),
        "reserved_flag": st.booleans(),
        "fragment_offset": st.integers(0, 0x1FFF).map(lambda blocks: blocks * 8),
    }
)


def _assert_ip_fields(scapy_ip: Packet, ip: Ipv4Packet) -> None:
    assert (scapy_ip.version, scapy_ip.ihl) == (4, ip.header_length // 4)
    assert ip_from_str(scapy_ip.src) == ip.source
    assert ip_from_str(scapy_ip.dst) == ip.destination
    assert (scapy_ip.proto, scapy_ip.ttl, scapy_ip.id, scapy_ip.tos) == (
        ip.protocol,
        ip.ttl,
        ip.identification,
        ip.tos,
    )
    assert scapy_ip.len == ip.header_length + len(ip.payload)
    assert int(scapy_ip.flags) == (ip.reserved_flag << 2) | (ip.dont_fragment << 1) | int(
        ip.more_fragments
    )
    assert scapy_ip.frag * 8 == ip.fragment_offset
    assert (
        b"".join(raw(option) for option in scapy_ip.options).ljust(len(ip.options), b"\x00")
        == ip.options
    )


# --- Ethernet and ARP ------------------------------------------------------------


@SETTINGS
@given(macs, macs, st.integers(1, 2), macs, u32, macs, u32)
def test_arp_simtcp_to_scapy(
    destination: bytes,
    source: bytes,
    operation: int,
    sender_mac: bytes,
    sender_ip: int,
    target_mac: bytes,
    target_ip: int,
) -> None:
    arp = ArpPacket(operation, sender_mac, sender_ip, target_mac, target_ip)
    frame = Ether(EthernetFrame(destination, source, ETHERTYPE_ARP, arp.build()).build())
    assert (frame.dst, frame.src, frame.type) == (
        mac_to_str(destination),
        mac_to_str(source),
        ETHERTYPE_ARP,
    )
    dissected = frame[ARP]
    assert (dissected.hwtype, dissected.ptype, dissected.hwlen, dissected.plen) == (1, 0x0800, 6, 4)
    assert dissected.op == operation
    assert (dissected.hwsrc, dissected.psrc) == (mac_to_str(sender_mac), ip_to_str(sender_ip))
    assert (dissected.hwdst, dissected.pdst) == (mac_to_str(target_mac), ip_to_str(target_ip))


@SETTINGS
@given(macs, macs, st.integers(1, 2), macs, u32, macs, u32)
def test_arp_scapy_to_simtcp(
    destination: bytes,
    source: bytes,
    operation: int,
    sender_mac: bytes,
    sender_ip: int,
    target_mac: bytes,
    target_ip: int,
) -> None:
    packet = Ether(dst=mac_to_str(destination), src=mac_to_str(source)) / ARP(
        op=operation,
        hwsrc=mac_to_str(sender_mac),
        psrc=ip_to_str(sender_ip),
        hwdst=mac_to_str(target_mac),
        pdst=ip_to_str(target_ip),
    )
    frame = EthernetFrame.parse(raw(packet))
    assert (frame.destination, frame.source, frame.ethertype) == (
        destination,
        source,
        ETHERTYPE_ARP,
    )
    assert ArpPacket.parse(frame.payload) == ArpPacket(
        operation, sender_mac, sender_ip, target_mac, target_ip
    )


# --- IPv4 and ICMP ---------------------------------------------------------------


def _quoted_datagram(header: dict[str, Any]) -> bytes:
    inner = UdpDatagram(header["identification"], 53, b"payload!").build(
        header["destination"], header["source"]
    )
    return Ipv4Packet(header["destination"], header["source"], PROTOCOL_UDP, inner).build()[:28]


icmp_kinds = st.sampled_from(
    [
        "echo-request",
        "echo-reply",
        "unreachable",
        "frag-needed",
        "time-exceeded",
        "parameter-problem",
    ]
)


def _icmp_message(kind: str, header: dict[str, Any], number: int, payload: bytes) -> IcmpMessage:
    quoted = _quoted_datagram(header)
    if kind == "echo-request":
        return IcmpMessage.echo_request(number >> 16, number & 0xFFFF, payload)
    if kind == "echo-reply":
        return IcmpMessage.echo_reply(number >> 16, number & 0xFFFF, payload)
    if kind == "unreachable":
        return IcmpMessage.destination_unreachable(number % 16 if number % 16 != 4 else 3, quoted)
    if kind == "frag-needed":
        return IcmpMessage.destination_unreachable(4, quoted, number & 0xFFFF)
    if kind == "time-exceeded":
        return IcmpMessage.time_exceeded(number & 1, quoted)
    return IcmpMessage.parameter_problem(number & 0xFF, quoted)


@SETTINGS
@given(ip_headers, ip_option_lists(), icmp_kinds, u32, payloads)
def test_ipv4_icmp_simtcp_to_scapy(
    header: dict[str, Any],
    options: tuple[bytes, list[Packet]],
    kind: str,
    number: int,
    payload: bytes,
) -> None:
    message = _icmp_message(kind, header, number, payload)
    ip = Ipv4Packet(protocol=PROTOCOL_ICMP, payload=message.build(), options=options[0], **header)
    frame = _ether_ipv4(ip)
    dissected = Ether(frame)
    _assert_ip_fields(dissected[IP], ip)
    assert _scapy_checksum_agrees(frame, IP)
    if ip.is_fragment:
        return  # scapy leaves fragments undissected above IP
    icmp = dissected[ICMP]
    assert (icmp.type, icmp.code) == (message.icmp_type, message.code)
    assert _scapy_checksum_agrees(frame, ICMP)
    if kind.startswith("echo"):
        assert (icmp.id, icmp.seq) == (message.identifier, message.sequence)
        assert raw(icmp.payload) == payload
        return
    if kind == "frag-needed":
        assert icmp.nexthopmtu == message.next_hop_mtu
    if kind == "parameter-problem":
        assert icmp.ptr == message.pointer
    quoted = icmp[IPerror]
    assert raw(quoted) == bytes(message.payload)
    assert (ip_from_str(quoted.src), ip_from_str(quoted.dst), quoted.proto) == (
        header["destination"],
        header["source"],
        PROTOCOL_UDP,
    )


@SETTINGS
@given(ip_headers, ip_option_lists(), icmp_kinds, u32, payloads)
def test_ipv4_icmp_scapy_to_simtcp(
    header: dict[str, Any],
    options: tuple[bytes, list[Packet]],
    kind: str,
    number: int,
    payload: bytes,
) -> None:
    flags = (
        (header["reserved_flag"] << 2)
        | (header["dont_fragment"] << 1)
        | int(header["more_fragments"])
    )
    expected = _icmp_message(kind, header, number, payload)
    if kind.startswith("echo"):
        icmp = ICMP(type=expected.icmp_type, id=expected.identifier, seq=expected.sequence)
    elif kind == "frag-needed":
        icmp = ICMP(type=3, code=4, nexthopmtu=expected.next_hop_mtu)
    elif kind == "parameter-problem":
        icmp = ICMP(type=12, ptr=expected.pointer)
    else:
        icmp = ICMP(type=expected.icmp_type, code=expected.code)
    packet = (
        Ether(dst=mac_to_str(MAC_B), src=mac_to_str(MAC_A))
        / IP(
            src=ip_to_str(header["source"]),
            dst=ip_to_str(header["destination"]),
            ttl=header["ttl"],
            id=header["identification"],
            tos=header["tos"],
            flags=flags,
            frag=header["fragment_offset"] // 8,
            options=options[1],
        )
        / icmp
        / bytes(expected.payload)
    )
    frame = EthernetFrame.parse(raw(packet))
    ip = Ipv4Packet.parse(frame.payload)
    assert ip == Ipv4Packet(
        protocol=PROTOCOL_ICMP, payload=expected.build(), options=options[0], **header
    )
    assert IcmpMessage.parse(ip.payload) == expected


# --- UDP -------------------------------------------------------------------------


@SETTINGS
@given(u32, u32, u16, u16, payloads, st.booleans())
def test_udp_simtcp_to_scapy(
    source: int,
    destination: int,
    source_port: int,
    destination_port: int,
    payload: bytes,
    with_checksum: bool,
) -> None:
    datagram = UdpDatagram(source_port, destination_port, payload)
    segment = datagram.build(source, destination, with_checksum=with_checksum)
    frame = _ether_ipv4(Ipv4Packet(source, destination, PROTOCOL_UDP, segment))
    udp = Ether(frame)[UDP]
    assert (udp.sport, udp.dport, udp.len) == (source_port, destination_port, 8 + len(payload))
    assert raw(udp.payload) == payload
    if with_checksum:
        assert _scapy_checksum_agrees(frame, UDP)
    else:
        assert udp.chksum == 0


@SETTINGS
@given(u32, u32, u16, u16, payloads)
def test_udp_scapy_to_simtcp(
    source: int, destination: int, source_port: int, destination_port: int, payload: bytes
) -> None:
    packet = (
        IP(src=ip_to_str(source), dst=ip_to_str(destination))
        / UDP(sport=source_port, dport=destination_port)
        / payload
    )
    ip = Ipv4Packet.parse(raw(packet))
    datagram = UdpDatagram.parse(ip.payload, source=source, destination=destination)
    assert datagram == UdpDatagram(source_port, destination_port, payload)
    assert datagram.checksum == IP(raw(packet))[UDP].chksum != 0


# --- TCP with every option -------------------------------------------------------

_SCAPY_KNOWN_KINDS = set(SCAPY_TCP_OPTIONS[0])
unknown_options = st.builds(
    UnknownOption,
    st.integers(6, 255).filter(lambda kind: kind not in _SCAPY_KNOWN_KINDS),
    st.binary(max_size=10),
)
single_options: st.SearchStrategy[TcpOption] = st.one_of(
    st.just(NopOption()),
    st.builds(MssOption, u16),
    st.builds(WindowScaleOption, u8),
    st.just(SackPermittedOption()),
    st.builds(TimestampsOption, u32, u32),
    st.builds(SackOption, st.lists(st.tuples(u32, u32), min_size=1, max_size=4).map(tuple)),
    unknown_options,
)


def _to_scapy(option: TcpOption) -> tuple[Any, Any]:
    if isinstance(option, NopOption):
        return ("NOP", None)
    if isinstance(option, MssOption):
        return ("MSS", option.mss)
    if isinstance(option, WindowScaleOption):
        return ("WScale", option.shift)
    if isinstance(option, SackPermittedOption):
        return ("SAckOK", b"")
    if isinstance(option, TimestampsOption):
        return ("Timestamp", (option.value, option.echo_reply))
    if isinstance(option, SackOption):
        return ("SAck", tuple(edge for block in option.blocks for edge in block))
    if isinstance(option, EndOfOptionList):
        return ("EOL", None)
    return (option.kind, option.data)


@st.composite
def aligned_options(draw: st.DrawFn) -> tuple[TcpOption, ...]:
    """At most 40 bytes, padded by NOPs or one EOL to a multiple of 4."""
    options: list[TcpOption] = []
    for option in draw(st.lists(single_options, max_size=8)):
        candidate = [*options, option]
        if len(_raw_options(candidate)) <= 40:
            options = candidate
    gap = -len(_raw_options(options)) % 4
    if gap and draw(st.booleans()):
        options += [NopOption()] * gap
    elif gap:
        options.append(EndOfOptionList(bytes(gap - 1)))
    return tuple(options)


def _raw_options(options: list[TcpOption]) -> bytes:
    return b"".join(_encode(option) for option in options)


def _encode(option: TcpOption) -> bytes:
    """Each option's bytes as RFC 9293 §3.1 / RFC 7323 / RFC 2018 lay them out."""
    if isinstance(option, NopOption):
        return b"\x01"
    if isinstance(option, MssOption):
        return struct.pack("!BBH", 2, 4, option.mss)
    if isinstance(option, WindowScaleOption):
        return bytes((3, 3, option.shift))
    if isinstance(option, SackPermittedOption):
        return b"\x04\x02"
    if isinstance(option, TimestampsOption):
        return struct.pack("!BBII", 8, 10, option.value, option.echo_reply)
    if isinstance(option, SackOption):
        edges = [edge for block in option.blocks for edge in block]
        return struct.pack(f"!BB{len(edges)}I", 5, 2 + 4 * len(edges), *edges)
    if isinstance(option, EndOfOptionList):
        return b"\x00" + option.padding
    return bytes((option.kind, 2 + len(option.data))) + option.data


tcp_segments = st.builds(
    TcpSegment,
    source_port=u16,
    destination_port=u16,
    seq=u32,
    ack=u32,
    flags=u8,
    window=u16,
    options=aligned_options(),
    payload=payloads,
    urgent_pointer=u16,
    reserved=st.integers(0, 15),
)


@settings(max_examples=100, deadline=None)
@given(tcp_segments, u32, u32)
def test_tcp_simtcp_to_scapy(segment: TcpSegment, source: int, destination: int) -> None:
    frame = _ether_ipv4(
        Ipv4Packet(source, destination, PROTOCOL_TCP, segment.build(source, destination))
    )
    tcp = Ether(frame)[TCP]
    assert (tcp.sport, tcp.dport, tcp.seq, tcp.ack) == (
        segment.source_port,
        segment.destination_port,
        segment.seq,
        segment.ack,
    )
    assert (tcp.window, tcp.urgptr) == (segment.window, segment.urgent_pointer)
    assert tcp.dataofs * 4 == 20 + len(_raw_options(list(segment.options)))
    assert (tcp.reserved << 9) | int(tcp.flags) == (segment.reserved << 8) | segment.flags
    expected_options = [_to_scapy(option) for option in segment.options]
    if ("EOL", None) in expected_options:  # scapy stops at EOL, as RFC 9293 §3.1 says
        expected_options = expected_options[: expected_options.index(("EOL", None)) + 1]
    assert tcp.options == expected_options
    assert raw(tcp.payload) == bytes(segment.payload)
    assert _scapy_checksum_agrees(frame, TCP)


@settings(max_examples=100, deadline=None)
@given(tcp_segments, u32, u32)
def test_tcp_scapy_to_simtcp(segment: TcpSegment, source: int, destination: int) -> None:
    scapy_flags = segment.flags | ((segment.reserved & 1) << 8)
    packet = (
        IP(src=ip_to_str(source), dst=ip_to_str(destination))
        / TCP(
            sport=segment.source_port,
            dport=segment.destination_port,
            seq=segment.seq,
            ack=segment.ack,
            flags=scapy_flags,
            reserved=segment.reserved >> 1,
            window=segment.window,
            urgptr=segment.urgent_pointer,
            options=[_to_scapy(option) for option in segment.options],
        )
        / bytes(segment.payload)
    )
    ip = Ipv4Packet.parse(raw(packet))
    parsed = TcpSegment.parse(ip.payload, source=source, destination=destination)
    assert parsed == segment


def test_linux_syn_options_agree() -> None:
    """The SYN Linux sends, through both: the option order scapy reads is ours."""
    syn = bytes.fromhex(
        "9840 0050 07e8509c 00000000 a002 faf0 5f04 0000"
        "020405b4 0402 080a739a755600000000 01 03030a"
    )
    tcp = TCP(syn)
    assert tcp.options == [
        ("MSS", 1460),
        ("SAckOK", b""),
        ("Timestamp", (1939502422, 0)),
        ("NOP", None),
        ("WScale", 10),
    ]
    assert [_to_scapy(option) for option in TcpSegment.parse(syn).options] == tcp.options
