"""SYN cookie arithmetic (RFC 4987 §3.6): a listener's state encoded in its ISN, none in memory.

Cookie layout (our ISN, 32 bits), as RFC 4987 §3.6 sketches it:

====== =========================================================================
bits   meaning
====== =========================================================================
31-27  ``count mod 32``, with ``count = now // 64 s`` (the time slot)
26-24  index of the MSS in :data:`MSS_TABLE` (Linux's table; 3 bits, 4 used)
23-0   ``H(4-tuple, peer ISN, full count, MSS index) mod 2**24``, where ``H`` is
       :meth:`SeededRandom.keyed_hash32`: secret to anyone without the seed
====== =========================================================================

The final ACK of the handshake carries ``ack = cookie + 1`` and ``seq = peer
ISN + 1``; :meth:`SynCookies.validate` accepts it when the slot is at most
``max_age_slots`` old and the hash matches, then recovers the MSS. A forged
ACK passes with probability about ``(max_age_slots + 1) * 2**-24`` per try.

Window scale and SACK-permitted do not fit in the ISN. When the client's SYN
carries timestamps, they ride in the low 5 bits of our SYN-ACK's TSval (as
Linux's ``cookie_init_timestamp`` does) and come back in the ACK's TSecr:
bits 0-3 the peer's window shift (15: no window scaling), bit 4 SACK-permitted.
The TSval is lowered, never raised, so our clock does not run ahead. Without
timestamps, a cookie connection has neither window scaling nor SACK (Linux
behaves the same). Our own receive shift is recomputed from the configuration.

Only the client's segment at ISN + 1 can validate (SEG.SEQ - 1 must be the ISN
the hash binds, as in Linux's ``cookie_v4_check``). So that a client whose
first segment was lost is not reset for its later ones, the engine drops
instead of resetting an ACK that fails the check while the listener's cookies
can still come back (:meth:`SynCookies.recently_sent`, per listening address
and port) and the ACK number has a cookie's shape
(:meth:`SynCookies.looks_like_cookie`); the client retransmits from ISN + 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv6Address

from ..rng import SeededRandom
from ..time import SECOND, Duration, Instant
from ..wire.address import Address, hash_words
from .seq import SEQ_MASK

MSS_TABLE: tuple[int, ...] = (536, 1300, 1440, 1460)
"""MSS values a cookie can carry (Linux's ``msstab`` for IPv4)."""
MSS_TABLE6: tuple[int, ...] = (1220, 1420, 1440, 8940)
"""... toward IPv6 clients: MTUs 1280, 1480, 1500 and 9000 less 60 (Linux's IPv6
``msstab``); IPv6's smallest MSS is 1220, so 536 would waste the slot."""
COOKIE_SLOT: Duration = 64 * SECOND
"""Length of one time slot of the cookie's counter (RFC 4987 §3.6: 64 s)."""
MAX_AGE_SLOTS = 2
"""A cookie stays valid while ``count - its count <= 2`` (Linux's MAX_SYNCOOKIE_AGE)."""
MAX_REMEMBERED_LISTENERS = 64
"""Listening (address, port) pairs whose last cookie time is kept (bounded memory)."""
_NO_WSCALE = 0x0F
_WSCALE_MASK = 0x0F
_SACK_BIT = 0x10
_TS_BITS = 0x1F
_HASH_MASK = 0xFF_FFFF


@dataclass(frozen=True, slots=True, kw_only=True)
class CookieOptions:
    """What a valid cookie ACK restores about the client's SYN."""

    mss: int
    """The MSS to send with: the table entry at or below the client's MSS."""
    window_shift: int | None
    """The client's window scale shift (snd_wscale), None when scaling is off."""
    sack_permitted: bool
    timestamps: bool
    """Whether the ACK carried timestamps (then the connection uses them)."""


class SynCookies:
    """Make and check SYN cookies for one stack, keyed from its seed."""

    __slots__ = ("_rng", "mss_table", "mss_table6", "slot", "max_age_slots", "_sent_at")

    def __init__(
        self,
        rng: SeededRandom,
        *,
        mss_table: tuple[int, ...] = MSS_TABLE,
        mss_table6: tuple[int, ...] = MSS_TABLE6,
        slot: Duration = COOKIE_SLOT,
        max_age_slots: int = MAX_AGE_SLOTS,
    ) -> None:
        for table in (mss_table, mss_table6):
            if not 1 <= len(table) <= 8 or list(table) != sorted(table):
                raise ValueError("mss_table and mss_table6 must hold 1 to 8 increasing values")
        if not 0 <= max_age_slots < 31:
            raise ValueError("max_age_slots must be in 0..30")
        self._rng = rng
        self.mss_table = mss_table
        self.mss_table6 = mss_table6
        self.slot = slot
        self.max_age_slots = max_age_slots
        self._sent_at: dict[tuple[Address, int], Instant] = {}
        """When each listening (address, port) last answered a SYN with a cookie."""

    def _hash(
        self,
        local: Address,
        local_port: int,
        remote: Address,
        remote_port: int,
        peer_isn: int,
        count: int,
        mss_index: int,
    ) -> int:
        return (
            self._rng.keyed_hash32(
                "tcp.syncookie",
                *hash_words(local),
                local_port,
                *hash_words(remote),
                remote_port,
                peer_isn,
                count,
                mss_index,
            )
            & _HASH_MASK
        )

    def table_for(self, local: Address) -> tuple[int, ...]:
        """The MSS table of the listening address's family."""
        return self.mss_table6 if isinstance(local, IPv6Address) else self.mss_table

    def mss_index(self, mss: int, local: Address = 0) -> int:
        """The largest table entry not above ``mss`` (the first entry if none is), in the
        table of ``local``'s family."""
        index = 0
        for position, value in enumerate(self.table_for(local)):
            if value <= mss:
                index = position
        return index

    def isn(
        self,
        *,
        local: Address,
        local_port: int,
        remote: Address,
        remote_port: int,
        peer_isn: int,
        mss: int,
        now: Instant,
    ) -> int:
        """The cookie to use as our ISN in the SYN-ACK (a 32-bit wire value).

        ``peer_isn`` is the SYN's sequence number; ``mss`` the client's MSS
        option (536 when absent, RFC 9293 §3.7.1) clamped to our own.
        """
        count = now // self.slot
        index = self.mss_index(mss, local)
        digest = self._hash(
            local, local_port, remote, remote_port, peer_isn & SEQ_MASK, count, index
        )
        return ((count & 0x1F) << 27 | index << 24 | digest) & SEQ_MASK

    @property
    def lifetime(self) -> Duration:
        """How long after it was sent a cookie can still validate (the age check's bound)."""
        return (self.max_age_slots + 1) * self.slot

    def note_sent(self, *, local: Address, local_port: int, now: Instant) -> None:
        """Remember that the listener at ``local:local_port`` sent a cookie at ``now``."""
        sent_at = self._sent_at
        if len(sent_at) >= MAX_REMEMBERED_LISTENERS and (local, local_port) not in sent_at:
            for key, at in list(sent_at.items()):
                if now - at > self.lifetime:
                    del sent_at[key]
            if len(sent_at) >= MAX_REMEMBERED_LISTENERS:
                del sent_at[min(sent_at, key=sent_at.__getitem__)]
        sent_at[(local, local_port)] = now

    def recently_sent(self, *, local: Address, local_port: int, now: Instant) -> bool:
        """Whether that listener sent a cookie that may still come back (within lifetime)."""
        sent_at = self._sent_at.get((local, local_port))
        return sent_at is not None and now - sent_at <= self.lifetime

    def looks_like_cookie(self, seg_ack: int, *, now: Instant) -> bool:
        """Whether ``seg_ack - 1`` has a cookie's shape: a used MSS index and a live slot.

        No hash is checked (that needs the client's ISN, which only the segment at
        ISN + 1 carries); about 1 in 21 random values passes.
        """
        cookie = (seg_ack - 1) & SEQ_MASK
        if cookie >> 24 & 0x07 >= max(len(self.mss_table), len(self.mss_table6)):
            return False
        return (now // self.slot - (cookie >> 27)) & 0x1F <= self.max_age_slots

    @staticmethod
    def tsval(tsval_now: int, *, window_shift: int | None, sack_permitted: bool) -> int:
        """Our SYN-ACK's TSval with the client's options in its low 5 bits.

        ``window_shift`` is the shift of the client's SYN (None: it sent
        none); it is capped at 14 (RFC 7323 §2.3).
        """
        bits = _NO_WSCALE if window_shift is None else min(window_shift, 14)
        if sack_permitted:
            bits |= _SACK_BIT
        encoded = (tsval_now & ~_TS_BITS) | bits
        if bits > tsval_now & _TS_BITS:
            encoded -= _TS_BITS + 1  # never ahead of our clock
        return encoded & SEQ_MASK

    def validate(
        self,
        *,
        local: Address,
        local_port: int,
        remote: Address,
        remote_port: int,
        seg_seq: int,
        seg_ack: int,
        tsecr: int | None,
        now: Instant,
    ) -> CookieOptions | None:
        """Check the handshake's final ACK (wire SEQ/ACK); None when it is no cookie of ours.

        ``tsecr`` is the ACK's TSecr, or None when it carries no timestamps.
        """
        cookie = (seg_ack - 1) & SEQ_MASK
        index = cookie >> 24 & 0x07
        table = self.table_for(local)
        if index >= len(table):
            return None
        count = now // self.slot
        age = (count - (cookie >> 27)) & 0x1F
        if age > self.max_age_slots:
            return None
        peer_isn = (seg_seq - 1) & SEQ_MASK
        expected = self._hash(local, local_port, remote, remote_port, peer_isn, count - age, index)
        if expected != cookie & _HASH_MASK:
            return None
        if tsecr is None:
            return CookieOptions(
                mss=table[index], window_shift=None, sack_permitted=False, timestamps=False
            )
        shift = tsecr & _WSCALE_MASK
        return CookieOptions(
            mss=table[index],
            window_shift=None if shift == _NO_WSCALE else min(shift, 14),
            sack_permitted=bool(tsecr & _SACK_BIT),
            timestamps=True,
        )
