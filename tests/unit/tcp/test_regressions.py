"""Engine bugs found by the simulator's campaigns, pinned at the segment level."""

from __future__ import annotations

from simtcp.events import ConnectionAccepted
from simtcp.tcp import TcpConfig
from simtcp.time import MILLISECOND
from simtcp.wire.tcp import ACK, SYN, MssOption, NopOption, TimestampsOption

from .scenario import Scenario
from .test_timestamps import timestamped_scenario


def test_go_back_n_after_an_rto_resends_the_rest() -> None:
    # Around test_tcp_sim seed 572 (there, inside SACK recovery, an ACK up to a
    # stepped-back SND.NXT below SND.MAX stopped the retransmission timer for good).
    scenario = Scenario(config=TcpConfig(rack=False, window_scaling=False))
    scenario.enter("ESTABLISHED")
    handle = scenario.handle or 0
    scenario.layer.send(handle, b"x" * 4380, now=scenario.now)
    assert len(scenario.sent()) == 3
    resent = scenario.advance(1000 * MILLISECOND)  # the RTO: go-back-N from SND.UNA
    assert [len(s.payload) for s in resent] == [1460]
    scenario.send(ACK, ack=resent[0].seq + 1460)  # ACKs exactly the resent segment
    later = scenario.advance(5000 * MILLISECOND)
    assert later and later[0].seq == resent[0].seq + 1460  # the timer resent the rest


def test_retransmission_past_snd_max_raises_it() -> None:
    # test_tcp_sim's slow reader: an RTO resent a full MSS into an 800-byte window, past
    # SND.MAX, and every ACK of those bytes was then dropped as acknowledging unsent data.
    scenario = Scenario()
    scenario.listen()
    replies = scenario.send(SYN, options=(MssOption(1460),), window=800)
    scenario.our_iss = replies[0].seq
    scenario.peer_nxt += 1
    scenario.send(ACK, window=800)
    handle = next(e.connection for e in scenario.events() if isinstance(e, ConnectionAccepted))
    scenario.layer.send(handle, b"y" * 1460, now=scenario.now)
    assert [len(s.payload) for s in scenario.sent()] == [800]
    resent = scenario.advance(1000 * MILLISECOND)
    assert [len(s.payload) for s in resent] == [1460]
    scenario.send(ACK, ack=resent[0].seq + 1460, window=800)
    assert scenario.layer.info(handle).bytes_in_send_buffer == 0
    assert scenario.host.stats["drop.tcp_bad_ack"] == 0


def test_ack_of_a_duplicate_echoes_its_timestamp() -> None:
    # test_tcp_sim (stale TS.Recent): a retransmission of bytes we hold must be answered
    # with its own TSval echoed, or the sender takes its whole backoff as an RTT sample.
    scenario = timestamped_scenario()
    first = (NopOption(), NopOption(), TimestampsOption(7000, 0))
    scenario.send(ACK, payload=b"z" * 100, options=first)
    again = (NopOption(), NopOption(), TimestampsOption(9000, 0))
    replies = scenario.send(ACK, payload=b"z" * 100, options=again)  # our ACK was lost
    assert replies[0].timestamps is not None
    assert replies[0].timestamps.echo_reply == 9000
