"""Seeded randomness: the core's only source of chance, so a seed replays a run exactly.

Nothing in the core reads ``os.urandom`` or the wall clock. A :class:`SeededRandom`
derives independent streams (IP IDs, ports, ...) and a secret key for keyed
hashes (RFC 6528 ISNs, SYN cookies) from one integer seed.
"""

from __future__ import annotations

import hashlib
import random


class SeededRandom:
    """Deterministic random streams and keyed hashes derived from one seed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._key = hashlib.blake2b(f"simtcp-secret:{seed}".encode(), digest_size=32).digest()
        self._streams: dict[str, random.Random] = {}

    def stream(self, purpose: str) -> random.Random:
        """An independent ``random.Random`` for one purpose, the same for the same seed."""
        stream = self._streams.get(purpose)
        if stream is None:
            digest = hashlib.blake2b(f"{self.seed}:{purpose}".encode(), digest_size=8).digest()
            stream = random.Random(int.from_bytes(digest, "big"))
            self._streams[purpose] = stream
        return stream

    def keyed_hash32(self, purpose: str, *parts: int) -> int:
        """A 32-bit keyed hash of integers, secret to anyone who does not know the seed.

        This is the F() of RFC 6528 §3 when ``parts`` is the connection 4-tuple.
        """
        encoded = b"".join(part.to_bytes(8, "big", signed=True) for part in parts)
        message = purpose.encode() + encoded
        digest = hashlib.blake2b(message, key=self._key, digest_size=4).digest()
        return int.from_bytes(digest, "big")
