"""SACK fast recovery when more than half the window is outstanding (RFC 6675 §5, RFC 5681 §3.2).

Entering recovery cuts cwnd to ssthresh, about half (NewReno) or 0.7 (CUBIC)
of the flight, while pipe still counts almost the whole flight. RFC 6675 §5
step (4.3) retransmits the first unSACKed hole at once anyway, and later ACKs
keep data flowing as the pipe (and with PRR, RFC 6937, the delivered data)
allows. Scripted drops on the in-memory link, first transmissions only.
"""

from __future__ import annotations

from simtcp.events import ConnectionAccepted
from simtcp.tcp import TcpConfig
from simtcp.time import MILLISECOND, SECOND
from simtcp.wire.tcp import TcpSegment

from .harness import A_ADDR, B_ADDR, Pair, make_pair


def _transfer(
    config: TcpConfig, lost_indexes: set[int], segments: int
) -> tuple[Pair, int, list[int]]:
    """Send ``segments`` MSS from A, dropping the first transmissions at these indexes.

    A's data crosses a bottleneck of one segment per millisecond, so the ACKs
    come back spaced as they would behind a real link.
    """
    seen: list[int] = []
    dropped: list[int] = []
    busy_until = [0]

    def fault(segment: TcpSegment, sender: int) -> list[int]:
        if sender != A_ADDR or not segment.payload:
            return [0]
        if segment.seq not in seen:
            seen.append(segment.seq)
            if len(seen) - 1 in lost_indexes:
                dropped.append(segment.seq)
                return []
        leaves_at = max(pair.now, busy_until[0]) + MILLISECOND
        busy_until[0] = leaves_at
        return [leaves_at - pair.now]

    pair = make_pair(config, config, fault=fault)
    pair.b.layer.listen(80)
    client = pair.a.layer.connect(B_ADDR, 80, now=0)
    pair.run(100 * MILLISECOND)
    server = next(e.connection for e in pair.b.host.events if isinstance(e, ConnectionAccepted))
    data = bytes(segments * 1448)
    sent = pair.a.layer.send(client, data, now=pair.now)
    received = bytearray()
    pair.run(
        pair.now + 20 * SECOND,
        on_step=lambda: received.extend(pair.b.layer.receive(server, now=pair.now)),
        stop=lambda: len(received) == sent,
    )
    assert len(received) == sent
    return pair, client, dropped


def _third_dupack_and_retransmission(pair: Pair, hole: int) -> tuple[int, int]:
    """When A's third duplicate ACK of ``hole`` arrived, and when A resent the hole."""
    dupacks = [t for t, source, s in pair.log if source == B_ADDR and s.ack == hole]
    sends = [t for t, source, s in pair.log if source == A_ADDR and s.seq == hole and s.payload]
    return dupacks[3] + pair.delay, sends[1]  # dupacks[0] is the first ACK of ``hole``


def _configs(**kwargs: object) -> list[TcpConfig]:
    base = {"msl": 1 * SECOND, "initial_window_segments": 20, "rack": False, **kwargs}
    return [
        TcpConfig(**base, congestion_control=cc, prr=prr)  # type: ignore[arg-type]
        for cc in ("newreno", "cubic")
        for prr in (True, False)
    ]


def test_first_hole_is_resent_on_the_third_dupack_with_most_of_the_window_outstanding() -> None:
    # 20 segments in flight, the first lost: at the third duplicate ACK pipe is 16
    # segments and cwnd 10 (NewReno) or 14 (CUBIC), yet the hole goes at once.
    for config in _configs():
        pair, _, dropped = _transfer(config, {0}, segments=60)
        dupack_at, resent_at = _third_dupack_and_retransmission(pair, dropped[0])
        assert resent_at == dupack_at, config
        assert pair.a.host.stats["tcp.rto_expirations"] == 0


def test_recovery_with_the_rest_of_the_window_lost_still_repairs_the_first_hole_at_once() -> None:
    # 8 in flight; 1-3 arrive (three duplicate ACKs), 0 and 4-7 are lost. pipe equals
    # cwnd, so without the unconditional first retransmission nothing leaves until the RTO.
    for config in _configs(initial_window_segments=8):
        pair, _, dropped = _transfer(config, {0, 4, 5, 6, 7}, segments=8)
        dupack_at, resent_at = _third_dupack_and_retransmission(pair, dropped[0])
        assert resent_at == dupack_at, config


def test_recovery_keeps_sending_while_the_pipe_drains() -> None:
    # After the first retransmission every further ACK that shrinks pipe lets data go:
    # A sends during the recovery round, not only after its full ACK.
    for config in _configs():
        pair, _, dropped = _transfer(config, {0}, segments=60)
        dupack_at, _ = _third_dupack_and_retransmission(pair, dropped[0])
        full_ack_at = next(
            t + pair.delay
            for t, source, s in pair.log
            if source == B_ADDR and s.ack > dropped[0] and t + pair.delay > dupack_at
        )
        during = [
            s
            for t, source, s in pair.log
            if source == A_ADDR and dupack_at < t < full_ack_at and s.payload
        ]
        assert len(during) >= 5, (config, len(during))
        assert pair.a.host.stats["tcp.rto_expirations"] == 0
