"""The send buffer and the receive buffer with bounded out-of-order reassembly.

Both keep sequence numbers absolute (see :mod:`.seq`). Bytes live in
``bytearray`` objects: CPython removes bytes from the front of a bytearray by
moving a start pointer, so consuming from the front is O(1) amortised, and no
per-byte Python loop runs anywhere.
"""

from __future__ import annotations

from bisect import bisect_right

from ..wire.checksum import Buffer


class SendBuffer:
    """Bytes the application queued, from SND.UNA's first data byte onwards.

    ``base`` is the absolute sequence number of ``data[0]``; bytes below it were
    acknowledged and are gone. SYN and FIN take sequence space but no bytes.
    """

    __slots__ = ("data", "base", "capacity")

    def __init__(self, *, base: int, capacity: int) -> None:
        self.data = bytearray()
        self.base = base
        self.capacity = capacity

    @property
    def end(self) -> int:
        """Absolute sequence number just after the last queued byte."""
        return self.base + len(self.data)

    @property
    def free_space(self) -> int:
        return self.capacity - len(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def append(self, data: Buffer) -> int:
        """Queue as much of ``data`` as fits; return how many bytes were taken."""
        room = self.capacity - len(self.data)
        if room <= 0:
            return 0
        size = len(data)
        if size <= room:
            self.data += data
            return size
        self.data += memoryview(data)[:room]
        return room

    def acknowledge(self, ack: int) -> None:
        """Drop every byte below absolute sequence ``ack``."""
        count = ack - self.base
        if count <= 0:
            return
        data = self.data
        if count >= len(data):
            self.base += len(data)
            data.clear()
            return
        del data[:count]
        self.base = ack

    def slice(self, seq: int, size: int) -> bytes:
        """``size`` bytes starting at absolute sequence ``seq`` (fewer at the end)."""
        start = seq - self.base
        return bytes(self.data[start:start + size])


class ReceiveBuffer:
    """In-order bytes waiting for the application, plus out-of-order blocks.

    Out-of-order blocks are kept sorted, disjoint and non-adjacent; the caller
    trims every segment to the advertised window first, so what is held never
    exceeds the window (RFC 9293 §3.10.7.4, "seventh"). ``max_blocks`` bounds
    the bookkeeping when a peer sends many small holes.
    """

    __slots__ = ("readable", "capacity", "max_blocks", "_starts", "_blocks", "_ooo_bytes")

    def __init__(self, *, capacity: int, max_blocks: int) -> None:
        self.readable = bytearray()
        self.capacity = capacity
        self.max_blocks = max_blocks
        self._starts: list[int] = []
        self._blocks: list[bytearray] = []
        self._ooo_bytes = 0

    @property
    def free_space(self) -> int:
        """Room for more in-order bytes: what bounds the advertised window."""
        return self.capacity - len(self.readable)

    @property
    def out_of_order_bytes(self) -> int:
        return self._ooo_bytes

    @property
    def has_out_of_order(self) -> bool:
        return bool(self._starts)

    def out_of_order_blocks(self) -> list[tuple[int, int]]:
        """(start, end) absolute ranges held out of order, in sequence order."""
        pairs = zip(self._starts, self._blocks, strict=True)
        return [(start, start + len(block)) for start, block in pairs]

    def add(self, seq: int, payload: Buffer, rcv_nxt: int) -> int:
        """Store a segment's bytes already trimmed to [rcv_nxt, window edge); return RCV.NXT.

        Returns the new RCV.NXT. In-order bytes go to the application queue and
        pull any out-of-order blocks that now continue them. Returns ``-1``
        when an out-of-order block had to be dropped because ``max_blocks``
        blocks are already held.
        """
        if seq == rcv_nxt:
            self.readable += payload
            rcv_nxt += len(payload)
            if self._starts and self._starts[0] <= rcv_nxt:
                rcv_nxt = self._drain(rcv_nxt)
            return rcv_nxt
        if not self._insert(seq, payload):
            return -1
        return rcv_nxt

    def _drain(self, rcv_nxt: int) -> int:
        starts = self._starts
        blocks = self._blocks
        count = 0
        readable = self.readable
        while count < len(starts) and starts[count] <= rcv_nxt:
            start = starts[count]
            block = blocks[count]
            self._ooo_bytes -= len(block)
            end = start + len(block)
            if end > rcv_nxt:
                readable += memoryview(block)[rcv_nxt - start:]
                rcv_nxt = end
            count += 1
        del starts[:count]
        del blocks[:count]
        return rcv_nxt

    def _insert(self, seq: int, payload: Buffer) -> bool:
        starts = self._starts
        blocks = self._blocks
        end = seq + len(payload)
        first = bisect_right(starts, seq) - 1
        if first < 0 or starts[first] + len(blocks[first]) < seq:
            first += 1  # no block starting at or before seq touches it
        last = first
        while last < len(starts) and starts[last] <= end:
            last += 1
        if last == first:
            if len(starts) >= self.max_blocks:
                return False
            starts.insert(first, seq)
            blocks.insert(first, bytearray(payload))
            self._ooo_bytes += end - seq
            return True
        block_start = starts[first]
        if last == first + 1 and block_start <= seq:
            # Common case: extends (or repeats) one block on its right.
            block = blocks[first]
            block_end = block_start + len(block)
            if end > block_end:
                block += memoryview(payload)[block_end - seq:]
                self._ooo_bytes += end - block_end
            return True
        new_start = min(seq, block_start)
        new_end = max(end, starts[last - 1] + len(blocks[last - 1]))
        merged = bytearray(new_end - new_start)
        for index in range(first, last):
            offset = starts[index] - new_start
            block = blocks[index]
            merged[offset:offset + len(block)] = block
            self._ooo_bytes -= len(block)
        merged[seq - new_start:end - new_start] = payload
        starts[first:last] = [new_start]
        blocks[first:last] = [merged]
        self._ooo_bytes += len(merged)
        return True

    def read(self, max_bytes: int) -> bytes:
        """Take up to ``max_bytes`` in-order bytes (all of them when negative)."""
        readable = self.readable
        if max_bytes < 0 or max_bytes >= len(readable):
            data = bytes(readable)
            readable.clear()
            return data
        data = bytes(readable[:max_bytes])
        del readable[:max_bytes]
        return data
