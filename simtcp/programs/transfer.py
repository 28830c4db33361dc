"""Bulk TCP transfers between two stacks in the simulator, checked byte for byte.

:func:`run_transfer` builds a :class:`~simtcp.backends.sim.Simulator` with two
:class:`~simtcp.stack.Stack` hosts (``client`` 10.0.0.1, ``server`` 10.0.0.2)
joined by one link with a :class:`~simtcp.backends.impair.LinkProfile` in each
direction. The server listens; the client opens one or more connections and
sends seeded pseudo-random bytes; optionally the server sends back at the same
time. Each receiver checks every byte against the stream it expects as it
arrives, so a gap, a duplicate, a reordering or a flipped bit is caught at the
first wrong byte. When a side has queued all its data it shuts its write side
(FIN); when it has also seen the peer's FIN it closes. The run then continues
through TIME-WAIT until both stacks hold no connection.

Nothing can hang: a run that makes no progress (no byte queued or delivered,
no connection event) for ``stall_timeout`` of virtual time ends with
``ok=False`` and a reason, and so does an engine exception. The same spec
always gives the same frames (and the same pcap); only the wall and CPU
figures differ between runs.

The data stream is generated in 64 KiB chunks from the seed, so a gigabyte
needs no gigabyte of memory on either side; a small cache shared by every
stream (``SHARED_CHUNKS``) lets the receiver, a window behind, reuse the chunk
its sender generated instead of generating it again.

The spec and result dataclasses live in :mod:`simtcp.programs.transfer_spec` and are
re-exported here.
"""

from __future__ import annotations

import io
import random
import time
import traceback
from collections.abc import Callable
from typing import BinaryIO

from simtcp.backends.impair import LinkProfile
from simtcp.backends.sim import Link, Simulator
from simtcp.config import StackConfig
from simtcp.errors import InvalidHandleError, SimtcpError
from simtcp.events import (
    ConnectionAccepted,
    ConnectionClosed,
    ConnectionEstablished,
    ConnectionFailed,
    ConnectionReset,
    ConnectionTimedOut,
    DataReceived,
    EchoReplyReceived,
    Event,
    PeerClosed,
    SendSpaceAvailable,
)
from simtcp.programs.runpcap import RunPcap
from simtcp.programs.transfer_spec import TransferResult, TransferSpec
from simtcp.stack import Stack
from simtcp.time import SECOND, Duration, Instant
from simtcp.trace import ConnectionTrace
from simtcp.wire.checksum import Buffer
from simtcp.wire.pcap import PcapWriter

CLIENT_ADDRESS = "10.0.0.1"
SERVER_ADDRESS = "10.0.0.2"
CLIENT_ADDRESS6 = "2001:db8::1"
SERVER_ADDRESS6 = "2001:db8::2"
"""``TransferSpec.ip_version=6``: both hosts are dual-stack, the connections IPv6."""
SERVER_PORT = 5001
CHUNK = 64 * 1024
"""Bytes generated, offered to ``send`` and taken by ``receive`` at a time."""
SHARED_CHUNKS = 128
"""Chunks (64 KiB each, 8 MiB in all) the cache shared by every :class:`PatternStream`
keeps: the receiver of a window of up to several MiB finds what its sender generated."""

PCAP_POINTS = ("client", "server", "link")


_shared_chunks: dict[tuple[str, int], bytes] = {}
"""(label, index) -> chunk, oldest first: the sender generates a chunk and the receiver,
a window behind, finds it here instead of generating it again."""


class PatternStream:
    """A seeded pseudo-random byte stream, read at any offset without holding it whole."""

    __slots__ = ("_label", "_index", "_chunk")

    def __init__(self, seed: int, name: str) -> None:
        self._label = f"simtcp-transfer:{seed}:{name}"
        self._index = -1
        self._chunk = b""

    def _load(self, index: int) -> bytes:
        if index != self._index:
            key = (self._label, index)
            chunk = _shared_chunks.get(key)
            if chunk is None:
                chunk = random.Random(f"{self._label}:{index}").randbytes(CHUNK)
                if len(_shared_chunks) >= SHARED_CHUNKS:
                    del _shared_chunks[next(iter(_shared_chunks))]  # the oldest
                _shared_chunks[key] = chunk
            self._chunk = chunk
            self._index = index
        return self._chunk

    def read(self, offset: int, size: int) -> bytes:
        """``size`` bytes of the stream starting at ``offset``."""
        pieces = []
        while size > 0:
            index, start = divmod(offset, CHUNK)
            piece = self._load(index)[start : start + size]
            pieces.append(piece)
            offset += len(piece)
            size -= len(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def expected_data(seed: int, name: str, size: int) -> bytes:
    """The whole stream ``name`` of a transfer (for tests; names are ``"<port>>"`` for
    client to server and ``"<port><"`` for server to client)."""
    return PatternStream(seed, name).read(0, size)


class _End:
    """One end of one connection: what it sends, what it expects, how far both got."""

    __slots__ = (
        "handle",
        "out_stream",
        "out_total",
        "sent",
        "shut",
        "in_stream",
        "in_total",
        "received",
        "peer_closed",
        "fin_pending",
        "close_called",
        "closed",
        "failure",
        "is_server",
    )

    def __init__(
        self, handle: int, *, seed: int, port: int, is_server: bool, out_total: int, in_total: int
    ) -> None:
        self.handle = handle
        self.is_server = is_server
        out_name, in_name = (f"{port}<", f"{port}>") if is_server else (f"{port}>", f"{port}<")
        self.out_stream = PatternStream(seed, out_name)
        self.out_total = out_total
        self.sent = 0
        self.shut = False
        self.in_stream = PatternStream(seed, in_name)
        self.in_total = in_total
        self.received = 0
        self.peer_closed = False
        self.fin_pending = False
        self.close_called = False
        self.closed = False
        self.failure = ""

    @property
    def data_done(self) -> bool:
        return self.received == self.in_total and self.peer_closed


class WireRetransmitCounter(PcapWriter):
    """A link tap that counts TCP retransmissions as the wire sees them, whatever the
    engine reports: a segment carrying data, SYN or FIN that starts below the highest
    sequence number its flow already sent (wrap-aware, RFC 9293 §3.4)."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO())
        self.retransmits = 0
        self._flows: dict[bytes, tuple[int, int]] = {}  # flow -> (SYN's seq, highest end)

    def write(self, timestamp_us: int, frame: Buffer) -> None:
        if len(frame) < 54:
            return
        if frame[12:14] == b"\x08\x00" and frame[23] == 6:
            header = (frame[14] & 15) * 4
            tcp = 14 + header
            ip_payload = int.from_bytes(frame[16:18], "big") - header
            addresses = bytes(frame[26:34])
        elif frame[12:14] == b"\x86\xdd" and frame[20] == 6:
            tcp = 54  # IPv6 without extension headers (TCP's never carry any here)
            ip_payload = int.from_bytes(frame[18:20], "big")
            addresses = bytes(frame[22:54])
        else:
            return
        if len(frame) < tcp + 20:
            return
        seq = int.from_bytes(frame[tcp + 4 : tcp + 8], "big")
        flags = frame[tcp + 13]
        # FIN and SYN take a number each
        length = ip_payload - (frame[tcp + 12] >> 4) * 4 + (flags & 1) + (flags >> 1 & 1)
        if length <= 0:
            return
        flow = addresses + bytes(frame[tcp : tcp + 4])
        known = self._flows.get(flow)
        end = (seq + length) & 0xFFFFFFFF
        if flags & 2 and (known is None or known[0] != seq):
            self._flows[flow] = (seq, end)  # a new connection on this 4-tuple
            return
        if known is None:
            return
        highest = known[1]
        if 0 < (highest - seq) & 0xFFFFFFFF < 1 << 31:
            self.retransmits += 1
        if 0 < (end - highest) & 0xFFFFFFFF < 1 << 31:
            self._flows[flow] = (known[0], end)


class _Alarm:
    """A host with no interface whose only job is to wake the simulator at one instant."""

    def __init__(self) -> None:
        self.deadline: Instant | None = None

    def receive_frame(self, interface: str, frame: bytes | memoryview, *, now: Instant) -> None:
        pass

    def frames_to_send(self, *, now: Instant) -> list[tuple[str, bytes]]:
        return []

    def poll_at(self) -> Instant | None:
        return self.deadline

    def handle_timer(self, *, now: Instant) -> None:
        self.deadline = None


class _Transfer:
    """The applications on both stacks, driven by their events after every simulator step."""

    def __init__(self, spec: TransferSpec, sim: Simulator, client: Stack, server: Stack) -> None:
        self.spec = spec
        self.sim = sim
        self.client = client
        self.server = server
        self.client_ends: dict[int, _End] = {}
        self.server_ends: dict[int, _End] = {}
        self.progress = 0
        self.failures: list[str] = []
        # Keyed by the end itself: handle numbers repeat between the two stacks.
        self.paused_until: dict[_End, Instant] = {}
        self.paused_once: set[_End] = set()
        self.alarm = _Alarm()
        self.min_send_window: int | None = None
        backlog = spec.backlog if spec.backlog is not None else max(128, 2 * spec.connections)
        self.listener = server.tcp_listen(SERVER_PORT, backlog=backlog)

    # --- driving ----------------------------------------------------------------

    def open(self, now: Instant) -> None:
        spec = self.spec
        for _ in range(spec.connections):
            server = SERVER_ADDRESS6 if spec.ip_version == 6 else SERVER_ADDRESS
            handle = self.client.tcp_connect(server, SERVER_PORT, now=now)
            port = self.client.tcp_info(handle).local_port
            self.client_ends[handle] = _End(
                handle,
                seed=spec.seed,
                port=port,
                is_server=False,
                out_total=spec.bytes,
                in_total=spec.reverse_bytes,
            )

    def process(self, now: Instant) -> None:
        """The simulator's process: handle every pending event of both stacks."""
        if self.paused_until:
            self._check_pauses(now)
        handled = True
        while handled:  # API calls made here may emit events of their own: take them too
            handled = False
            for stack, ends in ((self.client, self.client_ends), (self.server, self.server_ends)):
                while (event := stack.next_event()) is not None:
                    handled = True
                    self.progress += 1
                    self._handle(stack, ends, event, now)

    def _handle(self, stack: Stack, ends: dict[int, _End], event: Event, now: Instant) -> None:
        if isinstance(event, ConnectionAccepted):
            if event.listener != self.listener:
                return
            spec = self.spec
            ends[event.connection] = _End(
                event.connection,
                seed=spec.seed,
                port=event.remote_port,
                is_server=True,
                out_total=spec.reverse_bytes,
                in_total=spec.bytes,
            )
        connection = getattr(event, "connection", None)
        found = ends.get(connection) if isinstance(connection, int) else None
        if found is None:
            return
        try:
            self._connection_event(stack, found, event, now)
        except SimtcpError as error:
            self._fail(found, f"{type(error).__name__} from the API: {error}")

    def _connection_event(self, stack: Stack, end: _End, event: Event, now: Instant) -> None:
        if isinstance(event, (ConnectionAccepted, ConnectionEstablished, SendSpaceAvailable)):
            self._pump(stack, end, now)
        elif isinstance(event, DataReceived):
            self._read(stack, end, now)
        elif isinstance(event, PeerClosed):
            self._read(stack, end, now)
            if end in self.paused_until:
                end.fin_pending = True  # handled once reading resumes
                return
            self._peer_closed(stack, end, now)
        elif isinstance(event, ConnectionClosed):
            end.closed = True
            end.peer_closed = end.peer_closed or end.fin_pending  # ended in order, paused
            if not end.data_done or not end.shut:
                self._fail(end, "closed before the transfer completed")
        elif isinstance(event, ConnectionReset):
            self._fail(end, "connection reset")
        elif isinstance(event, ConnectionTimedOut):
            self._fail(end, "connection timed out")
        elif isinstance(event, ConnectionFailed):
            self._fail(end, f"connection failed (ICMP type {event.icmp_type} code {event.code})")

    def _fail(self, end: _End, reason: str) -> None:
        if not end.failure:
            side = "server" if end.is_server else "client"
            end.failure = f"{side} connection {end.handle}: {reason}"
            self.failures.append(end.failure)
        end.closed = True

    # --- the applications ----------------------------------------------------------

    def _pump(self, stack: Stack, end: _End, now: Instant) -> None:
        """Offer data until the send buffer is full; shut down once everything is queued."""
        while end.sent < end.out_total:
            chunk = end.out_stream.read(end.sent, min(CHUNK, end.out_total - end.sent))
            taken = stack.send(end.handle, chunk, now=now)
            if taken:
                end.sent += taken
                self.progress += 1
            if taken < len(chunk):
                return  # SendSpaceAvailable resumes us
        if not end.shut:
            end.shut = True
            if end.peer_closed:
                self._close(stack, end, now)
            else:
                stack.shutdown(end.handle, now=now)

    def _read(self, stack: Stack, end: _End, now: Instant) -> None:
        """Take everything readable (one call: it is bounded by the receive buffer) and
        compare it with the expected stream.

        One call, not a loop until empty: once an ended connection is drained the
        engine frees its handle (ConnectionClosed follows), and a second receive()
        would raise InvalidHandleError instead of returning b"".
        """
        if end in self.paused_until or end.failure or end.closed:
            return  # a handle whose ConnectionClosed came is gone (nothing was left unread)
        data = stack.receive(end.handle, -1, now=now)
        limit = self.spec.test_truncate_delivery
        if limit is not None and end.is_server:  # TEST ONLY: a deliberately broken reader
            data = data[: max(0, limit - end.received)]
        if not data:
            return
        self.progress += 1
        self._verify(end, data)
        if not end.failure:
            self._maybe_pause(end, now)

    def _verify(self, end: _End, data: bytes) -> None:
        offset = end.received
        if offset + len(data) > end.in_total:
            self._fail(
                end, f"received {offset + len(data)} bytes, more than the {end.in_total} sent"
            )
            return
        expected = end.in_stream.read(offset, len(data))
        if data != expected:
            first = next(i for i, (a, b) in enumerate(zip(data, expected, strict=True)) if a != b)
            self._fail(end, f"byte {offset + first} differs from what was sent")
            return
        end.received = offset + len(data)

    def _peer_closed(self, stack: Stack, end: _End, now: Instant) -> None:
        end.peer_closed = True
        if end.received != end.in_total:
            self._fail(end, f"FIN after {end.received} of {end.in_total} bytes")
            return
        if end.shut:
            self._close(stack, end, now)

    def _close(self, stack: Stack, end: _End, now: Instant) -> None:
        if not end.close_called and not end.closed:
            end.close_called = True
            try:
                stack.close(end.handle, now=now)
            except InvalidHandleError:
                # Reading drained a connection that had already ended in order (the
                # reader was paused through its end): the engine freed the handle then,
                # and its ConnectionClosed is still in the queue.
                if not end.data_done:
                    raise

    # --- the slow reader -------------------------------------------------------------

    def _maybe_pause(self, end: _End, now: Instant) -> None:
        spec = self.spec
        if (
            spec.pause_reading_after is None
            or not end.is_server
            or end.received < spec.pause_reading_after
            or end in self.paused_once
            or spec.pause_reading_for <= 0
        ):
            return
        self.paused_once.add(end)
        resume_at = now + spec.pause_reading_for
        self.paused_until[end] = resume_at
        if self.alarm.deadline is None or resume_at < self.alarm.deadline:
            self.alarm.deadline = resume_at

    def _check_pauses(self, now: Instant) -> None:
        for end in self.client_ends.values():
            if not end.closed:
                try:
                    window = self.client.tcp_info(end.handle).snd_wnd
                except SimtcpError:
                    continue
                if self.min_send_window is None or window < self.min_send_window:
                    self.min_send_window = window
        for paused, resume_at in list(self.paused_until.items()):
            if resume_at <= now:
                self._resume(paused, now)
        if self.paused_until:
            self.alarm.deadline = min(self.paused_until.values())

    def _resume(self, end: _End, now: Instant) -> None:
        del self.paused_until[end]
        self.progress += 1
        if end.closed:
            return  # it ended while we were not reading: everything had been read
        try:
            self._read(self.server, end, now)
            if end.fin_pending and not end.failure:
                self._peer_closed(self.server, end, now)
        except SimtcpError as error:
            self._fail(end, f"{type(error).__name__} from the API: {error}")

    # --- verdicts ---------------------------------------------------------------------

    def all_ends(self) -> list[_End]:
        return [*self.client_ends.values(), *self.server_ends.values()]

    def data_done(self) -> bool:
        """Every end has all its bytes and the peer's FIN (or something failed).

        Checked after every simulator step: it scans the two dicts, stopping at the
        first end not done, and builds nothing."""
        if self.failures:
            return True
        client_ends, server_ends = self.client_ends, self.server_ends
        if len(client_ends) + len(server_ends) != 2 * self.spec.connections:
            return False
        for ends in (client_ends, server_ends):
            for end in ends.values():
                if end.received != end.in_total or not end.peer_closed:
                    return False
        return True

    def all_closed(self) -> bool:
        return bool(self.failures) or (
            all(end.closed for end in self.all_ends())
            and self.client.stats["tcp.connections"] == 0
            and self.server.stats["tcp.connections"] == 0
        )

    def delivered(self) -> int:
        return sum(end.received for end in self.all_ends())


def _build(spec: TransferSpec) -> tuple[Simulator, Stack, Stack, Link]:
    # On a link without delay a whole transfer happens at one instant, one step per
    # frame or so; beyond that many steps at one instant something loops (an ACK war).
    total = spec.connections * (spec.bytes + spec.reverse_bytes)
    sim = Simulator(spec.seed, max_steps_per_instant=100_000 + total // 100)
    stacks = []
    for index, (name, address) in enumerate(
        (("client", CLIENT_ADDRESS), ("server", SERVER_ADDRESS))
    ):
        stack = Stack(StackConfig(seed=2 * spec.seed + index, tcp=spec.tcp, arp=spec.arp))
        stack.add_interface(
            "eth0", mac=f"02:00:00:00:00:{index + 1:02x}", mtu=spec.mtu, offload=spec.offload
        )
        stack.add_address("eth0", f"{address}/24", now=0)
        if spec.ip_version == 6:
            stack.add_address("eth0", f"{(CLIENT_ADDRESS6, SERVER_ADDRESS6)[index]}/64", now=0)
        sim.add_host(name, stack)
        stacks.append(stack)
    link = sim.connect(("client", "eth0"), ("server", "eth0"), spec.forward, spec.backward)
    if spec.host_queue is not None:
        for name in ("client", "server"):
            sim.set_host_queue(name, spec.host_queue)
    return sim, stacks[0], stacks[1], link


def _add_pcap(sim: Simulator, stream: BinaryIO, point: str) -> RunPcap:
    writer = RunPcap(stream)
    if point == "link":
        sim.add_pcap(next(iter(sim.links.values())), writer)
    elif point in ("client", "server"):
        sim.add_pcap((point, "eth0"), writer)
    else:
        raise ValueError(f"pcap point must be one of {', '.join(PCAP_POINTS)}, not {point!r}")
    return writer


class _ProgressWatch:
    """A phase's ``run_until`` condition: ``done()``, remembering when progress last moved."""

    __slots__ = ("sim", "transfer", "done", "mark", "moved_at")

    def __init__(self, sim: Simulator, transfer: _Transfer, done: Callable[[], bool]) -> None:
        self.sim = sim
        self.transfer = transfer
        self.done = done
        self.mark = transfer.progress
        self.moved_at = sim.now

    def __call__(self) -> bool:
        progress = self.transfer.progress
        if progress != self.mark:
            self.mark = progress
            self.moved_at = self.sim.now
        return self.done()


def _run_phase(
    sim: Simulator,
    transfer: _Transfer,
    done: Callable[[], bool],
    *,
    stall_timeout: Duration,
    deadline: Instant | None,
) -> str:
    """Step until ``done()``; a reason string when progress stops or time runs out.

    The run stalls when no step moves ``transfer.progress`` for ``stall_timeout``.
    One ``run_until`` covers the phase while progress keeps moving: it stops, its
    clock at its own deadline, only when the next instant anything happens lies
    beyond the stall deadline it was given, and then it resumes from the last
    progress seen (the steps taken are those of one ``run_until`` per progress step).
    """
    watch = _ProgressWatch(sim, transfer, done)
    while not done():
        until = watch.moved_at + stall_timeout
        if deadline is not None and deadline < until:
            until = deadline
        if until <= sim.now:
            return _out_of_time(sim, transfer, stall_timeout, deadline)
        moved_at = watch.moved_at
        if sim.run_until(watch, timeout=until - sim.now):
            return ""
        if watch.moved_at == moved_at:
            return _out_of_time(sim, transfer, stall_timeout, deadline)
    return ""


def _out_of_time(
    sim: Simulator, transfer: _Transfer, stall_timeout: Duration, deadline: Instant | None
) -> str:
    if deadline is not None and sim.now >= deadline or stall_timeout <= 0:
        return f"time limit reached at t={sim.now / SECOND:.3f}s (virtual)"
    return (
        f"stalled: no progress for {stall_timeout / SECOND:.0f}s of virtual time "
        f"(at t={sim.now / SECOND:.3f}s, {transfer.delivered()} bytes delivered)"
    )


def _await_addresses(sim: Simulator, stacks: tuple[Stack, Stack]) -> None:
    """IPv6: run until both hosts' addresses passed DAD (RFC 4862 §5.4), over a perfect
    link (a lost probe would only delay it; a corrupted one could fake a conflict)."""

    def ready() -> bool:
        return all(
            state == "preferred" for stack in stacks for _, _, state in stack.addresses6("eth0")
        )

    sim.run_until(ready, timeout=60 * SECOND)


def _warm_up(sim: Simulator, client: Stack, link: Link, server_address: str) -> None:
    """Resolve both neighbours with one ping over a perfect link, then impair it.

    ARP carries no checksum, and the simulator flips bits anywhere in a frame (a
    real link's FCS would drop such frames): a flipped sender MAC would poison a
    neighbour cache for its whole lifetime and measure ARP, not TCP. Resolving
    first also spares many simultaneous SYNs the small ARP queue."""
    forward, backward = link.ab.profile, link.ba.profile
    link.set_profile(ab=LinkProfile(), ba=LinkProfile())
    client.ping(server_address, identifier=1, sequence=1, now=sim.now)
    sim.run_until(
        lambda: any(
            isinstance(event, EchoReplyReceived) for event in iter(client.next_event, None)
        ),
        timeout=60 * SECOND,
    )
    link.set_profile(ab=forward, ba=backward)


def _prepare(spec: TransferSpec, sim: Simulator, client: Stack, server: Stack, link: Link) -> None:
    """Before the transfer's clock starts: IPv6's DAD, then the warm-up."""
    if spec.ip_version == 6:
        forward, backward = link.ab.profile, link.ba.profile
        link.set_profile(ab=LinkProfile(), ba=LinkProfile())
        _await_addresses(sim, (client, server))
        link.set_profile(ab=forward, ba=backward)
    if spec.warm_up:
        _warm_up(sim, client, link, SERVER_ADDRESS6 if spec.ip_version == 6 else SERVER_ADDRESS)


def run_transfer(
    spec: TransferSpec,
    *,
    pcap: BinaryIO | None = None,
    pcap_point: str = "client",
    trace: ConnectionTrace | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TransferResult:
    """Run one transfer to its end (or its failure) and report; never hangs, never raises
    for what the network or the engine does (only for a bad ``spec``). A ``trace``
    records both stacks' connections (hosts ``client`` and ``server``); ``progress`` is
    called after every simulator step with (bytes delivered, bytes in all)."""
    if spec.bytes < 0 or spec.reverse_bytes < 0 or spec.connections < 1:
        raise ValueError("bytes must be >= 0 and connections >= 1")
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    sim, client, server, link = _build(spec)
    if trace is not None:
        trace.attach(client, "client")
        trace.attach(server, "server")
    wire = WireRetransmitCounter()
    link.taps.append(wire)
    recorder = None if pcap is None else _add_pcap(sim, pcap, pcap_point)
    transfer = _Transfer(spec, sim, client, server)
    sim.add_host("alarm", transfer.alarm)
    reason, detail = "", ""
    started_at = finished_at = closed_at = sim.now
    try:
        _prepare(spec, sim, client, server, link)
        sim.add_process(transfer.process)
        if progress is not None:
            total = spec.connections * (spec.bytes + spec.reverse_bytes)
            sim.add_process(lambda now: progress(transfer.delivered(), total))
        started_at = sim.now
        transfer.open(sim.now)
        deadline = None if spec.time_limit is None else sim.now + spec.time_limit
        reason = _run_phase(
            sim, transfer, transfer.data_done, stall_timeout=spec.stall_timeout, deadline=deadline
        )
        finished_at = sim.now
        if recorder is not None:
            recorder.lingering = True  # the pcap ends with the run's last TCP segment
        if not reason and not transfer.failures:
            linger = 4 * spec.tcp.msl + spec.stall_timeout
            reason = _run_phase(
                sim,
                transfer,
                transfer.all_closed,
                stall_timeout=spec.stall_timeout,
                deadline=sim.now + linger,
            )
            closed_at = sim.now
    except Exception as error:  # an engine bug must become a verdict, not a crash
        reason = f"{type(error).__name__}: {error}"
        detail = traceback.format_exc()
    if pcap is not None:
        pcap.flush()
    return _result(
        spec,
        transfer,
        wire.retransmits,
        reason,
        detail,
        started_at=started_at,
        finished_at=finished_at,
        closed_at=closed_at if not reason else None,
        wall=time.perf_counter() - wall_start,
        cpu=time.process_time() - cpu_start,
    )


def _result(
    spec: TransferSpec,
    transfer: _Transfer,
    retransmits: int,
    reason: str,
    detail: str,
    *,
    started_at: Instant,
    finished_at: Instant,
    closed_at: Instant | None,
    wall: float,
    cpu: float,
) -> TransferResult:
    left = (transfer.client.stats["tcp.connections"], transfer.server.stats["tcp.connections"])
    now = transfer.sim.now
    deadlines = (transfer.client.poll_at(), transfer.server.poll_at())
    idle_for = tuple(None if at is None else at - now for at in deadlines)
    if transfer.failures:
        reason = transfer.failures[0] + (
            f" (+{len(transfer.failures) - 1} more)" if len(transfer.failures) > 1 else ""
        )
    elif not reason and left != (0, 0):
        reason = f"connections left after TIME-WAIT: client {left[0]}, server {left[1]}"
    total = spec.connections * (spec.bytes + spec.reverse_bytes)
    delivered = transfer.delivered()
    if not reason and delivered != total:
        reason = f"{delivered} of {total} bytes delivered"
    return TransferResult(
        ok=not reason,
        reason=reason,
        bytes=total,
        bytes_delivered=delivered,
        virtual_seconds=(finished_at - started_at) / SECOND,
        wall_seconds=wall,
        cpu_seconds=cpu,
        retransmits=retransmits,
        link_stats=transfer.sim.link_stats(),
        connections_left=left,
        closed_at=None if closed_at is None else closed_at / SECOND,
        idle_for=(idle_for[0], idle_for[1]),
        min_send_window=transfer.min_send_window if spec.pause_reading_after is not None else None,
        detail=detail,
        client_stats=transfer.client.stats(),
        server_stats=transfer.server.stats(),
    )


__all__ = [
    "PCAP_POINTS",
    "PatternStream",
    "TransferResult",
    "TransferSpec",
    "WireRetransmitCounter",
    "expected_data",
    "run_transfer",
]
