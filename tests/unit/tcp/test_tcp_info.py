"""TcpInfo against scripted simulator transfers: the fields ``ss -ti`` prints mean what Linux's do.

Two stacks on one simulated link; the client sends, the server reads. The
invariants: the delivery rate of a bulk transfer over a rate-limited link is
within the link's rate (and near it); retransmission counters equal the drops
scripted on the wire; a sender that writes less than a window at a time is
app-limited; the chronos and ages add up in virtual time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from simtcp.backends.impair import LinkProfile
from simtcp.backends.sim import Simulator
from simtcp.config import StackConfig
from simtcp.events import DataReceived
from simtcp.stack import Stack
from simtcp.tcp import TcpConfig, TcpInfo
from simtcp.time import MILLISECOND, SECOND

MSS = 1448  # 1500-byte frames with timestamps


@dataclass
class Transfer:
    """A client sending ``total`` bytes to a server that reads (unless ``reading`` is off)."""

    sim: Simulator
    client: Stack
    server: Stack
    handle: int
    total: int
    chunk: int = 65536
    reading: bool = True
    sent: int = 0
    received: int = 0
    accepted: list[int] = field(default_factory=list)

    def pump(self, now: int) -> None:
        while (event := self.server.next_event()) is not None:
            if isinstance(event, DataReceived):
                if event.connection not in self.accepted:
                    self.accepted.append(event.connection)
                if self.reading:
                    self.received += len(self.server.receive(event.connection, now=now))
        while self.client.next_event() is not None:
            pass
        if self.chunk and self.sent < self.total and self.established():
            piece = min(self.chunk, self.total - self.sent)
            self.sent += self.client.send(self.handle, bytes(piece), now=now)

    def established(self) -> bool:
        return self.client.tcp_info(self.handle).state == "ESTABLISHED"

    def info(self) -> TcpInfo:
        return self.client.tcp.info(self.handle, now=self.sim.now)

    def server_info(self) -> TcpInfo:
        return self.server.tcp.info(self.accepted[0], now=self.sim.now)


def transfer(
    total: int, *, delay: int = 10 * MILLISECOND, rate: int = 0, tcp: TcpConfig | None = None
) -> Transfer:
    sim = Simulator(1)
    stacks = []
    for index, address in enumerate(("10.0.0.1/24", "10.0.0.2/24")):
        stack = Stack(StackConfig(seed=index + 1, tcp=tcp or TcpConfig()))
        stack.add_interface("eth0", mac=f"02:00:00:00:00:0{index + 1}")
        stack.add_address("eth0", address, now=sim.now)
        sim.add_host(f"h{index}", stack)
        stacks.append(stack)
    profile = LinkProfile(delay=delay, rate=rate, queue_limit=1 << 20)
    sim.connect(("h0", "eth0"), ("h1", "eth0"), profile)
    client, server = stacks
    server.tcp_listen(5001)
    handle = client.tcp_connect("10.0.0.2", 5001, now=sim.now)
    run = Transfer(sim, client, server, handle, total)
    sim.add_process(run.pump)
    return run


def finish(run: Transfer, timeout: int = 60 * SECOND) -> None:
    assert run.sim.run_until(
        lambda: run.received >= run.total and run.info().unacked == 0, timeout=timeout
    )


def drop_first_sending(sim: Simulator, host: str, indices: set[int]) -> list[int]:
    """Drop the first transmission of the host's data frames number ``indices`` (0-based);
    returns the sequence numbers dropped."""
    seen: set[int] = set()
    dropped: list[int] = []
    count = [0]

    def hook(name: str, interface: str, frame: bytes, now: int) -> list[bytes] | None:
        if name != host or len(frame) < 54 or frame[23] != 6:
            return None
        total_length = int.from_bytes(frame[16:18], "big")
        payload = total_length - 20 - (frame[46] >> 4) * 4
        seq = int.from_bytes(frame[38:42], "big")
        if payload <= 0 or seq in seen:
            return None
        seen.add(seq)
        index = count[0]
        count[0] += 1
        if index in indices:
            dropped.append(seq)
            return []
        return None

    sim.send_hook = hook
    return dropped


def test_delivery_rate_of_a_bulk_transfer_is_within_the_link_rate() -> None:
    rate = 20_000_000  # bits per second
    run = transfer(4 << 20, rate=rate)
    samples: list[TcpInfo] = []
    sim = run.sim
    for _ in range(12):
        sim.run_for(100 * MILLISECOND)
        samples.append(run.info())
    finish(run)
    # The simulated link carries frames at ``rate``: Ethernet, IP and TCP with timestamps
    # take 66 bytes of each 1,514, so goodput cannot exceed this.
    ceiling = rate // 8 * MSS // (MSS + 66)
    rates = [info.delivery_rate for info in samples[3:]]  # after slow start
    assert all(0 < value <= ceiling * 1.01 for value in rates), (rates, ceiling)
    assert max(rates) >= ceiling * 0.95, (rates, ceiling)
    assert not any(info.app_limited for info in samples[3:])
    final = run.info()
    assert final.bytes_acked == final.delivered + 1 == run.total + 1  # and our SYN
    assert final.bytes_sent == run.total + final.bytes_retrans
    assert final.min_rtt is not None and 20 * MILLISECOND <= final.min_rtt < 25 * MILLISECOND
    assert final.send_rate == final.cwnd * SECOND // (final.srtt or 1)
    assert final.cc and final.pacing_rate is None


def test_retransmission_counters_equal_the_scripted_drops() -> None:
    # NewReno: with CUBIC (the default) and HyStart++ this path also draws one tail
    # loss probe (RFC 8985 §7), a fifth retransmission that no scripted drop caused.
    run = transfer(1 << 20, delay=5 * MILLISECOND, tcp=TcpConfig(congestion_control="newreno"))
    dropped = drop_first_sending(run.sim, "h0", {40, 41, 200, 500})
    finish(run)
    info = run.info()
    assert len(dropped) == 4
    assert info.retransmits == 4
    assert info.bytes_retrans == 4 * MSS
    assert info.bytes_sent == run.total + 4 * MSS
    assert info.bytes_acked == run.total + 1
    assert (info.unacked, info.retrans, info.lost, info.sacked) == (0, 0, 0, 0)
    server = run.server_info()
    assert server.bytes_received == run.total
    assert info.data_segs_out == server.data_segs_in + 4  # the dropped ones never arrived
    assert server.segs_out >= server.data_segs_out + info.data_segs_out // 2 - 4  # its ACKs
    assert info.segs_in == server.segs_out and server.segs_in == info.segs_out - 4


def test_a_writer_below_cwnd_is_app_limited() -> None:
    run = transfer(40 * 1000, delay=5 * MILLISECOND)
    run.chunk = 0  # the test writes: 1,000 bytes every 200 ms
    sim = run.sim
    assert sim.run_until(run.established, timeout=SECOND)
    for _ in range(20):
        run.sent += run.client.send(run.handle, bytes(1000), now=sim.now)
        sim.run_for(200 * MILLISECOND)
    info = run.info()
    assert info.app_limited
    assert 0 < info.delivery_rate <= 1000 * SECOND // (10 * MILLISECOND)  # a write per RTT
    assert info.cwnd > 1000 and info.notsent_bytes == 0 and info.unacked == 0
    # Busy while a write waits for its ACK: one RTT plus the peer's delayed ACK, each time.
    per_write = 10 * MILLISECOND + TcpConfig().delayed_ack
    assert 20 * 10 * MILLISECOND <= info.busy_time <= 20 * (per_write + MILLISECOND)
    assert info.rwnd_limited == info.sndbuf_limited == 0
    assert info.last_data_sent is not None and 0 < info.last_data_sent <= 200 * MILLISECOND


def test_a_receiver_that_stops_reading_limits_by_its_window() -> None:
    run = transfer(4 << 20, delay=5 * MILLISECOND)
    run.reading = False
    sim = run.sim
    sim.run_for(2 * SECOND)
    info = run.info()
    assert info.snd_wnd == 0
    assert info.rwnd_limited > SECOND  # most of the two seconds
    assert info.busy_time >= info.rwnd_limited + info.sndbuf_limited
    assert info.bytes_in_send_buffer > 0 and info.notsent_bytes > 0


def test_the_receiver_estimates_the_rtt_and_ages_follow_virtual_time() -> None:
    run = transfer(2 << 20, delay=10 * MILLISECOND)
    finish(run)
    server = run.server_info()
    assert server.rcv_rtt is not None and 19 * MILLISECOND <= server.rcv_rtt <= 40 * MILLISECOND
    assert server.rcv_mss == MSS and server.advmss == 1460 and server.pmtu == 1500
    assert server.data_segs_out == 0 and server.bytes_sent == 0
    run.sim.run_for(300 * MILLISECOND)
    later = run.server_info()
    assert later.last_data_recv is not None and later.last_data_recv >= 300 * MILLISECOND
    assert later.at == run.sim.now
    assert run.server.tcp.info(run.accepted[0]).last_data_recv is None  # no time given


def _has_fields(check: Callable[[TcpInfo], bool]) -> bool:
    run = transfer(64 * 1024)
    finish(run)
    return check(run.info())


def test_every_ss_field_is_a_snapshot_field() -> None:
    names = set(TcpInfo.__dataclass_fields__)
    ss_fields = (
        "srtt rttvar rto ato mss pmtu rcv_mss advmss cwnd ssthresh bytes_sent "
        "bytes_retrans bytes_acked bytes_received segs_out segs_in data_segs_out "
        "data_segs_in send_rate last_data_sent last_data_recv last_ack_recv pacing_rate "
        "delivery_rate busy_time rwnd_limited sndbuf_limited unacked retrans lost sacked "
        "reordering rcv_rtt rcv_space min_rtt app_limited"
    )
    assert set(ss_fields.split()) <= names
    assert _has_fields(lambda info: info.reordering == 3 and info.rcv_space > 0)


def test_a_send_buffer_smaller_than_cwnd_limits_by_the_buffer() -> None:
    """All of the buffer in flight, cwnd with room, the application waiting: sndbuf_limited
    (Linux's tcp_cwnd_validate), and the rate is the buffer per RTT."""
    small = TcpConfig(send_buffer=8192, send_buffer_max=8192)
    run = transfer(1 << 20, delay=20 * MILLISECOND, tcp=small)
    run.sim.run_for(SECOND)
    before = run.info().bytes_acked
    run.sim.run_for(SECOND)
    info = run.info()
    assert info.cwnd > 8192
    assert info.sndbuf_limited > SECOND and info.rwnd_limited == 0
    assert info.busy_time >= info.sndbuf_limited
    goodput = info.bytes_acked - before  # bytes per second, over the last second
    assert goodput <= 8192 * SECOND // (40 * MILLISECOND)  # at most the buffer per RTT
    assert 0.8 <= info.delivery_rate / goodput <= 1.25, (info.delivery_rate, goodput)
