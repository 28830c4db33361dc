"""Connection traces: one JSON-able record per change a stack's TCP connections go through.

A :class:`ConnectionTrace` is opt-in and attaches from outside, the way smoltcp's
``phy::Tracer`` wraps a device: :meth:`ConnectionTrace.attach` decorates the TCP
layer's two boundaries (``TcpLayer.segment_received`` and the host's ``send_tcp``)
and sets the layer's ``transition_log.observer`` (every state change goes through
``machine.enter``). No engine code tests for a tracer, so a stack without one pays
nothing; a traced stack pays one snapshot comparison per segment.

At each hook the trace compares a connection's key variables with what it
recorded last and writes only what changed. Record types (schema
:data:`TRACE_SCHEMA` version :data:`TRACE_VERSION`; every record has ``type``,
and all but the header ``t`` in microseconds, ``host`` and ``conn``, the
connection as ``local:port>remote:port``):

``header``
    first record: ``schema``, ``version``, and whatever the caller passes (the seed
    and the configuration).
``send`` / ``recv``
    one segment: raw 32-bit ``seq`` and ``ack``, ``len`` (payload bytes),
    ``flags`` (tcpdump's letters, ``S.`` for SYN-ACK), ``win`` (the window in bytes, scaled by the
    connection's window scale once both SYNs agreed, RFC 7323 §2.3), ``sack``
    (the SACK blocks carried, raw 32-bit edges); a ``send`` of data below the
    highest sequence number sent before has ``retransmit: true``.
``update``
    the variables that changed since the connection's last record: any of
    ``cwnd``, ``ssthresh``, ``srtt``, ``rttvar``, ``rto`` (µs), ``rto_backoff``
    (RFC 6298 §5.5 doublings), ``in_recovery``,
    ``retransmits``, ``snd_una``, ``snd_nxt``, ``rcv_nxt`` (raw 32-bit),
    ``rcv_wnd``.
``loss``
    the engine concluded data was lost: ``cause`` ``recovery`` when it entered
    loss recovery (duplicate ACKs or SACK, RFC 5681 §3.2, RFC 6675 §5, RFC 8985
    §6.2), ``timeout`` when the retransmission timer backed off (RFC 6298 §5.5);
    ``snd_una`` is then the first byte not acknowledged. The retransmission
    itself is the ``send`` that follows with ``retransmit: true``.
``recovery``
    ``entered: true`` or ``false`` when ``in_recovery`` changes, with ``cwnd`` and
    ``ssthresh`` as they are then.
``state``
    ``old``, ``new``, ``trigger`` (RFC 9293 Figure 5's labels).
``end``
    last record (from :meth:`ConnectionTrace.close`): ``records`` kept,
    ``dropped`` past the limit, and ``counters``: each traced stack's
    ``stack.stats()`` by host name.

The trace is bounded: after ``max_records`` records it keeps counting but
writes nothing more (the ``end`` record says how many were dropped).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .time import Instant
from .wire.address import Address, format_address
from .wire.tcp import TcpSegment, flags_to_str

if TYPE_CHECKING:
    from .events import Event
    from .link.interface import InterfaceOffload
    from .stack import Stack
    from .tcp.connection import Connection
    from .tcp.host import TcpHost
    from .tcp.machine import StateChanged

__all__ = ["DEFAULT_MAX_RECORDS", "TRACE_SCHEMA", "TRACE_VERSION", "ConnectionTrace"]

TRACE_SCHEMA = "simtcp.trace"
TRACE_VERSION = 1
DEFAULT_MAX_RECORDS = 2_000_000
"""About 300 MB of JSON lines: a 100 MB transfer's trace, with both ends traced."""

_VARIABLES = (
    "cwnd",
    "ssthresh",
    "srtt",
    "rttvar",
    "rto",
    "rto_backoff",
    "in_recovery",
    "retransmits",
    "snd_una",
    "snd_nxt",
    "rcv_nxt",
    "rcv_wnd",
)
_BACKOFF = _VARIABLES.index("rto_backoff")
_RECOVERY = _VARIABLES.index("in_recovery")
_SND_UNA = _VARIABLES.index("snd_una")
_SYN = 0x02

Record = dict[str, Any]


def _snapshot(conn: Connection) -> tuple[Any, ...]:
    """The variables of :data:`_VARIABLES`, in order, as ``TcpInfo`` reports them."""
    rto = conn.rto
    return (
        conn.cc.cwnd,
        conn.cc.ssthresh,
        rto.srtt,
        rto.rttvar,
        rto.rto,
        rto.backoff,
        conn.in_recovery,
        conn.retransmits,
        conn.snd_una & 0xFFFFFFFF,
        conn.snd_nxt & 0xFFFFFFFF,
        conn.rcv_nxt & 0xFFFFFFFF,
        max(conn.rcv_adv - conn.rcv_nxt, 0),
    )


def _name(key: tuple[Address, int, Address, int]) -> str:
    local, local_port, remote, remote_port = key
    return f"{format_address(local)}:{local_port}>{format_address(remote)}:{remote_port}"


class _ConnectionView:
    """What the trace remembers of one connection: its last snapshot and highest seq sent."""

    __slots__ = ("conn", "name", "last", "snd_high")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.name = _name(conn.key)
        self.last: tuple[Any, ...] | None = None
        self.snd_high = -1
        """Highest absolute sequence number sent so far (ends of data segments)."""


class ConnectionTrace:
    """Records the changes of every TCP connection of the stacks it is attached to."""

    def __init__(
        self,
        *,
        header: dict[str, Any] | None = None,
        sink: Callable[[str], object] | None = None,
        keep: bool = True,
        max_records: int = DEFAULT_MAX_RECORDS,
    ) -> None:
        """``sink`` gets each record as one JSON line (newline included); ``keep``
        also keeps them in :attr:`records` (for tests)."""
        self.records: list[Record] = []
        self.dropped = 0
        self.written = 0
        self._sink = sink
        self._keep = keep
        self._max_records = max_records
        self._views: dict[tuple[str, tuple[Address, int, Address, int]], _ConnectionView] = {}
        self._stacks: dict[str, Stack] = {}
        self._write(
            {"type": "header", "schema": TRACE_SCHEMA, "version": TRACE_VERSION, **(header or {})}
        )

    # --- attaching -------------------------------------------------------------

    def attach(self, stack: Stack, name: str) -> None:
        """Trace ``stack``'s TCP connections opened from now on, naming them ``host=name``."""
        self._stacks[name] = stack
        layer = stack.tcp
        previous_observer = layer.transition_log.observer

        def observe(conn: Connection, change: StateChanged) -> None:
            self.state_changed(name, conn, change)
            if previous_observer is not None:
                previous_observer(conn, change)

        layer.transition_log.observer = observe
        layer.host = _RecordingHost(layer.host, self, name)
        received = layer.segment_received

        def segment_received(
            source: int, destination: int, segment: TcpSegment, *, now: Instant
        ) -> None:
            key = (destination, segment.destination_port, source, segment.source_port)
            self.segment(name, key, segment, now, sent=False)
            received(source, destination, segment, now=now)
            view = self._views.get((name, key))
            if view is not None:
                self._compare(name, view, now)

        vars(layer)["segment_received"] = segment_received

    # --- hooks -------------------------------------------------------------------

    def state_changed(self, host: str, conn: Connection, change: StateChanged) -> None:
        view = self._views.get((host, conn.key))
        if view is None or view.conn is not conn:
            view = self._views[(host, conn.key)] = _ConnectionView(conn)
        self._compare(host, view, change.at)
        self._write(
            {
                "t": change.at,
                "type": "state",
                "host": host,
                "conn": view.name,
                "old": change.old.value,
                "new": change.new.value,
                "trigger": change.trigger.value,
            }
        )

    def segment(
        self,
        host: str,
        key: tuple[Address, int, Address, int],
        segment: TcpSegment,
        now: Instant,
        *,
        sent: bool,
    ) -> None:
        view = self._views.get((host, key))
        length = len(segment.payload)
        window = segment.window
        record: Record = {"t": now, "type": "send" if sent else "recv", "host": host}
        if view is not None:
            if sent:
                self._compare(host, view, now)
            conn = view.conn
            if not segment.flags & _SYN:
                window <<= conn.rcv_wscale if sent else conn.snd_wscale
            if sent and length:
                # Unwrap the 32-bit seq near SND.UNA (RFC 9293 §3.4's comparisons).
                start = conn.snd_una + ((segment.seq - conn.snd_una + (1 << 31)) % (1 << 32))
                start -= 1 << 31
                if start < view.snd_high:
                    record["retransmit"] = True
                view.snd_high = max(view.snd_high, start + length)
            record["conn"] = view.name
        else:
            record["conn"] = _name(key)
        record["seq"] = segment.seq
        record["ack"] = segment.ack
        record["len"] = length
        record["flags"] = flags_to_str(segment.flags)
        record["win"] = window
        blocks = segment.sack_blocks
        if blocks:
            record["sack"] = [list(block) for block in blocks]
        self._write(record)

    def _compare(self, host: str, view: _ConnectionView, now: Instant) -> None:
        current = _snapshot(view.conn)
        last = view.last
        if current == last:
            return
        view.last = current
        changed: Record = {"t": now, "type": "update", "host": host, "conn": view.name}
        for index, field in enumerate(_VARIABLES):
            if last is None or last[index] != current[index]:
                changed[field] = current[index]
        if last is not None:
            self._events(host, view, now, last, current)
        self._write(changed)

    def _events(
        self,
        host: str,
        view: _ConnectionView,
        now: Instant,
        last: tuple[Any, ...],
        current: tuple[Any, ...],
    ) -> None:
        """``loss`` and ``recovery`` records from changes of in_recovery and the backoff."""
        base: Record = {"t": now, "host": host, "conn": view.name}
        entered = current[_RECOVERY] and not last[_RECOVERY]
        if entered or current[_BACKOFF] > last[_BACKOFF]:
            cause = "recovery" if entered else "timeout"
            self._write({**base, "type": "loss", "cause": cause, "snd_una": current[_SND_UNA]})
        if current[_RECOVERY] != last[_RECOVERY]:
            self._write(
                {
                    **base,
                    "type": "recovery",
                    "entered": bool(current[_RECOVERY]),
                    "cwnd": current[0],
                    "ssthresh": current[1],
                }
            )

    # --- output --------------------------------------------------------------------

    def _write(self, record: Record) -> None:
        if self.written >= self._max_records:
            self.dropped += 1
            return
        self.written += 1
        self._emit(record)

    def _emit(self, record: Record) -> None:
        if self._keep:
            self.records.append(record)
        if self._sink is not None:
            self._sink(json.dumps(record, separators=(",", ":")) + "\n")

    def close(self) -> None:
        """Write the ``end`` record (always, even past the limit)."""
        counters = {name: stack.stats() for name, stack in self._stacks.items()}
        self._emit(
            {"type": "end", "records": self.written, "dropped": self.dropped, "counters": counters}
        )


class _RecordingHost:
    """A :class:`TcpHost` that records each segment TCP sends, then hands it on."""

    def __init__(self, host: TcpHost, trace: ConnectionTrace, name: str) -> None:
        self._host = host
        self._trace = trace
        self._name = name
        self.stats = host.stats

    def send_tcp(
        self, source: Address, destination: Address, segment: TcpSegment, *, now: Instant
    ) -> None:
        key = (source, segment.source_port, destination, segment.destination_port)
        self._trace.segment(self._name, key, segment, now, sent=True)
        self._host.send_tcp(source, destination, segment, now=now)

    def route_source(self, destination: Address) -> tuple[Address, int] | None:
        return self._host.route_source(destination)

    def route_offload(self, destination: Address) -> InterfaceOffload:
        return self._host.route_offload(destination)

    def is_local_address(self, address: Address) -> bool:
        return self._host.is_local_address(address)

    def emit(self, event: Event) -> None:
        self._host.emit(event)
