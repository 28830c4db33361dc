"""Immutable objects the engine reuses on its per-segment path instead of rebuilding them.

- ``transmit`` reuses the previous segment's NOP NOP TS options while TSval (1 ms
  ticks, RFC 7323 §5.4) and TS.Recent (the TSecr, §4.3) are both unchanged;
- RACK answers an ACK that changes nothing with the shared ``NO_VERDICT``;
- ``SackScoreboard.cumulative_ack`` is ``update`` without SACK blocks.

Each test checks the values on the wire (or the scoreboard's state) as well as
the sharing, so a reuse that went stale would fail.
"""

from __future__ import annotations

from simtcp.events import ConnectionAccepted
from simtcp.tcp import TcpConfig
from simtcp.tcp.rack import NO_VERDICT, RackTlp, RackVerdict
from simtcp.tcp.sack import SackScoreboard
from simtcp.time import MILLISECOND, SECOND
from simtcp.wire.tcp import TcpSegment, TimestampsOption

from .harness import A_ADDR, B_ADDR, Pair, make_pair

MSS = 1448


def established() -> tuple[Pair, int, int]:
    config = TcpConfig(msl=SECOND, nodelay=True)
    pair = make_pair(config, config, wire=False)  # segments reach the test as built
    pair.b.layer.listen(80)
    client = pair.a.layer.connect(B_ADDR, 80, now=0)
    pair.run(100 * MILLISECOND)
    server = next(
        e.connection for e in pair.b.host.take_events() if isinstance(e, ConnectionAccepted)
    )
    pair.a.host.take_sent()
    pair.b.host.take_sent()
    return pair, client, server


def timestamps(segment: TcpSegment) -> TimestampsOption:
    option = segment.options[2]
    assert isinstance(option, TimestampsOption)
    return option


def test_segments_of_one_tick_share_their_timestamps_option() -> None:
    pair, client, _ = established()
    tick = 200 * MILLISECOND
    pair.a.layer.send(client, b"x" * (3 * MSS), now=tick)
    first, second, third = pair.a.host.take_sent()
    assert first.options is second.options is third.options
    pair.a.layer.send(client, b"y" * MSS, now=tick + MILLISECOND - 1)  # same tick
    (same,) = pair.a.host.take_sent()
    assert same.options is first.options
    pair.a.layer.send(client, b"z" * MSS, now=tick + MILLISECOND)  # the next tick
    (later,) = pair.a.host.take_sent()
    assert timestamps(later).value == (timestamps(first).value + 1) & 0xFFFFFFFF
    assert timestamps(later).echo_reply == timestamps(first).echo_reply


def test_a_new_ts_recent_in_the_same_tick_is_echoed() -> None:
    pair, client, server = established()
    now = 300 * MILLISECOND
    pair.a.layer.send(client, b"q" * MSS, now=now)
    (request,) = pair.a.host.take_sent()
    old_echo = timestamps(request).echo_reply
    # B answers 40 ms later on its clock; A gets it within the same millisecond as its
    # next send, so only TS.Recent differs from the options A sent last.
    pair.b.receive(request, source=A_ADDR, now=now + 40 * MILLISECOND)
    pair.b.layer.send(server, b"r" * MSS, now=now + 40 * MILLISECOND)
    (reply,) = pair.b.host.take_sent()
    assert timestamps(reply).value != old_echo
    pair.a.layer.send(client, b"s" * MSS, now=now + 500)
    (before,) = pair.a.host.take_sent()
    assert before.options is request.options  # same tick, same TS.Recent: shared
    pair.a.receive(reply, source=B_ADDR, now=now + 600)
    pair.a.layer.send(client, b"t" * MSS, now=now + 700)
    sent = pair.a.host.take_sent()
    assert sent
    for segment in sent:
        assert timestamps(segment).value == timestamps(request).value  # still the same tick
        assert timestamps(segment).echo_reply == timestamps(reply).value


def test_rack_answers_a_clean_ack_with_the_shared_verdict() -> None:
    rack = RackTlp()
    rack.on_transmit(1000, 1000 + MSS, now=10)
    rack.on_transmit(1000 + MSS, 1000 + 2 * MSS, now=20)
    verdict = rack.on_ack(
        snd_una=1000 + MSS,
        sack_blocks=(),
        dsack=False,
        snd_nxt=1000 + 2 * MSS,
        srtt=None,
        in_recovery=False,
        now=5000,
    )
    assert verdict is NO_VERDICT
    assert verdict == RackVerdict()
    # A SACK above a hole: RACK waits a reordering window (a verdict of its own with
    # its timer), then finds the hole lost.
    rack = RackTlp()
    for index in range(4):
        rack.on_transmit(1000 + index * MSS, 1000 + (index + 1) * MSS, now=10 + index)
    verdict = rack.on_ack(
        snd_una=1000,
        sack_blocks=((1000 + 3 * MSS, 1000 + 4 * MSS),),
        dsack=False,
        snd_nxt=1000 + 4 * MSS,
        srtt=100_000,
        in_recovery=False,
        now=200_000,
    )
    assert verdict is not NO_VERDICT
    assert verdict.lost == () and verdict.reorder_at is not None
    timeout = rack.on_reorder_timeout(srtt=100_000, in_recovery=False, now=verdict.reorder_at)
    assert timeout.lost == (
        (1000, 1000 + MSS),
        (1000 + MSS, 1000 + 2 * MSS),
        (1000 + 2 * MSS, 1000 + 3 * MSS),
    )
    again = rack.on_reorder_timeout(srtt=100_000, in_recovery=False, now=verdict.reorder_at + 1)
    assert again is NO_VERDICT  # nothing new: the shared empty verdict
    assert RackVerdict() == NO_VERDICT  # never changed by anyone


def _scoreboard() -> SackScoreboard:
    board = SackScoreboard(snd_una=1000, mss=MSS)
    board.update(
        ack=1000,
        blocks=[(1000 + 2 * MSS, 1000 + 3 * MSS), (1000 + 5 * MSS, 1000 + 6 * MSS)],
        high_data=1000 + 8 * MSS,
    )
    board.mark_lost(1000, 1000 + 2 * MSS)
    return board


def _state(board: SackScoreboard) -> tuple[object, ...]:
    return (
        board.snd_una,
        board.high_rxt,
        board.pipe(1000 + 8 * MSS),
        board.next_segment(high_data=1000 + 8 * MSS, new_data=False),
    )


def test_cumulative_ack_is_update_without_blocks() -> None:
    for ack in (999, 1000, 1000 + MSS, 1000 + 3 * MSS, 1000 + 8 * MSS):
        by_update, by_cumulative = _scoreboard(), _scoreboard()
        result = by_update.update(ack=ack, blocks=[], high_data=1000 + 8 * MSS)
        acked = by_cumulative.cumulative_ack(ack)
        assert acked == result.acked == max(ack - 1000, 0)
        assert result.newly_sacked == 0 and result.dsack is None
        assert _state(by_update) == _state(by_cumulative)
