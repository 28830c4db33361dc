"""Wrap-aware TCP sequence numbers: 32-bit wire values unwrapped to unbounded integers.

RFC 9293 §3.4 compares sequence numbers modulo 2**32, which makes every raw
``<`` on wire values a bug waiting for the wrap. The engine avoids that class of
bug altogether: it keeps every sequence number as an *absolute* Python integer
that starts at the ISN and grows without bound, compares those with plain
operators, and crosses the 32-bit boundary only at the two edges:

- :func:`to_wire` when a segment is built (``absolute & 0xFFFFFFFF``);
- :func:`unwrap` when a segment arrives: a 32-bit value is placed at the
  absolute position closest to a reference (RCV.NXT for SEG.SEQ, SND.UNA for
  SEG.ACK), i.e. within 2**31 either side, which is exactly the RFC's modular
  comparison (RFC 1982 §3.2 serial number arithmetic).
"""

from __future__ import annotations

SEQ_MODULUS = 1 << 32
SEQ_MASK = SEQ_MODULUS - 1
_HALF = 1 << 31


def to_wire(absolute: int) -> int:
    """The 32-bit value carried in a header for an absolute sequence number."""
    return absolute & SEQ_MASK


def unwrap(wire: int, reference: int) -> int:
    """The absolute sequence number nearest ``reference`` whose low 32 bits are ``wire``."""
    delta = (wire - reference) & SEQ_MASK
    if delta >= _HALF:
        delta -= SEQ_MODULUS
    return reference + delta


def seq_diff(a: int, b: int) -> int:
    """``a - b`` for 32-bit wire values, as a signed distance in [-2**31, 2**31)."""
    delta = (a - b) & SEQ_MASK
    return delta - SEQ_MODULUS if delta >= _HALF else delta


def seq_lt(a: int, b: int) -> bool:
    """``a < b`` modulo 2**32 (RFC 9293 §3.4) for 32-bit wire values."""
    return seq_diff(a, b) < 0


def seq_le(a: int, b: int) -> bool:
    """``a <= b`` modulo 2**32 for 32-bit wire values."""
    return seq_diff(a, b) <= 0
