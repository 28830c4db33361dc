"""TCP option lists of packet lines: ``<mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7>``.

Options reuse the classes of :mod:`simtcp.wire.tcp`; SACK edges stay
relative. ``TS val ... ecr ...`` (outbound only) is any value: :data:`ANY_TS`.
"""

from __future__ import annotations

import re

from ..wire.tcp import (
    EndOfOptionList,
    MssOption,
    NopOption,
    SackOption,
    SackPermittedOption,
    TcpOption,
    TimestampsOption,
    WindowScaleOption,
)
from .syntax import ScriptSyntaxError, _Unsupported

ANY_TS = -1
"""TS val/ecr written ``...`` on an outbound line: any value."""


def parse_options(text: str, line: int) -> tuple[TcpOption, ...] | None:
    """Inside ``<...>``: ``mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7``; None for ``...``."""
    if text.strip() == "...":
        return None
    options: list[TcpOption] = []
    for part in (part.strip() for part in text.split(",")):
        words = part.split()
        if not words:
            raise ScriptSyntaxError(line, "empty TCP option")
        options.append(_parse_option(words, line))
    return tuple(options)


def check_inbound_options(options: tuple[TcpOption, ...], line: int) -> None:
    for option in options:
        if isinstance(option, TimestampsOption) and ANY_TS in (option.value, option.echo_reply):
            raise ScriptSyntaxError(line, "TS val/ecr '...' can only be used with outbound packets")


def option_number(words: list[str], index: int, line: int) -> int:
    if index >= len(words) or not re.fullmatch(r"\d+", words[index]):
        raise ScriptSyntaxError(line, f"TCP option {' '.join(words)!r} needs a number")
    return int(words[index])


def _parse_option(words: list[str], line: int) -> TcpOption:
    name = words[0]
    if name == "nop" and len(words) == 1:
        return NopOption()
    if name == "eol" and len(words) == 1:
        return EndOfOptionList()
    if name == "sackOK" and len(words) == 1:
        return SackPermittedOption()
    if name == "mss" and len(words) == 2:
        return MssOption(option_number(words, 1, line))
    if name == "wscale" and len(words) == 2:
        return WindowScaleOption(option_number(words, 1, line))
    if name == "TS" and len(words) == 5 and words[1] == "val" and words[3] == "ecr":
        value = ANY_TS if words[2] == "..." else option_number(words, 2, line)
        echo = ANY_TS if words[4] == "..." else option_number(words, 4, line)
        return TimestampsOption(value, echo)
    if name == "sack" and len(words) >= 2:
        blocks: list[tuple[int, int]] = []
        for block in words[1:]:
            left, colon, right = block.partition(":")
            if not colon or not left.isdigit() or not right.isdigit():
                raise ScriptSyntaxError(line, f"SACK block {block!r} is not start:end")
            blocks.append((int(left), int(right)))
        return SackOption(tuple(blocks))
    if name in ("FO", "FOEXP", "tfo"):
        raise _Unsupported("TCP option FO (TCP Fast Open is not in the engine)")
    if name in ("md5", "exp", "mptcp", "TCPAO", "tcpao", "dss", "mp_capable", "mp_join"):
        raise _Unsupported(f"TCP option {name}")
    raise ScriptSyntaxError(line, f"unknown TCP option {' '.join(words)!r}")
