"""SendBuffer keeps chunks; a bytearray consumed at the front is its oracle.

The chunked buffer (``simtcp.tcp.buffers.SendBuffer``) must answer every
``append``, ``acknowledge``, ``slice``, ``end``, ``free_space`` and ``len``
exactly as the plain ``bytearray`` version it replaced, for any interleaving,
with appends of ``bytes``, ``bytearray`` and ``memoryview`` that are small
(merged into the last chunk), large, or larger than the room left.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp.tcp.buffers import SMALL_CHUNK, SendBuffer


class ByteArraySendBuffer:
    """The previous implementation: one bytearray from ``base`` on."""

    def __init__(self, *, base: int, capacity: int) -> None:
        self.data = bytearray()
        self.base = base
        self.capacity = capacity

    @property
    def end(self) -> int:
        return self.base + len(self.data)

    def append(self, data: bytes) -> int:
        room = self.capacity - len(self.data)
        if room <= 0:
            return 0
        taken = data[:room]
        self.data += taken
        return len(taken)

    def acknowledge(self, ack: int) -> None:
        count = ack - self.base
        if count <= 0:
            return
        if count >= len(self.data):
            self.base += len(self.data)
            self.data.clear()
            return
        del self.data[:count]
        self.base = ack

    def slice(self, seq: int, size: int) -> bytes:
        start = seq - self.base
        return bytes(self.data[start:start + size])


SIZES = st.one_of(st.integers(0, 40), st.integers(SMALL_CHUNK - 3, SMALL_CHUNK + 3),
                  st.integers(0, 3 * SMALL_CHUNK))
OPERATIONS = st.lists(st.one_of(
    st.tuples(st.just("append"), SIZES, st.sampled_from(["bytes", "bytearray", "memoryview"])),
    st.tuples(st.just("acknowledge"), st.integers(-5, 3 * SMALL_CHUNK), st.just("")),
    st.tuples(st.just("slice"), st.integers(-5, 3 * SMALL_CHUNK), SIZES),
), max_size=60)


@settings(max_examples=300, deadline=None)
@given(capacity=st.integers(1, 4 * SMALL_CHUNK), base=st.integers(0, 1 << 40),
       operations=OPERATIONS)
def test_chunked_send_buffer_equals_the_bytearray_one(
        capacity: int, base: int, operations: list[tuple[str, int, object]]) -> None:
    chunked = SendBuffer(base=base, capacity=capacity)
    oracle = ByteArraySendBuffer(base=base, capacity=capacity)
    counter = 0
    for name, number, extra in operations:
        if name == "append":
            payload = bytes((counter + i) % 251 for i in range(number))
            counter += number
            given_data: bytes | bytearray | memoryview = payload
            if extra == "bytearray":
                given_data = bytearray(payload)
            elif extra == "memoryview":
                given_data = memoryview(payload)
            assert chunked.append(given_data) == oracle.append(payload)
        elif name == "acknowledge":
            ack = oracle.base + number
            chunked.acknowledge(ack)
            oracle.acknowledge(ack)
        else:
            seq = oracle.base + number
            assert isinstance(extra, int)
            assert chunked.slice(seq, extra) == oracle.slice(seq, extra)
        assert (chunked.base, chunked.end, len(chunked), chunked.free_space) == (
            oracle.base, oracle.end, len(oracle.data), capacity - len(oracle.data))
    assert chunked.slice(oracle.base, capacity) == bytes(oracle.data)


def test_a_whole_chunk_is_sliced_without_a_copy() -> None:
    buffer = SendBuffer(base=0, capacity=1 << 20)
    first, second = b"a" * 65536, b"b" * 65536
    buffer.append(first)
    buffer.append(second)
    assert buffer.slice(65536, 65536) is second
    assert buffer.slice(65536 - 10, 20) == b"a" * 10 + b"b" * 10
    buffer.acknowledge(65536 + 5)
    assert buffer.slice(65536 + 5, 10) == b"b" * 10


def test_many_small_appends_make_few_chunks() -> None:
    buffer = SendBuffer(base=0, capacity=1 << 20)
    for _ in range(10_000):
        buffer.append(b"x")
    assert buffer.slice(0, 20_000) == b"x" * 10_000
    assert len(buffer._chunks) <= 10_000 // (SMALL_CHUNK // 2) + 1
