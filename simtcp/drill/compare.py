"""Render segments as packetdrill lines, and compare an expected line with an actual segment."""

from __future__ import annotations

from ..wire.tcp import (
    ACK,
    PSH,
    EndOfOptionList,
    FastOpenOption,
    MssOption,
    NopOption,
    SackOption,
    SackPermittedOption,
    TcpOption,
    TcpSegment,
    TimestampsOption,
    UnknownOption,
    WindowScaleOption,
)
from .model import PacketEvent
from .parser import ANY_TS, FLAG_BITS
from .peer import SequenceSpace, options_to_script

_FLAG_ORDER = "FSRP.UEW"


def format_flags(flags: int) -> str:
    """Flag bits in packetdrill's letters and order: ``S.``, ``P.``, ``F.``, ``R``."""
    return "".join(letter for letter in _FLAG_ORDER if flags & FLAG_BITS[letter]) or "-"


def format_option(option: TcpOption) -> str:
    if isinstance(option, MssOption):
        return f"mss {option.mss}"
    if isinstance(option, WindowScaleOption):
        return f"wscale {option.shift}"
    if isinstance(option, SackPermittedOption):
        return "sackOK"
    if isinstance(option, SackOption):
        return "sack " + " ".join(f"{left}:{right}" for left, right in option.blocks)
    if isinstance(option, TimestampsOption):
        return f"TS val {option.value} ecr {option.echo_reply}"
    if isinstance(option, NopOption):
        return "nop"
    if isinstance(option, EndOfOptionList):
        return "eol"
    if isinstance(option, UnknownOption):
        return f"opt{option.kind} {option.data.hex() or '-'}"
    if isinstance(option, FastOpenOption):
        return f"FO {option.cookie.hex()}" if option.cookie else "FO"
    raise TypeError(option)


def format_options(options: tuple[TcpOption, ...] | None) -> str:
    if options is None:
        return " <...>"
    return f" <{','.join(format_option(option) for option in options)}>" if options else ""


def format_line(
    *,
    inbound: bool,
    flags: int,
    seq: int,
    length: int,
    ack: int | None,
    window: int | None,
    options: tuple[TcpOption, ...] | None,
    urgent_pointer: int | None = None,
) -> str:
    """``> S. 0:0(0) ack 1 win 65535 <mss 1460>``: one packetdrill packet line (no time)."""
    text = f"{'<' if inbound else '>'} {format_flags(flags)} {seq}:{(seq + length) % 2**32}"
    text += f"({length})"
    if ack is not None:
        text += f" ack {ack}"
    if window is not None:
        text += f" win {window}"
    if urgent_pointer:
        text += f" urg {urgent_pointer}"
    return text + format_options(options)


def format_expected(event: PacketEvent) -> str:
    return format_line(
        inbound=event.inbound,
        flags=event.flags,
        seq=event.seq_start,
        length=event.payload_length,
        ack=event.ack,
        window=event.window,
        options=event.options,
        urgent_pointer=event.urgent_pointer,
    )


def format_actual(segment: TcpSegment, *, sender: SequenceSpace, acked: SequenceSpace) -> str:
    """An outbound segment as a packetdrill line, numbers relative to each side's ISN."""
    options = options_to_script(segment.options, acked=acked)
    return format_line(
        inbound=False,
        flags=segment.flags,
        seq=sender.to_script(segment.seq),
        length=len(segment.payload),
        ack=acked.to_script(segment.ack) if segment.flags & ACK else None,
        window=segment.window,
        options=options,
        urgent_pointer=segment.urgent_pointer,
    )


def _comparable_options(options: tuple[TcpOption, ...], keep_eol: bool) -> list[TcpOption]:
    result: list[TcpOption] = []
    for option in options:
        if isinstance(option, TimestampsOption):
            option = TimestampsOption(0, option.echo_reply)  # TSval is the stack's clock
        elif isinstance(option, EndOfOptionList):
            if not keep_eol and not option.padding.strip(b"\0"):
                break
            option = EndOfOptionList()
        result.append(option)
    return result


def _any_echo(
    expected: tuple[TcpOption, ...], actual: tuple[TcpOption, ...]
) -> tuple[TcpOption, ...]:
    """``TS val ... ecr ...`` expected: the actual echo is not compared either."""
    if not any(
        isinstance(option, TimestampsOption) and option.echo_reply == ANY_TS for option in expected
    ):
        return actual
    return tuple(
        TimestampsOption(option.value, ANY_TS) if isinstance(option, TimestampsOption) else option
        for option in actual
    )


def options_mismatch(expected: tuple[TcpOption, ...], actual: tuple[TcpOption, ...]) -> bool:
    """Whether the option lists differ (TSval aside; trailing zero padding ignored)."""
    actual = _any_echo(expected, actual)
    keep_eol = any(isinstance(option, EndOfOptionList) for option in expected)
    return _comparable_options(expected, True) != _comparable_options(actual, keep_eol)


def mismatch(
    expected: PacketEvent,
    segment: TcpSegment,
    *,
    sender: SequenceSpace,
    acked: SequenceSpace,
    lenient: bool,
) -> str | None:
    """Why ``segment`` is not the one the line expects, or None when it is.

    Lenient mode checks flags (PSH aside), sequence and acknowledgement
    numbers and the payload length only; strict mode also checks PSH, the
    window, the urgent pointer and the option list (unless written ``<...>``).
    """
    ignored = PSH if lenient else 0
    if segment.flags & ~ignored != expected.flags & ~ignored:
        return f"flags {format_flags(segment.flags)} instead of {format_flags(expected.flags)}"
    seq = sender.to_script(segment.seq)
    if seq != expected.seq_start:
        return f"sequence number {seq} instead of {expected.seq_start}"
    if len(segment.payload) != expected.payload_length:
        return f"payload of {len(segment.payload)} bytes instead of {expected.payload_length}"
    if expected.ack is not None:
        ack = acked.to_script(segment.ack)
        if ack != expected.ack:
            return f"acknowledgement number {ack} instead of {expected.ack}"
    if lenient:
        return None
    if expected.window is not None and segment.window != expected.window:
        return f"window {segment.window} instead of {expected.window}"
    if expected.urgent_pointer is not None and segment.urgent_pointer != expected.urgent_pointer:
        return f"urgent pointer {segment.urgent_pointer} instead of {expected.urgent_pointer}"
    if expected.options is not None:
        actual_options = options_to_script(segment.options, acked=acked)
        if options_mismatch(expected.options, actual_options):
            return (
                f"TCP options{format_options(actual_options) or ' <>'} instead of"
                f"{format_options(expected.options) or ' <>'}"
            )
    return None


_ECN_BITS = {"noecn": (0,), "ect1": (1,), "ect0": (2,), "ce": (3,), "ect01": (1, 2)}
"""RFC 3168 §5: the IP header's ECN field for each annotation."""


def ip_mismatch(expected: PacketEvent, *, tos: int, ttl: int) -> str | None:
    """Why the IP header is not what ``[ect0]``/``(tos 0x..)``/``(ttl N)`` say, or None."""
    if expected.ecn is not None and tos & 3 not in _ECN_BITS[expected.ecn]:
        names = {bits: name for name, (bits, *_) in _ECN_BITS.items() if name != "ect01"}
        return f"IP ECN field [{names[tos & 3]}] instead of [{expected.ecn}]"
    if expected.tos is not None and tos != expected.tos:
        return f"IP TOS {tos:#04x} instead of {expected.tos:#04x}"
    if expected.ttl is not None and ttl != expected.ttl:
        return f"IP TTL {ttl} instead of {expected.ttl}"
    return None


def inbound_tos(event: PacketEvent) -> int:
    """The TOS byte an inbound line asks for (its ECN annotation in the low two bits)."""
    tos = event.tos or 0
    if event.ecn is not None:
        tos = (tos & ~3) | _ECN_BITS[event.ecn][0]
    return tos


def merge_pieces(pieces: list[TcpSegment]) -> TcpSegment:
    """Consecutive segments as the one TSO super-segment a line wrote (packetdrill on Linux
    sees the super-segment before the NIC cuts it): the first's header, every payload, the
    last one's ACK, window and FIN, PSH if any piece had it."""
    first, last = pieces[0], pieces[-1]
    flags = last.flags | (PSH if any(piece.flags & PSH for piece in pieces) else 0)
    return TcpSegment(
        first.source_port,
        first.destination_port,
        first.seq,
        last.ack,
        flags,
        last.window,
        first.options,
        b"".join(bytes(piece.payload) for piece in pieces),
        last.urgent_pointer,
    )
