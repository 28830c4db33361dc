"""Initial sequence numbers per RFC 6528: a keyed hash of the 4-tuple plus a clock."""

from __future__ import annotations

from ..rng import SeededRandom
from ..time import Instant
from ..wire.address import Address, hash_words
from .seq import SEQ_MASK

_TICK_US = 4
"""RFC 6528 §3 (after RFC 793): the clock term advances once every 4 microseconds."""


def initial_sequence_number(
    rng: SeededRandom,
    local: Address,
    local_port: int,
    remote: Address,
    remote_port: int,
    *,
    now: Instant,
) -> int:
    """ISN = M + F(localip, localport, remoteip, remoteport, secretkey) (RFC 6528 §3).

    F is :meth:`SeededRandom.keyed_hash32`, keyed from the seed, so an off-path
    attacker cannot guess it while the same seed replays the same numbers. An IPv6
    address enters the hash whole, all 16 bytes (:func:`~simtcp.wire.address.hash_words`).
    """
    secret_offset = rng.keyed_hash32(
        "tcp.isn", *hash_words(local), local_port, *hash_words(remote), remote_port
    )
    return (secret_offset + now // _TICK_US) & SEQ_MASK
