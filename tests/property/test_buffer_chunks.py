"""SendBuffer and ReceiveBuffer keep chunks; a bytearray consumed at the front is the oracle.

The chunked buffer (``simtcp.tcp.buffers.SendBuffer``) must answer every
``append``, ``acknowledge``, ``slice``, ``end``, ``free_space`` and ``len``
exactly as the plain ``bytearray`` version it replaced, for any interleaving,
with appends of ``bytes``, ``bytearray`` and ``memoryview`` that are small
(merged into the last chunk), large, or larger than the room left. The
receive buffer's in-order queue must hand out the same bytes as the bytearray
it replaced for any mix of in-order segments, out-of-order segments pulled in
when the gap fills, and reads of any size.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp.tcp.buffers import SMALL_CHUNK, SMALL_SEGMENT, ReceiveBuffer, SendBuffer


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
        return bytes(self.data[start : start + size])


SIZES = st.one_of(
    st.integers(0, 40),
    st.integers(SMALL_CHUNK - 3, SMALL_CHUNK + 3),
    st.integers(0, 3 * SMALL_CHUNK),
)
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("append"), SIZES, st.sampled_from(["bytes", "bytearray", "memoryview"])),
        st.tuples(st.just("acknowledge"), st.integers(-5, 3 * SMALL_CHUNK), st.just("")),
        st.tuples(st.just("slice"), st.integers(-5, 3 * SMALL_CHUNK), SIZES),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(
    capacity=st.integers(1, 4 * SMALL_CHUNK), base=st.integers(0, 1 << 40), operations=OPERATIONS
)
def test_chunked_send_buffer_equals_the_bytearray_one(
    capacity: int, base: int, operations: list[tuple[str, int, object]]
) -> None:
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
            oracle.base,
            oracle.end,
            len(oracle.data),
            capacity - len(oracle.data),
        )
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


class ByteArrayReadQueue:
    """The previous in-order queue of ReceiveBuffer: one bytearray."""

    def __init__(self) -> None:
        self.readable = bytearray()

    def read(self, max_bytes: int) -> bytes:
        if max_bytes < 0 or max_bytes >= len(self.readable):
            data = bytes(self.readable)
            self.readable.clear()
            return data
        data = bytes(self.readable[:max_bytes])
        del self.readable[:max_bytes]
        return data


RECEIVE_OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("segment"), SIZES, st.integers(0, 2 * SMALL_CHUNK)),
        st.tuples(st.just("read"), st.one_of(st.just(-1), SIZES), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(operations=RECEIVE_OPERATIONS, rcv_nxt=st.integers(0, 1 << 40))
def test_receive_queue_equals_the_bytearray_one(
    operations: list[tuple[str, int, int]], rcv_nxt: int
) -> None:
    """In-order data, out-of-order data pulled in later, reads of any size: the same bytes."""
    buffer = ReceiveBuffer(capacity=1 << 30, max_blocks=8)
    oracle = ByteArrayReadQueue()
    stream = bytes(index % 253 for index in range(64 * SMALL_CHUNK))
    sent = 0  # stream bytes given to the buffer in order (directly or by filling a gap)
    held: list[tuple[int, int]] = []  # out-of-order ranges given, relative to the stream
    base = rcv_nxt
    pushed = 0  # stream bytes the oracle has received
    for name, size, gap in operations:
        if name == "segment":
            start = sent + gap
            end = min(start + size, len(stream))
            if start >= end:
                continue
            new_rcv_nxt = buffer.add(base + start, memoryview(stream)[start:end], base + sent)
            if new_rcv_nxt < 0:
                continue
            if gap:
                held.append((start, end))
            else:
                sent = end
            # Held ranges that now continue the in-order data are pulled in.
            for held_start, held_end in sorted(held):
                if held_start <= sent < held_end:
                    sent = held_end
            held = [(s, e) for s, e in held if e > sent]
            oracle.readable += stream[pushed:sent]
            pushed = sent
            assert new_rcv_nxt == base + sent
        else:
            assert buffer.read(size) == oracle.read(size)
        assert buffer.available == len(oracle.readable)
        assert buffer.readable == bytes(oracle.readable)
        assert buffer.free_space == (1 << 30) - len(oracle.readable)


def test_a_read_of_one_whole_segment_takes_it_without_a_copy() -> None:
    buffer = ReceiveBuffer(capacity=1 << 20, max_blocks=4)
    segment = b"s" * 65536
    buffer.add(0, segment, 0)
    buffer.add(65536, b"t" * 65536, 65536)
    assert buffer.read(65536) is segment
    assert buffer.read(10) == b"t" * 10
    assert buffer.read(-1) == b"t" * (65536 - 10)
    assert buffer.available == 0 and buffer.read(-1) == b""


def test_a_segment_overlapping_a_held_block_pulls_in_only_its_new_bytes() -> None:
    buffer = ReceiveBuffer(capacity=1 << 20, max_blocks=4)
    stream = bytes(range(200))
    assert buffer.add(100, stream[100:150], 0) == 0  # held out of order
    assert buffer.add(0, stream[0:120], 0) == 150  # overlaps the held block by 20 bytes
    assert buffer.read(-1) == stream[:150]


def test_tiny_segments_are_merged_and_full_ones_kept_apart() -> None:
    buffer = ReceiveBuffer(capacity=1 << 22, max_blocks=4)
    stream = bytes(index % 241 for index in range(100_000))
    rcv_nxt = 0
    for size in [10] * 150 + [SMALL_SEGMENT] * 3 + [10] * 5:
        rcv_nxt = buffer.add(rcv_nxt, stream[rcv_nxt : rcv_nxt + size], rcv_nxt)
    assert [len(chunk) for chunk in buffer._queue] == [1030, 470] + [SMALL_SEGMENT] * 3 + [50]
    assert buffer.read(1025) == stream[:1025]
    assert buffer.read(-1) == stream[1025:rcv_nxt]
