"""IPv6 fragmentation at the source and reassembly (RFC 8200 §4.5, RFC 5722, RFC 6946).

Only the source fragments in IPv6 (RFC 8200 §5); :func:`fragment6` cuts a
datagram's fragmentable part behind a fragment header. :class:`Reassembler6`
rebuilds datagrams keyed by (source, destination, identification): an
overlap drops the whole datagram, and its fragments not yet received until
the reassembly timeout (RFC 5722 §4), remembered in a bounded set of keys
apart from the buffers, so overlaps never hold buffers others need; a
result past 65,535 bytes is refused (RFC 8200 §4.5); an atomic fragment
never touches a buffer (RFC 6946 §4).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from ipaddress import IPv6Address

from ..config import Ip6Config
from ..errors import DropReason
from ..stats import Stats
from ..time import Instant
from ..timers import TimerHandle, TimerHeap
from ..wire.checksum import Buffer
from ..wire.ipv6 import HEADER_LENGTH, MAX_PAYLOAD_LENGTH, NEXT_FRAGMENT, FragmentHeader, Ipv6Packet

MAX_FRAGMENTS_PER_DATAGRAM = 128
"""Bounds the per-fragment overlap check, so tiny-fragment floods stay linear."""
POISONED_LIMIT = 4096
"""Datagrams dropped for overlaps whose later fragments are remembered (RFC 5722 §4)."""


def fragment6(
    packet: Ipv6Packet,
    unfragmentable: bytes,
    upper: int,
    fragmentable: bytes,
    mtu: int,
    identification: int,
) -> list[bytes]:
    """Cut ``fragmentable`` into fragments of datagrams of at most ``mtu`` bytes.

    ``packet`` gives the fixed header (its ``next_header`` is the first header of
    ``unfragmentable``, or NEXT_FRAGMENT when that is empty); ``unfragmentable``
    is the hop-by-hop and routing headers, whose last next-header field must
    already say NEXT_FRAGMENT; ``upper`` is what the fragment header announces.
    """
    room = (mtu - HEADER_LENGTH - len(unfragmentable) - 8) & ~7
    if room <= 0:
        raise ValueError(f"MTU {mtu} too small to fragment")
    pieces: list[bytes] = []
    view = memoryview(fragmentable)
    offset = 0
    while offset < len(fragmentable) or not pieces:
        chunk = view[offset : offset + room]
        more = offset + len(chunk) < len(fragmentable)
        header = FragmentHeader(upper, offset, more, identification).build()
        body = unfragmentable + header + bytes(chunk)
        pieces.append(packet.build_header(len(body)) + body)
        offset += len(chunk)
    return pieces


@dataclass(slots=True)
class _Buffer:
    timer: TimerHandle
    unfragmentable: bytes = b""
    """The first fragment's headers before its fragment header (fixed header included)."""
    first: bytes | None = None
    """The first fragment whole: what a time-exceeded message quotes."""
    upper: int = 0
    total_length: int | None = None
    pieces: dict[int, bytes] = field(default_factory=dict)
    received: int = 0


Key = tuple[IPv6Address, IPv6Address, int]
TimedOut = Callable[[bytes, Instant], None]
"""Told of the first fragment of a datagram that timed out (ICMPv6 time exceeded)."""
Refuse = Callable[[DropReason, int, int], None]
"""refuse(reason, ICMPv6 code, pointer): a parameter problem to answer the fragment with."""


class Reassembler6:
    """Rebuilds IPv6 datagrams from fragments, bounded in bytes and datagrams."""

    def __init__(
        self, config: Ip6Config, *, timers: TimerHeap, stats: Stats, timed_out: TimedOut
    ) -> None:
        self._config = config
        self._timers = timers
        self._stats = stats
        self._timed_out = timed_out
        self._buffers: dict[Key, _Buffer] = {}
        self._held_bytes = 0
        self._poisoned: dict[Key, Instant] = {}
        """Datagrams dropped for an overlap, each to when its later fragments stop being
        dropped; oldest first, at most POISONED_LIMIT."""

    @property
    def held_bytes(self) -> int:
        return self._held_bytes

    def __len__(self) -> int:
        return len(self._buffers)

    def add(
        self,
        datagram: Buffer,
        packet: Ipv6Packet,
        header: FragmentHeader,
        header_at: int,
        header_field: int,
        now: Instant,
        refuse: Refuse,
    ) -> bytes | None:
        """Take one fragment (``header`` at ``header_at`` in ``datagram``, named by the
        next-header field at ``header_field``); the whole datagram once complete."""
        data = bytes(datagram[header_at + 8 : HEADER_LENGTH + len(packet.payload)])
        offset = header.offset
        end = offset + len(data)
        if header.more_fragments and (not data or len(data) % 8):
            # RFC 8200 §4.5: parameter problem, code 0, at the payload length field.
            refuse(DropReason.IPV6_BAD_FRAGMENT, 0, 4)
            return None
        if header_at - HEADER_LENGTH + end > MAX_PAYLOAD_LENGTH:
            # RFC 8200 §4.5: would exceed 65,535; point at the fragment offset field.
            refuse(DropReason.IPV6_FRAGMENT_TOO_BIG, 0, header_at + 2)
            return None
        key = (packet.source, packet.destination, header.identification)
        if self._poisoned and self._is_poisoned(key, now):
            self._stats.drop(DropReason.REASSEMBLY_OVERLAP)
            return None
        buffer = self._buffers.get(key) or self._new_buffer(key, len(data), now)
        if buffer is None:
            return None
        if buffer.pieces.get(offset) == data and (
            header.more_fragments or buffer.total_length == end
        ):
            self._stats.count("ip6.fragment_duplicates")
            return None
        if (
            self._overlaps(buffer, offset, end)
            or (not header.more_fragments and buffer.total_length not in (None, end))
            or (buffer.total_length is not None and end > buffer.total_length)
        ):
            self._discard(key, buffer)
            self._poison(key, now)
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
            unfragmentable = bytearray(datagram[:header_at])
            unfragmentable[header_field] = header.next_header
            buffer.unfragmentable = bytes(unfragmentable)
            buffer.first = bytes(datagram[: HEADER_LENGTH + len(packet.payload)])
        if not header.more_fragments:
            buffer.total_length = end
        if buffer.total_length is None or buffer.received != buffer.total_length:
            return None
        self._discard(key, buffer)
        return self._whole(buffer)

    def _new_buffer(self, key: Key, size: int, now: Instant) -> _Buffer | None:
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

    def _whole(self, buffer: _Buffer) -> bytes | None:
        if not buffer.unfragmentable:  # cannot happen: complete means offset 0 is here
            return None
        data = b"".join(buffer.pieces[o] for o in sorted(buffer.pieces))
        head = bytearray(buffer.unfragmentable)
        head[4:6] = (len(head) - HEADER_LENGTH + len(data)).to_bytes(2, "big")
        self._stats.count("ip6.reassembled")
        return bytes(head) + data

    @staticmethod
    def _overlaps(buffer: _Buffer, offset: int, end: int) -> bool:
        for other_offset, other in buffer.pieces.items():
            if offset < other_offset + len(other) and other_offset < end:
                return True
        return False

    def _poison(self, key: Key, now: Instant) -> None:
        """RFC 5722 §4: every later fragment of the datagram is dropped too, until the
        reassembly timeout."""
        poisoned = self._poisoned
        poisoned.pop(key, None)
        if len(poisoned) >= POISONED_LIMIT:
            del poisoned[next(iter(poisoned))]
        poisoned[key] = now + self._config.reassembly_timeout

    def _is_poisoned(self, key: Key, now: Instant) -> bool:
        poisoned = self._poisoned
        while poisoned:  # forget the oldest ones whose time is over
            oldest = next(iter(poisoned))
            if poisoned[oldest] > now:
                break
            del poisoned[oldest]
        return key in poisoned

    def _discard(self, key: Key, buffer: _Buffer) -> None:
        del self._buffers[key]
        self._held_bytes -= buffer.received
        self._timers.discard(buffer.timer)

    def _expire(self, key: Key, now: Instant) -> None:
        buffer = self._buffers.get(key)
        if buffer is None:
            return
        self._discard(key, buffer)
        self._stats.drop(DropReason.REASSEMBLY_TIMEOUT)
        if buffer.first is not None:
            # RFC 8200 §4.5: time exceeded, code 1, only when the first fragment arrived.
            self._timed_out(buffer.first, now)


__all__ = ["NEXT_FRAGMENT", "Reassembler6", "fragment6"]
