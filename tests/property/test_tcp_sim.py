"""TCP over the simulator: exact delivery under loss, reordering, duplication and corruption.

Three kinds of test, all in virtual time:

- bulk transfers (``simtcp.programs.transfer.run_transfer``) of random sizes in both
  directions over randomly impaired links (up to 30% loss, reordering,
  duplication and corruption): every byte arrives intact, in order, once; both
  ends close, and after TIME-WAIT neither stack holds a connection or a timer
  (ARP's entry lifetime is set to days, so any nearer deadline is TCP's);
- a slow reader that stops reading for many virtual seconds: the window
  closes, not one byte is lost, the transfer resumes;
- a ``RuleBasedStateMachine`` interleaving API calls on both ends with link
  faults and time jumps, checking after every step that what each end
  received is a prefix of what the other sent, and that the API raises only
  its documented exceptions.

Every failure found here stays as a named regression test at the bottom.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from simtcp.backends.impair import LinkProfile
from simtcp.backends.sim import Link, Simulator
from simtcp.config import ArpConfig, StackConfig, TcpConfig
from simtcp.errors import InvalidHandleError, InvalidStateError
from simtcp.events import (
    ConnectionAccepted,
    ConnectionClosed,
    ConnectionEstablished,
    ConnectionFailed,
    ConnectionReset,
    ConnectionTimedOut,
    DataReceived,
    PeerClosed,
    SendSpaceAvailable,
)
from simtcp.programs.transfer import PatternStream, TransferResult, TransferSpec, run_transfer
from simtcp.stack import Stack
from simtcp.time import MILLISECOND, SECOND

ARP_FOREVER = ArpConfig(entry_lifetime=10**12)
"""Entries live ~11 days: a deadline sooner than that after the run is not ARP's."""

PATIENT_TCP = TcpConfig(syn_retries=30, data_retries=60, max_rto=5 * SECOND)
"""30% loss plus 30% corruption each way loses about half the frames, so give-ups
after the default retries (and minute-long backed-off RTOs) are likely over many
examples; a patient TCP makes any failure here a bug, not bad luck."""

probabilities = st.one_of(st.just(0.0), st.floats(0.005, 0.3), st.floats(0.005, 0.3))
"""Two times in three a real impairment, up to the 30% the issue asks for."""

profiles = st.builds(
    LinkProfile,
    loss=probabilities,
    reorder=probabilities,
    duplicate=probabilities,
    corrupt=probabilities,
    delay=st.integers(0, 50 * MILLISECOND),
    jitter=st.integers(0, 5 * MILLISECOND),
    reorder_delay=st.integers(100, 30 * MILLISECOND),
    rate=st.one_of(st.just(0), st.integers(2_000_000, 1_000_000_000)),
)

sizes = st.one_of(
    st.integers(0, 5000),
    st.integers(5000, 300_000),
    st.integers(5000, 300_000),
    st.sampled_from([1 << 20, 2 << 20, 3 << 20]),
)
"""Mostly tens to hundreds of KB (several windows), sometimes empty or tiny, one time in
four several MB."""


def assert_clean(result: TransferResult) -> None:
    """Delivered exactly, closed, nothing left behind."""
    assert result.ok, result.reason + "\n" + result.detail
    assert result.bytes_delivered == result.bytes
    assert result.connections_left == (0, 0)
    for idle in result.idle_for:
        assert idle is None or idle > 10**11, f"a timer is left {idle}us after the end"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    forward=profiles,
    backward=profiles,
    size=sizes,
    mtu=st.sampled_from([1500, 1500, 576, 1280, 9000]),
)
def test_one_way_bytes_arrive_exactly_once_in_order_under_impairments(
    seed: int, forward: LinkProfile, backward: LinkProfile, size: int, mtu: int
) -> None:
    spec = TransferSpec(
        bytes=size,
        seed=seed,
        forward=forward,
        backward=backward,
        mtu=mtu,
        tcp=PATIENT_TCP,
        arp=ARP_FOREVER,
    )
    assert_clean(run_transfer(spec))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    forward=profiles,
    backward=profiles,
    size=sizes,
    reverse=sizes,
    mtu=st.sampled_from([1500, 1500, 576, 1280, 9000]),
)
def test_two_way_bytes_arrive_exactly_once_in_order_under_impairments(
    seed: int, forward: LinkProfile, backward: LinkProfile, size: int, reverse: int, mtu: int
) -> None:
    spec = TransferSpec(
        bytes=size,
        reverse_bytes=reverse,
        seed=seed,
        forward=forward,
        backward=backward,
        mtu=mtu,
        tcp=PATIENT_TCP,
        arp=ARP_FOREVER,
    )
    assert_clean(run_transfer(spec))


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    loss=st.floats(0.0, 0.05),
    connections=st.integers(2, 12),
    size=st.integers(0, 50_000),
)
def test_concurrent_connections_each_deliver_their_own_stream(
    seed: int, loss: float, connections: int, size: int
) -> None:
    profile = LinkProfile(loss=loss, delay=2 * MILLISECOND)
    spec = TransferSpec(
        bytes=size,
        seed=seed,
        forward=profile,
        backward=profile,
        connections=connections,
        tcp=PATIENT_TCP,
        arp=ARP_FOREVER,
    )
    assert_clean(run_transfer(spec))


BAD_LINK = LinkProfile(
    loss=0.1,
    reorder=0.1,
    duplicate=0.05,
    corrupt=0.05,
    delay=10 * MILLISECOND,
    jitter=2 * MILLISECOND,
)


def test_several_megabytes_over_a_bad_link() -> None:
    spec = TransferSpec(
        bytes=3 << 20,
        seed=2026,
        forward=BAD_LINK,
        backward=BAD_LINK,
        tcp=PATIENT_TCP,
        arp=ARP_FOREVER,
    )
    result = run_transfer(spec)
    assert_clean(result)
    assert result.retransmits > 100  # the link really hurt


def test_transfer_is_deterministic() -> None:
    profile = LinkProfile(loss=0.2, reorder=0.2, duplicate=0.1, corrupt=0.1, delay=MILLISECOND)
    spec = TransferSpec(bytes=200_000, seed=99, forward=profile, backward=profile, tcp=PATIENT_TCP)
    first, second = run_transfer(spec), run_transfer(spec)
    assert first.ok and second.ok
    assert (first.virtual_seconds, first.retransmits, first.link_stats) == (
        second.virtual_seconds,
        second.retransmits,
        second.link_stats,
    )


# --- the slow reader -------------------------------------------------------------------


def slow_reader(
    seed: int,
    profile: LinkProfile,
    *,
    size: int = 1 << 20,
    after: int = 100_000,
    pause: int = 30 * SECOND,
) -> TransferSpec:
    return TransferSpec(
        bytes=size,
        seed=seed,
        forward=profile,
        backward=profile,
        pause_reading_after=after,
        pause_reading_for=pause,
        tcp=FIXED_BUFFER_TCP,
        arp=ARP_FOREVER,
    )


FIXED_BUFFER_TCP = replace(PATIENT_TCP, receive_buffer_max=0)
"""Receive-buffer auto-tuning off: these tests are about the window closing at a fixed
256 KiB buffer, which a buffer grown toward 6 MiB while the reader kept up never does
(found by hypothesis: seed=0, loss=0.0, after=183897, pause=20, more=0 ended with a
smallest send window of 257,664 bytes)."""


def test_a_reader_that_stops_closes_the_window_and_loses_nothing() -> None:
    # 1 MiB is four times the receive buffer: the sender must wait for the reader.
    result = run_transfer(slow_reader(1, LinkProfile(delay=10 * MILLISECOND)))
    assert_clean(result)
    assert result.min_send_window == 0
    assert result.virtual_seconds > 30  # it waited for the reader, then finished


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    loss=st.floats(0.0, 0.1),
    after=st.integers(1, 300_000),
    pause=st.integers(20, 120),
    more=st.integers(0, 1_000_000),
)
@example(seed=0, loss=0.0, after=183897, pause=20, more=0)
@example(seed=14329408, loss=0.0, after=101361, pause=20, more=0)
def test_slow_readers_under_loss_lose_nothing(
    seed: int, loss: float, after: int, pause: int, more: int
) -> None:
    # What follows the pause is more than the 256 KiB receive buffer, and the pause
    # lasts long enough for the sender to fill it even under loss.
    size = after + 400_000 + more
    profile = LinkProfile(loss=loss, delay=5 * MILLISECOND)
    result = run_transfer(slow_reader(seed, profile, size=size, after=after, pause=pause * SECOND))
    assert_clean(result)
    assert result.min_send_window == 0
    assert result.virtual_seconds >= pause


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    loss=st.floats(0.0, 0.2),
    reorder=st.floats(0.0, 0.2),
    after=st.integers(1, 500_000),
    pause=st.integers(1, 120),
    size=st.integers(0, 2_000_000),
    reverse=st.integers(0, 1_000_000),
    delay=st.integers(0, 30),
)
def test_readers_that_pause_while_both_ends_send_lose_nothing(
    seed: int,
    loss: float,
    reorder: float,
    after: int,
    pause: int,
    size: int,
    reverse: int,
    delay: int,
) -> None:
    # Pauses up to twice TIME-WAIT: unread bytes must outlive the connection's end.
    profile = LinkProfile(loss=loss, reorder=reorder, delay=delay * MILLISECOND)
    assert_clean(
        run_transfer(
            TransferSpec(
                bytes=size,
                reverse_bytes=reverse,
                seed=seed,
                forward=profile,
                backward=profile,
                pause_reading_after=after,
                pause_reading_for=pause * SECOND,
                tcp=PATIENT_TCP,
                arp=ARP_FOREVER,
            )
        )
    )


def test_a_paused_server_end_does_not_pause_the_client_end_with_its_handle() -> None:
    # Found by a wide random search: the harness kept pauses by handle number, and the
    # client's connection 2 is not the server's connection 2.
    assert_clean(
        run_transfer(
            TransferSpec(
                bytes=1,
                reverse_bytes=1,
                seed=0,
                connections=2,
                pause_reading_after=1,
                pause_reading_for=SECOND,
                stall_timeout=60 * SECOND,
                arp=ARP_FOREVER,
            )
        )
    )


def test_regression_slow_reader_ack_of_a_retransmission_past_snd_max() -> None:
    # Found by the slow-reader property: the reader stops after 1 byte for 20 s with
    # 9.4% loss; an RTO resent 1460 bytes from SND.UNA into an 800-byte window, past
    # SND.MAX, without raising SND.MAX; every ACK of those bytes was then dropped as
    # acknowledging unsent data (drop.tcp_bad_ack) and the connection timed out.
    profile = LinkProfile(loss=0.09375, delay=5 * MILLISECOND)
    result = run_transfer(slow_reader(33, profile, size=400_001, after=1, pause=20 * SECOND))
    assert_clean(result)


def test_slow_reader_without_loss_on_a_long_path() -> None:
    result = run_transfer(
        slow_reader(
            8,
            LinkProfile(delay=40 * MILLISECOND, rate=20_000_000),
            size=3 << 20,
            after=1 << 20,
            pause=90 * SECOND,
        )
    )
    assert_clean(result)
    assert result.min_send_window == 0
    assert result.virtual_seconds > 90


# --- API calls, link faults and time jumps, interleaved -----------------------------------------

ALLOWED_API_ERRORS = (InvalidHandleError, InvalidStateError)
"""What a call in the wrong state (or on a freed handle) may raise; anything else is a bug."""

FAULTS = {
    "perfect": LinkProfile(),
    "slow": LinkProfile(delay=40 * MILLISECOND),
    "lossy": LinkProfile(loss=0.3, delay=5 * MILLISECOND),
    "chaotic": LinkProfile(
        loss=0.1,
        reorder=0.3,
        duplicate=0.2,
        corrupt=0.2,
        delay=5 * MILLISECOND,
        jitter=3 * MILLISECOND,
    ),
    "cut": LinkProfile(loss=1.0),
}


@dataclass
class End:
    """One end of a connection as the application sees it."""

    stack: Stack
    handle: int
    name: str
    sent: bytearray = field(default_factory=bytearray)
    received: bytearray = field(default_factory=bytearray)
    peer: End | None = None
    write_closed: bool = False
    """We called shutdown or close: nothing more goes out."""
    app_closed: bool = False
    """We called close or abort: we may no longer read."""
    gone: str = ""
    """The event that ended the connection, if any."""
    peer_fin: bool = False


class TcpApiMachine(RuleBasedStateMachine):
    """Two stacks on one link; rules are application calls, link faults and time jumps."""

    ends = Bundle("ends")

    def __init__(self) -> None:
        super().__init__()
        self.by_handle: dict[tuple[str, int], End] = {}
        self.by_client_port: dict[int, End] = {}
        self.data_offset = 0

    @initialize(target=ends, seed=st.integers(0, 2**32 - 1))
    def build(self, seed: int) -> End:
        """The network, a listener and a first connection (so every rule has an end)."""
        self.make_network(seed)
        return self.connect()

    def make_network(self, seed: int, *, resolve_arp: bool = True) -> None:
        # A zero-delay link runs everything at one instant; far more steps there than a
        # few MB of frames need means the ends are answering each other in a loop.
        self.sim = Simulator(seed, max_steps_per_instant=20_000)
        self.client = self._stack("client", 1)
        self.server = self._stack("server", 2)
        self.link: Link = self.sim.connect(("client", "eth0"), ("server", "eth0"))
        self.listener = self.server.tcp_listen(80)
        self.data = PatternStream(seed, "machine")
        if resolve_arp:
            # ARP has no checksum: a corrupted ARP frame would poison a neighbour cache,
            # for ever with ARP_FOREVER. Resolve both ends now, before any link fault;
            # with entries that never expire no ARP frame crosses the link again.
            self.client.ping("10.0.0.2", identifier=1, sequence=1, now=self.sim.now)
            self.sim.run_for(MILLISECOND)
            while self.client.next_event() is not None:
                pass
        self.sim.add_process(self._events)

    def _stack(self, name: str, number: int) -> Stack:
        stack = Stack(StackConfig(seed=number, tcp=TcpConfig(msl=2 * SECOND), arp=ARP_FOREVER))
        stack.add_interface("eth0", mac=f"02:00:00:00:00:{number:02x}")
        stack.add_address("eth0", f"10.0.0.{number}/24")
        self.sim.add_host(name, stack)
        return stack

    # --- events ---------------------------------------------------------------------
    def _events(self, now: int) -> None:
        for name, stack in (("client", self.client), ("server", self.server)):
            while (event := stack.next_event()) is not None:
                if isinstance(event, ConnectionAccepted):
                    end = End(stack, event.connection, "server")
                    self.by_handle["server", event.connection] = end
                    client = self.by_client_port.get(event.remote_port)
                    if client is not None and client.peer is None:
                        end.peer, client.peer = client, end
                    continue
                end = self.by_handle.get((name, getattr(event, "connection", -1)))
                if end is None:
                    continue
                if isinstance(event, PeerClosed):
                    end.peer_fin = True
                    readable = self._drain(end, now)
                    assert end.peer is None or not readable or (end.received == end.peer.sent), (
                        "FIN before all the data"
                    )
                elif isinstance(
                    event, (ConnectionReset, ConnectionTimedOut, ConnectionFailed, ConnectionClosed)
                ):
                    end.gone = end.gone or type(event).__name__
                else:
                    assert isinstance(
                        event, (ConnectionEstablished, DataReceived, SendSpaceAvailable)
                    )

    def _drain(self, end: End, now: int) -> bool:
        """Read everything readable; False if the connection can no longer be read (it
        was reset in the same step, say: RFC 9293 §3.10.7.4 flushes its queues)."""
        if end.app_closed or end.gone:
            return False
        while True:
            try:
                data = end.stack.receive(end.handle, -1, now=now)
            except ALLOWED_API_ERRORS:
                return False
            if not data:
                return True
            end.received += data

    # --- rules: the application ------------------------------------------------------
    @precondition(lambda self: len(self.by_client_port) < 6)
    @rule(target=ends)
    def connect(self) -> End:
        handle = self.client.tcp_connect("10.0.0.2", 80, now=self.sim.now)
        end = End(self.client, handle, "client")
        self.by_handle["client", handle] = end
        self.by_client_port[self.client.tcp_info(handle).local_port] = end
        return end

    @rule(end=ends, size=st.integers(1, 200_000), server_side=st.booleans())
    def send(self, end: End, size: int, server_side: bool) -> None:
        end = self._side(end, server_side)
        chunk = self.data.read(self.data_offset, size)
        self.data_offset += size
        try:
            taken = end.stack.send(end.handle, chunk, now=self.sim.now)
        except ALLOWED_API_ERRORS:
            return
        assert 0 <= taken <= size
        assert not end.write_closed, "send accepted data after shutdown/close"
        end.sent += chunk[:taken]

    @rule(end=ends, size=st.one_of(st.just(-1), st.integers(1, 100_000)), server_side=st.booleans())
    def receive(self, end: End, size: int, server_side: bool) -> None:
        end = self._side(end, server_side)
        try:
            data = end.stack.receive(end.handle, size, now=self.sim.now)
        except ALLOWED_API_ERRORS:
            return
        assert size == -1 or len(data) <= size
        end.received += data

    @rule(end=ends, server_side=st.booleans())
    def shutdown(self, end: End, server_side: bool) -> None:
        end = self._side(end, server_side)
        try:
            end.stack.shutdown(end.handle, now=self.sim.now)
        except ALLOWED_API_ERRORS:
            return
        end.write_closed = True

    @rule(end=ends, server_side=st.booleans())
    def close(self, end: End, server_side: bool) -> None:
        end = self._side(end, server_side)
        try:
            end.stack.close(end.handle, now=self.sim.now)
        except ALLOWED_API_ERRORS:
            return
        end.write_closed = end.app_closed = True

    @rule(end=ends, server_side=st.booleans())
    def abort(self, end: End, server_side: bool) -> None:
        end = self._side(end, server_side)
        try:
            end.stack.abort(end.handle, now=self.sim.now)
        except ALLOWED_API_ERRORS:
            return
        end.write_closed = end.app_closed = True
        end.gone = end.gone or "aborted"

    def _side(self, end: End, server_side: bool) -> End:
        return end.peer if server_side and end.peer is not None else end

    # --- rules: the network and time ----------------------------------------------------
    @rule(fault=st.sampled_from(sorted(FAULTS)), which=st.sampled_from(["ab", "ba", "both"]))
    def link_fault(self, fault: str, which: str) -> None:
        profile = FAULTS[fault]
        self.link.set_profile(
            ab=profile if which != "ba" else None, ba=profile if which != "ab" else None
        )

    @rule(
        milliseconds=st.one_of(
            st.integers(0, 50), st.integers(50, 5_000), st.integers(5_000, 200_000)
        )
    )
    def advance(self, milliseconds: int) -> None:
        self.sim.run_for(milliseconds * MILLISECOND)

    # --- invariants ------------------------------------------------------------------------
    @invariant()
    def received_is_a_prefix_of_sent(self) -> None:
        for end in self.by_handle.values():
            if end.peer is not None:
                sent = end.peer.sent
                assert len(end.received) <= len(sent)
                assert end.received == sent[: len(end.received)], f"{end.name} got wrong bytes"
            else:
                assert not end.received or end.name == "server"

    @invariant()
    def gauges_are_sane(self) -> None:
        for stack in (self.client, self.server):
            assert stack.stats["tcp.connections"] >= 0

    def teardown(self) -> None:
        """Heal the link, let the ends finish and close, and check nothing is left."""
        self.link.set_profile(ab=FAULTS["perfect"], ba=FAULTS["perfect"])
        for _ in range(3):
            self.sim.run_for(150 * SECOND)
            for end in list(self.by_handle.values()):
                self._drain(end, self.sim.now)
        for end in self.by_handle.values():
            peer = end.peer
            if (
                peer is not None
                and not end.gone
                and not peer.gone
                and not end.app_closed
                and peer.write_closed
            ):
                # The peer finished writing, nobody reset: everything must have arrived.
                assert end.received == peer.sent, f"{end.name} missed data after settling"
        for end in list(self.by_handle.values()):
            if not end.gone:
                with contextlib.suppress(*ALLOWED_API_ERRORS):
                    end.stack.close(end.handle, now=self.sim.now)
        self.sim.run_for(600 * SECOND)
        assert self.client.stats["tcp.connections"] == 0
        assert self.server.stats["tcp.connections"] == 0
        for stack in (self.client, self.server):
            deadline = stack.poll_at()
            assert deadline is None or deadline - self.sim.now > 10**11, "a TCP timer is left"


TcpApiMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
test_api_calls_link_faults_and_time_jumps = TcpApiMachine.TestCase


# --- regressions: every failing case found stays here ---------------------------------------


def test_no_arp_frame_crosses_a_faulty_link_in_the_state_machine() -> None:
    # Found by TcpApiMachine (seed 42061): a chaotic link corrupted the server's ARP
    # request, the client learned a wrong MAC for the server and, with entries that
    # never expire, the client's ACKs went to nobody (drop.not_for_us) for ever.
    machine = TcpApiMachine()
    machine.build(seed=42061)
    machine.link_fault(fault="chaotic", which="ba")
    machine.connect()
    machine.connect()
    machine.advance(milliseconds=8)
    machine.teardown()
    assert machine.server.stats["drop.not_for_us"] == 0


def test_data_fin_and_reset_in_one_step_is_no_false_alarm() -> None:
    # Found by TcpApiMachine: data, FIN and RST (close then abort) reach the server at
    # one instant; the reset flushes the unread byte before the application can read
    # it, which RFC 9293 allows. The harness, not the engine, was wrong.
    machine = TcpApiMachine()
    first = machine.build(seed=0)
    machine.advance(milliseconds=0)
    machine.send(end=first, server_side=False, size=1)
    machine.close(end=first, server_side=False)
    machine.abort(end=first, server_side=False)
    machine.advance(milliseconds=0)
    server = first.peer
    assert server is not None and server.peer_fin and server.gone == "ConnectionReset"
    machine.teardown()


@pytest.mark.parametrize("mtu", [68, 100, 115])
def test_regression_links_with_a_small_mtu(mtu: int) -> None:
    # Found by `simtcp sim transfer --mtu 100`: 116 worked, 115 never delivered a byte, as
    # the MSS floor (64) plus timestamps exceeded the MTU. RFC 791 allows MTUs down to 68.
    profile = LinkProfile(mtu=mtu, delay=MILLISECOND)
    result = run_transfer(
        TransferSpec(
            bytes=20_000,
            reverse_bytes=3_000,
            seed=1,
            mtu=mtu,
            forward=profile,
            backward=profile,
            stall_timeout=120 * SECOND,
            arp=ARP_FOREVER,
        )
    )
    assert_clean(result)


def test_the_smallest_mtu_that_works_today() -> None:
    profile = LinkProfile(mtu=116, delay=MILLISECOND, loss=0.05)
    assert_clean(
        run_transfer(
            TransferSpec(
                bytes=20_000,
                reverse_bytes=3_000,
                seed=1,
                mtu=116,
                forward=profile,
                backward=profile,
                tcp=PATIENT_TCP,
                arp=ARP_FOREVER,
            )
        )
    )


def test_regression_a_burst_beyond_the_backlog_completes_through_syn_cookies() -> None:
    # Found with TransferSpec.backlog: 12 connections at once against a backlog of 2. Ten
    # clients got SYN cookies; their handshake ACKs (valid cookies) met a full accept
    # queue and their later data segments (SEQ - 1 no longer the ISN the cookie binds)
    # failed the check, and both drew "ACK to LISTEN: reset" (RFC 9293 §3.10.7.2), so
    # 10 of 12 were reset. Now both are dropped (RFC 4987 §3.6 keeps no state; Linux's
    # tcp_abort_on_overflow=0), the clients retransmit from ISN + 1 and get in.
    profile = LinkProfile(delay=2 * MILLISECOND)
    assert_clean(
        run_transfer(
            TransferSpec(
                bytes=2000,
                reverse_bytes=500,
                seed=4,
                forward=profile,
                backward=profile,
                connections=12,
                backlog=2,
                arp=ARP_FOREVER,
            )
        )
    )


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_burst_of_bulk_connections_beyond_the_backlog_completes_under_loss(seed: int) -> None:
    profile = LinkProfile(delay=2 * MILLISECOND, loss=0.02, reorder=0.02)
    assert_clean(
        run_transfer(
            TransferSpec(
                bytes=30_000,
                reverse_bytes=5_000,
                seed=seed,
                forward=profile,
                backward=profile,
                connections=20,
                backlog=3,
                tcp=PATIENT_TCP,
                arp=ARP_FOREVER,
            )
        )
    )


def test_unread_bytes_outlive_time_wait() -> None:
    # The server (sending nothing back) shuts down at once, reads the first 14,480
    # bytes, then stops reading for 90 virtual seconds with the last byte and the
    # client's FIN in its buffer; TIME-WAIT ends at 60 s, the handle must stay readable
    # until drained. (First written as an engine bug: the harness was wrong, reading
    # again after the drain that frees an ended connection's handle.)
    result = run_transfer(
        TransferSpec(
            bytes=14_481,
            seed=0,
            pause_reading_after=1,
            pause_reading_for=90 * SECOND,
            arp=ARP_FOREVER,
        )
    )
    assert_clean(result)
    assert result.virtual_seconds >= 90


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_zero_bytes_both_ways_still_closes_cleanly(seed: int) -> None:
    assert_clean(run_transfer(TransferSpec(bytes=0, seed=seed, arp=ARP_FOREVER)))


def test_lossless_data_both_ways_at_once() -> None:
    profile = LinkProfile(delay=3 * MILLISECOND, jitter=MILLISECOND)  # no queue to overflow
    result = run_transfer(
        TransferSpec(
            bytes=1 << 20,
            reverse_bytes=700_000,
            seed=5,
            forward=profile,
            backward=profile,
            arp=ARP_FOREVER,
        )
    )
    assert_clean(result)
    assert result.retransmits == 0  # nothing was lost, so the wire saw no repeat


def test_regression_ack_war_after_both_ends_time_out() -> None:
    # Shrunk by hypothesis: 3 segments + 1 byte one way, 1 segment + 1 byte back, 20%
    # loss. Both ends' FINs got through, their ACKs did not; after each end's RTO
    # rewound SND.NXT to SND.UNA its bare ACKs carried that SEQ, below the peer's
    # RCV.NXT, so each found the other's ACKs unacceptable (RFC 9293 §3.10.7.4),
    # ignored their ACK fields and answered with another: an ACK war until both
    # timed out. Fixed by sending bare ACKs at SND.MAX.
    lossy = LinkProfile(loss=0.2)
    assert_clean(
        run_transfer(
            TransferSpec(
                bytes=4381,
                reverse_bytes=1461,
                seed=983,
                forward=lossy,
                backward=lossy,
                tcp=PATIENT_TCP,
                arp=ARP_FOREVER,
            )
        )
    )


def test_regression_ack_war_found_by_the_state_machine() -> None:
    # Found by TcpApiMachine (1,000 examples), trimmed by hand-run delta debugging:
    # data both ways on connection 1 through lossy then chaotic links; once teardown
    # heals the link, the ends traded unacceptable ACKs at one instant forever.
    machine = TcpApiMachine()
    machine.make_network(seed=478, resolve_arp=False)  # as it ran when found
    machine.advance(milliseconds=0)
    first = machine.connect()
    machine.link_fault(fault="slow", which="ab")
    machine.advance(milliseconds=28)
    machine.abort(end=first, server_side=True)
    second = machine.connect()
    machine.send(end=second, server_side=False, size=820)
    machine.link_fault(fault="lossy", which="both")
    machine.advance(milliseconds=856)
    machine.send(end=second, server_side=True, size=61326)
    machine.advance(milliseconds=267)
    machine.link_fault(fault="chaotic", which="both")
    third = machine.connect()
    machine.connect()
    machine.send(end=second, server_side=False, size=65536)
    machine.shutdown(end=third, server_side=True)
    machine.advance(milliseconds=33641)
    machine.teardown()


def test_regression_stale_timestamp_echoes_inflate_the_rto() -> None:
    # Found by a campaign (200 KiB each way, 20% loss, 10% reorder/duplicate/corrupt,
    # 2 ms delay: seed 15 took 2,838 virtual seconds with timestamps, 22 s without).
    # A retransmission the peer already had was answered with an ACK echoing the old
    # TS.Recent; that ACK advanced SND.UNA, so the whole backoff became an RTT sample
    # and SRTT climbed to minutes. Medians over five seeds of 300 KB at 30% loss were
    # 2,234 s with timestamps and 40 s without before the fix.
    lossy = LinkProfile(loss=0.3, delay=5 * MILLISECOND)

    def median_seconds(timestamps: bool) -> float:
        times = []
        for seed in range(1, 6):
            result = run_transfer(
                TransferSpec(
                    bytes=300_000,
                    seed=seed,
                    forward=lossy,
                    backward=lossy,
                    tcp=TcpConfig(timestamps=timestamps),
                )
            )
            assert result.ok, result.reason
            times.append(result.virtual_seconds)
        return sorted(times)[2]

    without, with_timestamps = median_seconds(False), median_seconds(True)
    assert with_timestamps < 3 * without + 10, f"{with_timestamps:.0f}s against {without:.0f}s"


def test_regression_megabytes_each_way_stall() -> None:
    # Found by the two-way property: 3 MiB one way and 2 MiB back stalled at 1.9 MB
    # (the ACK war above).
    assert_clean(
        run_transfer(
            TransferSpec(
                bytes=3 << 20,
                reverse_bytes=2 << 20,
                seed=2026,
                forward=BAD_LINK,
                backward=BAD_LINK,
                tcp=PATIENT_TCP,
                arp=ARP_FOREVER,
            )
        )
    )
