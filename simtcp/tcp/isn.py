"""Initial sequence numbers per RFC 6528: a keyed hash of the 4-tuple plus a clock."""

from __future__ import annotations

from ..rng import SeededRandom
from ..time import Instant
from .seq import SEQ_MASK

_TICK_US = 4
"""RFC 6528 §3 (after RFC 793): the clock term advances once every 4 microseconds."""


def initial_sequence_number(
    rng: SeededRandom, local: int, local_port: int, remote: int, remote_port: int, *, now: Instant
) -> int:
    """ISN = M + F(localip, localport, remoteip, remoteport, secretkey) (RFC 6528 §3).

    F is :meth:`SeededRandom.keyed_hash32`, keyed from the seed, so an off-path
    attacker cannot guess it while the same seed replays the same numbers.
    """
    secret_offset = rng.keyed_hash32("tcp.isn", local, local_port, remote, remote_port)
    return (secret_offset + now // _TICK_US) & SEQ_MASK
