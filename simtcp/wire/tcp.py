"""TCP segments (RFC 9293 §3.1) and their options (RFC 9293, RFC 7323, RFC 2018).

Options are kept as an ordered tuple so that a parsed segment builds back to the
same bytes; typed option classes cover what the stack uses, anything else is an
:class:`UnknownOption` carrying its raw bytes. Convenience properties on
:class:`TcpSegment` find the option the TCP engine wants.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from ipaddress import IPv6Address

from ..errors import DropReason, ParseError
from .checksum import (
    Buffer,
    checksum_verifies,
    ipv6_pseudo_header_sum,
    ones_complement_sum,
    pseudo_header_sum,
)
from .protocols import PROTOCOL_TCP

MIN_HEADER_LENGTH = 20
MAX_OPTIONS_LENGTH = 40

FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20
ECE = 0x40
CWR = 0x80

OPTION_EOL = 0
OPTION_NOP = 1
OPTION_MSS = 2
OPTION_WINDOW_SCALE = 3
OPTION_SACK_PERMITTED = 4
OPTION_SACK = 5
OPTION_TIMESTAMPS = 8
OPTION_FAST_OPEN = 34
"""TCP Fast Open cookie (RFC 7413 §4.1.1)."""
OPTION_EXPERIMENTAL = 254
"""RFC 6994 shared experimental option; TFO used it with ExID 0xF989 before kind 34."""
FAST_OPEN_EXID = b"\xf9\x89"

_HEADER = struct.Struct("!HHIIBBHHH")
_HEADER_WITH_TIMESTAMPS = struct.Struct("!HHIIBBHHHIII")
"""The header followed by NOP, NOP, Timestamps (RFC 7323 Appendix A): nearly every segment."""
_FRAME = struct.Struct("!6s6sHBBHHHBBHIIHHIIBBHHH")
"""Ethernet II, an option-less IPv4 header and the TCP header: ``build_ipv4_frame``."""
_FRAME_WITH_TIMESTAMPS = struct.Struct("!6s6sHBBHHHBBHIIHHIIBBHHHIII")
_NOP_NOP_TIMESTAMPS = 0x0101080A
_NOP_NOP_TIMESTAMPS_PREFIX = b"\x01\x01\x08\x0a"
_TIMESTAMP_VALUES = struct.Struct("!II")
_LARGE_PAYLOAD = 4096
"""Past this many bytes the payload's sum takes :func:`ones_complement_sum`'s chunked route."""

CHECKSUM_FULL = 0
"""``build_header``: the complete checksum over pseudo-header, header and payload."""
CHECKSUM_PARTIAL = 1
"""``build_header``: the pseudo-header sum a checksum-offloading link finishes."""
CHECKSUM_ZERO = 2
"""``build_header``: a zero checksum field."""
_FLAG_LETTERS = (
    (FIN, "F"),
    (SYN, "S"),
    (RST, "R"),
    (PSH, "P"),
    (ACK, "."),
    (URG, "U"),
    (ECE, "E"),
    (CWR, "W"),
)


@dataclass(frozen=True, slots=True)
class EndOfOptionList:
    """EOL (kind 0); ``padding`` is whatever followed it in the options area."""

    padding: bytes = b""


@dataclass(frozen=True, slots=True)
class NopOption:
    """NOP (kind 1), used to align the options after it."""


@dataclass(frozen=True, slots=True)
class MssOption:
    """Maximum segment size (kind 2), SYN only (RFC 9293 §3.7.1)."""

    mss: int


@dataclass(frozen=True, slots=True)
class WindowScaleOption:
    """Window scale shift count (kind 3, RFC 7323 §2)."""

    shift: int


@dataclass(frozen=True, slots=True)
class SackPermittedOption:
    """SACK-permitted (kind 4, RFC 2018 §2)."""


@dataclass(frozen=True, slots=True)
class SackOption:
    """SACK blocks (kind 5, RFC 2018 §3): (left edge, right edge) pairs, 1 to 4 of them."""

    blocks: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class TimestampsOption:
    """Timestamps (kind 8, RFC 7323 §3): TSval and TSecr."""

    value: int
    echo_reply: int


@dataclass(frozen=True, slots=True)
class FastOpenOption:
    """TCP Fast Open (kind 34, RFC 7413 §4.1.1): an empty cookie asks for one; a cookie
    is 4 to 16 bytes, of even length. ``experimental``: carried as the pre-RFC kind 254
    with ExID 0xF989 (RFC 6994), which the engine ignores unless configured to accept it."""

    cookie: bytes = b""
    experimental: bool = False


@dataclass(frozen=True, slots=True)
class UnknownOption:
    """Any other option (or a known kind with a wrong length), kept as raw bytes."""

    kind: int
    data: bytes


TcpOption = (
    EndOfOptionList
    | NopOption
    | MssOption
    | WindowScaleOption
    | SackPermittedOption
    | SackOption
    | TimestampsOption
    | FastOpenOption
    | UnknownOption
)

_NOP = NopOption()
_SACK_PERMITTED = SackPermittedOption()


def parse_options(data: bytes) -> tuple[TcpOption, ...]:
    """Parse an options area; ParseError when an option runs off the end or its length is < 2."""
    if len(data) == 12 and data[:4] == _NOP_NOP_TIMESTAMPS_PREFIX:
        # The layout nearly every segment carries (RFC 7323 Appendix A), in one step.
        return (_NOP, _NOP, TimestampsOption(*_TIMESTAMP_VALUES.unpack_from(data, 4)))
    return parse_options_general(data)


def parse_options_general(data: bytes) -> tuple[TcpOption, ...]:
    """:func:`parse_options` without its shortcut: option by option (the tests' oracle)."""
    end = len(data)
    options: list[TcpOption] = []
    index = 0
    while index < end:
        kind = data[index]
        if kind == OPTION_EOL:
            options.append(EndOfOptionList(data[index + 1 :]))
            break
        if kind == OPTION_NOP:
            options.append(_NOP)
            index += 1
            continue
        if index + 1 >= end:
            raise ParseError(f"TCP option {kind} has no length byte")
        length = data[index + 1]
        if length < 2 or index + length > end:
            raise ParseError(f"TCP option {kind} of length {length} at {index} in {end} bytes")
        body = data[index + 2 : index + length]
        options.append(_typed_option(kind, body))
        index += length
    return tuple(options)


def _typed_option(kind: int, body: bytes) -> TcpOption:
    size = len(body)
    if kind == OPTION_MSS and size == 2:
        return MssOption(int.from_bytes(body, "big"))
    if kind == OPTION_WINDOW_SCALE and size == 1:
        return WindowScaleOption(body[0])
    if kind == OPTION_SACK_PERMITTED and size == 0:
        return _SACK_PERMITTED
    if kind == OPTION_TIMESTAMPS and size == 8:
        value, echo_reply = struct.unpack("!II", body)
        return TimestampsOption(value, echo_reply)
    if kind == OPTION_SACK and size and size % 8 == 0:
        edges = struct.unpack(f"!{size // 4}I", body)
        return SackOption(tuple(zip(edges[0::2], edges[1::2], strict=True)))
    if kind == OPTION_FAST_OPEN and _is_fast_open_cookie(size):
        return FastOpenOption(body)
    if (
        kind == OPTION_EXPERIMENTAL
        and body[:2] == FAST_OPEN_EXID
        and _is_fast_open_cookie(size - 2)
    ):
        return FastOpenOption(body[2:], experimental=True)
    return UnknownOption(kind, body)


def _is_fast_open_cookie(size: int) -> bool:
    """RFC 7413 §4.1.1: no cookie (a request), or 4 to 16 bytes of even length."""
    return size == 0 or (4 <= size <= 16 and not size & 1)


def build_options(options: tuple[TcpOption, ...] | list[TcpOption]) -> bytes:
    """Serialise options, padding with zero bytes (EOL) to a multiple of 4."""
    raw = b"".join([_option_bytes(option) for option in options])
    if len(raw) % 4:
        raw += bytes(4 - len(raw) % 4)
    if len(raw) > MAX_OPTIONS_LENGTH:
        raise ValueError(f"TCP options of {len(raw)} bytes (at most 40)")
    return raw


def _option_bytes(option: TcpOption) -> bytes:
    """One option's bytes (kind, length, body)."""
    if isinstance(option, NopOption):
        return b"\x01"
    if isinstance(option, MssOption):
        return struct.pack("!BBH", OPTION_MSS, 4, option.mss)
    if isinstance(option, WindowScaleOption):
        return struct.pack("!BBB", OPTION_WINDOW_SCALE, 3, option.shift)
    if isinstance(option, SackPermittedOption):
        return b"\x04\x02"
    if isinstance(option, TimestampsOption):
        return struct.pack("!BBII", OPTION_TIMESTAMPS, 10, option.value, option.echo_reply)
    if isinstance(option, SackOption):
        edges = [edge for block in option.blocks for edge in block]
        return struct.pack(f"!BB{len(edges)}I", OPTION_SACK, 2 + 4 * len(edges), *edges)
    if isinstance(option, EndOfOptionList):
        return b"\x00" + option.padding
    if isinstance(option, FastOpenOption):
        if option.experimental:
            body = FAST_OPEN_EXID + option.cookie
            return bytes((OPTION_EXPERIMENTAL, len(body) + 2)) + body
        return bytes((OPTION_FAST_OPEN, len(option.cookie) + 2)) + option.cookie
    return bytes((option.kind, len(option.data) + 2)) + option.data


def _timestamps_only(options: tuple[TcpOption, ...]) -> TimestampsOption | None:
    """The Timestamps option when ``options`` are exactly NOP, NOP, Timestamps."""
    if len(options) == 3:
        timestamps = options[2]
        if (
            type(timestamps) is TimestampsOption
            and type(options[0]) is NopOption
            and type(options[1]) is NopOption
        ):
            return timestamps
    return None


def segment_pieces(payload_length: int, mss: int, flags: int) -> list[tuple[int, int]]:
    """(payload offset, flags) of each piece TSO or GSO cuts a segment into, at ``mss``.

    Linux's ``tcp_gso_segment``: FIN and PSH on the last piece only, CWR on the first
    only (RFC 3168 §6.1.2); no payload, one piece. The one home of the rule, for
    :meth:`TcpSegment.build_ipv4_frames` and :func:`simtcp.wire.offload.segment_tcp`."""
    offsets = range(0, max(payload_length, 1), mss)
    last = len(offsets) - 1
    pieces = []
    for index, offset in enumerate(offsets):
        piece_flags = flags if index == last else flags & ~(FIN | PSH)
        if index:
            piece_flags &= ~CWR
        pieces.append((offset, piece_flags))
    return pieces


def flags_to_str(flags: int) -> str:
    """Flags in tcpdump's letters: ``S``, ``S.``, ``P.``, ``F.``, ``R``."""
    return "".join(letter for bit, letter in _FLAG_LETTERS if flags & bit) or "none"


@dataclass(slots=True)
class TcpSegment:
    """One TCP segment. ``seq``/``ack`` are raw 32-bit values; ``flags`` is a bit mask.

    ``reserved`` holds the 4 bits between the data offset and the flags (AE/NS
    and friends), kept for faithful round trips. ``checksum`` is as parsed and
    not compared; ``build`` computes a fresh one.
    """

    source_port: int
    destination_port: int
    seq: int
    ack: int
    flags: int
    window: int
    options: tuple[TcpOption, ...] = ()
    payload: Buffer = b""
    urgent_pointer: int = 0
    reserved: int = 0
    checksum: int = field(default=0, compare=False)

    @classmethod
    def parse(
        cls, data: Buffer, *, source: int | None = None, destination: int | None = None
    ) -> TcpSegment:
        """Parse; the checksum is verified when both IPv4 addresses are given."""
        length = len(data)
        if length < MIN_HEADER_LENGTH:
            raise ParseError(f"TCP header of {length} bytes", DropReason.TRUNCATED)
        (
            source_port,
            destination_port,
            seq,
            ack,
            offset_byte,
            flags,
            window,
            checksum,
            urgent_pointer,
        ) = _HEADER.unpack_from(data)
        header_length = (offset_byte >> 4) * 4
        if header_length < MIN_HEADER_LENGTH or header_length > length:
            raise ParseError(f"TCP data offset of {header_length} bytes in {length}")
        if (
            source is not None
            and destination is not None
            and not checksum_verifies(
                data, pseudo_header_sum(source, destination, PROTOCOL_TCP, length)
            )
        ):
            raise ParseError("TCP checksum mismatch", DropReason.BAD_CHECKSUM)
        view = memoryview(data)
        if header_length == 32 and view[20:24] == _NOP_NOP_TIMESTAMPS_PREFIX:
            options: tuple[TcpOption, ...] = (
                _NOP,
                _NOP,
                TimestampsOption(*_TIMESTAMP_VALUES.unpack_from(data, 24)),
            )
        elif header_length > MIN_HEADER_LENGTH:
            options = parse_options(bytes(view[MIN_HEADER_LENGTH:header_length]))
        else:
            options = ()
        return cls(
            source_port,
            destination_port,
            seq,
            ack,
            flags,
            window,
            options,
            view[header_length:],
            urgent_pointer,
            offset_byte & 0x0F,
            checksum,
        )

    @classmethod
    def parse_predicted(cls, frame: Buffer, start: int, end: int) -> TcpSegment | None:
        """The segment in ``frame[start:end]`` when its header is the common one: 20 bytes,
        or 32 with exactly NOP, NOP, Timestamps (RFC 7323 Appendix A); None for any other
        (:meth:`parse` then decides, and raises what it raises).

        The receive fast path's parser: one unpack straight from the frame, no view of
        the segment but its payload's. The checksum is not looked at (the caller
        verifies it); for a segment it returns, :meth:`parse` returns an equal one.
        """
        if end - start < MIN_HEADER_LENGTH:
            return None
        words = frame[start + 12] >> 4
        if words == 5:
            (
                source_port,
                destination_port,
                seq,
                ack,
                offset_byte,
                flags,
                window,
                checksum,
                urgent_pointer,
            ) = _HEADER.unpack_from(frame, start)
            options: tuple[TcpOption, ...] = ()
        elif words == 8 and end - start >= 32:
            (
                source_port,
                destination_port,
                seq,
                ack,
                offset_byte,
                flags,
                window,
                checksum,
                urgent_pointer,
                prefix,
                value,
                echo_reply,
            ) = _HEADER_WITH_TIMESTAMPS.unpack_from(frame, start)
            if prefix != _NOP_NOP_TIMESTAMPS:
                return None
            options = (_NOP, _NOP, TimestampsOption(value, echo_reply))
        else:
            return None
        return cls(
            source_port,
            destination_port,
            seq,
            ack,
            flags,
            window,
            options,
            memoryview(frame)[start + words * 4 : end],
            urgent_pointer,
            offset_byte & 0x0F,
            checksum,
        )

    @classmethod
    def parse_ipv6(
        cls, data: Buffer, *, source: IPv6Address, destination: IPv6Address
    ) -> TcpSegment:
        """Parse a segment that came in IPv6; its checksum is always verified over RFC 8200
        §8.1's pseudo-header (:func:`~simtcp.wire.checksum.ipv6_pseudo_header_sum`)."""
        length = len(data)
        if length >= MIN_HEADER_LENGTH and not checksum_verifies(
            data, ipv6_pseudo_header_sum(source, destination, length, PROTOCOL_TCP)
        ):
            raise ParseError("TCP checksum mismatch", DropReason.BAD_CHECKSUM)
        return cls.parse(data)

    def build_ipv6(
        self,
        source: IPv6Address,
        destination: IPv6Address,
        *,
        checksum: int = CHECKSUM_FULL,
    ) -> bytes:
        """Serialise for IPv6, the checksum over RFC 8200 §8.1's pseudo-header.

        :meth:`build_header`'s inlined IPv4 pseudo-header arithmetic computes it when
        given the addresses as 128-bit integers: 65536 = 1 (mod 0xffff), so its
        ``(a >> 16) + (a & 0xffff)`` stays congruent to the sum of all eight words, and
        a TCP length below 65536 is the same term in both pseudo-headers.
        ``tests/property/test_ipv6_transport_scapy.py`` holds this against scapy.
        """
        header = self.build_header(int(source), int(destination), checksum=checksum)
        payload = self.payload
        return header + payload if payload else header

    def build(self, source: int, destination: int, *, with_checksum: bool = True) -> bytes:
        """Serialise with the pseudo-header checksum (or 0, for checksum offload)."""
        header = self.build_header(
            source, destination, checksum=CHECKSUM_FULL if with_checksum else CHECKSUM_ZERO
        )
        payload = self.payload
        return header + payload if payload else header

    def build_header(
        self, source: int, destination: int, *, checksum: int = CHECKSUM_FULL
    ) -> bytes:
        """The header and options alone, for callers that join the payload themselves.

        The checksum (:data:`CHECKSUM_FULL`, :data:`CHECKSUM_PARTIAL` or
        :data:`CHECKSUM_ZERO`) still covers the payload. The header's words
        are summed as integers, never packed twice: ones' complement sums do
        not care where a word sits (RFC 1071 §2(B)), and the header is an even
        number of bytes, so the payload's sum just adds.
        """
        timestamps, raw_options, header_length = self._layout()
        offset_byte = (header_length >> 2) << 4 | self.reserved
        value = 0
        if checksum != CHECKSUM_ZERO:
            value = self._checksum(
                source,
                destination,
                self.seq,
                self.flags,
                self.payload,
                offset_byte,
                timestamps,
                raw_options,
                partial=checksum == CHECKSUM_PARTIAL,
            )
        if timestamps is not None:
            return _HEADER_WITH_TIMESTAMPS.pack(
                self.source_port,
                self.destination_port,
                self.seq,
                self.ack,
                offset_byte,
                self.flags,
                self.window,
                value,
                self.urgent_pointer,
                _NOP_NOP_TIMESTAMPS,
                timestamps.value,
                timestamps.echo_reply,
            )
        return (
            _HEADER.pack(
                self.source_port,
                self.destination_port,
                self.seq,
                self.ack,
                offset_byte,
                self.flags,
                self.window,
                value,
                self.urgent_pointer,
            )
            + raw_options
        )

    @property
    def header_length(self) -> int:
        """Bytes of header and options :meth:`build_header` makes."""
        return self._layout()[2]

    def layout(self) -> tuple[TimestampsOption | None, bytes, int]:
        """What :meth:`build_ipv4_frame` packs the header from: (the Timestamps option
        when the options are NOP NOP TS, else the options' bytes, header length); a
        sender that needs the header length first passes it back (``layout=``)."""
        return self._layout()

    def _layout(self) -> tuple[TimestampsOption | None, bytes, int]:
        """(the Timestamps option when the options are NOP NOP TS, else the options'
        bytes, header length)."""
        options = self.options
        if not options:
            return None, b"", MIN_HEADER_LENGTH
        timestamps = _timestamps_only(options)
        if timestamps is not None:
            return timestamps, b"", 32
        raw_options = build_options(options)
        return None, raw_options, MIN_HEADER_LENGTH + len(raw_options)

    def build_ipv4_frame(
        self,
        destination_mac: bytes,
        source_mac: bytes,
        source: int,
        destination: int,
        *,
        ttl: int,
        identification: int,
        dont_fragment: bool = True,
        checksum: int = CHECKSUM_FULL,
        layout: tuple[TimestampsOption | None, bytes, int] | None = None,
    ) -> bytes:
        """The whole Ethernet II frame: an option-less IPv4 header (TOS 0) around this segment.

        The same bytes as ``build_ethernet_header`` + ``Ipv4Packet(...).build()`` around
        :meth:`build_header` and the payload, in one pack for the transmit fast path:
        both checksums are summed from the fields as integers (RFC 1071 §2(B)).
        ValueError past an IPv4 datagram's 65,535 bytes.
        """
        return self._frame(
            layout or self._layout(),
            destination_mac,
            source_mac,
            source,
            destination,
            self.seq,
            self.flags,
            self.payload,
            ttl=ttl,
            identification=identification,
            flags_offset=0x4000 if dont_fragment else 0,
            checksum=checksum,
        )

    def build_ipv4_frames(
        self,
        destination_mac: bytes,
        source_mac: bytes,
        source: int,
        destination: int,
        *,
        ttl: int,
        identification: int,
        mss: int,
    ) -> list[bytes]:
        """This segment cut into frames of at most ``mss`` payload bytes (GSO in software).

        The very frames :func:`simtcp.wire.offload.segment_tcp` cuts from
        :meth:`build_ipv4_frame`'s datagram (full checksums, DF): each piece's
        sequence number advanced by its offset, flags as :func:`segment_pieces`
        says, IP identifications counting up from
        ``identification``. ValueError when ``mss`` is not positive.
        """
        if mss <= 0:
            raise ValueError(f"MSS {mss} cannot carry data")
        layout = self._layout()
        payload = memoryview(self.payload)
        seq = self.seq
        return [
            self._frame(
                layout,
                destination_mac,
                source_mac,
                source,
                destination,
                (seq + offset) & 0xFFFFFFFF,
                piece_flags,
                payload[offset : offset + mss],
                ttl=ttl,
                identification=(identification + index) & 0xFFFF,
                flags_offset=0x4000,
                checksum=CHECKSUM_FULL,
            )
            for index, (offset, piece_flags) in enumerate(
                segment_pieces(len(payload), mss, self.flags)
            )
        ]

    def _frame(
        self,
        layout: tuple[TimestampsOption | None, bytes, int],
        destination_mac: bytes,
        source_mac: bytes,
        source: int,
        destination: int,
        seq: int,
        flags: int,
        payload: Buffer,
        *,
        ttl: int,
        identification: int,
        flags_offset: int,
        checksum: int,
    ) -> bytes:
        """One frame of this segment's ports, ACK, window and options with the given
        sequence number, flags and payload (see :meth:`build_ipv4_frame`). Per segment sent:
        ``checksum.field_of`` is inlined and the packs spelled out (measured, callgrind)."""
        timestamps, raw_options, header_length = layout
        offset_byte = (header_length >> 2) << 4 | self.reserved
        length = header_length + len(payload)
        value = 0
        if checksum != CHECKSUM_ZERO:
            value = self._checksum(
                source,
                destination,
                seq,
                flags,
                payload,
                offset_byte,
                timestamps,
                raw_options,
                partial=checksum == CHECKSUM_PARTIAL,
            )
        total_length = 20 + length
        if total_length > 0xFFFF:
            raise ValueError(f"IPv4 datagram of {total_length} bytes")
        ip_sum = (
            0x4500
            + total_length
            + identification
            + flags_offset
            + (ttl << 8 | PROTOCOL_TCP)
            + (source >> 16)
            + (source & 0xFFFF)
            + (destination >> 16)
            + (destination & 0xFFFF)
        )
        ip_checksum = ~(ip_sum % 0xFFFF or 0xFFFF) & 0xFFFF
        if timestamps is not None:
            head = _FRAME_WITH_TIMESTAMPS.pack(
                destination_mac,
                source_mac,
                0x0800,
                0x45,
                0,
                total_length,
                identification,
                flags_offset,
                ttl,
                PROTOCOL_TCP,
                ip_checksum,
                source,
                destination,
                self.source_port,
                self.destination_port,
                seq,
                self.ack,
                offset_byte,
                flags,
                self.window,
                value,
                self.urgent_pointer,
                _NOP_NOP_TIMESTAMPS,
                timestamps.value,
                timestamps.echo_reply,
            )
        else:
            head = (
                _FRAME.pack(
                    destination_mac,
                    source_mac,
                    0x0800,
                    0x45,
                    0,
                    total_length,
                    identification,
                    flags_offset,
                    ttl,
                    PROTOCOL_TCP,
                    ip_checksum,
                    source,
                    destination,
                    self.source_port,
                    self.destination_port,
                    seq,
                    self.ack,
                    offset_byte,
                    flags,
                    self.window,
                    value,
                    self.urgent_pointer,
                )
                + raw_options
            )
        return head + payload if payload else head

    def _checksum(
        self,
        source: int,
        destination: int,
        seq: int,
        flags: int,
        payload: Buffer,
        offset_byte: int,
        timestamps: TimestampsOption | None,
        raw_options: bytes,
        *,
        partial: bool,
    ) -> int:
        """The checksum field (RFC 9293 §3.1) of this segment with that sequence number,
        flags and payload."""
        size = len(payload)
        # checksum.pseudo_header_sum, inlined: this runs for every segment sent.
        total = (
            (source >> 16)
            + (source & 0xFFFF)
            + (destination >> 16)
            + (destination & 0xFFFF)
            + PROTOCOL_TCP
            + (offset_byte >> 4) * 4
            + size
        )
        if partial:
            return total % 0xFFFF or 0xFFFF  # checksum.fold (total > 0), not complemented
        ack = self.ack
        total += (
            self.source_port
            + self.destination_port
            + (seq >> 16)
            + (seq & 0xFFFF)
            + (ack >> 16)
            + (ack & 0xFFFF)
            + (offset_byte << 8 | flags)
            + self.window
            + self.urgent_pointer
        )
        if timestamps is not None:
            tsval = timestamps.value
            tsecr = timestamps.echo_reply
            total += (
                0x0101
                + 0x080A
                + (tsval >> 16)
                + (tsval & 0xFFFF)
                + (tsecr >> 16)
                + (tsecr & 0xFFFF)
            )
        elif raw_options:
            total += int.from_bytes(raw_options, "big")
        if size > _LARGE_PAYLOAD:
            total += ones_complement_sum(payload)
        elif size:
            total += (
                int.from_bytes(payload, "big") << 8 if size & 1 else int.from_bytes(payload, "big")
            )
        return ~(total % 0xFFFF or 0xFFFF) & 0xFFFF  # checksum.field_of, inlined

    # --- what the TCP engine asks of a segment ------------------------------

    @property
    def segment_length(self) -> int:
        """SEG.LEN: payload bytes plus one each for SYN and FIN (RFC 9293 §3.4)."""
        return len(self.payload) + (1 if self.flags & SYN else 0) + (1 if self.flags & FIN else 0)

    @property
    def mss(self) -> int | None:
        for option in self.options:
            if isinstance(option, MssOption):
                return option.mss
        return None

    @property
    def window_scale(self) -> int | None:
        for option in self.options:
            if isinstance(option, WindowScaleOption):
                return option.shift
        return None

    @property
    def sack_permitted(self) -> bool:
        return any(isinstance(option, SackPermittedOption) for option in self.options)

    @property
    def sack_blocks(self) -> tuple[tuple[int, int], ...]:
        for option in self.options:
            if isinstance(option, SackOption):
                return option.blocks
        return ()

    @property
    def fast_open(self) -> FastOpenOption | None:
        """The TCP Fast Open option (RFC 7413), kind 34 or the experimental 254."""
        for option in self.options:
            if type(option) is FastOpenOption:
                return option
        return None

    @property
    def timestamps(self) -> TimestampsOption | None:
        for option in self.options:
            if isinstance(option, TimestampsOption):
                return option
        return None

    def describe(self) -> str:
        """A tcpdump-like one-liner for logs and test failures."""
        text = (
            f"{self.source_port} > {self.destination_port} [{flags_to_str(self.flags)}] "
            f"seq {self.seq} ack {self.ack} win {self.window} len {len(self.payload)}"
        )
        return text + (f" {list(self.options)}" if self.options else "")
