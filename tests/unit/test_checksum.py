"""The Internet checksum (RFC 1071) against the plain word loop, and RFC 1624 updates."""

from __future__ import annotations

import random
from ipaddress import IPv6Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp.wire.checksum import (
    checksum_update,
    internet_checksum,
    ipv6_pseudo_header_sum,
    ones_complement_sum,
    pseudo_header_sum,
    reference_checksum,
)


def _words(data: bytes) -> list[int]:
    padded = data + b"\x00" * (len(data) & 1)
    return [int.from_bytes(padded[i : i + 2], "big") for i in range(0, len(padded), 2)]


def test_random_data_of_every_length() -> None:
    rng = random.Random(1071)
    for length in range(0, 302):
        for _ in range(4):
            data = rng.randbytes(length)
            assert internet_checksum(data) == reference_checksum(data), (length, data.hex())


@pytest.mark.parametrize(
    "length", [4095, 4096, 4097, 8191, 8192, 8193, 12289, 65535, 65536, 65537, 1 << 20]
)
def test_big_buffers(length: int) -> None:
    data = random.Random(length).randbytes(length)
    assert internet_checksum(data) == reference_checksum(data)
    assert internet_checksum(memoryview(data)[1:]) == reference_checksum(data[1:])


@pytest.mark.parametrize("length", [0, 1, 2, 3, 20, 1499, 4097, 65535, 65536])
def test_all_zero_and_all_ones(length: int) -> None:
    # All zeros sums to +0, so the field is 0xffff; all ones sums to -0 (0xffff),
    # so the field is 0 -- the two zeros RFC 1071 §1 tells apart.
    assert internet_checksum(bytes(length)) == reference_checksum(bytes(length)) == 0xFFFF
    ones = b"\xff" * length
    # An odd last byte pads to 0xff00, and 0xffff + 0xff00 folds to 0xff00.
    expected = 0xFFFF if length == 0 else (0xFF if length % 2 else 0)
    assert internet_checksum(ones) == reference_checksum(ones) == expected


def test_non_zero_multiple_of_0xffff_folds_to_ones() -> None:
    for data in (b"\x80\x00\x7f\xff", b"\xff\xff" * 3, b"\x00\x01\xff\xfe", b"\xff\xff\x00\x00"):
        assert ones_complement_sum(data) == 0xFFFF
        assert internet_checksum(data) == reference_checksum(data) == 0
    assert ones_complement_sum(b"") == 0
    assert ones_complement_sum(b"\x00" * 7) == 0
    assert ones_complement_sum(b"", 0xFFFF) == 0xFFFF


def test_odd_length_pads_with_a_zero_byte() -> None:
    assert internet_checksum(b"\xab") == internet_checksum(b"\xab\x00") == 0x54FF
    assert internet_checksum(b"\x12\x34\x56") == reference_checksum(b"\x12\x34\x56\x00")


def test_inputs_of_every_buffer_type_agree() -> None:
    data = random.Random(7).randbytes(99)
    expected = reference_checksum(data)
    assert internet_checksum(bytearray(data)) == expected
    assert internet_checksum(memoryview(data)) == expected
    assert internet_checksum(memoryview(b"xx" + data)[2:]) == expected


def test_inserting_the_checksum_verifies_to_zero() -> None:
    rng = random.Random(9)
    for length in range(4, 200, 2):
        data = bytearray(rng.randbytes(length))
        data[2:4] = b"\x00\x00"
        data[2:4] = internet_checksum(data).to_bytes(2, "big")
        assert internet_checksum(data) == 0


def test_initial_sum_equals_prepending_the_words() -> None:
    rng = random.Random(768)
    for length in range(0, 80):
        data = rng.randbytes(length)
        pseudo = rng.randbytes(12)
        initial = sum(_words(pseudo))
        assert internet_checksum(data, initial) == reference_checksum(pseudo + data)
        assert internet_checksum(data, ones_complement_sum(pseudo)) == reference_checksum(
            pseudo + data
        )


def test_pseudo_header_sum_is_the_sum_of_its_words() -> None:
    source, destination = 0xC0A80001, 0x0AFFFF02
    pseudo = (
        source.to_bytes(4, "big")
        + destination.to_bytes(4, "big")
        + b"\x00\x06"
        + (1234).to_bytes(2, "big")
    )
    assert pseudo_header_sum(source, destination, 6, 1234) == sum(_words(pseudo))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048), st.integers(0, 0xFFFF))
def test_checksum_matches_reference(data: bytes, initial: int) -> None:
    assert internet_checksum(data) == reference_checksum(data)
    assert internet_checksum(data, initial) == reference_checksum(initial.to_bytes(2, "big") + data)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(4000, 20000),
    st.integers(0, 2**32),
    st.sampled_from([0, 1, 255]),
    st.lists(st.tuples(st.integers(0, 19999), st.integers(0, 255)), max_size=6),
)
def test_large_buffers_match_reference(
    length: int, seed: int, fill: int, patches: list[tuple[int, int]]
) -> None:
    # Random, or sparse (one fill byte with a few others) to hit the fold's corners.
    data = bytearray(random.Random(seed).randbytes(length) if fill == 1 else bytes([fill]) * length)
    for position, value in patches:
        if position < length:
            data[position] = value
    assert internet_checksum(data) == reference_checksum(data)
    assert ones_complement_sum(data, 0xFFFF * 3) == (ones_complement_sum(data) or 0xFFFF)


def test_rfc1624_example() -> None:
    # RFC 1624 §4: the RFC 1141 formula gives 0xffff here; eqn. 3 gives 0x0000.
    assert checksum_update(0xDD2F, 0x5555, 0x3285) == 0x0000


def _update_matches_recomputation(data: bytearray, index: int, new_word: int) -> None:
    before = internet_checksum(data)
    old_word = int.from_bytes(data[index : index + 2], "big")
    data[index : index + 2] = new_word.to_bytes(2, "big")
    updated = checksum_update(before, old_word, new_word)
    if any(data):
        assert updated == internet_checksum(data)
    else:
        # All-zero data: +0 recomputed (0xffff) versus -0 incrementally (0x0000), the
        # one case RFC 1624 §3 leaves; both verify, and no IP header is all zeros.
        assert (updated, internet_checksum(data)) == (0x0000, 0xFFFF)


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_update_matches_recomputation(data: st.DataObject) -> None:
    words = data.draw(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=40))
    buffer = bytearray(b"".join(word.to_bytes(2, "big") for word in words))
    index = 2 * data.draw(st.integers(0, len(words) - 1))
    new_word = data.draw(st.integers(0, 0xFFFF) | st.sampled_from([0, 0xFFFF]))
    _update_matches_recomputation(buffer, index, new_word)


def test_update_in_the_zero_corners() -> None:
    rng = random.Random(1624)
    for _ in range(2000):
        words = [rng.randrange(0x10000) for _ in range(rng.randrange(1, 6))]
        index = rng.randrange(len(words))
        rest = sum(words[:index] + words[index + 1 :]) % 0xFFFF
        # A new word that makes the sum 0xffff (field 0x0000), or the field 0xffff.
        for new_word in ((0xFFFF - rest) % 0xFFFF, 0xFFFF - rest if rest else 0xFFFF, 0):
            buffer = bytearray(b"".join(word.to_bytes(2, "big") for word in words))
            _update_matches_recomputation(buffer, 2 * index, new_word)


def test_update_of_a_ttl_decrement() -> None:
    header = bytearray.fromhex("45000054fa3f400040012c670a0000020a000001")
    old_word = int.from_bytes(header[8:10], "big")
    header[8] -= 1
    new_word = int.from_bytes(header[8:10], "big")
    header[10:12] = checksum_update(0x2C67, old_word, new_word).to_bytes(2, "big")
    assert internet_checksum(header) == 0
    assert header[10:12] == bytes.fromhex("2d67")


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 2**128 - 1),
    st.integers(0, 2**128 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 255),
    st.binary(max_size=64),
)
def test_ipv6_pseudo_header_sum_matches_the_word_loop(
    source: int, destination: int, length: int, next_header: int, data: bytes
) -> None:
    """RFC 8200 §8.1: 16 + 16 address bytes, a 32-bit length, 3 zeros, next header."""
    pseudo = (
        IPv6Address(source).packed
        + IPv6Address(destination).packed
        + length.to_bytes(4, "big")
        + bytes(3)
        + bytes([next_header])
    )
    total = ipv6_pseudo_header_sum(
        IPv6Address(source), IPv6Address(destination), length, next_header
    )
    assert total % 0xFFFF == sum(_words(pseudo)) % 0xFFFF
    assert internet_checksum(data, total) == reference_checksum(pseudo + data)
