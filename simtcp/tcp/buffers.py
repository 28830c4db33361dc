"""The send buffer and the receive buffer with bounded out-of-order reassembly.

Both keep sequence numbers absolute (see :mod:`.seq`). Queued bytes live in
lists of immutable chunks, not in one ``bytearray``: CPython removes bytes from
the front of a bytearray by moving a start pointer, but once that pointer has
moved, every append that must grow the array copies all of it, which for a
full buffer consumed at the front and refilled at the back is nearly every
append. Out-of-order blocks stay bytearrays (they only grow). No per-byte
Python loop runs anywhere.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque

from ..wire.checksum import Buffer


class SendBuffer:
    """Bytes the application queued, from SND.UNA's first data byte onwards.

    ``base`` is the absolute sequence number of the first byte not yet
    acknowledged; bytes below it are gone. SYN and FIN take sequence space but
    no bytes. The bytes live in a list of immutable chunks, each the ``bytes``
    one ``append`` took (no copy when the application passed ``bytes``), so
    queueing never moves what is already queued: a ``bytearray`` that is consumed
    at the front and appended at the back is copied whole by CPython whenever it
    must grow, that is about once per append on a full buffer (an echo of 16
    streams spent 4.5% of its time there). Small appends go to an open
    ``bytearray`` tail chunk of at most about ``SMALL_CHUNK`` bytes (only ever
    appended to), so the chunk count stays below ``2 * capacity / SMALL_CHUNK``.
    """

    __slots__ = ("base", "capacity", "_chunks", "_starts", "_end", "_tail")

    def __init__(self, *, base: int, capacity: int) -> None:
        self.base = base
        self.capacity = capacity
        self._chunks: list[bytes | bytearray] = []
        """The queued bytes in order; the first may begin below ``base`` (acknowledged
        bytes kept until the whole chunk is)."""
        self._starts: list[int] = []
        """Absolute sequence number of each chunk's first byte."""
        self._end = base
        self._tail: bytearray | None = None
        """The last chunk while it still takes small appends."""

    @property
    def end(self) -> int:
        """Absolute sequence number just after the last queued byte."""
        return self._end

    @property
    def free_space(self) -> int:
        return self.capacity - (self._end - self.base)

    def __len__(self) -> int:
        return self._end - self.base

    def append(self, data: Buffer) -> int:
        """Queue as much of ``data`` as fits; return how many bytes were taken."""
        end = self._end
        room = self.capacity - (end - self.base)
        size = len(data)
        if room <= 0 or not size:
            return 0
        if size > room:
            data = memoryview(data)[:room]
            size = room
        if size < SMALL_CHUNK:
            tail = self._tail
            if tail is not None and len(tail) < SMALL_CHUNK:
                tail += data  # small writes: amortised, into one small chunk
            else:
                self._tail = bytearray(data)
                self._chunks.append(self._tail)
                self._starts.append(end)
        else:
            self._chunks.append(data if type(data) is bytes else bytes(data))
            self._starts.append(end)
            self._tail = None
        self._end = end + size
        return size

    def acknowledge(self, ack: int) -> None:
        """Drop every byte below absolute sequence ``ack``."""
        if ack <= self.base:
            return
        if ack >= self._end:
            self.base = self._end
            self._chunks.clear()
            self._starts.clear()
            self._tail = None
            return
        self.base = ack
        starts = self._starts
        first = bisect_right(starts, ack) - 1  # the chunk holding byte ``ack``
        if first:
            del starts[:first]
            del self._chunks[:first]

    def slice(self, seq: int, size: int) -> bytes:
        """``size`` bytes starting at absolute sequence ``seq`` (fewer at the end)."""
        stop = seq + size
        if stop > self._end:
            stop = self._end
        if stop <= seq:
            return b""
        if seq < self.base:
            # Never asked by the engine; answered as the old bytearray slice did.
            whole = b"".join(self._chunks)[self.base - self._starts[0] :] if self._chunks else b""
            return whole[seq - self.base : seq - self.base + size]
        starts = self._starts
        chunks = self._chunks
        index = bisect_right(starts, seq) - 1
        chunk = chunks[index]
        offset = seq - starts[index]
        if stop - starts[index] <= len(chunk):
            if type(chunk) is bytes:
                return chunk[offset : stop - starts[index]]  # a whole chunk: no copy at all
            return bytes(chunk[offset : stop - starts[index]])  # a small tail chunk
        index += 1
        following = chunks[index]
        cut = stop - starts[index]
        if cut <= len(following):  # across one boundary, the usual case
            if stop - seq <= SMALL_CHUNK:  # small: slicing beats making memoryviews
                return b"".join((chunk[offset:], following[:cut]))
            return b"".join((memoryview(chunk)[offset:], memoryview(following)[:cut]))
        parts: list[Buffer] = [memoryview(chunk)[offset:]]
        while starts[index] + len(chunks[index]) < stop:
            parts.append(chunks[index])
            index += 1
        parts.append(memoryview(chunks[index])[: stop - starts[index]])
        return b"".join(parts)


SMALL_CHUNK = 4096
"""Appends shorter than this are merged into a last chunk shorter than this."""


SMALL_SEGMENT = 1024
"""In-order segments shorter than this are merged into a last chunk shorter than this;
longer ones stay chunks of their own (merging them would copy every byte again)."""
BYTES_PER_HELD_BLOCK = 2048
"""Out-of-order blocks a receive buffer may hold: at least one per this many bytes of
its capacity (segments of about one MSS with a hole of one between them)."""


class ReceiveBuffer:
    """In-order bytes waiting for the application, plus out-of-order blocks.

    Out-of-order blocks are kept sorted, disjoint and non-adjacent; the caller
    trims every segment to the advertised window first, so what is held never
    exceeds the window (RFC 9293 §3.10.7.4, "seventh"). ``max_blocks`` bounds
    the bookkeeping when a peer sends many small holes. With SACK it is raised
    to one block per ``BYTES_PER_HELD_BLOCK`` of capacity: a large window that a
    drop-tail queue thinned to every other segment holds that many blocks, and
    dropping them turns every one into a retransmission. Without SACK it is
    not: a NewReno sender cannot see them and after a timeout resends what
    follows each hole anyway, and holding them measured slower (a lossless
    100 Mbit/s, 40 ms bench: 39 instead of 95 Mbit/s, repeated recoveries).

    In-order bytes wait as a queue of immutable chunks (one per segment; tiny
    ones merged, see ``SMALL_SEGMENT``), for the same reason as the send
    buffer's: a bytearray appended at the back while the application reads from
    the front is copied whole by CPython each time it grows. A read that takes
    exactly one whole chunk returns it without a copy; any other read joins once.
    """

    __slots__ = (
        "available",
        "capacity",
        "max_blocks",
        "sack_blocks",
        "_queue",
        "_offset",
        "_starts",
        "_blocks",
        "_ooo_bytes",
    )

    def __init__(self, *, capacity: int, max_blocks: int) -> None:
        self.available = 0
        """In-order bytes waiting for the application."""
        self.capacity = capacity
        self.max_blocks = max_blocks
        self.sack_blocks = False
        """The connection reports blocks by SACK: hold up to one per
        ``BYTES_PER_HELD_BLOCK`` of capacity when that exceeds ``max_blocks``."""
        self._queue: deque[bytes] = deque()
        self._offset = 0
        """Bytes of ``_queue[0]`` the application already took."""
        self._starts: list[int] = []
        self._blocks: list[bytearray] = []
        self._ooo_bytes = 0

    @property
    def readable(self) -> bytes:
        """A copy of the in-order bytes waiting (for inspection; :meth:`read` takes them)."""
        if not self._queue:
            return b""
        return b"".join(self._queue)[self._offset :]

    @property
    def free_space(self) -> int:
        """Room for more in-order bytes: what bounds the advertised window."""
        return self.capacity - self.available

    def _push(self, data: Buffer) -> None:
        size = len(data)
        if not size:
            return
        piece = data if type(data) is bytes else bytes(data)
        queue = self._queue
        if size < SMALL_SEGMENT and queue and len(queue[-1]) < SMALL_SEGMENT:
            queue[-1] += piece  # tiny segments (interactive traffic): few, small chunks
        else:
            queue.append(piece)
        self.available += size

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
            size = len(payload)
            if size >= SMALL_SEGMENT:  # the bulk case, inline: _push without the call
                self._queue.append(payload if type(payload) is bytes else bytes(payload))
                self.available += size
            else:
                self._push(payload)
            rcv_nxt += size
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
        while count < len(starts) and starts[count] <= rcv_nxt:
            start = starts[count]
            block = blocks[count]
            self._ooo_bytes -= len(block)
            end = start + len(block)
            if end > rcv_nxt:
                self._push(memoryview(block)[rcv_nxt - start :])
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
            held = len(starts)
            if held >= self.max_blocks and (
                not self.sack_blocks or held >= self.capacity // BYTES_PER_HELD_BLOCK
            ):
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
                block += memoryview(payload)[block_end - seq :]
                self._ooo_bytes += end - block_end
            return True
        new_start = min(seq, block_start)
        new_end = max(end, starts[last - 1] + len(blocks[last - 1]))
        merged = bytearray(new_end - new_start)
        for index in range(first, last):
            offset = starts[index] - new_start
            block = blocks[index]
            merged[offset : offset + len(block)] = block
            self._ooo_bytes -= len(block)
        merged[seq - new_start : end - new_start] = payload
        starts[first:last] = [new_start]
        blocks[first:last] = [merged]
        self._ooo_bytes += len(merged)
        return True

    def read(self, max_bytes: int) -> bytes:
        """Take up to ``max_bytes`` in-order bytes (all of them when negative)."""
        queue = self._queue
        if not queue or not max_bytes:
            return b""
        wanted = self.available if max_bytes < 0 or max_bytes > self.available else max_bytes
        self.available -= wanted
        offset = self._offset
        first = queue[0]
        if offset == 0 and len(first) == wanted:
            queue.popleft()
            return first  # one whole chunk: no copy
        if len(first) - offset > wanted:
            self._offset = offset + wanted
            return first[offset : offset + wanted]
        parts: list[Buffer] = []
        while wanted:
            chunk = queue[0]
            left = len(chunk) - offset
            if left > wanted:
                parts.append(memoryview(chunk)[offset : offset + wanted])
                offset += wanted
                break
            parts.append(memoryview(chunk)[offset:] if offset else chunk)
            queue.popleft()
            offset = 0
            wanted -= left
        self._offset = offset
        return b"".join(parts)
