"""TCP Fast Open (RFC 7413) between two simtcp stacks, and against scapy-built SYNs.

Off by default (as Linux); with ``fast_open_client``/``fast_open_server`` and a
listener's ``fast_open_queue`` the first connection fetches a cookie and the
next carries its request in the SYN, answered within one round trip.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import ARP, Ether

from simtcp.backends.impair import LinkProfile
from simtcp.backends.sim import Simulator
from simtcp.config import ArpConfig, StackConfig
from simtcp.events import ConnectionAccepted, DataReceived, Event
from simtcp.stack import Stack
from simtcp.tcp import TcpConfig
from simtcp.tcp.fastopen import server_cookie
from simtcp.time import MILLISECOND
from simtcp.wire.tcp import SYN, FastOpenOption, TcpSegment, parse_options

DELAY = 10 * MILLISECOND
RTT = 2 * DELAY
ON = TcpConfig(fast_open_client=True, fast_open_server=True)
CLIENT_ADDRESS = 0x0A000001
REQUEST = b"GET / HTTP/1.0\r\n\r\n"
RESPONSE = b"HTTP/1.0 200 OK\r\n\r\nhello"


class RecordingStack(Stack):
    """A Stack that keeps every TCP segment it hands out."""

    def __init__(self, config: StackConfig) -> None:
        super().__init__(config)
        self.segments: list[TcpSegment] = []

    def frames_to_send(self, *, now: int) -> list[tuple[str, bytes]]:
        frames = super().frames_to_send(now=now)
        for _, frame in frames:
            if frame[12:14] == b"\x08\x00" and frame[23] == 6:
                header = (frame[14] & 15) * 4
                self.segments.append(TcpSegment.parse(frame[14 + header :]))
        return frames

    def syns(self) -> list[TcpSegment]:
        return [segment for segment in self.segments if segment.flags & SYN]


@dataclass
class Server:
    """Answers every request with RESPONSE at once, noting when the request arrived."""

    stack: Stack
    events: list[tuple[int, Event, str]] = field(default_factory=list)
    received: dict[int, bytes] = field(default_factory=dict)

    def __call__(self, now: int) -> None:
        stack = self.stack
        while (event := stack.next_event()) is not None:
            state = ""
            if isinstance(event, ConnectionAccepted | DataReceived):
                state = stack.tcp_info(event.connection).state
            self.events.append((now, event, state))
            if isinstance(event, DataReceived):
                data = stack.receive(event.connection, now=now)
                self.received[event.connection] = self.received.get(event.connection, b"") + data
                if self.received[event.connection] == REQUEST:
                    stack.send(event.connection, RESPONSE, now=now)


@dataclass
class Client:
    stack: Stack
    answers: dict[int, tuple[int, bytes]] = field(default_factory=dict)
    started: dict[int, int] = field(default_factory=dict)

    def connect(self, now: int) -> int:
        handle = self.stack.tcp_connect("10.0.0.2", 80, data=REQUEST, now=now)
        self.started[handle] = now
        return handle

    def __call__(self, now: int) -> None:
        stack = self.stack
        while (event := stack.next_event()) is not None:
            if isinstance(event, DataReceived):
                data = stack.receive(event.connection, now=now)
                _, so_far = self.answers.get(event.connection, (0, b""))
                self.answers[event.connection] = (
                    now - self.started[event.connection],
                    so_far + data,
                )


def setup(
    client_tcp: TcpConfig,
    server_tcp: TcpConfig,
    *,
    queue: int = 16,
    loss: float = 0.0,
    profile: LinkProfile | None = None,
    seed: int = 1,
) -> tuple[Simulator, RecordingStack, RecordingStack, Client, Server]:
    sim = Simulator(seed)
    stacks = []
    for number, tcp in ((1, client_tcp), (2, server_tcp)):
        stack = RecordingStack(
            StackConfig(seed=number, arp=ArpConfig(entry_lifetime=10**12), tcp=tcp)
        )
        stack.add_interface("eth0", mac=f"02:00:00:00:00:{number:02x}")
        stack.add_address("eth0", f"10.0.0.{number}/24")
        sim.add_host(f"host{number}", stack)
        stacks.append(stack)
    client_stack, server_stack = stacks
    profile = profile or LinkProfile(delay=DELAY, loss=loss)
    sim.connect(("host1", "eth0"), ("host2", "eth0"), profile)
    server_stack.tcp_listen(80, fast_open_queue=queue)
    client, server = Client(client_stack), Server(server_stack)
    sim.add_process(server)
    sim.add_process(client)
    # Warm ARP so that round trips below are the TCP's own.
    client_stack.ping("10.0.0.2", identifier=1, sequence=1, now=0)
    sim.run_for(100 * MILLISECOND)
    while client_stack.next_event() is not None:
        pass
    return sim, client_stack, server_stack, client, server


def exchange(sim: Simulator, client: Client) -> tuple[int, bytes]:
    handle = client.connect(sim.now)
    sim.run_for(500 * MILLISECOND)
    return client.answers[handle]


def fast_open_options(segment: TcpSegment) -> list[FastOpenOption]:
    return [option for option in segment.options if isinstance(option, FastOpenOption)]


def test_off_by_default_connect_with_data_sends_it_after_the_handshake() -> None:
    sim, client_stack, server_stack, client, _ = setup(TcpConfig(), TcpConfig())
    for _ in range(2):
        elapsed, answer = exchange(sim, client)
        assert answer == RESPONSE
        assert elapsed == 2 * RTT  # handshake, then request and response
    assert all(not fast_open_options(s) and not s.payload for s in client_stack.syns())
    assert all(not fast_open_options(s) for s in server_stack.syns())


def test_cookie_then_data_in_the_syn_answered_in_one_round_trip() -> None:
    sim, client_stack, server_stack, client, server = setup(ON, ON)
    elapsed, answer = exchange(sim, client)
    assert (elapsed, answer) == (2 * RTT, RESPONSE)
    request_syn, syn_ack = client_stack.syns()[0], server_stack.syns()[0]
    assert fast_open_options(request_syn) == [FastOpenOption(b"")]  # a cookie request
    assert not request_syn.payload
    cookie = server_cookie(server_stack.rng, CLIENT_ADDRESS)
    assert fast_open_options(syn_ack) == [FastOpenOption(cookie)] and len(cookie) == 8
    assert client_stack.tcp.fast_open_cache.get(0x0A000002) == (cookie, 1460)

    server.events.clear()
    elapsed, answer = exchange(sim, client)
    assert (elapsed, answer) == (RTT, RESPONSE)  # one round trip: the SYN carried the request
    data_syn = client_stack.syns()[1]
    assert fast_open_options(data_syn) == [FastOpenOption(cookie)]
    assert data_syn.payload == REQUEST
    assert (server_stack.syns()[1].ack - data_syn.seq) & 0xFFFFFFFF == 1 + len(REQUEST)
    # The application had the connection and its data while the handshake was open.
    kinds = [(type(event).__name__, state) for _, event, state in server.events[:2]]
    assert kinds == [("ConnectionAccepted", "SYN-RECEIVED"), ("DataReceived", "SYN-RECEIVED")]
    accepted = [e for _, e, _ in server.events if isinstance(e, ConnectionAccepted)]
    assert len(accepted) == 1
    assert server.received[accepted[0].connection] == REQUEST  # once, not twice
    stats = server_stack.stats.as_dict()
    assert stats["tcp.fast_open_accepted"] == 1
    assert client_stack.stats.as_dict()["tcp.fast_open_syn_data_acked"] == 1


def test_an_invalid_cookie_falls_back_and_the_data_is_sent_again() -> None:
    sim, client_stack, server_stack, client, server = setup(ON, ON)
    client_stack.tcp.fast_open_cache.put(0x0A000002, b"\x00" * 8, 1460)
    elapsed, answer = exchange(sim, client)
    assert (elapsed, answer) == (2 * RTT, RESPONSE)
    syn = client_stack.syns()[0]
    assert syn.payload == REQUEST
    syn_ack = server_stack.syns()[0]
    assert (syn_ack.ack - syn.seq) & 0xFFFFFFFF == 1  # only the SYN acknowledged
    cookie = server_cookie(server_stack.rng, CLIENT_ADDRESS)
    assert fast_open_options(syn_ack) == [FastOpenOption(cookie)]
    assert client_stack.tcp.fast_open_cache.get(0x0A000002) == (cookie, 1460)
    assert list(server.received.values()) == [REQUEST]
    assert client_stack.stats.as_dict()["tcp.fast_open_syn_data_unacked"] == 1
    assert server_stack.stats.as_dict()["tcp.fast_open_cookie_invalid"] == 1
    # The fresh cookie works next time.
    assert exchange(sim, client) == (RTT, RESPONSE)


def test_a_server_without_fast_open_ignores_the_syn_data() -> None:
    sim, client_stack, server_stack, client, server = setup(ON, TcpConfig())
    client_stack.tcp.fast_open_cache.put(0x0A000002, b"\x01" * 8, 1460)
    assert exchange(sim, client) == (2 * RTT, RESPONSE)
    assert not fast_open_options(server_stack.syns()[0])
    assert list(server.received.values()) == [REQUEST]


def test_the_fast_open_queue_bounds_connections_in_syn_received() -> None:
    sim, client_stack, server_stack, client, server = setup(ON, ON, queue=1)
    exchange(sim, client)  # fetch the cookie
    handles = [client.connect(sim.now) for _ in range(3)]
    sim.run_for(500 * MILLISECOND)
    assert [client.answers[h] for h in handles] == [
        (RTT, RESPONSE),
        (2 * RTT, RESPONSE),
        (2 * RTT, RESPONSE),
    ]
    assert server_stack.stats.as_dict()["tcp.fast_open_queue_overflow"] == 2
    assert sorted(server.received.values()) == [REQUEST] * 4


def test_fast_open_under_loss_delivers_every_request_once() -> None:
    sim, client_stack, server_stack, client, server = setup(ON, ON, loss=0.2)
    for _ in range(20):
        handle = client.connect(sim.now)
        sim.run_for(30_000 * MILLISECOND)
        assert client.answers[handle][1] == RESPONSE
    assert sorted(server.received.values()) == [REQUEST] * 20


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    loss=st.sampled_from([0.0, 0.05, 0.2]),
    duplicate=st.sampled_from([0.0, 0.1, 0.3]),
    reorder=st.sampled_from([0.0, 0.1, 0.3]),
)
def test_every_request_arrives_once_under_any_impairment(
    seed: int, loss: float, duplicate: float, reorder: float
) -> None:
    """Invariant: with Fast Open on both sides, whatever the link loses, duplicates or
    reorders (a SYN with data included), each request reaches the server application
    exactly once, in one piece, and each response comes back whole."""
    profile = LinkProfile(
        delay=DELAY, loss=loss, duplicate=duplicate, reorder=reorder, reorder_delay=DELAY
    )
    sim, _, _, client, server = setup(ON, ON, profile=profile, seed=seed)
    handles = []
    for _ in range(4):
        handles.append(client.connect(sim.now))
        sim.run_for(60_000 * MILLISECOND)
    assert [client.answers[handle][1] for handle in handles] == [RESPONSE] * 4
    assert sorted(server.received.values()) == [REQUEST] * 4


# --- against scapy-built SYNs (an independent oracle of the wire format) ------------

STACK_MAC = "02:00:00:00:00:02"
PEER_MAC = "02:00:00:00:00:01"


def lone_server(tcp: TcpConfig) -> Stack:
    stack = Stack(StackConfig(seed=2, tcp=tcp))
    stack.add_interface("eth0", mac=STACK_MAC)
    stack.add_address("eth0", "10.0.0.2/24")
    stack.tcp_listen(80, fast_open_queue=4)
    arp = ARP(op=1, hwsrc=PEER_MAC, psrc="10.0.0.1", pdst="10.0.0.2")
    stack.receive_frame("eth0", bytes(Ether(src=PEER_MAC, dst="ff:ff:ff:ff:ff:ff") / arp), now=0)
    stack.frames_to_send(now=0)
    return stack


def scapy_syn(options: list[tuple[object, object]], payload: bytes) -> bytes:
    syn = TCP(sport=40000, dport=80, seq=1000, flags="S", window=65535, options=options)
    return bytes(
        Ether(src=PEER_MAC, dst=STACK_MAC) / IP(src="10.0.0.1", dst="10.0.0.2") / syn / payload
    )


def syn_ack_for(stack: Stack, frame: bytes) -> tuple[TCP, list[Event]]:
    stack.receive_frame("eth0", frame, now=1000)
    replies = [Ether(raw) for _, raw in stack.frames_to_send(now=1000)]
    segments = [reply[TCP] for reply in replies if TCP in reply]
    assert len(segments) == 1
    events = []
    while (event := stack.next_event()) is not None:
        events.append(event)
    return segments[0], events


def test_scapy_cookie_request_gets_a_kind_34_cookie() -> None:
    stack = lone_server(ON)
    reply, events = syn_ack_for(stack, scapy_syn([("MSS", 1460), (34, b"")], b"early"))
    assert reply.flags == "SA" and reply.ack == 1001  # the data is not acknowledged
    cookie = server_cookie(stack.rng, CLIENT_ADDRESS)
    raw_options = bytes(reply)[20 : reply.dataofs * 4]
    assert FastOpenOption(cookie) in parse_options(raw_options)
    assert bytes((34, 10)) + cookie in raw_options
    assert events == []


def test_scapy_syn_with_a_valid_cookie_is_accepted_with_its_data() -> None:
    stack = lone_server(ON)
    cookie = server_cookie(stack.rng, CLIENT_ADDRESS)
    reply, events = syn_ack_for(stack, scapy_syn([("MSS", 1460), (34, cookie)], REQUEST))
    assert reply.flags == "SA" and reply.ack == 1001 + len(REQUEST)
    assert [type(e).__name__ for e in events] == ["ConnectionAccepted", "DataReceived"]
    assert stack.receive(events[0].connection, now=1000) == REQUEST  # type: ignore[attr-defined]


def experimental_syn(stack: Stack) -> bytes:
    """A SYN with the valid cookie in the pre-RFC experimental option (kind 254)."""
    cookie = server_cookie(stack.rng, CLIENT_ADDRESS)
    return scapy_syn([("MSS", 1460), (254, b"\xf9\x89" + cookie)], REQUEST)


def test_scapy_experimental_option_is_ignored_unless_asked() -> None:
    stack = lone_server(ON)
    reply, events = syn_ack_for(stack, experimental_syn(stack))
    assert reply.ack == 1001 and events == []
    assert not [
        o
        for o in parse_options(bytes(reply)[20 : reply.dataofs * 4])
        if isinstance(o, FastOpenOption)
    ]
    stack = lone_server(TcpConfig(fast_open_server=True, fast_open_experimental=True))
    reply, events = syn_ack_for(stack, experimental_syn(stack))
    assert reply.ack == 1001 + len(REQUEST)
    assert [type(e).__name__ for e in events] == ["ConnectionAccepted", "DataReceived"]


def test_scapy_syn_with_a_wrong_cookie_gets_the_right_one() -> None:
    stack = lone_server(ON)
    reply, events = syn_ack_for(stack, scapy_syn([(34, b"\xaa" * 8)], REQUEST))
    assert reply.ack == 1001 and events == []
    cookie = server_cookie(stack.rng, CLIENT_ADDRESS)
    assert bytes((34, 10)) + cookie in bytes(reply)[20 : reply.dataofs * 4]


def test_fast_open_option_bytes() -> None:
    """RFC 7413 §4.1.1: kind 34, length 2 + cookie; 254 with ExID 0xF989 (RFC 6994)."""
    from simtcp.wire.tcp import UnknownOption, build_options

    assert build_options((FastOpenOption(),)) == b"\x22\x02\x00\x00"
    cookie = bytes(range(1, 9))
    raw = build_options((FastOpenOption(cookie),))
    assert raw == b"\x22\x0a" + cookie + b"\x00\x00"
    assert parse_options(raw)[0] == FastOpenOption(cookie)
    experimental = build_options((FastOpenOption(cookie, experimental=True),))
    assert experimental[:4] == b"\xfe\x0c\xf9\x89"
    assert parse_options(experimental)[0] == FastOpenOption(cookie, experimental=True)
    # Lengths RFC 7413 does not allow (odd, under 4, over 16) stay unknown options.
    for body in (b"\x01", b"\x01\x02", b"\x01\x02\x03", b"\x01" * 18):
        option = parse_options(bytes((34, 2 + len(body))) + body)[0]
        assert option == UnknownOption(34, body)
    assert parse_options(b"\xfe\x06\x12\x34\x00\x00")[0] == UnknownOption(254, b"\x12\x34\x00\x00")


def test_a_reset_in_syn_received_reaches_the_application_holding_it() -> None:
    """A Fast Open connection is the application's from its SYN on: a RST before the
    handshake's ACK ends it with ConnectionReset, not silently as a listener's clone."""
    from simtcp.events import ConnectionClosed, ConnectionReset

    stack = lone_server(ON)
    cookie = server_cookie(stack.rng, CLIENT_ADDRESS)
    _, events = syn_ack_for(stack, scapy_syn([(34, cookie)], REQUEST))
    handle = events[0].connection  # type: ignore[attr-defined]
    rst = TCP(sport=40000, dport=80, seq=1001 + len(REQUEST), flags="R", window=0)
    frame = Ether(src=PEER_MAC, dst=STACK_MAC) / IP(src="10.0.0.1", dst="10.0.0.2") / rst
    stack.receive_frame("eth0", bytes(frame), now=2000)
    later = []
    while (event := stack.next_event()) is not None:
        later.append(event)
    assert later == [ConnectionReset(connection=handle), ConnectionClosed(connection=handle)]


def test_connections_the_application_took_leave_the_fast_open_queue_when_established() -> None:
    """The queue counts Fast Open connections in SYN-RECEIVED (Linux's fastopenq.qlen),
    whether or not the application took them: sequential connections never fill it."""
    sim, _, server_stack, client, _ = setup(ON, ON, queue=2)
    exchange(sim, client)  # fetch the cookie
    assert [exchange(sim, client) for _ in range(10)] == [(RTT, RESPONSE)] * 10
    assert "tcp.fast_open_queue_overflow" not in server_stack.stats.as_dict()
