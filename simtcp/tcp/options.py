"""RFC 7323 helpers: window scale negotiation, the TSval clock, PAWS, RTTM, option space.

Pure functions and one small per-connection object (:class:`TimestampState`);
nothing here reads a clock or sends a segment. TSval/TSecr are 32-bit wire
values compared modulo 2**32 (:func:`.seq.seq_lt`); sequence numbers passed in
are the engine's absolute integers (:mod:`.seq`).

How the engine uses it:

- SYN exchange: :func:`negotiate_window_scale` gives (snd_wscale, rcv_wscale);
  timestamps are on when both SYNs carried the option (RFC 7323 §3.2).
- Sending: every non-SYN segment of a connection with timestamps on carries
  ``TimestampsOption(clock.tsval(now), state.ts_recent)`` (§3.2, :func:`carries_timestamps`);
  :func:`effective_mss` shrinks the payload by the option bytes (RFC 6691 §3).
- Receiving: :meth:`TimestampState.paws_rejects` right after the sequence
  check (§5.3 R1); :meth:`TimestampState.update_recent` for acceptable segments
  (§4.3); :func:`rtt_from_echo` for an RTT sample when an ACK acknowledges new
  data (§4.1, with Karn's rule no longer needed).
"""

from __future__ import annotations

from ..rng import SeededRandom
from ..time import MILLISECOND, SECOND, Duration, Instant
from ..wire.address import Address, hash_words
from .seq import SEQ_MASK, seq_diff, seq_lt

MAX_WINDOW_SHIFT = 14
"""RFC 7323 §2.3: a shift count above 14 is used as 14."""
TS_TICK: Duration = 1 * MILLISECOND
"""Our TSval clock ticks once per millisecond (RFC 7323 §5.4 asks for 1 ms to 1 s)."""
PAWS_IDLE_LIMIT: Duration = 24 * 86400 * SECOND
"""RFC 7323 §5.5: TS.Recent older than 24 days is invalid (the 1 ms clock's half wrap)."""
TIMESTAMPS_SPACE = 12
"""Bytes of the timestamps option with its two NOPs of alignment (RFC 7323 Appendix A)."""
MAX_OPTIONS_SPACE = 40
_MAX_RTT_TICKS = 1 << 30


def negotiate_window_scale(our_shift: int | None, peer_shift: int | None) -> tuple[int, int]:
    """``(snd_wscale, rcv_wscale)`` after the SYN exchange (RFC 7323 §2.2, §2.3).

    ``our_shift`` is what our SYN offered (None: no option sent), ``peer_shift``
    what the peer's SYN carried. Scaling is on only if both sent the option;
    a shift above 14 is used as 14 (§2.3, the peer is told nothing).
    """
    if our_shift is None or peer_shift is None:
        return 0, 0
    return min(peer_shift, MAX_WINDOW_SHIFT), min(our_shift, MAX_WINDOW_SHIFT)


def effective_mss(mss: int, options_length: int) -> int:
    """Payload bytes per segment: the MSS minus the TCP options carried (RFC 6691 §3).

    ``mss`` is the peer's announced MSS (already clamped to the path); the
    result is at least 1 byte.
    """
    return max(mss - options_length, 1)


def carries_timestamps(*, wanted: bool, negotiated: bool, syn: bool) -> bool:
    """Whether a segment we send carries TSopt (RFC 7323 §3.2).

    A SYN offers it when we want timestamps (``wanted``; for a SYN-ACK pass
    "we want them and the peer's SYN offered them"). After the handshake
    every segment carries it if it was negotiated, RSTs included (§3.2: SHOULD).
    """
    return wanted if syn else negotiated


def accepts_missing_timestamps(negotiated: bool, *, rst: bool) -> bool:
    """RFC 7323 §3.2: a non-RST segment without TSopt on a timestamped connection.

    The RFC says SHOULD drop silently; Linux accepts it. We follow the RFC:
    False means "drop". RSTs are always accepted here (§3.2).
    """
    return rst or not negotiated


class TimestampClock:
    """Our TSval source: ``(offset + now / 1 ms) mod 2**32`` (RFC 7323 §5.4).

    The offset is a keyed hash of the 4-tuple, as Linux randomises it per
    connection (RFC 7323 §7.1: do not leak the host's uptime), from the seed.
    """

    __slots__ = ("offset",)

    def __init__(self, offset: int) -> None:
        self.offset = offset & SEQ_MASK

    @classmethod
    def for_connection(
        cls, rng: SeededRandom, local: Address, local_port: int, remote: Address, remote_port: int
    ) -> TimestampClock:
        return cls(
            rng.keyed_hash32(
                "tcp.tsoffset", *hash_words(local), local_port, *hash_words(remote), remote_port
            )
        )

    def tsval(self, now: Instant) -> int:
        """The TSval to send at ``now``."""
        return (self.offset + now // TS_TICK) & SEQ_MASK

    def rtt_from_echo(self, tsecr: int, now: Instant) -> Duration | None:
        """RTT sample from an echoed TSval (RFC 7323 §4.1), or None if implausible.

        Call only for an ACK that acknowledges new data (§4.2). With 1 ms
        ticks a sample of 0 ticks means "under a millisecond"; it is returned
        as half a tick so the estimator gets a positive value.
        """
        ticks = seq_diff(self.tsval(now), tsecr)
        if ticks < 0 or ticks > _MAX_RTT_TICKS:
            return None  # an echo from the future or garbage: no sample
        return ticks * TS_TICK if ticks else TS_TICK // 2


class TimestampState:
    """TS.Recent and when it was set (RFC 7323 §4.3, §5.3, §5.5)."""

    __slots__ = ("ts_recent", "ts_recent_at", "valid")

    def __init__(self) -> None:
        self.ts_recent = 0
        """The peer's latest TSval worth echoing (the TSecr we send)."""
        self.ts_recent_at: Instant = 0
        self.valid = False

    def learn_from_syn(self, tsval: int, now: Instant) -> None:
        """The peer's SYN (or SYN-ACK) TSval starts TS.Recent (RFC 7323 §4.3, §3.2)."""
        self.ts_recent = tsval & SEQ_MASK
        self.ts_recent_at = now
        self.valid = True

    def paws_rejects(self, tsval: int, *, rst: bool, now: Instant) -> bool:
        """RFC 7323 §5.3 R1: an old duplicate whose TSval is behind TS.Recent.

        A rejected non-RST segment is answered with an ACK and dropped (the
        engine's job). RSTs are never rejected by PAWS (§5.3, "R1" applies
        to non-RST; RFC 5961 checks RSTs instead). TS.Recent idle for over 24
        days is no longer trusted (§5.5): the segment passes and re-seeds it.
        """
        if rst or not self.valid:
            return False
        if now - self.ts_recent_at > PAWS_IDLE_LIMIT:
            self.valid = False  # §5.5: the next acceptable segment sets it again
            return False
        return seq_lt(tsval, self.ts_recent)

    def update_recent(self, tsval: int, *, seg_seq: int, last_ack_sent: int, now: Instant) -> None:
        """RFC 7323 §4.3 (2): keep SEG.TSval if it is not older and the segment covers
        Last.ACK.sent (``seg_seq <= last_ack_sent``, absolute sequence numbers).

        Call for segments that passed the sequence and PAWS checks.
        """
        if seg_seq > last_ack_sent:
            return
        if self.valid and seq_lt(tsval, self.ts_recent):
            return
        self.ts_recent = tsval & SEQ_MASK
        self.ts_recent_at = now
        self.valid = True


def sack_block_capacity(options_length: int, *, space: int = MAX_OPTIONS_SPACE) -> int:
    """SACK blocks that fit beside ``options_length`` other option bytes (RFC 2018 §3).

    A SACK option takes 2 bytes plus 8 per block (and 2 NOPs for alignment);
    at most 4 fit without timestamps and 3 with them. ``space`` is the option room
    the segment has: 40 bytes, or less when the MTU leaves less beside the IP and
    TCP headers (68 - 40 = 28 at the IPv4 minimum; RFC 2018 §3: the receiver sends
    as many blocks as fit, so the ACK never exceeds the MTU).
    """
    space = min(space, MAX_OPTIONS_SPACE)
    room = space - options_length - 2 - (2 if options_length else 0)
    return max(min(room // 8, 4), 0)


MIN_MSS = 64
"""Floor for a peer-announced or ICMP-derived MSS, so segments stay useful."""


def send_mss(peer_mss: int, our_mss: int, timestamps: bool) -> int:
    """The payload of a full-sized segment we send (RFC 9293 §3.7.1, RFC 6691 §3).

    A peer's tiny MSS is raised to MIN_MSS, but never past what our own link carries:
    ``our_mss`` comes from our MTU, and RFC 791 allows MTUs down to 68 (MSS 28).
    """
    options = TIMESTAMPS_SPACE if timestamps else 0
    return max(min(peer_mss, our_mss) - options, min(MIN_MSS, our_mss - options))
