"""Header prediction (simtcp/tcp/fastpath.py), segment by segment, against the general path.

Every test plays the same hand-written peer against two layers, one with
``TcpConfig(fast_path=True)`` and one with ``fast_path=False``, and checks
after each segment that both sent the same bytes, emitted the same events and
hold the same connection state. Each step also says whether the fast path
must take the segment: in-order data and ACKs of new data yes; anything
unusual (out of window, PAWS, FIN, a pure window update, out-of-order data
held, recovery, unexpected options or flags) no.
"""

from __future__ import annotations

from dataclasses import replace

from simtcp.events import ConnectionAccepted, Event
from simtcp.tcp import TcpConfig
from simtcp.tcp.connection import Connection, State, TcpInfo
from simtcp.time import MILLISECOND, SECOND
from simtcp.wire.tcp import (
    ACK,
    FIN,
    PSH,
    SYN,
    URG,
    MssOption,
    NopOption,
    SackOption,
    TcpOption,
    TimestampsOption,
)

from .harness import A_ADDR, B_ADDR
from .scenario import Scenario

CONFIG = TcpConfig(msl=10 * SECOND, window_scaling=False, timestamps=False)
COUNTERS = ("tcp.fast_path_data", "tcp.fast_path_ack")


class Twin:
    """The same scripted peer against a fast-path layer and a general-path one."""

    def __init__(
        self, config: TcpConfig = CONFIG, *, timestamps: bool = False, syn_window: int = 65535
    ) -> None:
        self.syn_window = syn_window
        self.fast = Scenario(config=replace(config, fast_path=True))
        self.slow = Scenario(config=replace(config, fast_path=False))
        self.tsval = 5000
        self.timestamps = timestamps
        for scenario in self.both:
            self._establish(scenario)

    @property
    def both(self) -> tuple[Scenario, Scenario]:
        return self.fast, self.slow

    def _establish(self, scenario: Scenario) -> None:
        scenario.listen()
        syn_options: tuple[TcpOption, ...] = (MssOption(1460),)
        if self.timestamps:
            syn_options += (NopOption(), NopOption(), TimestampsOption(self.tsval, 0))
        replies = scenario.send(SYN, options=syn_options, window=self.syn_window)
        scenario.our_iss = replies[0].seq
        scenario.peer_nxt += 1
        scenario.send(ACK, options=self.ts_options(self.tsval), window=self.syn_window)
        scenario.handle = next(
            e.connection for e in scenario.events() if isinstance(e, ConnectionAccepted)
        )

    def ts_options(self, tsval: int) -> tuple[TcpOption, ...]:
        if not self.timestamps:
            return ()
        return (NopOption(), NopOption(), TimestampsOption(tsval, 0))

    def step(self, flags: int, *, taken: bool, advance: int = 0, **kwargs: object) -> None:
        """One peer segment to both layers: identical effects; taken by the fast path or not.

        ``advance`` moves the peer's next sequence number after the segment.
        """
        before = self.hits()
        replies = []
        for scenario in self.both:
            sent = scenario.send(flags, **kwargs)  # type: ignore[arg-type]
            replies.append([segment.build(B_ADDR, A_ADDR) for segment in sent])
            scenario.peer_nxt += advance
        assert replies[0] == replies[1]
        self.assert_same()
        assert (self.hits() > before) is taken
        assert self.slow_hits() == 0

    def app_send(self, data: bytes) -> None:
        for scenario in self.both:
            assert scenario.layer.send(scenario.handle or 0, data, now=scenario.now) == len(data)
        sent = [
            [segment.build(B_ADDR, A_ADDR) for segment in scenario.sent()] for scenario in self.both
        ]
        assert sent[0] == sent[1] and sent[0]
        self.assert_same()

    def tick(self, duration: int) -> None:
        sent = [
            [segment.build(B_ADDR, A_ADDR) for segment in scenario.advance(duration)]
            for scenario in self.both
        ]
        assert sent[0] == sent[1]
        self.assert_same()

    def assert_same(self) -> None:
        events: list[list[Event]] = [scenario.events() for scenario in self.both]
        assert events[0] == events[1]
        infos: list[TcpInfo] = [scenario.layer.info(scenario.handle or 0) for scenario in self.both]
        assert infos[0] == infos[1]
        stats = [
            {name: value for name, value in scenario.host.stats().items() if name not in COUNTERS}
            for scenario in self.both
        ]
        assert stats[0] == stats[1]
        assert [s.endpoint.timers.poll_at() for s in self.both] == [
            s.endpoint.timers.poll_at() for s in reversed(self.both)
        ]
        fast, slow = (connection_state(scenario) for scenario in self.both)
        assert fast == slow

    def hits(self) -> int:
        return sum(self.fast.host.stats[name] for name in COUNTERS)

    def slow_hits(self) -> int:
        return sum(self.slow.host.stats[name] for name in COUNTERS)

    def readable(self) -> list[bytes]:
        return [
            scenario.layer.receive(scenario.handle or 0, now=scenario.now) for scenario in self.both
        ]


def connection_state(scenario: Scenario) -> dict[str, object]:
    """Every plain variable of the scenario's connection (the TCB), for comparison only."""
    conn = scenario.layer._handles[scenario.handle or 0]
    assert isinstance(conn, Connection)
    values: dict[str, object] = {}
    for name in Connection.__slots__:
        value = getattr(conn, name)
        if value is None or isinstance(value, int | str | tuple | State):
            values[name] = value
    values["cwnd"], values["ssthresh"] = conn.cc.cwnd, conn.cc.ssthresh
    values["rto"], values["srtt"] = conn.rto.rto, conn.rto.srtt
    values["ts"] = (conn.ts.ts_recent, conn.ts.ts_recent_at, conn.ts.valid)
    values["readable"] = bytes(conn.receive_buffer.readable)
    values["unsent"] = (conn.send_buffer.base, len(conn.send_buffer))
    return values


# --- what the fast path takes ----------------------------------------------------


def test_in_order_data_is_taken_and_delivered_like_the_general_path() -> None:
    twin = Twin()
    twin.step(ACK, payload=b"a" * 1000, taken=True, advance=1000)
    twin.step(ACK | PSH, payload=b"b" * 500, taken=True, advance=500)
    assert twin.fast.host.stats["tcp.fast_path_data"] == 2
    assert twin.readable() == [b"a" * 1000 + b"b" * 500] * 2
    twin.tick(50 * MILLISECOND)  # the delayed ACK fires the same on both


def test_an_ack_of_new_data_is_taken_and_frees_the_send_buffer() -> None:
    twin = Twin()
    twin.app_send(b"x" * 3000)
    half = (twin.fast.our_iss + 1 + 1460) & 0xFFFFFFFF
    twin.step(ACK, ack=half, taken=True)
    twin.step(ACK, taken=True)  # everything
    assert twin.fast.host.stats["tcp.fast_path_ack"] == 2
    assert twin.fast.layer.info(twin.fast.handle or 0).bytes_in_send_buffer == 0


def test_data_with_a_changed_window_is_taken_and_the_window_updated() -> None:
    twin = Twin()
    twin.step(ACK, payload=b"a" * 100, window=1000, taken=True, advance=100)
    assert twin.fast.layer.info(twin.fast.handle or 0).snd_wnd == 1000


def test_data_into_a_zero_window_probe_sequence_is_taken_and_resets_the_probes() -> None:
    twin = Twin()
    twin.app_send(b"x" * 100)
    twin.step(ACK, window=0, taken=True)  # acknowledges the 100 bytes, closes the window
    for scenario in twin.both:
        scenario.layer.send(scenario.handle or 0, b"y" * 100, now=scenario.now)
    twin.tick(2 * SECOND)  # persist timer: a probe, persist_probes counts it
    twin.tick(3 * SECOND)
    assert connection_state(twin.fast)["persist_probes"] != 0
    twin.step(ACK, payload=b"a" * 10, window=0, taken=True, advance=10)
    assert connection_state(twin.fast)["persist_probes"] == 0
    assert connection_state(twin.fast)["persist_backoff"] != 0
    twin.step(ACK, payload=b"b" * 10, window=8000, taken=True, advance=10)  # window opens
    assert connection_state(twin.fast)["persist_backoff"] == 0


def test_a_window_larger_than_any_before_is_taken_and_remembered() -> None:
    twin = Twin(syn_window=2000)
    twin.step(ACK, payload=b"a" * 100, window=4000, taken=True, advance=100)
    assert connection_state(twin.fast)["max_snd_wnd"] == 4000


def test_timestamped_segments_passing_paws_are_taken() -> None:
    twin = Twin(replace(CONFIG, timestamps=True), timestamps=True)
    twin.tick(10 * MILLISECOND)  # TS.Recent's age (RFC 7323 §5.5) moves on
    twin.step(ACK, payload=b"a" * 100, options=twin.ts_options(5001), taken=True, advance=100)
    twin.step(ACK, payload=b"b" * 100, options=twin.ts_options(5001), taken=True, advance=100)
    twin.tick(50 * MILLISECOND)  # the delayed ACK echoes the same TS.Recent


# --- what it must leave to the general path ------------------------------------


def test_out_of_window_and_old_segments_are_not_taken() -> None:
    twin = Twin()
    twin.step(ACK, payload=b"a" * 100, taken=True, advance=100)
    twin.step(ACK, payload=b"x" * 100, seq=twin.fast.peer_nxt + 70_000, taken=False)
    twin.step(ACK, payload=b"a" * 100, seq=twin.fast.peer_nxt - 100, taken=False)  # repeat
    twin.step(ACK, payload=b"bb", seq=twin.fast.peer_nxt - 1, taken=False, advance=1)  # overlap
    twin.step(ACK, payload=b"c" * 100, taken=True, advance=100)
    assert twin.readable() == [b"a" * 100 + b"b" + b"c" * 100] * 2


def test_data_beyond_the_window_is_not_taken() -> None:
    twin = Twin(replace(CONFIG, receive_buffer=1000))
    twin.step(ACK, payload=b"a" * 1200, taken=False, advance=1200)
    assert twin.readable() == [b"a" * 1000] * 2


def test_old_timestamps_are_not_taken() -> None:
    twin = Twin(replace(CONFIG, timestamps=True), timestamps=True)
    twin.step(ACK, payload=b"a" * 100, options=twin.ts_options(6000), taken=True, advance=100)
    twin.step(ACK, payload=b"b" * 100, options=twin.ts_options(5999), taken=False)  # PAWS
    twin.step(ACK, payload=b"c" * 100, taken=False)  # TSopt missing: dropped (RFC 7323 §3.2)
    assert twin.fast.host.stats["drop.tcp_paws"] == 1


def test_fin_syn_urg_and_unexpected_options_are_not_taken() -> None:
    twin = Twin()
    sack = (NopOption(), NopOption(), SackOption(((1, 2),)))
    twin.step(ACK, payload=b"u" * 10, options=sack, taken=False, advance=10)
    twin.step(ACK | URG, payload=b"v" * 10, taken=False, advance=10)
    twin.step(
        ACK,
        payload=b"w" * 10,
        options=(NopOption(), NopOption(), TimestampsOption(1, 0)),
        taken=False,
        advance=10,
    )
    twin.step(SYN | ACK, taken=False)
    twin.step(FIN | ACK, payload=b"z" * 10, taken=False, advance=11)
    assert twin.fast.state() == "CLOSE-WAIT"
    twin.step(ACK, payload=b"late", taken=False)  # after the peer's FIN


def test_a_pure_window_update_and_duplicate_acks_are_not_taken() -> None:
    twin = Twin()
    twin.step(ACK, window=30_000, taken=False)  # no data, nothing acknowledged
    una = twin.fast.our_iss + 1
    twin.app_send(b"x" * 5000)
    twin.step(ACK, ack=una, window=30_000, taken=False)  # a duplicate ACK (RFC 5681 §2)
    twin.step(ACK, ack=una, payload=b"d" * 100, window=30_000, taken=False, advance=100)
    twin.step(ACK, ack=twin.fast.our_nxt + 5000, taken=False)  # beyond SND.MAX
    twin.step(ACK, ack=una - 1, payload=b"e" * 100, taken=False, advance=100)  # an old ACK


def test_data_while_out_of_order_data_is_held_is_not_taken() -> None:
    twin = Twin()
    gap_end = twin.fast.peer_nxt + 100
    twin.step(ACK, payload=b"b" * 100, seq=gap_end, taken=False)
    twin.step(ACK, payload=b"a" * 100, taken=False, advance=200)  # fills the gap
    twin.step(ACK, payload=b"c" * 100, taken=True, advance=100)
    assert twin.readable() == [b"a" * 100 + b"b" * 100 + b"c" * 100] * 2


def test_acks_during_recovery_are_not_taken() -> None:
    twin = Twin(replace(CONFIG, sack=False))
    una = twin.fast.our_iss + 1
    twin.app_send(b"x" * 8000)
    for _ in range(3):
        twin.step(ACK, ack=una, taken=False)
    assert twin.fast.host.stats["tcp.fast_retransmits"] == 1
    twin.step(ACK, ack=una + 1460, taken=False)  # a partial ACK (RFC 6582)
    twin.step(ACK, taken=False)  # the full ACK ends recovery, by the general path
    twin.app_send(b"y" * 100)
    twin.step(ACK, taken=True)


def test_switched_off_nothing_is_taken() -> None:
    scenario = Scenario(config=replace(CONFIG, fast_path=False))
    scenario.established()
    scenario.send(ACK, payload=b"a" * 100)
    assert scenario.host.stats["tcp.fast_path_data"] == 0
    assert scenario.layer.receive(scenario.handle or 0, now=scenario.now) == b"a" * 100
