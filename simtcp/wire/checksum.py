"""The Internet checksum (RFC 1071) at C speed, and its incremental update (RFC 1624).

Summing 16-bit words in a Python loop costs about a microsecond per word. We
let the interpreter's big integers do it instead: read the whole buffer as one
big-endian integer V = sum(w_i * 65536**i). Because 65536 = 1 (mod 0xffff),
V mod 0xffff equals the ones' complement sum of the words mod 0xffff, which
is the folded ones' complement sum except for its two zeros: a non-zero sum
that is a multiple of 0xffff folds to 0xffff, never 0. Both ``int.from_bytes``
and the modulo run in C, linear in the length.

Past a few KiB the modulo (one C division per 30-bit digit) costs more than
reading the bytes, so large buffers take a second route: read little-endian
4 KiB chunks (faster to convert), add them (each chunk starts at an even offset
and 65536 = 1, so the chunk values just add), fold the total by halving it with
shifts and masks, and swap the two bytes of the result, which RFC 1071 §2(B)
allows because the sum is byte-order independent. About twice as fast at 64 KiB;
``bench/bench_wire.py`` measures it.
"""

from __future__ import annotations

from ipaddress import IPv6Address

Buffer = bytes | bytearray | memoryview

# Bytes per int.from_bytes call on the large-buffer route; must be even.
_CHUNK = 4096


def ones_complement_sum(data: Buffer, initial: int = 0) -> int:
    """The folded 16-bit ones' complement sum of ``data`` plus ``initial``.

    An odd-length buffer is summed as if padded with one zero byte
    (RFC 1071 §1). ``initial`` is another folded or unfolded partial sum (a
    pseudo-header, say); the result is in 0..0xffff and is 0 only when every
    word and ``initial`` are zero.
    """
    length = len(data)
    if length > _CHUNK:
        total = _large_sum(memoryview(data), length) + initial
    else:
        value = int.from_bytes(data, "big")
        total = (value << 8 if length & 1 else value) + initial
    if total == 0:
        return 0
    folded = total % 0xFFFF
    return folded if folded else 0xFFFF


def _large_sum(view: memoryview, length: int) -> int:
    """The folded sum of a large buffer in 0..0xffff, via little-endian chunks (see above)."""
    value = sum(
        int.from_bytes(view[start : start + _CHUNK], "little") for start in range(0, length, _CHUNK)
    )
    if value == 0:
        return 0
    # hi * 2**k + lo = hi + lo (mod 0xffff) whenever k is a multiple of 16.
    while value >> 64:
        shift = ((value.bit_length() >> 1) + 15) & ~15
        value = (value >> shift) + (value & ((1 << shift) - 1))
    value = value % 0xFFFF or 0xFFFF
    return ((value & 0xFF) << 8) | (value >> 8)


def internet_checksum(data: Buffer, initial: int = 0) -> int:
    """The checksum field value for ``data``: the complement of its ones' complement sum.

    Computed over a header whose checksum field holds a correct value, this
    returns 0, which is how received headers are verified.
    """
    return ~ones_complement_sum(data, initial) & 0xFFFF


def checksum_verifies(data: Buffer, initial: int = 0) -> bool:
    """``internet_checksum(data, initial) == 0`` in one call: how received data is checked.

    The sum folds to 0xffff exactly when it is a non-zero multiple of 0xffff
    (see the module doc), so small buffers need no folding at all.
    """
    length = len(data)
    if length > _CHUNK:
        return internet_checksum(data, initial) == 0
    value = int.from_bytes(data, "big")
    total = (value << 8 if length & 1 else value) + initial
    return total != 0 and total % 0xFFFF == 0


def fold(total: int) -> int:
    """The folded ones' complement sum (0..0xffff) of a non-negative unfolded ``total``.

    ``total mod 0xffff``, except that a non-zero multiple of 0xffff folds to 0xffff
    (see the module doc): 0 comes back only for 0.
    """
    return total % 0xFFFF or 0xFFFF if total else 0


def field_of(total: int) -> int:
    """The checksum field for an unfolded sum ``total``: the complement of its fold.

    Any integer congruent to the sum modulo 0xffff will do; one congruent to 0 is
    taken as the fold 0xffff (what every sum with a non-zero word folds to, and a
    pseudo-header or an IPv4 header always has one), so its field is 0.
    """
    return ~(total % 0xFFFF or 0xFFFF) & 0xFFFF


def word_sum(data: Buffer) -> int:
    """The unfolded big-endian value of ``data``, an odd length padded with a zero byte
    (RFC 1071 §1): congruent to its ones' complement sum modulo 0xffff."""
    value = int.from_bytes(data, "big")
    return value << 8 if len(data) & 1 else value


def address_sum(source: int, destination: int) -> int:
    """Unfolded sum of two IPv4 addresses' 16-bit words (pseudo-header and header alike)."""
    return (source >> 16) + (source & 0xFFFF) + (destination >> 16) + (destination & 0xFFFF)


def pseudo_header_sum(source: int, destination: int, protocol: int, length: int) -> int:
    """Unfolded sum of the IPv4 pseudo-header (RFC 9293 §3.1, RFC 768) for TCP and UDP."""
    return (
        (source >> 16)
        + (source & 0xFFFF)
        + (destination >> 16)
        + (destination & 0xFFFF)
        + protocol
        + length
    )


def checksum_update(checksum: int, old_word: int, new_word: int) -> int:
    """A checksum after one 16-bit word of the data changed (RFC 1624 eqn. 3).

    HC' = ~(~HC + ~m + m'), which stays right in the 0/0xffff corner that the
    older RFC 1141 formula gets wrong.
    """
    total = (~checksum & 0xFFFF) + (~old_word & 0xFFFF) + new_word
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def reference_checksum(data: Buffer) -> int:
    """The plain RFC 1071 word loop: slow, obviously right; the oracle for tests and benches."""
    raw = bytes(data)
    if len(raw) & 1:
        raw += b"\x00"
    total = 0
    for index in range(0, len(raw), 2):
        total += (raw[index] << 8) | raw[index + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv6_pseudo_header_sum(
    source: IPv6Address, destination: IPv6Address, upper_length: int, next_header: int
) -> int:
    """Unfolded sum of the IPv6 pseudo-header (RFC 8200 §8.1) for TCP, UDP and ICMPv6.

    Source and destination (16 bytes each), the 32-bit upper-layer packet
    length and the next-header value (three zero bytes before it). The sum is
    taken over the 128-bit integers directly: 65536 = 1 (mod 0xffff), so each
    address's value is congruent to the sum of its eight words. ``destination``
    is the final one, after any routing header (RFC 8200 §8.1).
    """
    return (
        int(source)
        + int(destination)
        + (upper_length >> 16)
        + (upper_length & 0xFFFF)
        + next_header
    )
