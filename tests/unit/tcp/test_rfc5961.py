"""RFC 5961 in the engine: exact-match RSTs, challenge ACKs and their rate limit."""

from __future__ import annotations

from simtcp.time import MILLISECOND
from simtcp.wire.tcp import ACK, RST, SYN, flags_to_str

from .scenario import Scenario


def test_in_window_rst_and_syn_draw_rate_limited_challenge_acks() -> None:
    scenario = Scenario()
    scenario.enter("ESTABLISHED")
    replies = scenario.send(RST, seq=scenario.peer_nxt + 100)
    assert [(flags_to_str(r.flags), r.ack) for r in replies] == [(".", scenario.peer_nxt)]
    assert scenario.send(SYN, seq=scenario.peer_nxt + 5) == []  # within 500 ms: suppressed
    scenario.now += 500 * MILLISECOND
    assert [flags_to_str(r.flags) for r in scenario.send(SYN)] == ["."]
    assert scenario.state() == "ESTABLISHED"
    assert scenario.host.stats["tcp.challenge_acks"] == 2
    assert scenario.host.stats["tcp.challenge_acks_suppressed"] == 1


def test_data_with_a_too_old_ack_is_dropped_with_a_challenge() -> None:
    scenario = Scenario()
    scenario.enter("ESTABLISHED")
    handle = scenario.handle or 0
    replies = scenario.send(ACK, ack=scenario.our_nxt - 200_000, payload=b"forged")
    assert [flags_to_str(r.flags) for r in replies] == ["."]
    assert scenario.layer.info(handle).bytes_readable == 0
    assert scenario.host.stats["drop.tcp_bad_ack"] == 1
    # An old but plausible ACK (within the peer's window) still delivers its data.
    scenario.send(ACK, ack=scenario.our_nxt - 10, payload=b"fine")
    assert scenario.layer.receive(handle, now=scenario.now) == b"fine"
