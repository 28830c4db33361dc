"""SACK in the engine: negotiation, the receiver's blocks, and RFC 6675 recovery."""

from __future__ import annotations

from simtcp.events import ConnectionAccepted
from simtcp.tcp import TcpConfig
from simtcp.time import MILLISECOND, SECOND
from simtcp.wire.tcp import ACK, SYN, MssOption, NopOption, SackPermittedOption, TcpSegment

from .harness import A_ADDR, B_ADDR, Pair, make_pair
from .scenario import Scenario

FAST = TcpConfig(msl=1 * SECOND)


def sack_scenario() -> Scenario:
    scenario = Scenario()
    scenario.listen()
    replies = scenario.send(
        SYN, options=(MssOption(1460), NopOption(), NopOption(), SackPermittedOption())
    )
    assert replies[0].sack_permitted
    scenario.our_iss = replies[0].seq
    scenario.peer_nxt += 1
    scenario.send(ACK)
    scenario.handle = next(
        e.connection for e in scenario.events() if isinstance(e, ConnectionAccepted)
    )
    return scenario


def test_receiver_reports_blocks_latest_first() -> None:
    scenario = sack_scenario()
    base = scenario.peer_nxt
    replies = scenario.send(ACK, seq=base + 1000, payload=b"b" * 500)
    assert replies[0].ack == base and replies[0].sack_blocks == ((base + 1000, base + 1500),)
    replies = scenario.send(ACK, seq=base + 3000, payload=b"c" * 500)
    assert replies[0].sack_blocks == ((base + 3000, base + 3500), (base + 1000, base + 1500))
    replies = scenario.send(ACK, seq=base, payload=b"a" * 1000)  # fills the first hole
    assert replies[0].ack == base + 1500
    assert replies[0].sack_blocks == ((base + 3000, base + 3500),)


def test_duplicate_data_is_reported_as_dsack() -> None:
    scenario = sack_scenario()
    base = scenario.peer_nxt
    scenario.send(ACK, seq=base, payload=b"x" * 100)
    replies = scenario.send(ACK, seq=base, payload=b"x" * 100)  # an old duplicate
    assert replies[0].sack_blocks == ((base, base + 100),)  # RFC 2883 §4: D-SACK


def test_no_sack_without_both_sides() -> None:
    pair = make_pair(FAST, TcpConfig(msl=1 * SECOND, sack=False))
    pair.b.layer.listen(80)
    client = pair.a.layer.connect(B_ADDR, 80, now=0)
    pair.run(100 * MILLISECOND)
    assert not pair.a.layer.info(client).sack
    syn_ack = next(s for t, source, s in pair.log if source == B_ADDR)
    assert not syn_ack.sack_permitted


def lossy_transfer(lost_indexes: set[int], size: int = 120 * 1448) -> tuple[Pair, int, list[int]]:
    """Send ``size`` bytes from A; drop A's data segments with these first-transmission indexes."""
    seen: list[int] = []
    dropped: list[int] = []

    def fault(segment: TcpSegment, sender: int) -> list[int]:
        if sender == A_ADDR and segment.payload and segment.seq not in seen:
            seen.append(segment.seq)
            if len(seen) - 1 in lost_indexes:
                dropped.append(segment.seq)
                return []
        return [0]

    config = TcpConfig(msl=1 * SECOND, initial_window_segments=40)
    pair = make_pair(config, config, fault=fault)
    pair.b.layer.listen(80)
    client = pair.a.layer.connect(B_ADDR, 80, now=0)
    pair.run(100 * MILLISECOND)
    server = next(e.connection for e in pair.b.host.events if isinstance(e, ConnectionAccepted))
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    sent = pair.a.layer.send(client, data, now=pair.now)
    received = bytearray()
    pair.run(
        pair.now + 10 * SECOND,
        on_step=lambda: received.extend(pair.b.layer.receive(server, now=pair.now)),
        stop=lambda: len(received) == sent,
    )
    assert bytes(received) == data[:sent]
    return pair, client, dropped


def test_single_loss_recovered_by_sack_without_rto() -> None:
    pair, client, dropped = lossy_transfer({5})
    assert pair.a.host.stats["tcp.rto_expirations"] == 0
    assert pair.a.host.stats["tcp.fast_retransmits"] == 1
    assert pair.a.layer.info(client).retransmits == 1  # only the missing segment
    sends = [s.seq for t, source, s in pair.log if source == A_ADDR and s.seq in dropped]
    assert sends == dropped * 2  # the lost original and its one retransmission


def test_several_losses_in_one_window_each_resent_once() -> None:
    pair, client, dropped = lossy_transfer({3, 7, 8, 20, 31})
    assert len(dropped) == 5
    assert pair.a.host.stats["tcp.rto_expirations"] == 0
    assert pair.a.host.stats["tcp.fast_retransmits"] == 1  # one recovery episode
    assert pair.a.layer.info(client).retransmits == 5


def test_without_sack_newreno_needs_a_round_trip_per_hole() -> None:
    seen: list[int] = []

    def fault(segment: TcpSegment, sender: int) -> list[int]:
        if sender == A_ADDR and segment.payload and segment.seq not in seen:
            seen.append(segment.seq)
            if len(seen) - 1 in (3, 7, 8):
                return []
        return [0]

    config = TcpConfig(msl=1 * SECOND, initial_window_segments=40, sack=False)
    pair = make_pair(config, config, fault=fault)
    pair.b.layer.listen(80)
    client = pair.a.layer.connect(B_ADDR, 80, now=0)
    pair.run(100 * MILLISECOND)
    pair.a.layer.send(client, bytes(60 * 1448), now=pair.now)
    pair.run(pair.now + 5 * SECOND)
    assert pair.a.layer.info(client).bytes_in_send_buffer == 0
    assert pair.a.host.stats["tcp.rto_expirations"] == 0
    assert pair.a.layer.info(client).retransmits == 3  # partial ACKs, one hole at a time


def test_tail_loss_is_repaired_by_a_probe_not_an_rto() -> None:
    # 20 segments; the last two are lost: no duplicate ACKs can follow them.
    pair, client, dropped = lossy_transfer({18, 19}, size=20 * 1448)
    assert len(dropped) == 2
    assert pair.a.host.stats["tcp.loss_probes"] == 1
    assert pair.a.host.stats["tcp.rto_expirations"] == 0


def test_a_lost_retransmission_is_resent_without_an_rto() -> None:
    lost_once: dict[int, int] = {}
    seen: list[int] = []

    def fault(segment: TcpSegment, sender: int) -> list[int]:
        if sender == A_ADDR and segment.payload:
            if segment.seq not in seen:
                seen.append(segment.seq)
            if seen.index(segment.seq) == 5 and lost_once.get(segment.seq, 0) < 2:
                lost_once[segment.seq] = lost_once.get(segment.seq, 0) + 1
                return []  # the original and its first retransmission
        return [0]

    config = TcpConfig(msl=1 * SECOND, initial_window_segments=40)
    pair = make_pair(config, config, fault=fault)
    pair.b.layer.listen(80)
    client = pair.a.layer.connect(B_ADDR, 80, now=0)
    pair.run(100 * MILLISECOND)
    pair.a.layer.send(client, bytes(100 * 1448), now=pair.now)
    pair.run(pair.now + 5 * SECOND)
    assert pair.a.layer.info(client).bytes_in_send_buffer == 0
    assert pair.a.host.stats["tcp.rto_expirations"] == 0  # RACK found the lost retransmission
    assert pair.a.host.stats["tcp.rack_lost_segments"] >= 1
