"""Every state crossed with SYN, SYN-ACK, ACK, data, FIN and RST, before/in/after the window.

Each row brings a fresh layer into a state with :class:`Scenario`, injects one
segment from the peer and checks the exact reply (flags, SEQ, ACK), the state
that follows, and the events. RFC 9293 §3.10.7 is the reference for every row.
"""

from __future__ import annotations

import pytest

from simtcp.events import (
    ConnectionAccepted,
    ConnectionClosed,
    ConnectionEstablished,
    ConnectionReset,
    DataReceived,
    PeerClosed,
)
from simtcp.wire.tcp import ACK, FIN, RST, SYN, MssOption, TcpSegment, flags_to_str

from .scenario import Scenario

KINDS = ("SYN", "SYN-ACK", "ACK", "DATA", "FIN", "RST")
POSITIONS = ("before", "in", "after")
SYNCHRONIZED = (
    "ESTABLISHED",
    "FIN-WAIT-1",
    "FIN-WAIT-2",
    "CLOSE-WAIT",
    "CLOSING",
    "LAST-ACK",
    "TIME-WAIT",
)
PAYLOAD = b"0123456789"


def build(scenario: Scenario, kind: str, position: str) -> TcpSegment:
    """The peer's segment of ``kind`` whose SEQ is before, in or after our window."""
    offset = {"before": -1000, "in": 0, "after": 70_000}[position]
    seq = scenario.peer_nxt + offset
    flags = {
        "SYN": SYN,
        "SYN-ACK": SYN | ACK,
        "ACK": ACK,
        "DATA": ACK,
        "FIN": FIN | ACK,
        "RST": RST,
    }[kind]
    payload = PAYLOAD if kind == "DATA" else b""
    options = (MssOption(1460),) if flags & SYN else ()
    return scenario.segment(flags, seq=seq, payload=payload, options=options)


def summary(replies: list[TcpSegment]) -> list[str]:
    return [flags_to_str(reply.flags) for reply in replies]


# In-window rows for the synchronized states: (reply flags, next state, events).
# "ACK" acknowledges everything we sent, so it completes our FIN where one is out.
IN_WINDOW: dict[tuple[str, str], tuple[list[str], str, tuple[type, ...]]] = {
    # ESTABLISHED (RFC 9293 §3.10.7.4)
    ("ESTABLISHED", "SYN"): (["."], "ESTABLISHED", ()),  # challenge ACK, RFC 5961 §4
    ("ESTABLISHED", "SYN-ACK"): (["."], "ESTABLISHED", ()),
    ("ESTABLISHED", "ACK"): ([], "ESTABLISHED", ()),
    ("ESTABLISHED", "DATA"): ([], "ESTABLISHED", (DataReceived,)),  # delayed ACK
    ("ESTABLISHED", "FIN"): (["."], "CLOSE-WAIT", (PeerClosed,)),
    ("ESTABLISHED", "RST"): ([], "CLOSED", (ConnectionReset, ConnectionClosed)),
    # FIN-WAIT-1 (after shutdown: we may still receive)
    ("FIN-WAIT-1", "SYN"): (["."], "FIN-WAIT-1", ()),
    ("FIN-WAIT-1", "SYN-ACK"): (["."], "FIN-WAIT-1", ()),
    ("FIN-WAIT-1", "ACK"): ([], "FIN-WAIT-2", ()),
    ("FIN-WAIT-1", "DATA"): ([], "FIN-WAIT-2", (DataReceived,)),
    ("FIN-WAIT-1", "FIN"): (["."], "TIME-WAIT", (PeerClosed,)),
    ("FIN-WAIT-1", "RST"): ([], "CLOSED", (ConnectionReset, ConnectionClosed)),
    # FIN-WAIT-2
    ("FIN-WAIT-2", "SYN"): (["."], "FIN-WAIT-2", ()),
    ("FIN-WAIT-2", "SYN-ACK"): (["."], "FIN-WAIT-2", ()),
    ("FIN-WAIT-2", "ACK"): ([], "FIN-WAIT-2", ()),
    ("FIN-WAIT-2", "DATA"): ([], "FIN-WAIT-2", (DataReceived,)),
    ("FIN-WAIT-2", "FIN"): (["."], "TIME-WAIT", (PeerClosed,)),
    ("FIN-WAIT-2", "RST"): ([], "CLOSED", (ConnectionReset, ConnectionClosed)),
    # CLOSE-WAIT: the peer's FIN is in; more text from it is ignored
    ("CLOSE-WAIT", "SYN"): (["."], "CLOSE-WAIT", ()),
    ("CLOSE-WAIT", "SYN-ACK"): (["."], "CLOSE-WAIT", ()),
    ("CLOSE-WAIT", "ACK"): ([], "CLOSE-WAIT", ()),
    ("CLOSE-WAIT", "DATA"): ([], "CLOSE-WAIT", ()),
    ("CLOSE-WAIT", "FIN"): (["."], "CLOSE-WAIT", ()),
    ("CLOSE-WAIT", "RST"): ([], "CLOSED", (ConnectionReset, ConnectionClosed)),
    # CLOSING: an ACK of our FIN leads to TIME-WAIT
    ("CLOSING", "SYN"): (["."], "CLOSING", ()),
    ("CLOSING", "SYN-ACK"): (["."], "CLOSING", ()),
    ("CLOSING", "ACK"): ([], "TIME-WAIT", ()),
    ("CLOSING", "DATA"): ([], "TIME-WAIT", ()),
    ("CLOSING", "FIN"): (["."], "TIME-WAIT", ()),
    ("CLOSING", "RST"): ([], "CLOSED", (ConnectionClosed,)),
    # LAST-ACK: an ACK of our FIN ends the connection
    ("LAST-ACK", "SYN"): (["."], "LAST-ACK", ()),
    ("LAST-ACK", "SYN-ACK"): (["."], "LAST-ACK", ()),
    ("LAST-ACK", "ACK"): ([], "CLOSED", (ConnectionClosed,)),
    ("LAST-ACK", "DATA"): ([], "CLOSED", (ConnectionClosed,)),
    ("LAST-ACK", "FIN"): ([], "CLOSED", (ConnectionClosed,)),
    ("LAST-ACK", "RST"): ([], "CLOSED", (ConnectionClosed,)),
    # TIME-WAIT
    ("TIME-WAIT", "SYN"): (["."], "TIME-WAIT", ()),
    ("TIME-WAIT", "SYN-ACK"): (["."], "TIME-WAIT", ()),
    ("TIME-WAIT", "ACK"): ([], "TIME-WAIT", ()),
    ("TIME-WAIT", "DATA"): ([], "TIME-WAIT", ()),
    ("TIME-WAIT", "FIN"): (["."], "TIME-WAIT", ()),
    ("TIME-WAIT", "RST"): ([], "CLOSED", (ConnectionClosed,)),
}


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("state", SYNCHRONIZED)
def test_synchronized_state(state: str, kind: str, position: str) -> None:
    scenario = Scenario()
    scenario.enter(state)
    rcv_nxt = scenario.peer_nxt
    our_nxt = scenario.our_nxt
    replies = scenario.inject(build(scenario, kind, position))
    events = scenario.events()
    if position == "in":
        expected_replies, expected_state, expected_events = IN_WINDOW[(state, kind)]
    elif kind == "RST":
        # RFC 9293 §3.10.7.4 "first": an unacceptable RST is dropped silently.
        expected_replies, expected_state, expected_events = [], state, ()
    elif (state, kind, position) == ("TIME-WAIT", "SYN", "after"):
        # RFC 1122 §4.2.2.13 / RFC 6191: a SYN beyond RCV.NXT (no timestamps) for a
        # listening port ends TIME-WAIT and opens a new connection (Linux does too).
        expected_replies, expected_state, expected_events = (
            ["S."],
            "SYN-RECEIVED",
            (ConnectionClosed,),
        )
    else:
        # Unacceptable: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, and nothing changes.
        expected_replies, expected_state, expected_events = ["."], state, ()
    assert summary(replies) == expected_replies
    assert scenario.state() == expected_state
    assert tuple(type(event) for event in events) == expected_events
    for reply in replies:
        if reply.flags == ACK:
            assert reply.seq == our_nxt & 0xFFFFFFFF
            expected_ack = rcv_nxt + (
                1
                if kind == "FIN"
                and position == "in"
                and state in ("ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2")
                else 0
            )
            assert reply.ack == expected_ack & 0xFFFFFFFF


def test_time_wait_retransmitted_fin_is_acked_and_restarts_2msl() -> None:
    scenario = Scenario()
    scenario.enter("TIME-WAIT")
    scenario.advance(15_000_000)
    retransmitted_at = scenario.now
    replies = scenario.send(FIN | ACK, seq=scenario.peer_nxt - 1)
    assert summary(replies) == ["."]
    assert replies[0].ack == scenario.peer_nxt & 0xFFFFFFFF
    # 2*MSL (20 s) now counts from the retransmission, not from entering TIME-WAIT.
    assert scenario.advance(retransmitted_at + 20_000_000 - 1 - scenario.now) == []
    assert scenario.state() == "TIME-WAIT"
    assert scenario.advance(1) == []
    assert scenario.state() == "CLOSED"
    assert [type(e) for e in scenario.events()] == [ConnectionClosed]


# --- LISTEN (RFC 9293 §3.10.7.2) ----------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_listen(kind: str) -> None:
    scenario = Scenario()
    scenario.enter("LISTEN")
    segment = build(scenario, kind, "in")
    replies = scenario.inject(segment)
    if kind == "SYN":
        assert summary(replies) == ["S."]
        assert replies[0].ack == (scenario.peer_nxt + 1) & 0xFFFFFFFF
        assert replies[0].mss == 1460
        assert scenario.state() == "SYN-RECEIVED"
    elif kind == "RST":
        assert replies == [] and scenario.state() == "CLOSED"
    else:
        # Anything with an ACK: <SEQ=SEG.ACK><CTL=RST>.
        assert summary(replies) == ["R"]
        assert replies[0].seq == segment.ack
        assert scenario.state() == "CLOSED"
    assert scenario.events() == []


# --- CLOSED: segments to nothing (RFC 9293 §3.10.7.1) --------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_closed_port_answers_with_reset(kind: str) -> None:
    scenario = Scenario()
    segment = build(scenario, kind, "in")
    replies = scenario.inject(segment)
    if kind == "RST":
        assert replies == []
    elif segment.flags & ACK:
        assert summary(replies) == ["R"]
        assert replies[0].seq == segment.ack
    else:
        assert summary(replies) == ["R."]
        assert replies[0].seq == 0
        assert replies[0].ack == (segment.seq + segment.segment_length) & 0xFFFFFFFF
    assert scenario.host.stats["drop.tcp_no_connection"] == 1


# --- SYN-SENT (RFC 9293 §3.10.7.3) -----------------------------------------------


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("kind", KINDS)
def test_syn_sent(kind: str, position: str) -> None:
    scenario = Scenario()
    scenario.enter("SYN-SENT")
    iss = scenario.our_iss
    ack = {"before": iss, "in": iss + 1, "after": iss + 1000}[position]
    flags = {
        "SYN": SYN,
        "SYN-ACK": SYN | ACK,
        "ACK": ACK,
        "DATA": ACK,
        "FIN": FIN | ACK,
        "RST": RST | ACK,
    }[kind]
    payload = PAYLOAD if kind == "DATA" else b""
    options = (MssOption(1460),) if flags & SYN else ()
    segment = scenario.segment(flags, ack=ack, payload=payload, options=options)
    replies = scenario.inject(segment)
    events = scenario.events()
    if kind == "SYN":  # no ACK bit: simultaneous open whatever "position" means
        assert summary(replies) == ["S."]
        assert replies[0].seq == iss and replies[0].ack == (scenario.peer_nxt + 1) & 0xFFFFFFFF
        assert scenario.state() == "SYN-RECEIVED"
        assert events == []
    elif position != "in":
        # An unacceptable ACK: <SEQ=SEG.ACK><CTL=RST> unless it is a RST itself.
        assert summary(replies) == ([] if kind == "RST" else ["R"])
        assert all(reply.seq == ack & 0xFFFFFFFF for reply in replies)
        assert scenario.state() == "SYN-SENT"
        assert events == []
    elif kind == "SYN-ACK":
        assert summary(replies) == ["."]
        assert replies[0].ack == (scenario.peer_nxt + 1) & 0xFFFFFFFF
        assert scenario.state() == "ESTABLISHED"
        assert [type(e) for e in events] == [ConnectionEstablished]
    elif kind == "RST":
        assert replies == []
        assert scenario.state() == "CLOSED"
        assert [type(e) for e in events] == [ConnectionReset, ConnectionClosed]
    else:  # acceptable ACK but no SYN: dropped
        assert replies == [] and scenario.state() == "SYN-SENT" and events == []


# --- SYN-RECEIVED (passive) ---------------------------------------------------------


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("kind", KINDS)
def test_syn_received(kind: str, position: str) -> None:
    scenario = Scenario()
    scenario.enter("SYN-RECEIVED")
    segment = build(scenario, kind, position)
    if kind == "SYN" and position == "before":
        segment.seq = (scenario.peer_nxt - 1) & 0xFFFFFFFF  # the peer repeats its SYN
    replies = scenario.inject(segment)
    events = scenario.events()
    if kind == "SYN" and position == "before":
        assert summary(replies) == ["S."]  # our SYN-ACK was lost: send it again
        assert scenario.state() == "SYN-RECEIVED"
    elif position != "in":
        assert summary(replies) == ([] if kind == "RST" else ["."])
        assert scenario.state() == "SYN-RECEIVED"
    elif kind in ("SYN", "SYN-ACK", "RST"):
        # Passive open: back to LISTEN, the half-open connection is forgotten.
        assert replies == [] and scenario.state() == "CLOSED" and events == []
    else:
        expected = {"ACK": "ESTABLISHED", "DATA": "ESTABLISHED", "FIN": "CLOSE-WAIT"}[kind]
        assert scenario.state() == expected
        assert type(events[0]) is ConnectionAccepted
        assert summary(replies) == (["."] if kind == "FIN" else [])


def test_syn_received_bad_ack_is_reset() -> None:
    scenario = Scenario()
    scenario.enter("SYN-RECEIVED")
    replies = scenario.send(ACK, ack=scenario.our_iss + 5)
    assert summary(replies) == ["R"]
    assert replies[0].seq == (scenario.our_iss + 5) & 0xFFFFFFFF
    assert scenario.state() == "SYN-RECEIVED"
