"""Text and options around the handshake, and the ACK of a gap closing on a FIN (issue 15)."""

from __future__ import annotations

from simtcp.events import ConnectionEstablished, DataReceived, PeerClosed
from simtcp.tcp import TcpConfig
from simtcp.wire.tcp import (
    ACK,
    FIN,
    SYN,
    MssOption,
    NopOption,
    SackPermittedOption,
    TimestampsOption,
    WindowScaleOption,
    flags_to_str,
)

from .scenario import Scenario

ALL_OPTIONS = TcpConfig(window_scaling=True, timestamps=True, sack=True)


def test_data_on_a_syn_ack_is_queued_for_the_application() -> None:
    """RFC 9293 §3.10.7.3: "If there are other controls or text in the segment, ... queue
    them for processing" once ESTABLISHED: the bytes of a SYN-ACK are not discarded."""
    scenario = Scenario()
    scenario.syn_sent()
    scenario.send(SYN | ACK, ack=scenario.our_iss + 1, payload=b"hello", options=(MssOption(1460),))
    events = scenario.events()
    assert ConnectionEstablished(connection=scenario.handle or 0) in events
    assert scenario.layer.receive(scenario.handle or 0, now=scenario.now) == b"hello"
    assert scenario.layer.info(scenario.handle or 0).rcv_nxt == scenario.peer_nxt + 6


def test_simultaneous_open_syn_ack_echoes_only_the_options_the_peer_offered() -> None:
    """RFC 7323 §2.2 (window scale) and §3.2 (timestamps), RFC 2018 §2 (SACK-permitted):
    a SYN-ACK carries an option only if the SYN it answers carried it."""
    scenario = Scenario(config=ALL_OPTIONS)
    scenario.syn_sent()
    replies = scenario.send(SYN, options=(MssOption(1460),))
    assert [flags_to_str(r.flags) for r in replies] == ["S."]
    options = replies[0].options
    assert not any(
        isinstance(o, (WindowScaleOption, TimestampsOption, SackPermittedOption)) for o in options
    ), options


def test_simultaneous_open_with_all_options_echoes_them() -> None:
    scenario = Scenario(config=ALL_OPTIONS)
    scenario.syn_sent()
    offered = (
        MssOption(1460),
        NopOption(),
        WindowScaleOption(7),
        SackPermittedOption(),
        TimestampsOption(100, 0),
    )
    replies = scenario.send(SYN, options=offered)
    kinds = {type(o) for o in replies[0].options}
    assert {WindowScaleOption, TimestampsOption, SackPermittedOption} <= kinds


def test_data_on_a_syn_in_simultaneous_open_is_delivered_once_synchronized() -> None:
    scenario = Scenario()
    scenario.syn_sent()
    replies = scenario.send(SYN, payload=b"early", options=(MssOption(1460),))
    assert [flags_to_str(r.flags) for r in replies] == ["S."]
    assert replies[0].ack == scenario.peer_nxt + 6  # SYN and the five bytes
    assert not [e for e in scenario.events() if isinstance(e, DataReceived)]
    handle = scenario.handle or 0
    scenario.send(SYN | ACK, ack=scenario.our_iss + 1, options=(MssOption(1460),))
    events = scenario.events()
    kinds = [type(e) for e in events]
    assert kinds.index(ConnectionEstablished) < kinds.index(DataReceived)
    assert scenario.layer.receive(handle, now=scenario.now) == b"early"


def test_a_gap_closing_with_a_queued_fin_draws_one_ack() -> None:
    scenario = Scenario()
    scenario.established()
    start = scenario.peer_nxt
    assert [flags_to_str(r.flags) for r in scenario.send(ACK, seq=start + 10, payload=b"b" * 10)]
    fin = scenario.send(FIN | ACK, seq=start + 20)
    assert [flags_to_str(r.flags) for r in fin] == ["."]  # out of order: a duplicate ACK
    replies = scenario.send(ACK, seq=start, payload=b"a" * 10)
    assert [(flags_to_str(r.flags), r.ack) for r in replies] == [(".", (start + 21) & 0xFFFFFFFF)]
    assert PeerClosed(connection=scenario.handle or 0) in scenario.events()
