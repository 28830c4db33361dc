"""Classic libpcap capture files (LINKTYPE_ETHERNET), timestamps from virtual time."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

from ..errors import ParseError
from .checksum import Buffer

MAGIC_MICROSECONDS = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1
DEFAULT_SNAPLEN = 262144

_FILE_HEADER = struct.Struct("<IHHiIII")
_RECORD_HEADER = struct.Struct("<IIII")


class PcapWriter:
    """Writes frames to a binary stream; the caller owns (and closes) the stream."""

    def __init__(self, stream: BinaryIO, *, snaplen: int = DEFAULT_SNAPLEN) -> None:
        self._stream = stream
        self._snaplen = snaplen
        stream.write(_FILE_HEADER.pack(MAGIC_MICROSECONDS, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET))

    def write(self, timestamp_us: int, frame: Buffer) -> None:
        """Record one frame at ``timestamp_us`` (microseconds, virtual or real)."""
        captured = bytes(frame[: self._snaplen])
        seconds, micros = divmod(timestamp_us, 1_000_000)
        self._stream.write(_RECORD_HEADER.pack(seconds, micros, len(captured), len(frame)))
        self._stream.write(captured)

    def flush(self) -> None:
        self._stream.flush()


def read_pcap(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """Yield (timestamp in microseconds, frame) from a little- or big-endian microsecond pcap."""
    header = stream.read(_FILE_HEADER.size)
    if len(header) < _FILE_HEADER.size:
        raise ParseError("pcap file header truncated")
    magic = struct.unpack("<I", header[:4])[0]
    if magic == MAGIC_MICROSECONDS:
        record = _RECORD_HEADER
    elif magic == 0xD4C3B2A1:
        record = struct.Struct(">IIII")
    else:
        raise ParseError(f"not a microsecond pcap file (magic {magic:#x})")
    while True:
        raw = stream.read(record.size)
        if not raw:
            return
        if len(raw) < record.size:
            raise ParseError("pcap record header truncated")
        seconds, micros, captured_length, _ = record.unpack(raw)
        frame = stream.read(captured_length)
        if len(frame) < captured_length:
            raise ParseError("pcap record truncated")
        yield seconds * 1_000_000 + micros, frame
