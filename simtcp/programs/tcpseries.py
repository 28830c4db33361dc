"""The series a TCP plot draws, extracted from a trace or a pcap: pure, no drawing.

Both inputs become one list of :class:`Packet` (what one TCP segment said, when,
in which direction); :func:`extract` then picks the flow that carried the most
data and computes, tcptrace-style, everything :mod:`simtcp.programs.plot`
draws: the time-sequence graph (data segments, retransmissions, the ACK line,
the receive-window line, SACK blocks), RTT samples (Karn's rule, RFC 6298 §3:
no sample from a retransmitted segment), bytes in flight, goodput per interval,
and, from a trace only, the engine's cwnd, ssthresh, srtt and RTO.

Sequence numbers are relative to the flow's first byte (its SYN's sequence
number plus one when the capture saw the SYN); times are seconds from the first
packet. Bad input raises :class:`SeriesError` with one line for the user.
"""

from __future__ import annotations

import json
import struct
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from simtcp.errors import ParseError
from simtcp.trace import TRACE_SCHEMA, TRACE_VERSION
from simtcp.wire.ipv4 import Ipv4Packet, ip_to_str
from simtcp.wire.tcp import TcpSegment, flags_to_str

__all__ = [
    "FlowSeries",
    "Packet",
    "SeriesError",
    "extract",
    "from_pcap",
    "from_records",
    "from_trace",
    "packets_from_pcap",
    "read_trace",
]

_SYN, _ACK = 0x02, 0x10
_ETHERTYPE_IPV4, _ETHERTYPE_VLAN = 0x0800, 0x8100
_LINKTYPE_ETHERNET, _LINKTYPE_RAW, _LINKTYPE_IPV4, _LINKTYPE_SLL = 1, 101, 228, 113
_MODULO = 1 << 32


class SeriesError(Exception):
    """The input cannot be plotted; the message is one line for the user."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Packet:
    """One TCP segment as a capture point saw it; ``window`` is in bytes when ``scaled``."""

    at: int
    """Microseconds."""
    source: str
    destination: str
    seq: int
    ack: int
    flags: str
    length: int
    window: int
    scaled: bool = False
    sack: tuple[tuple[int, int], ...] = ()
    window_scale: int | None = None
    """The window scale option of a SYN (RFC 7323 §2.2), for unscaled captures."""
    retransmit: bool | None = None
    """What the sender said (a trace); None: infer from the sequence numbers (a pcap)."""


@dataclass(slots=True)
class FlowSeries:
    """What the plots draw, for the flow that carried the most data."""

    origin: str
    flow: str
    """The data direction, ``source:port>destination:port``."""
    start_us: int = 0
    """The time of the first packet (microseconds), time zero of every series."""
    data: list[tuple[float, int, int]] = field(default_factory=list)
    """(time s, first byte, end byte) of each data segment sent the first time."""
    retransmits: list[tuple[float, int, int]] = field(default_factory=list)
    acks: list[tuple[float, int]] = field(default_factory=list)
    """(time s, cumulative ACK): the ACK line."""
    window: list[tuple[float, int]] = field(default_factory=list)
    """(time s, ACK + receive window): the receive-window line."""
    sacks: list[tuple[float, int, int]] = field(default_factory=list)
    rtt_samples: list[tuple[float, float]] = field(default_factory=list)
    """(time s, RTT ms) from data segments to the ACKs that first covered them."""
    in_flight: list[tuple[float, int]] = field(default_factory=list)
    goodput: list[tuple[float, float]] = field(default_factory=list)
    """(interval start s, Mbit/s acknowledged in that interval)."""
    cwnd: list[tuple[float, int]] = field(default_factory=list)
    ssthresh: list[tuple[float, int]] = field(default_factory=list)
    srtt: list[tuple[float, float]] = field(default_factory=list)
    rto: list[tuple[float, float]] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    """Times the engine concluded data was lost (a trace's ``loss`` records)."""
    recovery: list[tuple[float, bool]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Counts and extremes, for ``--json`` output and tests."""
        return {
            "origin": self.origin,
            "flow": self.flow,
            "data_segments": len(self.data),
            "retransmissions": len(self.retransmits),
            "acks": len(self.acks),
            "sack_blocks": len(self.sacks),
            "rtt_samples": len(self.rtt_samples),
            "highest_ack": max((ack for _, ack in self.acks), default=0),
            "cwnd_points": len(self.cwnd),
            "losses": len(self.losses),
        }


# --- traces -----------------------------------------------------------------------


def read_trace(lines: Iterable[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The header and the records of a JSON-lines trace (:mod:`simtcp.trace`)."""
    header: dict[str, Any] | None = None
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise SeriesError(f"trace line {number} is not JSON") from None
        if not isinstance(record, dict):
            raise SeriesError(f"trace line {number} is not a JSON object")
        if header is None:
            header = _check_header(record)
            continue
        records.append(record)
    if header is None:
        raise SeriesError("the trace is empty")
    return header, records


def _check_header(record: dict[str, Any]) -> dict[str, Any]:
    if record.get("type") != "header" or record.get("schema") != TRACE_SCHEMA:
        raise SeriesError(f"not a simtcp trace (no {TRACE_SCHEMA} header record)")
    version = record.get("version")
    if not isinstance(version, int) or version > TRACE_VERSION:
        raise SeriesError(
            f"trace schema version {version} is newer than this simtcp reads ({TRACE_VERSION})"
        )
    return record


def _trace_packets(records: list[dict[str, Any]], host: str) -> Iterator[Packet]:
    for record in records:
        kind = record.get("type")
        if kind not in ("send", "recv") or record.get("host") != host:
            continue
        local, _, remote = str(record["conn"]).partition(">")
        source, destination = (local, remote) if kind == "send" else (remote, local)
        yield Packet(
            at=int(record["t"]),
            source=source,
            destination=destination,
            seq=int(record["seq"]),
            ack=int(record["ack"]),
            flags=str(record["flags"]),
            length=int(record["len"]),
            window=int(record["win"]),
            scaled=True,
            sack=tuple((int(left), int(right)) for left, right in record.get("sack", ())),
            retransmit=bool(record.get("retransmit", False)) if kind == "send" else None,
        )


def _sending_host(records: list[dict[str, Any]]) -> str:
    sent: dict[str, int] = {}
    for record in records:
        if record.get("type") == "send":
            host = str(record.get("host"))
            sent[host] = sent.get(host, 0) + int(record.get("len", 0))
    if not sent or max(sent.values()) == 0:
        raise SeriesError("the trace holds no TCP data segments")
    return max(sent, key=lambda host: sent[host])


# --- pcaps --------------------------------------------------------------------------


def packets_from_pcap(stream: BinaryIO) -> list[Packet]:
    """Every IPv4 TCP segment of a classic pcap (Ethernet, raw IP or Linux cooked)."""
    header = stream.read(24)
    if len(header) < 24:
        raise SeriesError("truncated pcap: the file header is incomplete")
    formats = {
        0xA1B2C3D4: ("<", 1), 0xD4C3B2A1: (">", 1), 0xA1B23C4D: ("<", 1000), 0x4D3CB2A1: (">", 1000)
    }  # fmt: skip
    magic = struct.unpack("<I", header[:4])[0]
    if magic not in formats:
        raise SeriesError(f"not a pcap file (magic {magic:#010x}; pcapng is not read)")
    order, divisor = formats[magic]
    linktype = struct.unpack(order + "I", header[20:24])[0] & 0xFFFF
    record = struct.Struct(order + "IIII")
    packets: list[Packet] = []
    while raw := stream.read(record.size):
        if len(raw) < record.size:
            raise SeriesError("truncated pcap: a record header is incomplete")
        seconds, fraction, captured, _ = record.unpack(raw)
        frame = stream.read(captured)
        if len(frame) < captured:
            raise SeriesError("truncated pcap: a record is cut short")
        packet = _frame_packet(linktype, seconds * 1_000_000 + fraction // divisor, frame)
        if packet is not None:
            packets.append(packet)
    if not packets:
        raise SeriesError("the pcap holds no IPv4 TCP segments")
    return packets


def _ip_payload(linktype: int, frame: bytes) -> bytes | None:
    if linktype in (_LINKTYPE_RAW, _LINKTYPE_IPV4):
        return frame
    if linktype == _LINKTYPE_SLL:
        ethertype, offset = (struct.unpack_from(">H", frame, 14)[0] if len(frame) >= 16 else 0), 16
    elif linktype == _LINKTYPE_ETHERNET:
        ethertype, offset = (struct.unpack_from(">H", frame, 12)[0] if len(frame) >= 14 else 0), 14
        if ethertype == _ETHERTYPE_VLAN and len(frame) >= 18:
            ethertype, offset = struct.unpack_from(">H", frame, 16)[0], 18
    else:
        raise SeriesError(f"pcap link type {linktype} is not read (Ethernet, raw IP, Linux SLL)")
    return frame[offset:] if ethertype == _ETHERTYPE_IPV4 else None


def _frame_packet(linktype: int, at: int, frame: bytes) -> Packet | None:
    payload = _ip_payload(linktype, frame)
    if payload is None:
        return None
    if len(payload) >= 4:
        # A capture with a snap length cuts the datagram: its length is the IP header's.
        total = struct.unpack_from(">H", payload, 2)[0]
        if total > len(payload):
            payload += bytes(total - len(payload))
    try:
        ip = Ipv4Packet.parse(payload, verify_checksum=False)
        if ip.protocol != 6 or ip.fragment_offset:
            return None
        # Checksums are not verified: a capture on the sending host sees offloaded ones.
        segment = TcpSegment.parse(ip.payload)
    except ParseError:
        return None
    return Packet(
        at=at,
        source=f"{ip_to_str(ip.source)}:{segment.source_port}",
        destination=f"{ip_to_str(ip.destination)}:{segment.destination_port}",
        seq=segment.seq,
        ack=segment.ack,
        flags=flags_to_str(segment.flags),
        length=len(segment.payload),
        window=segment.window,
        sack=segment.sack_blocks,
        window_scale=segment.window_scale if segment.flags & _SYN else None,
    )


# --- extraction ---------------------------------------------------------------------


def from_trace(lines: Iterable[str]) -> FlowSeries:
    """The series of a trace's busiest sender (its own view: sent segments, ACKs received)."""
    _, records = read_trace(lines)
    return from_records(records)


def from_records(records: list[dict[str, Any]]) -> FlowSeries:
    """The series of a trace's records (the header left out), as :func:`from_trace`."""
    host = _sending_host(records)
    series = extract(list(_trace_packets(records, host)), origin=f"trace ({host})")
    _engine_series(series, records, host)
    return series


def _engine_series(series: FlowSeries, records: list[dict[str, Any]], host: str) -> None:
    """cwnd, ssthresh, srtt, RTO, losses and recovery of the plotted connection."""
    start = series.start_us
    for record in records:
        if record.get("host") != host or record.get("conn") != series.flow:
            continue
        at = (int(record["t"]) - start) / 1e6
        kind = record["type"]
        if kind == "update":
            for name, target in (("cwnd", series.cwnd), ("ssthresh", series.ssthresh)):
                if name in record:
                    target.append((at, int(record[name])))
            if record.get("srtt") is not None:
                series.srtt.append((at, int(record["srtt"]) / 1000))
            if "rto" in record:
                series.rto.append((at, int(record["rto"]) / 1000))
        elif kind == "loss":
            series.losses.append(at)
        elif kind == "recovery":
            series.recovery.append((at, bool(record["entered"])))


def from_pcap(stream: BinaryIO) -> FlowSeries:
    """The series of a pcap's busiest flow."""
    return extract(packets_from_pcap(stream), origin="pcap")


def extract(packets: list[Packet], *, origin: str, interval_s: float = 0.0) -> FlowSeries:
    """The series of the flow (one direction) that carried the most payload bytes."""
    carried: dict[tuple[str, str], int] = {}
    for packet in packets:
        pair = (packet.source, packet.destination)
        carried[pair] = carried.get(pair, 0) + packet.length
    if not carried or max(carried.values()) == 0:
        raise SeriesError("no TCP data segments to plot")
    source, destination = max(carried, key=lambda pair: carried[pair])
    start = packets[0].at
    series = FlowSeries(origin=origin, flow=f"{source}>{destination}", start_us=start)
    base = _sequence_base(packets, source, destination)
    scales = _window_scales(packets, source, destination)
    _Walk(series, base, scales).run(packets, source, destination)
    _goodput(series, interval_s)
    return series


def _sequence_base(packets: list[Packet], source: str, destination: str) -> int:
    """The flow's first byte: its SYN's seq + 1, else the first data segment's seq."""
    for packet in packets:
        if packet.source == source and packet.destination == destination:
            if "S" in packet.flags:
                return (packet.seq + 1) % _MODULO
            if packet.length:
                return packet.seq
    return 0


def _window_scales(packets: list[Packet], source: str, destination: str) -> int:
    """The receiver's window shift (RFC 7323 §2.3: only when both SYNs carried the option)."""
    offered: dict[str, int | None] = {}
    for packet in packets:
        if "S" in packet.flags and {packet.source, packet.destination} == {source, destination}:
            offered[packet.source] = packet.window_scale
    ours, theirs = offered.get(source), offered.get(destination)
    return theirs if ours is not None and theirs is not None else 0


class _Walk:
    """One pass over the packets in time order, building the time-sequence series."""

    def __init__(self, series: FlowSeries, base: int, shift: int) -> None:
        self.series = series
        self.base = base
        self.shift = shift
        self.high = 0
        self.ack = 0
        self.outstanding: deque[tuple[int, float, bool]] = deque()
        """(end byte, sent at s, ambiguous) of data not yet acknowledged, in send order."""

    def relative(self, seq: int) -> int:
        return (seq - self.base) % _MODULO

    def run(self, packets: list[Packet], source: str, destination: str) -> None:
        start = self.series.start_us
        for packet in packets:
            at = (packet.at - start) / 1e6
            if packet.source == source and packet.destination == destination:
                if packet.length and "S" not in packet.flags:
                    self.data(at, packet)
            elif packet.source == destination and "." in packet.flags:
                self.ack_received(at, packet)

    def data(self, at: float, packet: Packet) -> None:
        first = self.relative(packet.seq)
        end = first + packet.length
        again = packet.retransmit if packet.retransmit is not None else first < self.high
        if again:
            self.series.retransmits.append((at, first, end))
            # Karn's rule (RFC 6298 §3): no sample from data sent more than once.
            self.outstanding = deque(
                (stop, sent, ambiguous or stop > first)
                for stop, sent, ambiguous in self.outstanding
            )
        else:
            self.series.data.append((at, first, end))
        self.outstanding.append((end, at, bool(again)))
        self.high = max(self.high, end)
        self.series.in_flight.append((at, max(self.high - self.ack, 0)))

    def ack_received(self, at: float, packet: Packet) -> None:
        ack = self.relative(packet.ack)
        if ack > self.high + (1 << 30):  # an ACK of the SYN (base - 1) or from before
            return
        window = packet.window if packet.scaled else packet.window << self.shift
        series = self.series
        series.acks.append((at, ack))
        series.window.append((at, ack + window))
        for left, right in packet.sack:
            series.sacks.append((at, self.relative(left), self.relative(right)))
        if ack <= self.ack:
            return
        self.ack = ack
        sample: float | None = None
        while self.outstanding and self.outstanding[0][0] <= ack:
            _, sent, ambiguous = self.outstanding.popleft()
            sample = None if ambiguous else (at - sent) * 1000
        if sample is not None:
            series.rtt_samples.append((at, sample))
        series.in_flight.append((at, max(self.high - ack, 0)))


def _goodput(series: FlowSeries, interval_s: float) -> None:
    """Acknowledged bytes per interval (a fiftieth of the run unless given) in Mbit/s."""
    if not series.acks:
        return
    last = series.acks[-1][0]
    interval = interval_s or max(last / 50, 0.001)
    bins: dict[int, int] = {}
    previous = series.acks[0][1]
    for at, ack in series.acks:
        if ack > previous:
            index = int(at / interval)
            bins[index] = bins.get(index, 0) + ack - previous
            previous = ack
    for index in range(int(last / interval) + 1):
        series.goodput.append((index * interval, bins.get(index, 0) * 8 / interval / 1e6))
