"""ICMP policy (RFC 792, RFC 1122 §3.2.2): when we may send an error, and at what rate."""

from __future__ import annotations

from .config import IcmpConfig
from .time import SECOND, Instant
from .wire.icmp import ERROR_TYPES, IcmpMessage
from .wire.ipv4 import PROTOCOL_ICMP, Ipv4Packet

QUOTE_DATA_BYTES = 8
"""RFC 792 quotes the header plus 64 bits; RFC 1812 §4.3.2.3 allows more, 8 is what hosts need."""


class TokenBucket:
    """ICMP error rate limit (RFC 1812 §4.3.2.8): ``rate`` per second, ``burst`` deep."""

    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._updated_at: Instant | None = None

    def take(self, now: Instant) -> bool:
        if self._updated_at is not None:
            elapsed = max(0, now - self._updated_at)
            self._tokens = min(self._burst, self._tokens + elapsed * self._rate / SECOND)
        self._updated_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class IcmpPolicy:
    """Decides whether an offending datagram may draw an ICMP error, and builds it."""

    def __init__(self, config: IcmpConfig) -> None:
        self.config = config
        self._bucket = TokenBucket(config.error_rate, config.error_burst)

    @staticmethod
    def may_answer(offending: Ipv4Packet, *, link_broadcast: bool, to_broadcast: bool) -> bool:
        """RFC 1122 §3.2.2: never about an ICMP error, a non-first fragment, or a broadcast."""
        if link_broadcast or to_broadcast or offending.fragment_offset != 0:
            return False
        if offending.protocol == PROTOCOL_ICMP:
            payload = offending.payload
            if len(payload) < 1 or payload[0] in ERROR_TYPES:
                return False
        return True

    def allow(self, now: Instant) -> bool:
        return self._bucket.take(now)

    @staticmethod
    def quote(offending: Ipv4Packet) -> bytes:
        """The offending datagram's header and first 8 data bytes, as RFC 792 asks."""
        header = offending.build_header(len(offending.payload))
        return header + bytes(offending.payload[:QUOTE_DATA_BYTES])

    @staticmethod
    def error(icmp_type: int, code: int, offending: Ipv4Packet, rest: int = 0) -> IcmpMessage:
        return IcmpMessage(icmp_type, code, rest, IcmpPolicy.quote(offending))
