"""IPv4 fragmentation and reassembly (RFC 791 §3.2, RFC 1122 §3.3.2, RFC 5722's overlap rule).

The reassembly buffers hold state of their own: limits in bytes and
datagrams, and a timeout per datagram (:class:`Reassembler`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from ..config import IpConfig
from ..errors import DropReason
from ..stats import Stats
from ..time import Instant
from ..timers import TimerHandle, TimerHeap
from ..wire.ipv4 import MAX_TOTAL_LENGTH, Ipv4Packet

MAX_FRAGMENTS_PER_DATAGRAM = 128
"""Bounds the per-fragment overlap check, so tiny-fragment floods stay linear."""


def copied_options(options: bytes) -> bytes:
    """The options a non-first fragment carries: those with the copied flag (RFC 791 §3.1)."""
    kept = bytearray()
    index = 0
    while index < len(options):
        kind = options[index]
        if kind == 0:
            break
        if kind == 1:
            index += 1
            continue
        if index + 1 >= len(options) or options[index + 1] < 2:
            break
        length = options[index + 1]
        if kind & 0x80:
            kept += options[index : index + length]
        index += length
    if len(kept) % 4:
        kept += bytes(4 - len(kept) % 4)
    return bytes(kept)


def fragment(packet: Ipv4Packet, mtu: int) -> list[bytes]:
    """Cut a datagram into fragments of at most ``mtu`` bytes (RFC 791 §3.2, "fragmentation")."""
    payload = memoryview(bytes(packet.payload))
    first_room = (mtu - packet.header_length) & ~7
    later_options = copied_options(packet.options)
    later_room = (mtu - 20 - len(later_options)) & ~7
    if first_room <= 0 or later_room <= 0:
        raise ValueError(f"MTU {mtu} too small to fragment")
    pieces: list[bytes] = []
    offset = 0
    base = packet.fragment_offset
    last_more = packet.more_fragments
    while offset < len(payload):
        room = first_room if offset == 0 else later_room
        chunk = payload[offset : offset + room]
        more = offset + len(chunk) < len(payload) or last_more
        piece = Ipv4Packet(
            packet.source,
            packet.destination,
            packet.protocol,
            chunk,
            packet.ttl,
            packet.identification,
            packet.dont_fragment,
            more,
            base + offset,
            packet.tos,
            packet.options if offset == 0 else later_options,
            packet.reserved_flag,
        )
        pieces.append(piece.build())
        offset += len(chunk)
    return pieces


@dataclass(slots=True)
class _Buffer:
    timer: TimerHandle
    first_fragment: Ipv4Packet | None = None
    total_length: int | None = None
    pieces: dict[int, bytes] = field(default_factory=dict)  # offset -> data
    received: int = 0


ReassemblyKey = tuple[int, int, int, int]
"""(source, destination, protocol, identification), RFC 791 §3.2."""


class Reassembler:
    """Rebuilds datagrams from fragments, bounded in bytes and datagrams.

    Overlapping fragments drop the whole datagram (RFC 5722's rule, applied to
    IPv4 as Linux does for its defrag of overlaps); an exact duplicate of a
    fragment already held is ignored, as a duplicating link produces them.
    """

    def __init__(
        self,
        config: IpConfig,
        *,
        timers: TimerHeap,
        stats: Stats,
        timed_out: Callable[[Ipv4Packet, Instant], None],
    ) -> None:
        self._config = config
        self._timers = timers
        self._stats = stats
        self._timed_out = timed_out
        self._buffers: dict[ReassemblyKey, _Buffer] = {}
        self._held_bytes = 0

    @property
    def held_bytes(self) -> int:
        return self._held_bytes

    def __len__(self) -> int:
        return len(self._buffers)

    def add(self, packet: Ipv4Packet, now: Instant) -> Ipv4Packet | None:
        """Take one fragment; return the whole datagram once the last hole fills."""
        key = (packet.source, packet.destination, packet.protocol, packet.identification)
        data = bytes(packet.payload)
        offset = packet.fragment_offset
        end = offset + len(data)
        if end + packet.header_length > MAX_TOTAL_LENGTH or (
            packet.more_fragments and (not data or len(data) % 8)
        ):
            self._stats.drop(DropReason.MALFORMED)
            return None
        buffer = self._buffers.get(key) or self._new_buffer(key, len(data), now)
        if buffer is None:
            return None
        if buffer.pieces.get(offset) == data and (
            packet.more_fragments or buffer.total_length == end
        ):
            self._stats.count("ip.fragment_duplicates")
            return None
        if (
            self._overlaps(buffer, offset, end)
            or (not packet.more_fragments and buffer.total_length not in (None, end))
            or (buffer.total_length is not None and end > buffer.total_length)
        ):
            self._discard(key, buffer)
            self._stats.drop(DropReason.REASSEMBLY_OVERLAP)
            return None
        if (
            self._held_bytes + len(data) > self._config.reassembly_limit
            or len(buffer.pieces) >= MAX_FRAGMENTS_PER_DATAGRAM
        ):
            self._discard(key, buffer)
            self._stats.drop(DropReason.REASSEMBLY_LIMIT)
            return None
        buffer.pieces[offset] = data
        buffer.received += len(data)
        self._held_bytes += len(data)
        if offset == 0:
            buffer.first_fragment = packet
        if not packet.more_fragments:
            buffer.total_length = end
        if buffer.total_length is None or buffer.received != buffer.total_length:
            return None
        self._discard(key, buffer)
        return self._whole(buffer)

    def _new_buffer(self, key: ReassemblyKey, size: int, now: Instant) -> _Buffer | None:
        """A buffer for a datagram's first fragment to arrive, timed out after
        ``reassembly_timeout``; None, counted, past the limits."""
        if (
            len(self._buffers) >= self._config.reassembly_max_datagrams
            or self._held_bytes + size > self._config.reassembly_limit
        ):
            self._stats.drop(DropReason.REASSEMBLY_LIMIT)
            return None
        timer = self._timers.new_timer(partial(self._expire, key))
        buffer = _Buffer(timer)
        self._buffers[key] = buffer
        self._timers.arm(timer, now + self._config.reassembly_timeout)
        return buffer

    def _whole(self, buffer: _Buffer) -> Ipv4Packet | None:
        """The datagram a complete buffer holds, with its first fragment's header."""
        first = buffer.first_fragment
        if first is None:  # cannot happen: no overlap and received == total means offset 0 is here
            return None
        whole = b"".join(buffer.pieces[o] for o in sorted(buffer.pieces))
        self._stats.count("ip.reassembled")
        return Ipv4Packet(
            first.source,
            first.destination,
            first.protocol,
            whole,
            first.ttl,
            first.identification,
            first.dont_fragment,
            False,
            0,
            first.tos,
            first.options,
            first.reserved_flag,
        )

    @staticmethod
    def _overlaps(buffer: _Buffer, offset: int, end: int) -> bool:
        for other_offset, other in buffer.pieces.items():
            if offset < other_offset + len(other) and other_offset < end:
                return True
        return False

    def _discard(self, key: ReassemblyKey, buffer: _Buffer) -> None:
        del self._buffers[key]
        self._held_bytes -= buffer.received
        self._timers.cancel(buffer.timer)

    def _expire(self, key: ReassemblyKey, now: Instant) -> None:
        buffer = self._buffers.get(key)
        if buffer is None:
            return
        self._discard(key, buffer)
        self._stats.drop(DropReason.REASSEMBLY_TIMEOUT)
        if buffer.first_fragment is not None:
            # RFC 792 / RFC 1122 §3.3.2: time exceeded (code 1) only when we hold fragment zero.
            self._timed_out(buffer.first_fragment, now)
